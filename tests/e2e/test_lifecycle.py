"""Execution lifecycle through the real services: recover, fully cached reruns, terminate.

Task bodies append a line to a marker file each time they run, so the tests count task
invocations in the task processes that propeller starts, from outside.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from tests.e2e.conftest import Sandbox
from tests.support import wait_until

pytestmark = pytest.mark.slow

TIMEOUT = 120

PROGRAM = """
import os
import time

from caddis import map_task, task, workflow


def _mark(path: str) -> None:
    with open(path, "a") as fh:
        fh.write(f"{os.getpid()}\\n")


@task
def first(marker: str, x: int) -> int:
    _mark(marker + ".first")
    return x + 1


@task
def flaky(marker: str, y: int) -> int:
    _mark(marker + ".flaky")
    flag = marker + ".fail"
    if os.path.exists(flag):
        os.remove(flag)
        raise RuntimeError("failing once on purpose")
    return y * 10


@workflow
def recoverable(marker: str, x: int) -> int:
    return flaky(marker=marker, y=first(marker=marker, x=x))


@task(cache=True, cache_version="1")
def c_one(marker: str, x: int) -> int:
    _mark(marker)
    return x + 1


@task(cache=True, cache_version="1")
def c_two(marker: str, x: int) -> int:
    _mark(marker)
    return x * 2


@workflow
def cached(marker: str, x: int) -> int:
    return c_two(marker=marker, x=c_one(marker=marker, x=x))


@task
def sleeper(pidfile: str) -> int:
    with open(pidfile + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.replace(pidfile + ".tmp", pidfile)  # the test sees the whole pid or nothing
    time.sleep(600)
    return 0


@workflow
def sleepy(pidfile: str) -> int:
    return sleeper(pidfile=pidfile)
"""


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def program(load_program: Callable[..., ModuleType]) -> ModuleType:
    return load_program(text=PROGRAM)


def test_recovered_execution_skips_succeeded_nodes(
    sandbox: Sandbox, program: ModuleType, tmp_path: Path
) -> None:
    marker = tmp_path / "m"
    Path(f"{marker}.fail").write_text("fail once")
    inputs = {"marker": str(marker), "x": 4}
    failed = sandbox.remote.execute(program.recoverable, inputs, wait=True, timeout=TIMEOUT)
    assert failed.phase == "FAILED", failed.error
    assert "failing once on purpose" in failed.error
    assert _lines(Path(f"{marker}.first")) == 1
    assert _lines(Path(f"{marker}.flaky")) == 1

    recovered = sandbox.remote.wait(sandbox.remote.recover(failed), timeout=TIMEOUT)
    assert recovered.is_successful, recovered.error
    assert recovered.outputs == {"o0": 50}
    # first succeeded in the failed execution: its outputs were reused, its body did not run.
    assert _lines(Path(f"{marker}.first")) == 1
    assert _lines(Path(f"{marker}.flaky")) == 2


def test_fully_cached_rerun_starts_no_task(
    sandbox: Sandbox, program: ModuleType, tmp_path: Path
) -> None:
    marker = tmp_path / "invocations"
    inputs = {"marker": str(marker), "x": 3}
    first = sandbox.remote.execute(program.cached, inputs, wait=True, timeout=TIMEOUT)
    assert first.is_successful, first.error
    assert _lines(marker) == 2

    second = sandbox.remote.execute(program.cached, inputs, wait=True, timeout=TIMEOUT)
    assert second.is_successful, second.error
    assert second.outputs == first.outputs == {"o0": 8}
    assert _lines(marker) == 2, "a task of the fully cached rerun ran again"
    task_nodes = [
        node
        for tree in sandbox.remote.node_executions(second)
        for _, node in tree.walk()
        if node.node_id not in {"start-node", "end-node"}
    ]
    assert task_nodes
    assert {n.node_id: n.cache_status for n in task_nodes} == dict.fromkeys(
        (n.node_id for n in task_nodes), "HIT"
    )


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        # An exited child its parent has not reaped yet no longer runs anything.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in {"Z", "X"}


def test_terminate_stops_running_tasks(
    sandbox: Sandbox, program: ModuleType, tmp_path: Path
) -> None:
    pidfile = tmp_path / "sleeper.pid"
    execution = sandbox.remote.execute(program.sleepy, {"pidfile": str(pidfile)})
    pid = int(
        wait_until(
            lambda: pidfile.exists() and pidfile.read_text(),
            timeout=60,
            message="the sleeping task wrote its pid",
        )
    )
    assert not _gone(pid)
    sandbox.remote.terminate(execution, cause="e2e terminate")
    wait_until(lambda: _gone(pid), timeout=20, message=f"task process {pid} exited")
    wait_until(
        lambda: sandbox.remote.sync(execution).phase == "ABORTED",
        timeout=20,
        message="execution ABORTED",
    )
    assert "e2e terminate" in execution.error
