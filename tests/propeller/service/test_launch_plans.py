"""Launch-plan nodes: child executions created, watched and aborted through a real admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caddis_propeller.clients.launch_plans import child_id
from caddis_propeller.engine.interfaces import LaunchRequest
from tests.propeller.service import leftover_workflows as lw
from tests.propeller.service.admin_stack import DOMAIN, PROJECT, Stack, runs, start_stack


@pytest.fixture
def stack(tmp_path: Path, storage: Any, make_config: Any, start_propeller: Any) -> Iterator[Stack]:
    yield from start_stack(tmp_path, storage, make_config, start_propeller)


def test_parent_runs_child_execution(stack: Stack, markers: Path) -> None:
    stack.run(lw.parent, {"x": 10}, name="parent1")
    done = stack.wait("parent1")
    assert done.phase == "SUCCEEDED", done.error
    assert stack.remote.fetch_outputs(done) == {"o0": 12}
    # One child, named deterministically from (parent, node path, attempt), marked CHILD
    # with its parent node.
    from caddis_idl.core.v1 import identifier_pb2, literals_pb2

    request = LaunchRequest(
        execution_id=identifier_pb2.WorkflowExecutionIdentifier(
            project=PROJECT, domain=DOMAIN, name="parent1"
        ),
        node_path="n0",
        launch_plan=identifier_pb2.Identifier(),
        template=None,
        inputs=literals_pb2.LiteralMap(),
        attempt=0,
    )
    child = stack.remote.fetch_execution(child_id(request).name)
    assert child.phase == "SUCCEEDED"
    meta = child.proto.spec.metadata
    assert meta.mode == 5  # EXECUTION_MODE_CHILD
    assert meta.parent_node_execution.node_id == "n0"
    assert meta.parent_node_execution.execution_id.name == "parent1"
    assert runs(markers, "add_one") == 2
    assert runs(markers, "add_one", child.name) == 1


def _request(parent: str, launch_plan: Any, inputs: Any) -> LaunchRequest:
    from caddis_idl.core.v1 import identifier_pb2

    return LaunchRequest(
        execution_id=identifier_pb2.WorkflowExecutionIdentifier(
            project=PROJECT, domain=DOMAIN, name=parent
        ),
        node_path="n0",
        launch_plan=launch_plan,
        template=None,
        inputs=inputs,
        attempt=0,
    )


def test_launch_is_idempotent_and_unknown_plan_fails(stack: Stack) -> None:
    import grpc

    from caddis_idl.core.v1 import identifier_pb2
    from caddis_propeller.clients.launch_plans import AdminLaunchPlanRunner
    from caddis_propeller.engine.interfaces import Failed, Running
    from tests.propeller.service.conftest import to_literals

    stack.remote.register(lw.child, version="v1", fast=False)
    lp = identifier_pb2.Identifier(
        resource_type=identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN,
        project=PROJECT,
        domain=DOMAIN,
        name="tests.propeller.service.leftover_workflows.child",
        version="v1",
    )
    with grpc.insecure_channel(stack.admin.address) as channel:
        runner = AdminLaunchPlanRunner(channel, stack.propeller.running.store)
        req = _request("ghost-parent", lp, to_literals(lw.child, {"x": 1}))
        first = runner.launch(req)
        again = runner.launch(req)  # a replayed round: same child, no error
        assert isinstance(first, Running) and isinstance(again, Running)
        assert first.handle == again.handle
        listed = [e.name for e in stack.remote.list_executions()]
        assert listed.count(child_id(req).name) == 1
        missing = identifier_pb2.Identifier()
        missing.CopyFrom(lp)
        missing.name = "no.such.plan"
        refused = runner.launch(_request("other-parent", missing, req.inputs))
        assert isinstance(refused, Failed)
        assert "no.such.plan" in refused.error.message


def test_abort_parent_terminates_child(stack: Stack) -> None:
    stack.run(lw.slow_parent, {"seconds": 30.0}, name="parent2")
    from caddis_idl.core.v1 import identifier_pb2

    child_name = child_id(_request("parent2", identifier_pb2.Identifier(), None)).name  # type: ignore[arg-type]
    from tests.support import wait_until

    wait_until(lambda: _phase(stack, child_name) == "RUNNING", timeout=30, message="child running")
    stack.remote.terminate("parent2", cause="test")
    assert stack.wait("parent2").phase == "ABORTED"
    wait_until(lambda: _phase(stack, child_name) == "ABORTED", timeout=30, message="child aborted")


def _phase(stack: Stack, name: str) -> str:
    try:
        return str(stack.remote.fetch_execution(name).phase)
    except Exception:
        return ""
