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


# -- CreateEvents: one transaction per execution, same outcomes as one call per event ------


def _create(stubs):
    return create(stubs, inputs=lmap(x=int_lit(1)))


def _batched(kind, request_id, ev):
    return evs.BatchedEvent(request_id=request_id, **{kind: ev})


def _history(name):
    """Events touching every rule: duplicates (request id, same phase, stale phase version),
    late events, refusals out of terminal phases, parent placeholders, a task before its node.
    """
    ex = exec_id(name)

    def at(ev, seconds):
        ev.occurred_at.FromSeconds(seconds)
        return ev

    def wf(phase, t):
        return "workflow_event", at(
            event_pb2.WorkflowExecutionEvent(execution_id=ex, phase=phase), t
        )

    def node(nid, phase, t, parent="", **kw):
        ev = event_pb2.NodeExecutionEvent(
            id=identifier_pb2.NodeExecutionIdentifier(node_id=nid, execution_id=ex),
            phase=phase,
            retry_group="0",
            **kw,
        )
        if parent:
            ev.parent_node_metadata.node_id = parent
        return "node_event", at(ev, t)

    def task(nid, phase, t, attempt=0, version=0, logs=()):
        ev = event_pb2.TaskExecutionEvent(
            task_id=task_id("t1"),
            parent_node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id=nid, execution_id=ex
            ),
            retry_attempt=attempt,
            phase=phase,
            phase_version=version,
            logs=list(logs),
        )
        return "task_event", at(ev, t)

    log0 = ce.TaskLog(name="stdout", uri="file:///l0")
    log1 = ce.TaskLog(name="stderr", uri="file:///l1")
    items = [
        ("a", *wf(ce.WORKFLOW_EXECUTION_PHASE_RUNNING, 10)),
        ("a", *wf(ce.WORKFLOW_EXECUTION_PHASE_RUNNING, 10)),  # same request id
        ("b", *wf(ce.WORKFLOW_EXECUTION_PHASE_RUNNING, 11)),  # same phase again
        ("c", *task("n1", ce.TASK_EXECUTION_PHASE_RUNNING, 11, logs=[log0])),  # before its node
        ("d", *node("n0-0", ce.NODE_EXECUTION_PHASE_RUNNING, 12, parent="n0")),  # placeholder
        ("e", *node("n0", ce.NODE_EXECUTION_PHASE_RUNNING, 11, is_parent=True, is_dynamic=True)),
        ("f", *node("n1", ce.NODE_EXECUTION_PHASE_QUEUED, 10)),  # late
        ("g", *task("n1", ce.TASK_EXECUTION_PHASE_RUNNING, 12, version=1, logs=[log1])),
        ("h", *task("n1", ce.TASK_EXECUTION_PHASE_RUNNING, 13, version=1)),  # stale version
        ("i", *task("n1", ce.TASK_EXECUTION_PHASE_RETRYABLE_FAILED, 14, logs=[log0])),
        ("j", *task("n1", ce.TASK_EXECUTION_PHASE_SUCCEEDED, 15)),  # refused: terminal
        ("k", *task("n1", ce.TASK_EXECUTION_PHASE_SUCCEEDED, 17, attempt=1)),
        ("l", *task("n1", ce.TASK_EXECUTION_PHASE_RUNNING, 16, attempt=1)),  # late, older
        ("m", *node("n0-0", ce.NODE_EXECUTION_PHASE_SUCCEEDED, 18, parent="n0")),
        ("n", *node("n0-0", ce.NODE_EXECUTION_PHASE_FAILED, 19, parent="n0")),  # refused
        ("o", *node("n0", ce.NODE_EXECUTION_PHASE_SUCCEEDED, 20)),
        ("p", "", None),  # holds no event: invalid
        ("q", *node("", ce.NODE_EXECUTION_PHASE_RUNNING, 20)),  # names no node: invalid
        ("r", *wf(ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, 30)),
        ("s", *wf(ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDING, 25)),  # late, older: no rollback
        ("t", *wf(ce.WORKFLOW_EXECUTION_PHASE_FAILED, 40)),  # refused: terminal
        ("u", *wf(ce.WORKFLOW_EXECUTION_PHASE_FAILED, 40)),  # refused again, not a duplicate
    ]
    return [(f"{name}-{rid}", kind, ev) for rid, kind, ev in items]


_SINGLE = {
    grpc.StatusCode.FAILED_PRECONDITION: evs.EVENT_OUTCOME_ALREADY_TERMINAL,
    grpc.StatusCode.NOT_FOUND: evs.EVENT_OUTCOME_NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: evs.EVENT_OUTCOME_INVALID,
}


def _send_one(stubs, request_id, kind, ev):
    """One single-event RPC; the outcome CreateEvents would report (duplicates pass as OK)."""
    if not kind:
        return evs.EVENT_OUTCOME_INVALID
    call, request = {
        "workflow_event": (stubs.events.CreateWorkflowEvent, evs.CreateWorkflowEventRequest),
        "node_event": (stubs.events.CreateNodeEvent, evs.CreateNodeEventRequest),
        "task_event": (stubs.events.CreateTaskEvent, evs.CreateTaskEventRequest),
    }[kind]
    try:
        call(request(request_id=request_id, event=ev))
    except grpc.RpcError as err:
        return _SINGLE[err.code()]
    return evs.EVENT_OUTCOME_ACCEPTED


def _records(stubs, name):
    """What admin shows of an execution, its nodes and its attempts, without wall-clock times."""
    got = stubs.executions.GetExecution(es.GetExecutionRequest(id=exec_id(name))).execution
    closure = got.closure
    state = [(closure.phase, closure.started_at.seconds, closure.duration.seconds)]
    nodes = stubs.nodes.ListNodeExecutions(
        nes.ListNodeExecutionsRequest(execution_id=exec_id(name))
    ).node_executions
    for parent in ["", *[n.id.node_id for n in nodes if n.metadata.is_parent_node]]:
        listed = stubs.nodes.ListNodeExecutions(
            nes.ListNodeExecutionsRequest(execution_id=exec_id(name), unique_parent_id=parent)
        ).node_executions
        for n in sorted(listed, key=lambda n: n.id.node_id):
            c = n.closure
            state.append(
                (
                    parent,
                    n.id.node_id,
                    c.phase,
                    c.started_at.seconds,
                    c.duration.seconds,
                    n.metadata.is_dynamic,
                )
            )
            attempts = stubs.task_executions.ListTaskExecutions(
                tes.ListTaskExecutionsRequest(node_execution_id=n.id)
            ).task_executions
            for a in sorted(attempts, key=lambda a: a.id.retry_attempt):
                state.append(
                    (
                        a.id.retry_attempt,
                        a.closure.phase,
                        a.closure.started_at.seconds,
                        [log.name for log in a.closure.logs],
                    )
                )
    return state


def _request(history):
    return evs.CreateEventsRequest(
        events=[_batched(k, r, e) if k else evs.BatchedEvent(request_id=r) for r, k, e in history]
    )


@pytest.mark.parametrize("group_limit", [100, 4])
def test_batch_matches_one_transaction_per_event(stubs, monkeypatch, group_limit):
    """CreateEvents gives the outcomes and records of applying each event on its own: of its
    fallback (one transaction per event, what it did before), and of single-event calls; also
    when an execution's events span several transactions."""
    from caddis_admin.manager import events
    from caddis_admin.repository import store

    monkeypatch.setattr(events, "_GROUP_LIMIT", group_limit)

    register_basics(stubs)
    single, fallback, batch = _create(stubs), _create(stubs), _create(stubs)
    one_by_one = [_send_one(stubs, rid, kind, ev) for rid, kind, ev in _history(single)]

    def lost_race(self, records):
        raise store.DuplicateKeyError("a concurrent event won")

    with monkeypatch.context() as patch:
        # The group's transaction fails: its events are applied again one by one.
        patch.setattr(store.EventRepo, "record_many", lost_race)
        reference = stubs.events.CreateEvents(_request(_history(fallback))).results
    history = _history(batch)
    got = stubs.events.CreateEvents(_request(history)).results
    assert [r.request_id for r in got] == [r for r, _, _ in history]
    outcomes = [r.outcome for r in got]
    assert outcomes == [r.outcome for r in reference]
    assert [r.message.replace(batch, "X") for r in got] == [
        r.message.replace(fallback, "X") for r in reference
    ]
    # Single-event calls succeed on duplicates.
    assert [
        evs.EVENT_OUTCOME_ACCEPTED if o == evs.EVENT_OUTCOME_DUPLICATE else o for o in outcomes
    ] == one_by_one
    assert outcomes.count(evs.EVENT_OUTCOME_DUPLICATE) == 3
    assert outcomes.count(evs.EVENT_OUTCOME_ALREADY_TERMINAL) == 4
    assert outcomes.count(evs.EVENT_OUTCOME_INVALID) == 2
    state = _records(stubs, batch)
    assert state == _records(stubs, fallback) == _records(stubs, single)
    assert [row[1] for row in state if len(row) == 6] == ["n0", "n1", "n0-0"]
    assert state[0] == (ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, 10, 20)


def test_batch_outcomes_per_event_and_retried_batch(stubs):
    register_basics(stubs)
    done, running = _create(stubs), _create(stubs)
    wf_event(stubs, done, ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, 30)

    def wf(name, phase, t):
        ev = event_pb2.WorkflowExecutionEvent(execution_id=exec_id(name), phase=phase)
        ev.occurred_at.FromSeconds(t)
        return ev

    def task(name, phase, t):
        ev = event_pb2.TaskExecutionEvent(
            task_id=task_id("t1"),
            parent_node_execution_id=node_id(name, "n0"),
            phase=phase,
        )
        ev.occurred_at.FromSeconds(t)
        return ev

    request = evs.CreateEventsRequest(
        events=[
            _batched("workflow_event", "r1", wf(running, ce.WORKFLOW_EXECUTION_PHASE_RUNNING, 10)),
            _batched("workflow_event", "d1", wf(done, ce.WORKFLOW_EXECUTION_PHASE_FAILED, 40)),
            _batched("task_event", "r2", task(running, ce.TASK_EXECUTION_PHASE_RUNNING, 11)),
            _batched("task_event", "x1", task("missing", ce.TASK_EXECUTION_PHASE_RUNNING, 11)),
            _batched("task_event", "r3", task(running, ce.TASK_EXECUTION_PHASE_SUCCEEDED, 12)),
            _batched(
                "workflow_event", "r4", wf(running, ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, 20)
            ),
        ]
    )
    first = stubs.events.CreateEvents(request)
    assert [(r.request_id, r.outcome) for r in first.results] == [
        ("r1", evs.EVENT_OUTCOME_ACCEPTED),
        ("d1", evs.EVENT_OUTCOME_ALREADY_TERMINAL),
        ("r2", evs.EVENT_OUTCOME_ACCEPTED),
        ("x1", evs.EVENT_OUTCOME_NOT_FOUND),
        ("r3", evs.EVENT_OUTCOME_ACCEPTED),
        ("r4", evs.EVENT_OUTCOME_ACCEPTED),
    ]
    assert "SUCCEEDED" in first.results[1].message and "missing" in first.results[3].message
    # The sender timed out and sends the same batch again: nothing changes.
    again = stubs.events.CreateEvents(request)
    assert [r.outcome for r in again.results] == [
        evs.EVENT_OUTCOME_DUPLICATE,
        evs.EVENT_OUTCOME_ALREADY_TERMINAL,
        evs.EVENT_OUTCOME_DUPLICATE,
        evs.EVENT_OUTCOME_NOT_FOUND,
        evs.EVENT_OUTCOME_DUPLICATE,
        evs.EVENT_OUTCOME_DUPLICATE,
    ]
    got = stubs.executions.GetExecution(es.GetExecutionRequest(id=exec_id(running))).execution
    assert got.closure.phase == ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert got.closure.duration.seconds == 10
    attempts = stubs.task_executions.ListTaskExecutions(
        tes.ListTaskExecutionsRequest(node_execution_id=node_id(running, "n0"))
    ).task_executions
    assert [a.closure.phase for a in attempts] == [ce.TASK_EXECUTION_PHASE_SUCCEEDED]
    still = stubs.executions.GetExecution(es.GetExecutionRequest(id=exec_id(done))).execution
    assert still.closure.phase == ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED


def test_concurrent_batches_apply_each_event_once(stubs):
    """Two propeller replicas deliver the same rows at once: one ACCEPTED, one DUPLICATE each."""
    import threading

    register_basics(stubs)
    names = [_create(stubs) for _ in range(3)]
    events = [
        item
        for name in names
        for item in [(rid, kind, ev) for rid, kind, ev in _history(name) if kind][:16]
    ]
    request = evs.CreateEventsRequest(events=[_batched(k, r, e) for r, k, e in events])
    answers: list = [None, None]

    def send(i):
        answers[i] = stubs.events.CreateEvents(request)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(answers[0].results, answers[1].results, strict=True):
        pair = sorted([a.outcome, b.outcome])
        assert pair in (
            [evs.EVENT_OUTCOME_ACCEPTED, evs.EVENT_OUTCOME_DUPLICATE],
            [evs.EVENT_OUTCOME_DUPLICATE, evs.EVENT_OUTCOME_DUPLICATE],
            [evs.EVENT_OUTCOME_ALREADY_TERMINAL, evs.EVENT_OUTCOME_ALREADY_TERMINAL],
        ), (a, b)
