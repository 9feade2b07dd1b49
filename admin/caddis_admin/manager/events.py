"""Event ingestion.

Workflow, node and task events from propeller become execution, node execution and task
execution records.

Rules: an event already applied (same entity, phase, phase version and attempt, or the same
request id) is accepted again without effect; an event older than what was applied (by
phase version, then occurred_at) fills in history but never rolls the phase back; a newer
event that would move an entity out of a terminal phase is refused (FAILED_PRECONDITION).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from caddis._serving.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ServiceError,
)
from caddis.storage import locations
from caddis_admin.manager.context import AdminContext, enum_value, list_query
from caddis_admin.manager.executions import TERMINAL_PHASES, ExecutionManager, phase_name
from caddis_admin.repository import transformers as tf
from caddis_admin.repository.models import ExecutionRow, NodeExecutionRow, TaskExecutionRow
from caddis_admin.repository.store import DuplicateKeyError, Repos
from caddis_idl.admin.v1 import (
    common_pb2,
    execution_pb2,
    node_execution_pb2,
    task_execution_pb2,
)
from caddis_idl.core.v1 import execution_pb2 as core_exec
from caddis_idl.core.v1 import identifier_pb2
from caddis_idl.event.v1 import event_pb2

NODE_TERMINAL = (
    core_exec.NODE_EXECUTION_PHASE_SUCCEEDED,
    core_exec.NODE_EXECUTION_PHASE_FAILED,
    core_exec.NODE_EXECUTION_PHASE_ABORTED,
    core_exec.NODE_EXECUTION_PHASE_SKIPPED,
    core_exec.NODE_EXECUTION_PHASE_TIMED_OUT,
    core_exec.NODE_EXECUTION_PHASE_RECOVERED,
)
TASK_TERMINAL = (
    core_exec.TASK_EXECUTION_PHASE_SUCCEEDED,
    core_exec.TASK_EXECUTION_PHASE_FAILED,
    core_exec.TASK_EXECUTION_PHASE_ABORTED,
    core_exec.TASK_EXECUTION_PHASE_RETRYABLE_FAILED,
)
_RUNNING_NODE = (
    core_exec.NODE_EXECUTION_PHASE_RUNNING,
    core_exec.NODE_EXECUTION_PHASE_DYNAMIC_RUNNING,
)


_WORKFLOW, _NODE, _TASK = "workflow_event", "node_event", "task_event"

_log = logging.getLogger(__name__)

# Most events of one execution applied in one transaction: bounds how long a batch holds the
# execution's row lock (and SQLite's write lock) while other callers wait.
_GROUP_LIMIT = 100


class Duplicate(Exception):
    """The event was applied before; the caller treats it as accepted."""


def _exec_name(ident: identifier_pb2.WorkflowExecutionIdentifier) -> str:
    return f"{ident.project}/{ident.domain}/{ident.name}"


def _exec_ident(key: tuple[str, str, str]) -> identifier_pb2.WorkflowExecutionIdentifier:
    return identifier_pb2.WorkflowExecutionIdentifier(project=key[0], domain=key[1], name=key[2])


@dataclass
class _Prepared:
    """An event checked and with its inline data offloaded, ready to apply in a transaction."""

    index: int
    kind: str
    request_id: str
    ev: Any
    execution: tuple[str, str, str]
    occurred: int
    now: int
    output_uri: str = ""
    input_uri: str = ""
    node_id: str = ""
    parent_node: str = ""
    attempt: int = 0
    task_key: tuple[str, str, str, str] = ("", "", "", "")


def _missing(execution: tuple[str, str, str]) -> NotFoundError:
    return NotFoundError(f"execution {'/'.join(execution)} does not exist")


def _workflow_terminal(p: _Prepared, row: ExecutionRow) -> FailedPreconditionError:
    return FailedPreconditionError(
        f"execution {'/'.join(p.execution)} is already {phase_name(row.phase)}; "
        f"event {phase_name(p.ev.phase)} cannot move it out of a terminal phase"
    )


def _node_terminal(p: _Prepared, row: NodeExecutionRow) -> FailedPreconditionError:
    return FailedPreconditionError(
        f"node {p.node_id!r} of execution {'/'.join(p.execution)} is already "
        f"{core_exec.NodeExecutionPhase.Name(row.phase)}; event "  # type: ignore[arg-type]
        f"{core_exec.NodeExecutionPhase.Name(p.ev.phase)} cannot move it out of a "
        "terminal phase"
    )


def _task_terminal(p: _Prepared, row: TaskExecutionRow) -> FailedPreconditionError:
    ev = p.ev
    return FailedPreconditionError(
        f"task {ev.task_id.name!r} attempt {ev.retry_attempt} of node {p.node_id!r} in "
        f"execution {'/'.join(p.execution)} is already "
        f"{core_exec.TaskExecutionPhase.Name(row.phase)}; event "  # type: ignore[arg-type]
        f"{core_exec.TaskExecutionPhase.Name(ev.phase)} cannot move it out of a "
        "terminal phase"
    )


def _task_newer(p: _Prepared, row: TaskExecutionRow) -> bool:
    """Whether a task event is at least as recent as what the attempt shows."""
    if p.ev.phase == row.phase:
        return (p.ev.phase_version, p.occurred) >= (row.phase_version, row.last_event_at)
    return p.occurred >= row.last_event_at


class EventManager:
    """Applies events and serves the node and task execution records they build.

    Args:
        ctx: The shared admin context.
        executions: For freeing quota slots when an execution ends.
    """

    def __init__(self, ctx: AdminContext, executions: ExecutionManager) -> None:
        self.ctx = ctx
        self.executions = executions

    def _offload(self, prefix_parts: list[str], data: object) -> str:
        uri = locations.join(self.ctx.config.resolved_metadata_prefix(), *prefix_parts)
        self.ctx.store.write_proto(uri, data)  # type: ignore[arg-type]
        return uri

    # -- ingestion -----------------------------------------------------------------------------

    def workflow_event(self, request_id: str, ev: event_pb2.WorkflowExecutionEvent) -> bool:
        """Apply a workflow event in a transaction of its own; False when it was a duplicate.

        Raises:
            InvalidArgumentError: The event names no execution.
            NotFoundError: The execution does not exist.
            FailedPreconditionError: It would move the execution out of a terminal phase.
        """
        return self._apply_one(self._prepare(_WORKFLOW, request_id, ev))

    def node_event(self, request_id: str, ev: event_pb2.NodeExecutionEvent) -> bool:
        """Apply a node event in a transaction of its own; False when it was a duplicate."""
        return self._apply_one(self._prepare(_NODE, request_id, ev))

    def task_event(self, request_id: str, ev: event_pb2.TaskExecutionEvent) -> bool:
        """Apply a task event in a transaction of its own; False when it was a duplicate."""
        return self._apply_one(self._prepare(_TASK, request_id, ev))

    def apply_batch(self, items: Sequence[tuple[str, str, Any]]) -> list[bool | ServiceError]:
        """Apply a batch of events, each as its single-event call would.

        The events of one execution are applied in their order in one transaction (per
        ``_GROUP_LIMIT`` events) that first locks the execution's row: the entities they
        touch and the dedupe records of those entities are read once, every event is checked
        and applied in memory, and the records are inserted together. A refused event
        changes nothing and does not stop the others. When that transaction fails for any
        other reason (a concurrent writer won a unique key, an unexpected error), its events
        are applied again one transaction each, as the single-event calls do.

        Args:
            items: (kind, request_id, event) per event, kind being ``workflow_event``,
                ``node_event`` or ``task_event`` (anything else is invalid).

        Returns:
            Per event, in order: True (applied), False (duplicate) or the error refusing it
            (:class:`InvalidArgumentError`, :class:`NotFoundError`,
            :class:`FailedPreconditionError`, or another :class:`ServiceError`).
        """
        results: list[bool | ServiceError | None] = [None] * len(items)
        groups: dict[tuple[str, str, str], list[_Prepared]] = {}
        for index, (kind, request_id, ev) in enumerate(items):
            try:
                prepared = self._prepare(kind, request_id, ev, index)
            except ServiceError as exc:
                results[index] = exc
                continue
            groups.setdefault(prepared.execution, []).append(prepared)
        chunks = [
            (execution, group[start : start + _GROUP_LIMIT])
            for execution, group in groups.items()
            for start in range(0, len(group), _GROUP_LIMIT)
        ]
        for execution, group in chunks:
            try:
                outcome = self.ctx.db.run(
                    lambda repos, e=execution, g=group: self._apply_group(repos, e, g)  # type: ignore[misc]
                )
            except Exception as exc:
                if not isinstance(exc, DuplicateKeyError):
                    _log.warning(
                        "events of execution %s applied one by one after: %r",
                        "/".join(execution),
                        exc,
                    )
                for prepared in group:
                    try:
                        results[prepared.index] = self._apply_one(prepared)
                    except ServiceError as err:
                        results[prepared.index] = err
                continue
            for prepared, result in zip(group, outcome, strict=True):
                results[prepared.index] = result
                if result is True and prepared.kind == _WORKFLOW:
                    self.ctx.hooks.execution_phase(phase_name(prepared.ev.phase))
                    self.ctx.hooks.wake_dispatcher()
        return [r if r is not None else False for r in results]

    def _prepare(self, kind: str, request_id: str, ev: Any, index: int = 0) -> _Prepared:
        """Check an event and offload its inline data (outside any transaction)."""
        if kind == _WORKFLOW:
            return self._prepare_workflow(request_id, ev, index)
        if kind == _NODE:
            return self._prepare_node(request_id, ev, index)
        if kind == _TASK:
            return self._prepare_task(request_id, ev, index)
        raise InvalidArgumentError("the batched event holds no event")

    def _prepare_workflow(
        self, request_id: str, ev: event_pb2.WorkflowExecutionEvent, index: int
    ) -> _Prepared:
        ident = ev.execution_id
        if not ident.name:
            raise InvalidArgumentError("the event names no execution", field="event.execution_id")
        output_uri = ev.output_uri if ev.WhichOneof("output_result") == "output_uri" else ""
        if ev.WhichOneof("output_result") == "output_data":
            prefix = locations.execution_prefix(
                self.ctx.config.resolved_metadata_prefix(), ident.project, ident.domain, ident.name
            )
            output_uri = locations.join(prefix, locations.OUTPUTS)
            self.ctx.store.write_proto(output_uri, ev.output_data)
        occurred = tf.micros(ev.occurred_at) if ev.HasField("occurred_at") else self.ctx.now_us()
        return _Prepared(
            index=index,
            kind=_WORKFLOW,
            request_id=request_id,
            ev=ev,
            execution=(ident.project, ident.domain, ident.name),
            occurred=occurred,
            now=self.ctx.now_us(),
            output_uri=output_uri,
        )

    def _prepare_node(
        self, request_id: str, ev: event_pb2.NodeExecutionEvent, index: int
    ) -> _Prepared:
        ident = ev.id.execution_id
        node_id = ev.id.node_id
        if not node_id or not ident.name:
            raise InvalidArgumentError("the event names no node execution", field="event.id")
        occurred = tf.micros(ev.occurred_at) if ev.HasField("occurred_at") else self.ctx.now_us()
        output_uri = ev.output_uri if ev.WhichOneof("output_result") == "output_uri" else ""
        if ev.WhichOneof("output_result") == "output_data":
            output_uri = self._offload(
                [ident.project, ident.domain, ident.name, "nodes", node_id, "event-outputs.pb"],
                ev.output_data,
            )
        input_uri = ev.input_uri if ev.WhichOneof("input_value") == "input_uri" else ""
        if ev.WhichOneof("input_value") == "input_data":
            input_uri = self._offload(
                [ident.project, ident.domain, ident.name, "nodes", node_id, "event-inputs.pb"],
                ev.input_data,
            )
        parent_node = ""
        if ev.HasField("parent_node_metadata") and ev.parent_node_metadata.node_id:
            parent_node = ev.parent_node_metadata.node_id
        elif ev.HasField("parent_task_metadata"):
            parent_node = ev.parent_task_metadata.id.node_execution_id.node_id
        return _Prepared(
            index=index,
            kind=_NODE,
            request_id=request_id,
            ev=ev,
            execution=(ident.project, ident.domain, ident.name),
            occurred=occurred,
            now=self.ctx.now_us(),
            output_uri=output_uri,
            input_uri=input_uri,
            node_id=node_id,
            parent_node=parent_node,
            attempt=int(ev.retry_group) if ev.retry_group.isdigit() else 0,
        )

    def _prepare_task(
        self, request_id: str, ev: event_pb2.TaskExecutionEvent, index: int
    ) -> _Prepared:
        nid = ev.parent_node_execution_id
        ident = nid.execution_id
        if not nid.node_id or not ident.name or not ev.task_id.name:
            raise InvalidArgumentError(
                "the event names no task or node execution", field="event.parent_node_execution_id"
            )
        occurred = tf.micros(ev.occurred_at) if ev.HasField("occurred_at") else self.ctx.now_us()
        now = self.ctx.now_us()
        base = [
            ident.project,
            ident.domain,
            ident.name,
            "nodes",
            nid.node_id,
            f"attempt-{ev.retry_attempt}",
        ]
        output_uri = ev.output_uri if ev.WhichOneof("output_result") == "output_uri" else ""
        if ev.WhichOneof("output_result") == "output_data":
            output_uri = self._offload([*base, "event-outputs.pb"], ev.output_data)
        input_uri = ev.input_uri if ev.WhichOneof("input_value") == "input_uri" else ""
        if ev.WhichOneof("input_value") == "input_data":
            input_uri = self._offload([*base, "event-inputs.pb"], ev.input_data)
        t = ev.task_id
        return _Prepared(
            index=index,
            kind=_TASK,
            request_id=request_id,
            ev=ev,
            execution=(ident.project, ident.domain, ident.name),
            occurred=occurred,
            now=now,
            output_uri=output_uri,
            input_uri=input_uri,
            node_id=nid.node_id,
            attempt=ev.retry_attempt,
            task_key=(t.project, t.domain, t.name, t.version),
        )

    # One event, one transaction (the single-event RPCs, and the fallback of a batch).

    def _apply_one(self, p: _Prepared) -> bool:
        if p.kind == _WORKFLOW:
            applied = self.ctx.db.run(lambda repos: self._workflow_one(repos, p))
            if applied:
                self.ctx.hooks.execution_phase(phase_name(p.ev.phase))
                self.ctx.hooks.wake_dispatcher()
            return applied
        if p.kind == _NODE:
            return self.ctx.db.run(lambda repos: self._node_one(repos, p))
        return self.ctx.db.run(lambda repos: self._task_one(repos, p))

    def _workflow_one(self, repos: Repos, p: _Prepared) -> bool:
        ev = p.ev
        row = repos.executions.get_for_update(*p.execution)
        if row is None:
            raise _missing(p.execution)
        if not repos.events.record(f"wf:{row.id}", ev.phase, 0, 0, p.request_id, p.now):
            return False
        newer = p.occurred >= row.last_event_at
        if newer and row.phase in TERMINAL_PHASES and ev.phase != row.phase:
            raise _workflow_terminal(p, row)
        self._apply_workflow(row, ev, p.occurred, newer, p.output_uri, p.now)
        repos.executions.flush()
        if newer and ev.phase in TERMINAL_PHASES:
            self.executions.admit_waiting(repos, row.project, row.domain)
        return True

    def _node_one(self, repos: Repos, p: _Prepared) -> bool:
        ev = p.ev
        execution = repos.executions.get(*p.execution)
        if execution is None:
            raise _missing(p.execution)
        parent_id = None
        if p.parent_node:
            parent = repos.node_executions.get(execution.id, p.parent_node)
            if parent is None:
                # The parent's own event is late: a placeholder keeps the tree whole until it comes.
                parent = repos.node_executions.add(
                    _new_node_row(execution.id, p.parent_node, None, ev.id.execution_id, p.now)
                )
            parent_id = parent.id
        row = repos.node_executions.get(execution.id, p.node_id)
        if row is None:
            row = repos.node_executions.add(
                _new_node_row(execution.id, p.node_id, parent_id, ev.id.execution_id, p.now)
            )
        if not repos.events.record(f"node:{row.id}", ev.phase, 0, p.attempt, p.request_id, p.now):
            return False
        newer = p.occurred >= row.last_event_at
        if newer and row.phase in NODE_TERMINAL and ev.phase != row.phase:
            raise _node_terminal(p, row)
        if parent_id is not None and row.parent_id is None:
            row.parent_id = parent_id
        _apply_node(row, ev, p.occurred, newer, p.input_uri, p.output_uri, p.now)
        repos.node_executions.flush()
        return True

    def _task_one(self, repos: Repos, p: _Prepared) -> bool:
        ev = p.ev
        execution = repos.executions.get(*p.execution)
        if execution is None:
            raise _missing(p.execution)
        node = repos.node_executions.get(execution.id, p.node_id)
        if node is None:
            node = repos.node_executions.add(
                _new_node_row(execution.id, p.node_id, None, _exec_ident(p.execution), p.now)
            )
        row = repos.task_executions.get(node.id, p.task_key, ev.retry_attempt)
        if row is None:
            row = repos.task_executions.add(_new_task_row(node.id, ev, p.now))
        if not repos.events.record(
            f"task:{row.id}", ev.phase, ev.phase_version, ev.retry_attempt, p.request_id, p.now
        ):
            return False
        newer = _task_newer(p, row)
        if newer and row.phase in TASK_TERMINAL and ev.phase != row.phase:
            raise _task_terminal(p, row)
        _apply_task(row, ev, p.occurred, newer, p.input_uri, p.output_uri, p.now)
        if node.phase == 0 or node.phase == core_exec.NODE_EXECUTION_PHASE_QUEUED:
            # The task is under way; the node event saying so may lag behind.
            node.updated_at = p.now
        repos.task_executions.flush()
        return True

    @staticmethod
    def _apply_workflow(
        row: ExecutionRow,
        ev: event_pb2.WorkflowExecutionEvent,
        occurred: int,
        newer: bool,
        output_uri: str,
        now: int,
    ) -> None:
        if ev.phase == core_exec.WORKFLOW_EXECUTION_PHASE_RUNNING and (
            row.started_at is None or occurred < row.started_at
        ):
            row.started_at = occurred
        if not newer:
            row.updated_at = now
            return
        row.phase = ev.phase
        row.last_event_at = occurred
        row.updated_at = now
        if ev.phase in TERMINAL_PHASES:
            row.ended_at = occurred
            if row.started_at is None:
                row.started_at = occurred
        closure = execution_pb2.ExecutionClosure()
        if row.closure:
            closure.ParseFromString(row.closure)
        if ev.WhichOneof("output_result") == "error":
            closure.error.CopyFrom(ev.error)
        if output_uri:
            row.outputs_uri = output_uri
        row.closure = closure.SerializeToString()

    # The events of one execution of a batch, in one transaction.

    def _apply_group(
        self, repos: Repos, execution_key: tuple[str, str, str], group: list[_Prepared]
    ) -> list[bool | ServiceError]:
        """Apply the events of one execution in order; see :meth:`apply_batch`."""
        # The row lock serializes the batches of one execution (two propeller replicas, a
        # retried batch): what is read below stays true until this transaction ends.
        execution = repos.executions.get_for_update(*execution_key)
        if execution is None:
            missing = _missing(execution_key)
            return [missing for _ in group]
        wanted = sorted(
            {p.node_id for p in group if p.node_id}
            | {p.parent_node for p in group if p.parent_node}
        )
        nodes = repos.node_executions.get_many(execution.id, wanted)
        tasks = repos.task_executions.for_nodes([n.id for n in nodes.values()])
        entities = [f"wf:{execution.id}"]
        entities += [f"node:{n.id}" for n in nodes.values()]
        entities += [f"task:{t.id}" for t in tasks.values()]
        seen_ids, seen_keys = repos.events.known([p.request_id for p in group], entities)
        records: list[dict[str, Any]] = []
        ident = _exec_ident(execution_key)

        def fresh(key: tuple[str, int, int, int], request_id: str) -> bool:
            return key not in seen_keys and not (request_id and request_id in seen_ids)

        def remember(key: tuple[str, int, int, int], p: _Prepared) -> None:
            seen_keys.add(key)
            if p.request_id:
                seen_ids.add(p.request_id)
            entity, phase, phase_version, attempt = key
            records.append(
                {
                    "entity": entity,
                    "phase": phase,
                    "phase_version": phase_version,
                    "attempt": attempt,
                    "request_id": p.request_id or None,
                    "created_at": p.now,
                }
            )

        def node_row(node_id: str, parent_id: int | None, now: int) -> NodeExecutionRow:
            row = nodes.get(node_id)
            if row is None:
                row = repos.node_executions.insert(
                    _new_node_row(execution.id, node_id, parent_id, ident, now)
                )
                nodes[node_id] = row
            return row

        out: list[bool | ServiceError] = []
        for p in group:
            ev = p.ev
            if p.kind == _WORKFLOW:
                key = (f"wf:{execution.id}", ev.phase, 0, 0)
                if not fresh(key, p.request_id):
                    out.append(False)
                    continue
                newer = p.occurred >= execution.last_event_at
                if newer and execution.phase in TERMINAL_PHASES and ev.phase != execution.phase:
                    out.append(_workflow_terminal(p, execution))
                    continue
                remember(key, p)
                self._apply_workflow(execution, ev, p.occurred, newer, p.output_uri, p.now)
                if newer and ev.phase in TERMINAL_PHASES:
                    repos.executions.flush()
                    self.executions.admit_waiting(repos, execution.project, execution.domain)
                out.append(True)
            elif p.kind == _NODE:
                existing = nodes.get(p.node_id)
                if existing is not None:
                    # Checked before the parent's placeholder is made: a refused event
                    # leaves nothing behind, as its rolled-back transaction would.
                    key = (f"node:{existing.id}", ev.phase, 0, p.attempt)
                    if fresh(key, p.request_id):
                        newer = p.occurred >= existing.last_event_at
                        if newer and existing.phase in NODE_TERMINAL and ev.phase != existing.phase:
                            out.append(_node_terminal(p, existing))
                            continue
                parent_id = node_row(p.parent_node, None, p.now).id if p.parent_node else None
                row = node_row(p.node_id, parent_id, p.now)
                key = (f"node:{row.id}", ev.phase, 0, p.attempt)
                if not fresh(key, p.request_id):
                    out.append(False)
                    continue
                newer = p.occurred >= row.last_event_at
                remember(key, p)
                if parent_id is not None and row.parent_id is None:
                    row.parent_id = parent_id
                _apply_node(row, ev, p.occurred, newer, p.input_uri, p.output_uri, p.now)
                out.append(True)
            else:
                node = node_row(p.node_id, None, p.now)
                task_key = (node.id, p.task_key, ev.retry_attempt)
                task = tasks.get(task_key)
                if task is None:
                    task = repos.task_executions.insert(_new_task_row(node.id, ev, p.now))
                    tasks[task_key] = task
                key = (f"task:{task.id}", ev.phase, ev.phase_version, ev.retry_attempt)
                if not fresh(key, p.request_id):
                    out.append(False)
                    continue
                newer = _task_newer(p, task)
                if newer and task.phase in TASK_TERMINAL and ev.phase != task.phase:
                    out.append(_task_terminal(p, task))
                    continue
                remember(key, p)
                _apply_task(task, ev, p.occurred, newer, p.input_uri, p.output_uri, p.now)
                if node.phase == 0 or node.phase == core_exec.NODE_EXECUTION_PHASE_QUEUED:
                    # The task is under way; the node event saying so may lag behind.
                    node.updated_at = p.now
                out.append(True)
        repos.events.record_many(records)
        repos.flush()
        return out

    def get_node(
        self, ident: identifier_pb2.NodeExecutionIdentifier
    ) -> node_execution_pb2.NodeExecution:
        """A node execution."""
        with self.ctx.db.transaction(readonly=True) as repos:
            row = self._node_row(repos, ident)
            return tf.node_execution_to_proto(row)

    def _node_row(
        self, repos: Repos, ident: identifier_pb2.NodeExecutionIdentifier
    ) -> NodeExecutionRow:
        e = ident.execution_id
        execution = repos.executions.get(e.project, e.domain, e.name)
        row = None if execution is None else repos.node_executions.get(execution.id, ident.node_id)
        if row is None:
            raise NotFoundError(
                f"node {ident.node_id!r} of execution {_exec_name(e)} does not exist"
            )
        return row

    def list_nodes(
        self,
        ident: identifier_pb2.WorkflowExecutionIdentifier,
        parent_node_id: str,
        options: common_pb2.ListOptions,
        *,
        all_levels: bool = False,
    ) -> tuple[list[node_execution_pb2.NodeExecution], str]:
        """A page of node executions at the top level, under a parent node, or at every level.

        Args:
            ident: The execution.
            parent_node_id: Node id whose direct children are listed; empty for the top level.
            options: Filters, sort and paging.
            all_levels: List every node of the execution (``parent_node_id`` is ignored).

        Returns:
            The page and the next page's token.

        Raises:
            NotFoundError: The execution, or the parent node, does not exist.
        """
        query = list_query(
            options, {"phase": enum_value(core_exec.NodeExecutionPhase, "NODE_EXECUTION_PHASE_")}
        )
        with self.ctx.db.transaction(readonly=True) as repos:
            execution = repos.executions.get(ident.project, ident.domain, ident.name)
            if execution is None:
                raise NotFoundError(f"execution {_exec_name(ident)} does not exist")
            parent_id = None
            if parent_node_id and not all_levels:
                parent = repos.node_executions.get(execution.id, parent_node_id)
                if parent is None:
                    raise NotFoundError(
                        f"node {parent_node_id!r} of execution {_exec_name(ident)} does not exist"
                    )
                parent_id = parent.id
            rows, token = repos.node_executions.page(
                execution.id, parent_id, query, all_levels=all_levels
            )
            return [tf.node_execution_to_proto(r) for r in rows], token

    def node_data(
        self, ident: identifier_pb2.NodeExecutionIdentifier
    ) -> tuple[common_pb2.LiteralMapData, common_pb2.LiteralMapData]:
        """A node execution's inputs and outputs."""
        node = self.get_node(ident)
        out = (
            node.closure.output_uri
            if node.closure.WhichOneof("output_result") == "output_uri"
            else ""
        )
        return self.executions.literal_data(node.input_uri), self.executions.literal_data(out)

    # -- task executions -------------------------------------------------------------------

    def get_task_execution(
        self, ident: identifier_pb2.TaskExecutionIdentifier
    ) -> task_execution_pb2.TaskExecution:
        """A task execution (one attempt)."""
        with self.ctx.db.transaction(readonly=True) as repos:
            node = self._node_row(repos, ident.node_execution_id)
            t = ident.task_id
            row = repos.task_executions.get(
                node.id, (t.project, t.domain, t.name, t.version), ident.retry_attempt
            )
            if row is None:
                raise NotFoundError(
                    f"task {t.name!r} attempt {ident.retry_attempt} of node "
                    f"{ident.node_execution_id.node_id!r} does not exist"
                )
            return tf.task_execution_to_proto(row)

    def list_task_executions(
        self, ident: identifier_pb2.NodeExecutionIdentifier, options: common_pb2.ListOptions
    ) -> tuple[list[task_execution_pb2.TaskExecution], str]:
        """A page of the attempts of a node execution."""
        query = list_query(
            options, {"phase": enum_value(core_exec.TaskExecutionPhase, "TASK_EXECUTION_PHASE_")}
        )
        with self.ctx.db.transaction(readonly=True) as repos:
            node = self._node_row(repos, ident)
            rows, token = repos.task_executions.page(node.id, query)
            return [tf.task_execution_to_proto(r) for r in rows], token

    def task_data(
        self, ident: identifier_pb2.TaskExecutionIdentifier
    ) -> tuple[common_pb2.LiteralMapData, common_pb2.LiteralMapData]:
        """A task execution's inputs and outputs."""
        te = self.get_task_execution(ident)
        out = (
            te.closure.output_uri if te.closure.WhichOneof("output_result") == "output_uri" else ""
        )
        return self.executions.literal_data(te.input_uri), self.executions.literal_data(out)


def _new_node_row(
    execution_id: int,
    node_id: str,
    parent_id: int | None,
    ident: identifier_pb2.WorkflowExecutionIdentifier,
    now: int,
) -> NodeExecutionRow:
    body = node_execution_pb2.NodeExecution(
        id=identifier_pb2.NodeExecutionIdentifier(node_id=node_id, execution_id=ident)
    )
    return NodeExecutionRow(
        execution_id=execution_id,
        node_id=node_id,
        parent_id=parent_id,
        phase=0,
        cache_status=0,
        created_at=now,
        updated_at=now,
        last_event_at=0,
        body=body.SerializeToString(),
    )


def _apply_node(
    row: NodeExecutionRow,
    ev: event_pb2.NodeExecutionEvent,
    occurred: int,
    newer: bool,
    input_uri: str,
    output_uri: str,
    now: int,
) -> None:
    body = node_execution_pb2.NodeExecution.FromString(row.body)
    if input_uri:
        body.input_uri = input_uri
    md = body.metadata
    md.retry_group = ev.retry_group or md.retry_group
    md.spec_node_id = ev.spec_node_id or md.spec_node_id
    md.node_name = ev.node_name or md.node_name
    md.is_parent_node = md.is_parent_node or ev.is_parent
    md.is_dynamic = md.is_dynamic or ev.is_dynamic
    md.is_array = md.is_array or ev.is_array
    if ev.HasField("target_entity"):
        md.target_entity.CopyFrom(ev.target_entity)
    if ev.HasField("parent_node_metadata"):
        md.parent_node_id = ev.parent_node_metadata.node_id
        if ev.parent_node_metadata.HasField("array_index"):
            md.array_index = ev.parent_node_metadata.array_index
    if ev.HasField("parent_task_metadata"):
        md.parent_task_execution.CopyFrom(ev.parent_task_metadata.id)
        md.parent_node_id = (
            md.parent_node_id or ev.parent_task_metadata.id.node_execution_id.node_id
        )
    closure = body.closure
    if ev.deck_uri:
        closure.deck_uri = ev.deck_uri
    target = ev.WhichOneof("target_metadata")
    if target == "task_node_metadata":
        tm = ev.task_node_metadata
        if tm.cache_status:
            row.cache_status = tm.cache_status
        if tm.HasField("catalog_key"):
            closure.catalog_key.CopyFrom(tm.catalog_key)
        if tm.reservation_status:
            closure.reservation_status = tm.reservation_status
        if tm.HasField("dynamic_workflow"):
            closure.dynamic_job_spec_uri = tm.dynamic_workflow.dynamic_job_spec_uri
    elif target == "workflow_node_metadata":
        closure.workflow_node_metadata.CopyFrom(ev.workflow_node_metadata)
    if ev.phase in _RUNNING_NODE and (row.started_at is None or occurred < row.started_at):
        row.started_at = occurred
    row.updated_at = now
    if newer:
        row.phase = ev.phase
        row.last_event_at = occurred
        if ev.phase in NODE_TERMINAL:
            row.ended_at = occurred
            if row.started_at is None:
                row.started_at = occurred
        if ev.WhichOneof("output_result") == "error":
            closure.error.CopyFrom(ev.error)
        elif output_uri:
            closure.output_uri = output_uri
    row.body = body.SerializeToString()


def _new_task_row(node_row_id: int, ev: event_pb2.TaskExecutionEvent, now: int) -> TaskExecutionRow:
    body = task_execution_pb2.TaskExecution(
        id=identifier_pb2.TaskExecutionIdentifier(
            task_id=ev.task_id,
            node_execution_id=ev.parent_node_execution_id,
            retry_attempt=ev.retry_attempt,
        )
    )
    t = ev.task_id
    return TaskExecutionRow(
        node_execution_id=node_row_id,
        task_project=t.project,
        task_domain=t.domain,
        task_name=t.name,
        task_version=t.version,
        retry_attempt=ev.retry_attempt,
        phase=0,
        phase_version=0,
        created_at=now,
        updated_at=now,
        last_event_at=0,
        body=body.SerializeToString(),
    )


def _apply_task(
    row: TaskExecutionRow,
    ev: event_pb2.TaskExecutionEvent,
    occurred: int,
    newer: bool,
    input_uri: str,
    output_uri: str,
    now: int,
) -> None:
    body = task_execution_pb2.TaskExecution.FromString(row.body)
    if input_uri:
        body.input_uri = input_uri
    closure = body.closure
    # Logs and reasons accumulate whatever the order: each event may add some.
    known_logs = {(log.name, log.uri) for log in closure.logs}
    for log in ev.logs:
        if (log.name, log.uri) not in known_logs:
            closure.logs.append(log)
    closure.reasons.extend(ev.reasons)
    if ev.task_type:
        closure.task_type = ev.task_type
    if ev.HasField("metadata"):
        closure.metadata.CopyFrom(ev.metadata)
    if ev.HasField("custom_info"):
        closure.custom_info.CopyFrom(ev.custom_info)
    closure.event_version = ev.event_version
    if ev.phase == core_exec.TASK_EXECUTION_PHASE_RUNNING and (
        row.started_at is None or occurred < row.started_at
    ):
        row.started_at = occurred
    row.updated_at = now
    if newer:
        row.phase = ev.phase
        row.phase_version = ev.phase_version
        row.last_event_at = occurred
        if ev.phase in TASK_TERMINAL:
            row.ended_at = occurred
            if row.started_at is None:
                row.started_at = occurred
        if ev.WhichOneof("output_result") == "error":
            closure.error.CopyFrom(ev.error)
        elif output_uri:
            closure.output_uri = output_uri
    row.body = body.SerializeToString()
