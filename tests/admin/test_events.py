"""Event ingestion: idempotency, ordering, terminal refusal, node/task records."""

from __future__ import annotations

import grpc
import pytest

from caddis_idl.admin.v1 import (
    event_service_pb2 as evs,
)
from caddis_idl.admin.v1 import (
    execution_service_pb2 as es,
)
from caddis_idl.admin.v1 import (
    node_execution_service_pb2 as nes,
)
from caddis_idl.admin.v1 import (
    task_execution_service_pb2 as tes,
)
from caddis_idl.core.v1 import execution_pb2 as ce
from caddis_idl.core.v1 import identifier_pb2
from caddis_idl.event.v1 import event_pb2
from tests.admin.helpers import int_lit, lmap, task_id
from tests.admin.test_executions import create, exec_id
from tests.admin.test_registration import register_basics


def wf_event(stubs, name, phase, at, request_id=""):
    ev = event_pb2.WorkflowExecutionEvent(execution_id=exec_id(name), phase=phase)
    ev.occurred_at.FromSeconds(at)
    stubs.events.CreateWorkflowEvent(
        evs.CreateWorkflowEventRequest(request_id=request_id, event=ev)
    )


def node_id(name, node):
    return identifier_pb2.NodeExecutionIdentifier(node_id=node, execution_id=exec_id(name))


def test_workflow_events_dedupe_order_and_terminal(stubs):
    register_basics(stubs)
    name = create(stubs, inputs=lmap(x=int_lit(1)))
    wf_event(stubs, name, ce.WORKFLOW_EXECUTION_PHASE_RUNNING, 10, "r1")
    wf_event(stubs, name, ce.WORKFLOW_EXECUTION_PHASE_RUNNING, 10, "r1")  # same request
    wf_event(stubs, name, ce.WORKFLOW_EXECUTION_PHASE_RUNNING, 11, "r2")  # same phase again
    wf_event(stubs, name, ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, 30)
    wf_event(stubs, name, ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, 30)
    wf_event(stubs, name, ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDING, 20)  # late, older: no rollback
    got = stubs.executions.GetExecution(es.GetExecutionRequest(id=exec_id(name))).execution
    assert got.closure.phase == ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert got.closure.started_at.seconds == 10
    assert got.closure.duration.seconds == 20
    with pytest.raises(grpc.RpcError) as err:
        wf_event(stubs, name, ce.WORKFLOW_EXECUTION_PHASE_FAILED, 40)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SUCCEEDED" in err.value.details()
    batch = stubs.events.CreateEvents(
        evs.CreateEventsRequest(
            events=[
                evs.BatchedEvent(
                    request_id="r1",
                    workflow_event=event_pb2.WorkflowExecutionEvent(
                        execution_id=exec_id(name), phase=ce.WORKFLOW_EXECUTION_PHASE_RUNNING
                    ),
                ),
                evs.BatchedEvent(
                    request_id="x",
                    workflow_event=event_pb2.WorkflowExecutionEvent(
                        execution_id=exec_id("missing"), phase=ce.WORKFLOW_EXECUTION_PHASE_RUNNING
                    ),
                ),
            ]
        )
    )
    assert [r.outcome for r in batch.results] == [
        evs.EVENT_OUTCOME_DUPLICATE,
        evs.EVENT_OUTCOME_NOT_FOUND,
    ]


def test_node_and_task_events_build_records(stubs):
    register_basics(stubs)
    name = create(stubs, inputs=lmap(x=int_lit(1)))

    def node_event(node, phase, at, parent="", **kw):
        ev = event_pb2.NodeExecutionEvent(id=node_id(name, node), phase=phase, **kw)
        ev.occurred_at.FromSeconds(at)
        if parent:
            ev.parent_node_metadata.node_id = parent
        stubs.events.CreateNodeEvent(evs.CreateNodeEventRequest(event=ev))

    def task_event(phase, at, attempt=0, version=0, logs=()):
        ev = event_pb2.TaskExecutionEvent(
            task_id=task_id("t1"),
            parent_node_execution_id=node_id(name, "n0"),
            retry_attempt=attempt,
            phase=phase,
            phase_version=version,
            logs=list(logs),
        )
        ev.occurred_at.FromSeconds(at)
        stubs.events.CreateTaskEvent(evs.CreateTaskEventRequest(event=ev))

    node_event("n0", ce.NODE_EXECUTION_PHASE_RUNNING, 5, is_parent=True, is_dynamic=True)
    node_event("n0-0", ce.NODE_EXECUTION_PHASE_RUNNING, 6, parent="n0")
    node_event("n0-0", ce.NODE_EXECUTION_PHASE_RUNNING, 6, parent="n0")
    task_event(
        ce.TASK_EXECUTION_PHASE_RUNNING, 5, logs=[ce.TaskLog(name="stdout", uri="file:///l0")]
    )
    task_event(
        ce.TASK_EXECUTION_PHASE_RUNNING,
        6,
        version=1,
        logs=[ce.TaskLog(name="stderr", uri="file:///l1")],
    )
    task_event(ce.TASK_EXECUTION_PHASE_RUNNING, 6, version=1)  # duplicate
    task_event(
        ce.TASK_EXECUTION_PHASE_RETRYABLE_FAILED,
        7,
        logs=[ce.TaskLog(name="stdout", uri="file:///l0")],
    )
    with pytest.raises(grpc.RpcError) as err:
        task_event(ce.TASK_EXECUTION_PHASE_SUCCEEDED, 8)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    task_event(ce.TASK_EXECUTION_PHASE_SUCCEEDED, 9, attempt=1)
    task_event(ce.TASK_EXECUTION_PHASE_RUNNING, 8, attempt=1)  # late, older
    node_event(
        "n0",
        ce.NODE_EXECUTION_PHASE_SUCCEEDED,
        10,
        task_node_metadata=event_pb2.TaskNodeMetadata(cache_status=ce.CATALOG_CACHE_STATUS_MISS),
    )

    top = stubs.nodes.ListNodeExecutions(
        nes.ListNodeExecutionsRequest(execution_id=exec_id(name))
    ).node_executions
    assert [n.id.node_id for n in top] == ["n0"]
    assert top[0].closure.phase == ce.NODE_EXECUTION_PHASE_SUCCEEDED
    assert top[0].closure.cache_status == ce.CATALOG_CACHE_STATUS_MISS
    assert top[0].metadata.is_dynamic and top[0].closure.duration.seconds == 5
    children = stubs.nodes.ListNodeExecutions(
        nes.ListNodeExecutionsRequest(execution_id=exec_id(name), unique_parent_id="n0")
    ).node_executions
    assert [n.id.node_id for n in children] == ["n0-0"]
    attempts = stubs.task_executions.ListTaskExecutions(
        tes.ListTaskExecutionsRequest(node_execution_id=node_id(name, "n0"))
    ).task_executions
    by_attempt = {a.id.retry_attempt: a for a in attempts}
    assert by_attempt[0].closure.phase == ce.TASK_EXECUTION_PHASE_RETRYABLE_FAILED
    assert [log.name for log in by_attempt[0].closure.logs] == ["stdout", "stderr"]
    assert by_attempt[1].closure.phase == ce.TASK_EXECUTION_PHASE_SUCCEEDED
    assert by_attempt[1].closure.started_at.seconds == 8
