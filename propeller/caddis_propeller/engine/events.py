"""Conversion of the engine's light events into caddis_idl.event.v1 messages.

The engine emits small dataclasses (cheap on the local path); propeller converts them with
:func:`to_proto` before sending them to admin. ``uri_of`` maps DataStore keys to URIs.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf import timestamp_pb2

from caddis_idl.core.v1 import identifier_pb2
from caddis_idl.event.v1 import event_pb2
from caddis_propeller.engine.interfaces import Event, NodeEvent, TaskEvent, WorkflowEvent

EventProto = (
    event_pb2.WorkflowExecutionEvent | event_pb2.NodeExecutionEvent | event_pb2.TaskExecutionEvent
)


def _ts(t: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


def _identity(key: str) -> str:
    return key


def to_proto(
    event: Event,
    execution_id: identifier_pb2.WorkflowExecutionIdentifier,
    *,
    producer_id: str = "caddis-propeller",
    uri_of: Callable[[str], str] = _identity,
) -> EventProto:
    """Convert an engine event to its IDL message.

    Node ids in the IDL event are the node *paths* (unique within the execution); the plain
    id goes to ``spec_node_id`` and the parent path to ``parent_node_metadata``.
    """
    if isinstance(event, WorkflowEvent):
        wf = event_pb2.WorkflowExecutionEvent(
            execution_id=execution_id,
            producer_id=producer_id,
            phase=event.phase,  # type: ignore[arg-type]
            occurred_at=_ts(event.occurred_at),
        )
        if event.error is not None:
            wf.error.CopyFrom(event.error)
        elif event.outputs_key is not None:
            wf.output_uri = uri_of(event.outputs_key)
        return wf
    if isinstance(event, NodeEvent):
        ne = event_pb2.NodeExecutionEvent(
            producer_id=producer_id,
            phase=event.phase,  # type: ignore[arg-type]
            occurred_at=_ts(event.occurred_at),
            spec_node_id=event.node_id,
            node_name=event.node_name,
            retry_group=str(event.attempt),
            is_parent=event.is_parent,
            is_dynamic=event.is_dynamic,
        )
        ne.id.node_id = event.node_path
        ne.id.execution_id.CopyFrom(execution_id)
        if event.inputs_key is not None:
            ne.input_uri = uri_of(event.inputs_key)
        if event.error is not None:
            ne.error.CopyFrom(event.error)
        elif event.outputs_key is not None:
            ne.output_uri = uri_of(event.outputs_key)
        if event.parent_path is not None:
            ne.parent_node_metadata.node_id = event.parent_path
            if event.array_index is not None:
                ne.parent_node_metadata.array_index = event.array_index
        if event.target is not None:
            ne.target_entity.CopyFrom(event.target)
        if event.cache_status or event.dynamic_closure_key:
            ne.task_node_metadata.cache_status = event.cache_status  # type: ignore[assignment]
            if event.dynamic_closure_key:
                ne.task_node_metadata.dynamic_workflow.dynamic_job_spec_uri = uri_of(
                    event.dynamic_closure_key
                )
        return ne
    te = event_pb2.TaskExecutionEvent(
        task_id=event.task_id,
        retry_attempt=event.attempt,
        phase=event.phase,  # type: ignore[arg-type]
        producer_id=producer_id,
        occurred_at=_ts(event.occurred_at),
        phase_version=event.phase_version,
        task_type=event.task_type,
        logs=list(event.logs),
    )
    te.parent_node_execution_id.node_id = event.node_path
    te.parent_node_execution_id.execution_id.CopyFrom(execution_id)
    if event.inputs_key is not None:
        te.input_uri = uri_of(event.inputs_key)
    if event.error is not None:
        te.error.CopyFrom(event.error)
    elif event.outputs_key is not None:
        te.output_uri = uri_of(event.outputs_key)
    if event.reason:
        te.reasons.add(reason=event.reason, occurred_at=_ts(event.occurred_at))
    if event.handle:
        te.metadata.generated_name = event.handle
    return te


__all__ = ["EventProto", "TaskEvent", "to_proto"]
