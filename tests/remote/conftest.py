"""admin served in-process on 127.0.0.1:0 (SQLite, file:// store), and a user module on disk."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis.storage import StorageConfig

FLOWS = """
from caddis import task, workflow, LaunchPlan


@task
def double(x: int) -> int:
    return 2 * x


@task
def greet(name: str, times: int = 1) -> str:
    return ", ".join(["hello " + name] * times)


@workflow
def pipeline(x: int) -> int:
    return double(x=double(x=x))


@workflow
def with_default(x: int = 7) -> int:
    return double(x=x)


pipeline_lp = LaunchPlan.get_or_create(
    pipeline, name=__name__ + ".pipeline_lp", default_inputs={"x": 5}
)
"""


@pytest.fixture
def storage(tmp_path: Path) -> StorageConfig:
    return StorageConfig(local_root=str(tmp_path / "storage"))


@pytest.fixture
def admin(tmp_path: Path, storage: StorageConfig) -> Iterator[Any]:
    from caddis_admin.config import AdminConfig
    from caddis_admin.server import serve

    config = AdminConfig(
        server=ServerConfig(port=0, metrics_port=None),
        database=DatabaseConfig(url=f"sqlite:///{tmp_path / 'admin.db'}"),
        state_dir=str(tmp_path / "admin"),
        storage=storage,
    )
    server = serve(config)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def remote(admin: Any, storage: StorageConfig) -> Iterator[Any]:
    from caddis.remote import CaddisRemote, RemoteConfig

    with CaddisRemote(
        config=RemoteConfig(endpoint=admin.address, project="proj", domain="development"),
        storage=storage,
    ) as client:
        yield client


@pytest.fixture
def flows(tmp_path: Path) -> Iterator[ModuleType]:
    """A user module written to its own directory (the code bundle root)."""
    root = tmp_path / "user_code"
    root.mkdir()
    name = f"flows_{uuid.uuid4().hex[:8]}"
    (root / f"{name}.py").write_text(textwrap.dedent(FLOWS))
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(name, None)
