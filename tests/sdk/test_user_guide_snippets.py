"""Every ```python block of docs/user-guide.md whose first line is ``# test`` runs as written.

Each block is written to its own module file and imported, as a user's file would be, so
that what the guide shows cannot silently stop working. Blocks are independent programs.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide.md"
_BLOCK = re.compile(r"^```python\n(# test[^\n]*\n.*?)^```$", re.S | re.M)


def _snippets() -> list[tuple[str, int, str]]:
    text = GUIDE.read_text(encoding="utf-8")
    out = []
    for i, match in enumerate(_BLOCK.finditer(text)):
        line = text.count("\n", 0, match.start()) + 2  # first line after the fence
        out.append((f"snippet{i:02d}_line{line}", line, match.group(1)))
    return out


SNIPPETS = _snippets()


def test_the_guide_has_tested_snippets() -> None:
    assert len(SNIPPETS) >= 10


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CADDIS_LOCAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    try:
        from caddis import _local
    except ImportError:  # pragma: no cover
        return
    with _local._CACHE_LOCK:  # the next test gets a fresh cache in its own directory
        for cache in _local._CACHE:
            cache.close()
        _local._CACHE.clear()


@pytest.mark.parametrize(("name", "line", "code"), SNIPPETS, ids=[s[0] for s in SNIPPETS])
def test_snippet(name: str, line: int, code: str, isolated: Path) -> None:
    if "local" in code.splitlines()[0] and importlib.util.find_spec("caddis._local") is None:
        pytest.skip("local execution (caddis._local) is not available")
    path = isolated / f"{name}.py"
    # Blank lines keep tracebacks pointing at the guide's own line numbers.
    path.write_text("\n" * (line - 1) + code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
