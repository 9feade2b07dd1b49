"""Examples run remotely through the real services give the same outputs as local runs.

Each test starts the sandbox (admin, propeller, datacatalog as processes) and skips, naming the
missing piece, while a service is not built yet.
"""

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

from caddis._sandbox import processes as p
from tests.support import free_port

PROGRAM = """
from caddis import task, workflow, dynamic, map_task


@task(cache=True, cache_version="1")
def square(x: int) -> int:
    return x * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@dynamic
def fan(n: int) -> list[int]:
    return [square(x=i) for i in range(n)]


@workflow
def pipeline(xs: list[int]) -> int:
    return total(xs=map_task(square)(x=xs))


@workflow
def dyn(n: int) -> int:
    return total(xs=fan(n=n))
"""


def _require_services() -> None:
    missing = [p.PACKAGES[s] for s in p.SERVICES if not p.available(s)]
    if missing:
        pytest.skip(f"remote runs need every service; not built yet: {', '.join(missing)}")


@pytest.fixture
def program(tmp_path: Path) -> Iterator[ModuleType]:
    root = tmp_path / "code"
    root.mkdir()
    name = f"e2e_{uuid.uuid4().hex[:8]}"
    (root / f"{name}.py").write_text(textwrap.dedent(PROGRAM))
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(name, None)


def _sandbox(tmp_path: Path, **kwargs: Any) -> Iterator[Any]:
    from caddis.remote import CaddisRemote

    opts = p.SandboxOptions(
        state_dir=tmp_path / "sandbox", ports={s: free_port() for s in p.SERVICES}, **kwargs
    )
    opts.state_dir.mkdir()
    p.start(opts, timeout=60, echo=lambda _m: None)
    try:
        with CaddisRemote(config_file=opts.state_dir / "client.yaml") as remote:
            yield remote
    finally:
        p.stop(opts.state_dir, echo=lambda _m: None)


@pytest.fixture
def sqlite_sandbox(tmp_path: Path) -> Iterator[Any]:
    _require_services()
    yield from _sandbox(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "workflow, inputs",
    [
        ("pipeline", {"xs": [1, 2, 3, 4]}),
        pytest.param("dyn", {"n": 4}),
    ],
)
def test_remote_outputs_equal_local(
    sqlite_sandbox: Any, program: ModuleType, workflow: str, inputs: dict[str, Any]
) -> None:
    entity = getattr(program, workflow)
    local = entity(**inputs)
    execution = sqlite_sandbox.execute(entity, inputs, wait=True, timeout=120)
    assert execution.is_successful, execution.error
    assert execution.outputs == {"o0": local}
    trees = sqlite_sandbox.node_executions(execution)
    assert trees and all(t.phase == "SUCCEEDED" for t in trees)


@pytest.mark.slow
def test_second_run_hits_the_cache(sqlite_sandbox: Any, program: ModuleType) -> None:
    first = sqlite_sandbox.execute(program.pipeline, {"xs": [5, 6]}, wait=True, timeout=120)
    second = sqlite_sandbox.execute(program.pipeline, {"xs": [5, 6]}, wait=True, timeout=120)
    assert first.outputs == second.outputs
    statuses = {
        node.cache_status
        for tree in sqlite_sandbox.node_executions(second)
        for _, node in tree.walk()
    }
    assert "HIT" in statuses


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_remote_on_postgres_and_s3(
    tmp_path: Path, program: ModuleType, postgres_url: str, s3_endpoint: Any, s3_bucket: str
) -> None:
    _require_services()
    for remote in _sandbox(
        tmp_path,
        db=postgres_url,
        storage=f"s3://{s3_bucket}/caddis",
        s3_endpoint=s3_endpoint.url,
        s3_access_key=s3_endpoint.access_key,
        s3_secret_key=s3_endpoint.secret_key,
    ):
        execution = remote.execute(program.pipeline, {"xs": [3, 4]}, wait=True, timeout=120)
        assert execution.is_successful, execution.error
        assert execution.outputs == {"o0": program.pipeline(xs=[3, 4])}
