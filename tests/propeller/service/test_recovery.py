"""Recovery: a recovered execution reuses the outputs of nodes that succeeded in the failed one.

Flaky tasks fail while a flag file exists (removing it), so the first execution fails and
its recovery succeeds; marker files count how often each task's code ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caddis_idl.core.v1 import execution_pb2
from tests.propeller.service import leftover_workflows as lw
from tests.propeller.service.admin_stack import Stack, runs, start_stack
from tests.support import wait_until

NP = execution_pb2.NodeExecutionPhase


@pytest.fixture
def flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Set before propeller starts: warm workers inherit the environment.
    path = tmp_path / "fail-once"
    path.write_text("")
    monkeypatch.setenv("CADDIS_TEST_FAIL_ONCE", str(path))
    return path


@pytest.fixture
def stack(
    tmp_path: Path, storage: Any, make_config: Any, start_propeller: Any, flag: Path
) -> Iterator[Stack]:
    yield from start_stack(tmp_path, storage, make_config, start_propeller)


def _phases(stack: Stack, name: str) -> dict[str, str]:
    return {
        node.node_id: node.phase
        for tree in stack.remote.node_executions(name)
        for _, node in tree.walk()
    }


def test_recovered_execution_skips_succeeded_nodes(stack: Stack, markers: Path, flag: Path) -> None:
    stack.run(lw.recoverable, {"x": 2}, name="first")
    failed = stack.wait("first")
    assert failed.phase == "FAILED"
    assert not flag.exists()
    assert runs(markers, "add_one") == 1
    recovered = stack.remote.recover("first", name="second")
    done = stack.wait(recovered.name)
    assert done.phase == "SUCCEEDED", done.error
    assert stack.remote.fetch_outputs(done) == {"o0": 9}  # (2 + 1) ** 2
    assert runs(markers, "add_one") == 1  # not rerun
    assert runs(markers, "flaky_square", "second") == 1
    phases = wait_until(
        lambda: (p := _phases(stack, "second")).get("n1") == "SUCCEEDED" and p,
        message="node events of the recovery",
    )
    assert phases["n0"] == "RECOVERED"


def test_recovery_inside_a_dynamic_node(stack: Stack, markers: Path) -> None:
    stack.run(lw.recoverable_dynamic, {"n": 3}, name="dfirst")
    assert stack.wait("dfirst").phase == "FAILED"
    assert runs(markers, "add_one") == 3
    assert runs(markers, "total") == 1
    recovered = stack.remote.recover("dfirst", name="dsecond")
    done = stack.wait(recovered.name)
    assert done.phase == "SUCCEEDED", done.error
    assert stack.remote.fetch_outputs(done) == {"o0": 36}  # (1 + 2 + 3) ** 2
    # The dynamic task itself reran (its node failed), but its succeeded children did not.
    assert runs(markers, "add_one") == 3
    assert runs(markers, "total") == 1
    assert runs(markers, "flaky_square", "dsecond") == 1
    phases = wait_until(
        lambda: (p := _phases(stack, "dsecond")).get("n0") == "SUCCEEDED" and p,
        message="node events of the recovery",
    )
    recovered_children = [k for k, v in phases.items() if k.startswith("n0/") and v == "RECOVERED"]
    assert len(recovered_children) == 4, phases  # three add_one and the total


def test_recovery_keeps_a_succeeded_map_node(stack: Stack, markers: Path) -> None:
    stack.run(lw.recoverable_map, {"xs": [0, 1, 2]}, name="mfirst")
    assert stack.wait("mfirst").phase == "FAILED"
    assert runs(markers, "add_one") == 3
    recovered = stack.remote.recover("mfirst", name="msecond")
    done = stack.wait(recovered.name)
    assert done.phase == "SUCCEEDED", done.error
    assert stack.remote.fetch_outputs(done) == {"o0": 36}
    assert runs(markers, "add_one") == 3  # the whole array node was recovered
    assert runs(markers, "total") == 1


def test_recovery_reuses_the_succeeded_items_of_a_failed_map(stack: Stack, markers: Path) -> None:
    stack.run(lw.partly_failing_map, {"xs": [0, 1, 2]}, name="pfirst")
    assert stack.wait("pfirst").phase == "FAILED"
    assert runs(markers, "flaky_item") == 3
    recovered = stack.remote.recover("pfirst", name="psecond")
    done = stack.wait(recovered.name)
    assert done.phase == "SUCCEEDED", done.error
    assert stack.remote.fetch_outputs(done) == {"o0": [10, 11, 12]}
    assert runs(markers, "flaky_item", "psecond") == 1  # only the item that failed ran again
    assert runs(markers, "flaky_item") == 4
