"""Event ingestion.

Workflow, node and task events from propeller become execution, node execution and task
execution records.

Rules: an event already applied (same entity, phase, phase version and attempt, or the same
request id) is accepted again without effect; an event older than what was applied (by
phase version, then occurred_at) fills in history but never rolls the phase back; a newer
event that would move an entity out of a terminal phase is refused (FAILED_PRECONDITION).
"""

from __future__ import annotations

from caddis._serving.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from caddis.storage import locations
from caddis_admin.manager.context import AdminContext, enum_value, list_query
from caddis_admin.manager.executions import TERMINAL_PHASES, ExecutionManager, phase_name
from caddis_admin.repository import transformers as tf
from caddis_admin.repository.models import ExecutionRow, NodeExecutionRow, TaskExecutionRow
from caddis_admin.repository.store import Repos
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


class Duplicate(Exception):
    """The event was applied before; the caller treats it as accepted."""


def _exec_name(ident: identifier_pb2.WorkflowExecutionIdentifier) -> str:
    return f"{ident.project}/{ident.domain}/{ident.name}"


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

    # -- workflow events ---------------------------------------------------------------------

    def workflow_event(self, request_id: str, ev: event_pb2.WorkflowExecutionEvent) -> bool:
        """Apply a workflow event; False when it was a duplicate.

        Raises:
            NotFoundError: The execution does not exist.
            FailedPreconditionError: It would move the execution out of a terminal phase.
        """
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
        now = self.ctx.now_us()

        def work(repos: Repos) -> bool:
            row = repos.executions.get_for_update(ident.project, ident.domain, ident.name)
            if row is None:
                raise NotFoundError(f"execution {_exec_name(ident)} does not exist")
            key = f"wf:{row.id}"
            if not repos.events.record(key, ev.phase, 0, 0, request_id, now):
                return False
            newer = occurred >= row.last_event_at
            if newer and row.phase in TERMINAL_PHASES and ev.phase != row.phase:
                raise FailedPreconditionError(
                    f"execution {_exec_name(ident)} is already {phase_name(row.phase)}; "
                    f"event {phase_name(ev.phase)} cannot move it out of a terminal phase"
                )
            self._apply_workflow(row, ev, occurred, newer, output_uri, now)
            repos.executions.flush()
            if newer and ev.phase in TERMINAL_PHASES:
                self.executions.admit_waiting(repos, row.project, row.domain)
            return True

        applied = self.ctx.db.run(work)
        if applied:
            self.ctx.hooks.execution_phase(phase_name(ev.phase))
            self.ctx.hooks.wake_dispatcher()
        return applied

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

    # -- node events -------------------------------------------------------------------------

    def node_event(self, request_id: str, ev: event_pb2.NodeExecutionEvent) -> bool:
        """Apply a node event; False when it was a duplicate."""
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
        now = self.ctx.now_us()
        attempt = int(ev.retry_group) if ev.retry_group.isdigit() else 0

        def work(repos: Repos) -> bool:
            execution = repos.executions.get(ident.project, ident.domain, ident.name)
            if execution is None:
                raise NotFoundError(f"execution {_exec_name(ident)} does not exist")
            parent_id = self._parent_of(repos, execution.id, ev, now)
            row = repos.node_executions.get(execution.id, node_id)
            if row is None:
                row = repos.node_executions.add(
                    _new_node_row(execution.id, node_id, parent_id, ident, now)
                )
            if not repos.events.record(f"node:{row.id}", ev.phase, 0, attempt, request_id, now):
                return False
            newer = occurred >= row.last_event_at
            if newer and row.phase in NODE_TERMINAL and ev.phase != row.phase:
                raise FailedPreconditionError(
                    f"node {node_id!r} of execution {_exec_name(ident)} is already "
                    f"{core_exec.NodeExecutionPhase.Name(row.phase)}; event "  # type: ignore[arg-type]
                    f"{core_exec.NodeExecutionPhase.Name(ev.phase)} cannot move it out of a "
                    "terminal phase"
                )
            if parent_id is not None and row.parent_id is None:
                row.parent_id = parent_id
            _apply_node(row, ev, occurred, newer, input_uri, output_uri, now)
            repos.node_executions.flush()
            return True

        return self.ctx.db.run(work)

    def _parent_of(
        self, repos: Repos, execution_id: int, ev: event_pb2.NodeExecutionEvent, now: int
    ) -> int | None:
        parent_node = ""
        if ev.HasField("parent_node_metadata") and ev.parent_node_metadata.node_id:
            parent_node = ev.parent_node_metadata.node_id
        elif ev.HasField("parent_task_metadata"):
            parent_node = ev.parent_task_metadata.id.node_execution_id.node_id
        if not parent_node:
            return None
        parent = repos.node_executions.get(execution_id, parent_node)
        if parent is None:
            # The parent's own event is late: a placeholder keeps the tree whole until it comes.
            parent = repos.node_executions.add(
                _new_node_row(execution_id, parent_node, None, ev.id.execution_id, now)
            )
        return parent.id

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

    # -- task events -------------------------------------------------------------------------

    def task_event(self, request_id: str, ev: event_pb2.TaskExecutionEvent) -> bool:
        """Apply a task event; False when it was a duplicate."""
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
        task_key = (t.project, t.domain, t.name, t.version)

        def work(repos: Repos) -> bool:
            execution = repos.executions.get(ident.project, ident.domain, ident.name)
            if execution is None:
                raise NotFoundError(f"execution {_exec_name(ident)} does not exist")
            node = repos.node_executions.get(execution.id, nid.node_id)
            if node is None:
                node = repos.node_executions.add(
                    _new_node_row(execution.id, nid.node_id, None, ident, now)
                )
            row = repos.task_executions.get(node.id, task_key, ev.retry_attempt)
            if row is None:
                row = repos.task_executions.add(_new_task_row(node.id, ev, now))
            entity = f"task:{row.id}"
            if not repos.events.record(
                entity, ev.phase, ev.phase_version, ev.retry_attempt, request_id, now
            ):
                return False
            order_new = (ev.phase_version, occurred)
            order_cur = (row.phase_version, row.last_event_at)
            same_phase = ev.phase == row.phase
            newer = order_new >= order_cur if same_phase else occurred >= row.last_event_at
            if newer and row.phase in TASK_TERMINAL and not same_phase:
                raise FailedPreconditionError(
                    f"task {t.name!r} attempt {ev.retry_attempt} of node {nid.node_id!r} in "
                    f"execution {_exec_name(ident)} is already "
                    f"{core_exec.TaskExecutionPhase.Name(row.phase)}; event "  # type: ignore[arg-type]
                    f"{core_exec.TaskExecutionPhase.Name(ev.phase)} cannot move it out of a "
                    "terminal phase"
                )
            _apply_task(row, ev, occurred, newer, input_uri, output_uri, now)
            if node.phase == 0 or node.phase == core_exec.NODE_EXECUTION_PHASE_QUEUED:
                # The task is under way; the node event saying so may lag behind.
                node.updated_at = now
            repos.task_executions.flush()
            return True

        return self.ctx.db.run(work)

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
