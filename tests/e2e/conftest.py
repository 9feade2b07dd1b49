"""Fixtures of the end-to-end tests: a sandbox (admin, propeller, datacatalog as processes).

- ``sandbox``: one SQLite + local-dir sandbox per test module (starting three services costs
  seconds, so tests in a module share it and keep apart by using fresh module names, which
  give fresh task names, executions and cache keys);
- ``load_program``: imports program text (or a copy of an example) as a new uniquely named
  module in a temporary directory, the code root that gets bundled for the task processes;
- ``local_cache``: a private local cache directory for local runs.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from caddis._sandbox import processes as p
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


def require_services() -> None:
    """Skip, naming the missing packages, while a service is not built."""
    missing = [p.PACKAGES[s] for s in p.SERVICES if not p.available(s)]
    if missing:
        pytest.skip(f"remote runs need every service; not built yet: {', '.join(missing)}")


@dataclass
class Sandbox:
    """A running sandbox and a client connected to it.

    Attributes:
        remote: A ``CaddisRemote`` on the sandbox's admin.
        state_dir: The sandbox's state directory (configs, logs, ``sandbox.json``).
    """

    remote: Any
    state_dir: Path

    def metrics_url(self, service: str) -> str:
        """The ``/metrics`` URL of one service."""
        return p.read_state(self.state_dir)[service].metrics_url

    def log(self, service: str) -> str:
        """The service's log so far (for failure messages)."""
        return (self.state_dir / "logs" / f"{service}.log").read_text(errors="replace")


def start_sandbox(state_dir: Path, **options: Any) -> Iterator[Sandbox]:
    """Start every service in ``state_dir`` (free ports), yield it, then stop it."""
    from caddis.remote import CaddisRemote

    opts = p.SandboxOptions(
        state_dir=state_dir, ports={s: free_port() for s in p.SERVICES}, **options
    )
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    p.start(opts, timeout=60, echo=lambda _m: None)
    try:
        with CaddisRemote(config_file=opts.state_dir / "client.yaml") as remote:
            yield Sandbox(remote=remote, state_dir=opts.state_dir)
    finally:
        p.stop(opts.state_dir, echo=lambda _m: None)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A SQLite + local-dir sandbox shared by the tests of one module."""
    require_services()
    yield from start_sandbox(tmp_path_factory.mktemp("sandbox"))


@pytest.fixture
def local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private local cache for local runs of cached tasks."""
    path = tmp_path / "local-cache"
    monkeypatch.setenv("CADDIS_LOCAL_CACHE_DIR", str(path))
    return path


@pytest.fixture
def load_program(tmp_path: Path) -> Iterator[Callable[..., ModuleType]]:
    """Import program text, or a copy of ``examples/<name>.py``, as a fresh module.

    Call with ``text=...`` or ``example="count_characters"``; returns the module.
    """
    root = tmp_path / "code"
    root.mkdir()
    names: list[str] = []
    sys.path.insert(0, str(root))

    def load(*, text: str | None = None, example: str | None = None) -> ModuleType:
        if example is not None:
            source = (ROOT / "examples" / f"{example}.py").read_text()
            prefix = example
        else:
            assert text is not None
            source = textwrap.dedent(text)
            prefix = "e2e"
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        (root / f"{name}.py").write_text(source)
        names.append(name)
        return importlib.import_module(name)

    try:
        yield load
    finally:
        sys.path.remove(str(root))
        for name in names:
            sys.modules.pop(name, None)
