from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caddis.core.type_engine import DataContext, data_context


@pytest.fixture
def data_ctx(tmp_path: Path) -> Iterator[DataContext]:
    """A data context whose raw-data prefix is a file:// URI under tmp_path."""
    raw = tmp_path / "raw"
    raw.mkdir()
    ctx = DataContext(raw_output_prefix=raw.as_uri(), local_dir=str(tmp_path / "local"))
    with data_context(ctx):
        yield ctx
