"""Conversions between rows and the admin IDL messages."""

from __future__ import annotations

from google.protobuf import duration_pb2, timestamp_pb2

from caddis_admin.repository.models import (
    ExecutionRow,
    LaunchPlanRow,
    NodeExecutionRow,
    ProjectRow,
    TaskExecutionRow,
    TaskRow,
    WorkflowRow,
)
from caddis_admin.repository.store import ExecutionRecord
from caddis_idl.admin.v1 import (
    common_pb2,
    execution_pb2,
    launch_plan_pb2,
    node_execution_pb2,
    project_pb2,
    task_execution_pb2,
    task_pb2,
    workflow_pb2,
)
from caddis_idl.core.v1 import compiler_pb2, identifier_pb2, tasks_pb2


def timestamp(micros: int) -> timestamp_pb2.Timestamp:
    """A Timestamp from microseconds since the epoch."""
    return timestamp_pb2.Timestamp(seconds=micros // 1_000_000, nanos=(micros % 1_000_000) * 1000)


def micros(ts: timestamp_pb2.Timestamp) -> int:
    """Microseconds since the epoch of a Timestamp."""
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def _duration(start: int | None, end: int | None) -> duration_pb2.Duration | None:
    if start is None or end is None or end < start:
        return None
    d = end - start
    return duration_pb2.Duration(seconds=d // 1_000_000, nanos=(d % 1_000_000) * 1000)


def identifier(
    resource_type: int, project: str, domain: str, name: str, version: str
) -> identifier_pb2.Identifier:
    """An Identifier message."""
    return identifier_pb2.Identifier(
        resource_type=resource_type,  # type: ignore[arg-type]
        project=project,
        domain=domain,
        name=name,
        version=version,
    )


def project_to_proto(row: ProjectRow, domains: tuple[str, ...]) -> project_pb2.Project:
    """A Project message with the configured domains."""
    labels = common_pb2.Labels()
    if row.labels:
        labels.ParseFromString(row.labels)
    return project_pb2.Project(
        id=row.id,
        name=row.name,
        description=row.description,
        labels=labels,
        state=row.state,  # type: ignore[arg-type]
        domains=[project_pb2.Domain(id=d, name=d) for d in domains],
    )


def task_to_proto(row: TaskRow) -> task_pb2.Task:
    """A Task message (its compiled template in the closure)."""
    spec = task_pb2.TaskSpec.FromString(row.spec)
    return task_pb2.Task(
        id=identifier(
            identifier_pb2.RESOURCE_TYPE_TASK, row.project, row.domain, row.name, row.version
        ),
        closure=task_pb2.TaskClosure(
            compiled_task=compiler_pb2.CompiledTask(template=spec.template),
            created_at=timestamp(row.created_at),
        ),
        short_description=spec.short_description,
    )


def task_template(row: TaskRow) -> tasks_pb2.TaskTemplate:
    """The template of a registered task."""
    return task_pb2.TaskSpec.FromString(row.spec).template


def workflow_to_proto(
    row: WorkflowRow, compiled: compiler_pb2.CompiledWorkflowClosure | None = None
) -> workflow_pb2.Workflow:
    """A Workflow message; the compiled closure inline only when given."""
    spec = workflow_pb2.WorkflowSpec.FromString(row.spec)
    closure = workflow_pb2.WorkflowClosure(
        compiled_closure_uri=row.closure_uri, created_at=timestamp(row.created_at)
    )
    if compiled is not None:
        closure.compiled_workflow.CopyFrom(compiled)
    return workflow_pb2.Workflow(
        id=identifier(
            identifier_pb2.RESOURCE_TYPE_WORKFLOW, row.project, row.domain, row.name, row.version
        ),
        closure=closure,
        short_description=spec.short_description,
    )


def launch_plan_to_proto(row: LaunchPlanRow) -> launch_plan_pb2.LaunchPlan:
    """A LaunchPlan message; state and times from the row's columns."""
    closure = launch_plan_pb2.LaunchPlanClosure.FromString(row.closure)
    closure.state = row.state  # type: ignore[assignment]
    closure.created_at.CopyFrom(timestamp(row.created_at))
    closure.updated_at.CopyFrom(timestamp(row.updated_at))
    return launch_plan_pb2.LaunchPlan(
        id=identifier(
            identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN, row.project, row.domain, row.name, row.version
        ),
        spec=launch_plan_pb2.LaunchPlanSpec.FromString(row.spec),
        closure=closure,
    )


def _set_time(ts: timestamp_pb2.Timestamp, micros: int) -> None:
    ts.seconds = micros // 1_000_000
    ts.nanos = (micros % 1_000_000) * 1000


def execution_to_proto(
    row: ExecutionRow | ExecutionRecord, into: execution_pb2.Execution | None = None
) -> execution_pb2.Execution:
    """An Execution message: spec as created, closure from columns plus stored details.

    Built in place (stored bytes parsed straight into the sub-messages, no intermediate
    messages copied in): GetExecution spends its CPU here and in the query.

    Args:
        row: The execution's columns.
        into: An empty message to fill instead of a new one.

    Returns:
        The filled message.
    """
    msg = execution_pb2.Execution() if into is None else into
    ident = msg.id
    ident.project = row.project
    ident.domain = row.domain
    ident.name = row.name
    msg.spec.MergeFromString(row.spec)
    closure = msg.closure
    if row.closure:
        closure.MergeFromString(row.closure)
    closure.phase = row.phase  # type: ignore[assignment]
    _set_time(closure.created_at, row.created_at)
    _set_time(closure.updated_at, row.updated_at)
    if row.started_at is not None:
        _set_time(closure.started_at, row.started_at)
        duration = _duration(row.started_at, row.ended_at)
        if duration is not None:
            closure.duration.CopyFrom(duration)
    if row.outputs_uri and closure.WhichOneof("output_result") is None:
        closure.output_uri = row.outputs_uri
    wf = closure.workflow_id
    wf.resource_type = identifier_pb2.RESOURCE_TYPE_WORKFLOW
    wf.project = row.project
    wf.domain = row.domain
    wf.name = row.wf_name
    wf.version = row.wf_version
    if row.lp_name:
        lp = closure.launch_plan_id
        lp.resource_type = identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN
        lp.project = row.project
        lp.domain = row.domain
        lp.name = row.lp_name
        lp.version = row.lp_version
    if not row.admitted:
        closure.queued_reason = (
            f"waiting for a free slot: project {row.project!r} domain {row.domain!r} is at its "
            "limit of concurrent executions"
        )
    return msg


def node_execution_to_proto(row: NodeExecutionRow) -> node_execution_pb2.NodeExecution:
    """A NodeExecution message: the assembled body with times from the columns."""
    msg = node_execution_pb2.NodeExecution.FromString(row.body)
    closure = msg.closure
    closure.phase = row.phase  # type: ignore[assignment]
    closure.cache_status = row.cache_status  # type: ignore[assignment]
    closure.created_at.CopyFrom(timestamp(row.created_at))
    closure.updated_at.CopyFrom(timestamp(row.updated_at))
    if row.started_at is not None:
        closure.started_at.CopyFrom(timestamp(row.started_at))
        duration = _duration(row.started_at, row.ended_at)
        if duration is not None:
            closure.duration.CopyFrom(duration)
    return msg


def task_execution_to_proto(row: TaskExecutionRow) -> task_execution_pb2.TaskExecution:
    """A TaskExecution message: the assembled body with times from the columns."""
    msg = task_execution_pb2.TaskExecution.FromString(row.body)
    closure = msg.closure
    closure.phase = row.phase  # type: ignore[assignment]
    closure.phase_version = row.phase_version
    closure.created_at.CopyFrom(timestamp(row.created_at))
    closure.updated_at.CopyFrom(timestamp(row.updated_at))
    if row.started_at is not None:
        closure.started_at.CopyFrom(timestamp(row.started_at))
        duration = _duration(row.started_at, row.ended_at)
        if duration is not None:
            closure.duration.CopyFrom(duration)
    return msg
