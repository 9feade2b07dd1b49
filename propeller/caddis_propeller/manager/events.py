"""Engine events -> IDL events, with deterministic request ids, buffered per round.

The engine emits light events (:mod:`caddis_propeller.engine.interfaces`) during a round;
:class:`RoundEvents` collects them, and the controller writes them to the outbox in the same
transaction as the round's state. Request ids are derived from what the event says (execution,
node path, attempt, phase, phase version), so replaying a round after a crash produces the same
ids and admin records each transition once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from google.protobuf import timestamp_pb2

from caddis_idl.admin.v1 import event_service_pb2
from caddis_idl.core.v1 import execution_pb2, identifier_pb2
from caddis_idl.event.v1 import event_pb2
from caddis_propeller.engine.interfaces import Event, NodeEvent, TaskEvent, WorkflowEvent


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _rid(*parts: object) -> str:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()[:32]


def to_batched(
    event: Event, execution_id: identifier_pb2.WorkflowExecutionIdentifier, producer_id: str
) -> event_service_pb2.BatchedEvent:
    """Convert one engine event into a BatchedEvent with a deterministic request id."""
    ex = f"{execution_id.project}/{execution_id.domain}/{execution_id.name}"
    now = _ts(time.time())
    if isinstance(event, WorkflowEvent):
        wf = event_pb2.WorkflowExecutionEvent(
            execution_id=execution_id,
            producer_id=producer_id,
            phase=event.phase,  # type: ignore[arg-type]
            occurred_at=_ts(event.occurred_at),
            reported_at=now,
        )
        if event.error is not None:
            wf.error.CopyFrom(event.error)
        elif event.outputs_key:
            wf.output_uri = event.outputs_key
        return event_service_pb2.BatchedEvent(
            request_id=_rid("wf", ex, event.phase), workflow_event=wf
        )
    if isinstance(event, NodeEvent):
        node_id = event.node_path
        ne = event_pb2.NodeExecutionEvent(
            id=identifier_pb2.NodeExecutionIdentifier(node_id=node_id, execution_id=execution_id),
            producer_id=producer_id,
            phase=event.phase,  # type: ignore[arg-type]
            occurred_at=_ts(event.occurred_at),
            spec_node_id=event.node_id,
            node_name=event.node_name,
            retry_group=str(event.attempt),
            is_parent=event.is_parent,
            is_dynamic=event.is_dynamic,
            reported_at=now,
        )
        if event.inputs_key:
            ne.input_uri = event.inputs_key
        if event.error is not None:
            ne.error.CopyFrom(event.error)
        elif event.outputs_key:
            ne.output_uri = event.outputs_key
        if event.parent_path:
            ne.parent_node_metadata.node_id = event.parent_path
            if event.array_index is not None:
                ne.parent_node_metadata.array_index = event.array_index
        if event.target is not None:
            ne.target_entity.CopyFrom(event.target)
        if event.cache_status or event.dynamic_closure_key:
            meta = ne.task_node_metadata
            meta.cache_status = event.cache_status  # type: ignore[assignment]
            if event.dynamic_closure_key:
                meta.dynamic_workflow.dynamic_job_spec_uri = event.dynamic_closure_key
        return event_service_pb2.BatchedEvent(
            request_id=_rid("node", ex, event.node_path, event.attempt, event.phase),
            node_event=ne,
        )
    assert isinstance(event, TaskEvent)
    te = event_pb2.TaskExecutionEvent(
        task_id=event.task_id,
        parent_node_execution_id=identifier_pb2.NodeExecutionIdentifier(
            node_id=event.node_path, execution_id=execution_id
        ),
        retry_attempt=event.attempt,
        phase=event.phase,  # type: ignore[arg-type]
        producer_id=producer_id,
        logs=list(event.logs),
        occurred_at=_ts(event.occurred_at),
        phase_version=event.phase_version,
        task_type=event.task_type,
        reported_at=now,
    )
    if event.inputs_key:
        te.input_uri = event.inputs_key
    if event.error is not None:
        te.error.CopyFrom(event.error)
    elif event.outputs_key:
        te.output_uri = event.outputs_key
    if event.reason:
        te.reasons.add(reason=event.reason, occurred_at=_ts(event.occurred_at))
    if event.handle:
        te.metadata.generated_name = event.handle
        te.metadata.plugin_identifier = "process"
    return event_service_pb2.BatchedEvent(
        request_id=_rid(
            "task", ex, event.node_path, event.attempt, event.phase, event.phase_version
        ),
        task_event=te,
    )


class RoundEvents:
    """The engine's ``EventSink`` for one execution: buffers converted events of a round.

    Args:
        execution_id: The execution the events belong to.
        producer_id: Propeller's producer id.
        observe: Called with every engine event (metrics); must not raise.
        array_item_events: Whether the engine should report every array item.
    """

    def __init__(
        self,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        producer_id: str,
        observe: Callable[[Event], None] | None = None,
        array_item_events: bool = False,
    ) -> None:
        self.execution_id = execution_id
        self.producer_id = producer_id
        self.array_item_events = array_item_events
        self._observe = observe
        self.pending: list[event_service_pb2.BatchedEvent] = []

    def emit(self, event: Event) -> None:
        """Convert and buffer ``event`` (never raises)."""
        try:
            if self._observe is not None:
                self._observe(event)
            self.pending.append(to_batched(event, self.execution_id, self.producer_id))
        except Exception:  # an event must never break a round
            import logging

            logging.getLogger(__name__).warning("could not convert an event", exc_info=True)

    def drain(self) -> list[tuple[str, bytes]]:
        """The buffered events as outbox rows, emptying the buffer."""
        rows = [(e.request_id, e.SerializeToString()) for e in self.pending]
        self.pending = []
        return rows


TERMINAL_WORKFLOW_PHASES = frozenset(
    {
        execution_pb2.WorkflowExecutionPhase.WORKFLOW_EXECUTION_PHASE_SUCCEEDED,
        execution_pb2.WorkflowExecutionPhase.WORKFLOW_EXECUTION_PHASE_FAILED,
        execution_pb2.WorkflowExecutionPhase.WORKFLOW_EXECUTION_PHASE_ABORTED,
        execution_pb2.WorkflowExecutionPhase.WORKFLOW_EXECUTION_PHASE_TIMED_OUT,
    }
)

__all__ = ["TERMINAL_WORKFLOW_PHASES", "RoundEvents", "to_batched"]
