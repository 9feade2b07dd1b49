"""Executions.

Create (from a launch plan or a workflow), get, list, terminate, relaunch, recover, their
data; quota admission; the hand-over messages for propeller.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from google.protobuf import timestamp_pb2

from caddis._serving.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from caddis.storage import locations
from caddis_admin.manager.context import (
    AdminContext,
    enum_value,
    join_messages,
    list_query,
    parse_time,
)
from caddis_admin.manager.literals import describe_literal, describe_type, literal_matches
from caddis_admin.repository import transformers as tf
from caddis_admin.repository.models import LaunchPlanRow, WorkflowRow
from caddis_admin.repository.store import DuplicateKeyError, Repos
from caddis_idl.admin.v1 import common_pb2, execution_pb2, launch_plan_pb2
from caddis_idl.core.v1 import (
    compiler_pb2,
    identifier_pb2,
    literals_pb2,
)
from caddis_idl.core.v1 import (
    execution_pb2 as core_exec,
)
from caddis_idl.propeller.v1 import propeller_service_pb2 as prop

Phase = core_exec.WorkflowExecutionPhase
TERMINAL_PHASES = (
    core_exec.WORKFLOW_EXECUTION_PHASE_SUCCEEDED,
    core_exec.WORKFLOW_EXECUTION_PHASE_FAILED,
    core_exec.WORKFLOW_EXECUTION_PHASE_ABORTED,
    core_exec.WORKFLOW_EXECUTION_PHASE_TIMED_OUT,
)
_NAME_ALPHABET = string.ascii_lowercase + string.digits

EXECUTION_FILTERS = {
    "phase": enum_value(core_exec.WorkflowExecutionPhase, "WORKFLOW_EXECUTION_PHASE_"),
    "mode": enum_value(execution_pb2.ExecutionMode, "EXECUTION_MODE_"),
    "created_at": parse_time,
    "updated_at": parse_time,
    "started_at": parse_time,
    "scheduled_at": parse_time,
}


def phase_name(phase: int) -> str:
    """``RUNNING`` for WORKFLOW_EXECUTION_PHASE_RUNNING."""
    return core_exec.WorkflowExecutionPhase.Name(phase).removeprefix("WORKFLOW_EXECUTION_PHASE_")  # type: ignore[arg-type]


def new_execution_name() -> str:
    """A random execution name: a letter and 19 letters or digits (20 in all, like Flyte)."""
    return secrets.choice(string.ascii_lowercase) + "".join(
        secrets.choice(_NAME_ALPHABET) for _ in range(19)
    )


def _fmt_exec(project: str, domain: str, name: str) -> str:
    return f"{project}/{domain}/{name}"


@dataclass(frozen=True)
class LaunchRequest:
    """Everything needed to create one execution (from the RPC, a relaunch or a schedule)."""

    project: str
    domain: str
    name: str
    spec: execution_pb2.ExecutionSpec
    inputs: literals_pb2.LiteralMap
    scheduled_at: int | None = None
    reference_execution: str = ""
    closure_override: compiler_pb2.CompiledWorkflowClosure | None = None


class _Resolved(NamedTuple):
    """A launch plan version with its workflow, spec and closure (read-only once cached)."""

    lp: LaunchPlanRow
    wf: WorkflowRow
    spec: launch_plan_pb2.LaunchPlanSpec
    closure: launch_plan_pb2.LaunchPlanClosure


def _launch_key(req: LaunchRequest) -> tuple[str, ...] | None:
    """Cache key of what a request launches when it names a version; None otherwise."""
    kind = req.spec.WhichOneof("launch_entity")
    if kind is None:
        return None
    ident: identifier_pb2.Identifier = getattr(req.spec, kind)
    if not ident.name or not ident.version:
        return None
    return (
        kind,
        ident.project or req.project,
        ident.domain or req.domain,
        ident.name,
        ident.version,
    )


class ExecutionManager:
    """Executions and their hand-over to propeller.

    Args:
        ctx: The shared admin context.
    """

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx
        self._workflows: dict[tuple[str, str, str, str], WorkflowRow] = {}
        self._resolved: dict[tuple[str, ...], _Resolved] = {}

    # -- create ------------------------------------------------------------------------------

    def create(self, req: LaunchRequest, *, idempotent: bool = False) -> str:
        """Validate inputs, offload them, and record the execution with its hand-over.

        Args:
            req: What to launch.
            idempotent: An existing execution of the same name counts as success (the
                scheduler's deterministic names rely on it).

        Returns:
            The execution name.

        Raises:
            InvalidArgumentError: Inputs do not fit the interface (every problem listed).
            NotFoundError: The launch plan or workflow is not registered.
            AlreadyExistsError: The name is taken (unless ``idempotent``).
        """
        self.ctx.check_domain(req.project, req.domain)
        check_tags(req.spec.tags, "spec.tags")
        name = req.name or new_execution_name()
        locations.join("file:///x", name)  # refuses names that cannot be a path segment
        key = _launch_key(req)
        resolved = self._resolved.get(key) if key is not None else None
        # A generated name is new by construction and a versioned launch plan, once read,
        # is cached: then creation needs no read transaction at all.
        if req.name or resolved is None:
            with self.ctx.db.transaction(readonly=True) as repos:
                if req.name and repos.executions.get(req.project, req.domain, name) is not None:
                    if idempotent:
                        return name
                    raise AlreadyExistsError(
                        f"execution {_fmt_exec(req.project, req.domain, name)} already exists"
                    )
                if resolved is None:
                    resolved = self._resolve(repos, req, key)
        lp, wf, lp_spec, lp_closure = resolved
        full_inputs = check_inputs(req.inputs, lp_spec, lp_closure)

        prefix = locations.execution_prefix(
            self.ctx.config.resolved_metadata_prefix(), req.project, req.domain, name
        )
        inputs_uri = locations.join(prefix, locations.INPUTS)
        user_inputs_uri = locations.join(prefix, "user_inputs.pb")
        self.ctx.store.write_proto(inputs_uri, full_inputs)
        self.ctx.store.write_proto(user_inputs_uri, req.inputs)
        closure_uri = wf.closure_uri
        if req.closure_override is not None:
            closure_uri = locations.join(prefix, "closure.pb")
            self.ctx.store.write_proto(closure_uri, req.closure_override)

        spec = self._effective_spec(req, lp, lp_spec)
        labels = dict(spec.labels.values)
        tags = list(spec.tags)
        now = self.ctx.now_us()
        # Column values of the new row; inserted with a plain INSERT (no ORM unit of work).
        values: dict[str, Any] = dict(
            project=req.project,
            domain=req.domain,
            name=name,
            lp_name=lp.name,
            lp_version=lp.version,
            wf_name=wf.name,
            wf_version=wf.version,
            phase=core_exec.WORKFLOW_EXECUTION_PHASE_QUEUED,
            mode=spec.metadata.mode,
            admitted=True,
            created_at=now,
            updated_at=now,
            last_event_at=0,
            scheduled_at=req.scheduled_at,
            reference_execution=req.reference_execution,
            inputs_uri=inputs_uri,
            user_inputs_uri=user_inputs_uri,
            outputs_uri="",
            closure_uri=closure_uri,
            labels=",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            spec=spec.SerializeToString(deterministic=True),
            closure=b"",
        )
        launch = prop.LaunchExecutionRequest(
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                project=req.project, domain=req.domain, name=name
            ),
            compiled_closure_uri=closure_uri,
            inputs_uri=inputs_uri,
            options=prop.ExecutionOptions(
                max_parallelism=spec.max_parallelism,
                raw_output_data_prefix=spec.raw_output_data_config.output_location_prefix,
                overwrite_cache=spec.overwrite_cache,
                skip_cache=spec.skip_cache,
                labels=labels,
                annotations=dict(spec.annotations.values),
                mode=spec.metadata.mode,  # type: ignore[arg-type]
                principal=spec.metadata.principal,
                nesting=spec.metadata.nesting,
                parent_node_execution=spec.metadata.parent_node_execution
                if spec.metadata.HasField("parent_node_execution")
                else None,
                reference_execution=spec.metadata.reference_execution
                if spec.metadata.HasField("reference_execution")
                else None,
            ),
            launch_plan_id=tf.identifier(
                identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN,
                lp.project,
                lp.domain,
                lp.name,
                lp.version,
            ),
            workflow_id=tf.identifier(
                identifier_pb2.RESOURCE_TYPE_WORKFLOW, wf.project, wf.domain, wf.name, wf.version
            ),
            created_at=tf.timestamp(now),
        )
        if spec.interruptible is not None and spec.HasField("interruptible"):
            launch.options.interruptible = spec.interruptible
        payload = launch.SerializeToString(deterministic=True)
        limit = self.ctx.config.max_concurrent_executions

        def work(repos: Repos) -> None:
            admitted = True
            if limit > 0:
                repos.lock_quota(req.project, req.domain)
                running = repos.executions.count_running(req.project, req.domain, TERMINAL_PHASES)
                admitted = running < limit
            row_id = repos.executions.insert(values | {"admitted": admitted}, labels, tags)
            repos.outbox.add("launch", row_id, payload, now, held=not admitted)

        try:
            self.ctx.db.run(work)
        except DuplicateKeyError as exc:
            if idempotent:
                return name
            raise AlreadyExistsError(
                f"execution {_fmt_exec(req.project, req.domain, name)} already exists"
            ) from exc
        self.ctx.hooks.execution_phase("QUEUED")
        self.ctx.hooks.wake_dispatcher()
        return name

    def _resolve(self, repos: Repos, req: LaunchRequest, key: tuple[str, ...] | None) -> _Resolved:
        lp = self._resolve_launch_plan(repos, req)
        wf = self._workflow(repos, lp)
        if wf is None:
            raise NotFoundError(
                f"workflow {lp.workflow_name}@{lp.workflow_version} of launch plan "
                f"{lp.name}@{lp.version} is not registered"
            )
        resolved = _Resolved(
            lp,
            wf,
            launch_plan_pb2.LaunchPlanSpec.FromString(lp.spec),
            launch_plan_pb2.LaunchPlanClosure.FromString(lp.closure),
        )
        # Versions are immutable (only a launch plan's state changes, which creation does
        # not read), so a versioned lookup serves every later launch of that version.
        if key is not None and len(self._resolved) < 10_000:
            self._resolved[key] = resolved
        return resolved

    def _workflow(self, repos: Repos, lp: LaunchPlanRow) -> WorkflowRow | None:
        # Workflow versions are immutable: a row once read serves every later launch.
        key = (lp.project, lp.domain, lp.workflow_name, lp.workflow_version)
        wf = self._workflows.get(key)
        if wf is None:
            wf = repos.workflows.get(*key)
            if wf is not None and len(self._workflows) < 10_000:
                self._workflows[key] = wf
        return wf

    def _resolve_launch_plan(self, repos: Repos, req: LaunchRequest) -> LaunchPlanRow:
        kind = req.spec.WhichOneof("launch_entity")
        if kind is None:
            raise InvalidArgumentError(
                "the spec names neither a launch plan nor a workflow to launch", field="spec"
            )
        ident: identifier_pb2.Identifier = getattr(req.spec, kind)
        project = ident.project or req.project
        domain = ident.domain or req.domain
        if not ident.name:
            raise InvalidArgumentError(f"the {kind} to launch needs a name", field=f"spec.{kind}")
        if ident.version:
            lp = repos.launch_plans.get(project, domain, ident.name, ident.version)
        else:
            lp = repos.launch_plans.active(project, domain, ident.name)
        # A workflow launches through its default launch plan (same name and version).
        what = "launch plan" if kind == "launch_plan" else "workflow"
        if lp is None or (kind == "workflow" and lp.workflow_name != ident.name):
            raise NotFoundError(
                f"{what} {project}/{domain}/{ident.name}@{ident.version or '<active>'} is not "
                "registered"
            )
        return lp

    def _effective_spec(
        self, req: LaunchRequest, lp: LaunchPlanRow, lp_spec: launch_plan_pb2.LaunchPlanSpec
    ) -> execution_pb2.ExecutionSpec:
        spec = execution_pb2.ExecutionSpec()
        spec.CopyFrom(req.spec)
        spec.launch_plan.CopyFrom(
            tf.identifier(
                identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN,
                lp.project,
                lp.domain,
                lp.name,
                lp.version,
            )
        )
        if not spec.metadata.mode:
            spec.metadata.mode = execution_pb2.EXECUTION_MODE_MANUAL
        if req.scheduled_at is not None:
            spec.metadata.scheduled_at.CopyFrom(tf.timestamp(req.scheduled_at))
        labels = dict(lp_spec.labels.values)
        labels.update(req.spec.labels.values)
        spec.labels.values.clear()
        spec.labels.values.update(labels)
        annotations = dict(lp_spec.annotations.values)
        annotations.update(req.spec.annotations.values)
        spec.annotations.values.clear()
        spec.annotations.values.update(annotations)
        if not spec.max_parallelism:
            spec.max_parallelism = (
                lp_spec.max_parallelism or self.ctx.config.default_max_parallelism
            )
        if not spec.raw_output_data_config.output_location_prefix:
            spec.raw_output_data_config.CopyFrom(lp_spec.raw_output_data_config)
        if lp_spec.overwrite_cache:
            spec.overwrite_cache = True
        if not spec.HasField("interruptible") and lp_spec.HasField("interruptible"):
            spec.interruptible = lp_spec.interruptible
        if not spec.notifications:
            spec.notifications.extend(lp_spec.notifications)
        if len(set(spec.tags)) != len(spec.tags):
            unique = list(dict.fromkeys(spec.tags))
            del spec.tags[:]
            spec.tags.extend(unique)
        return spec

    # -- read --------------------------------------------------------------------------------

    def get(
        self,
        ident: identifier_pb2.WorkflowExecutionIdentifier,
        into: execution_pb2.Execution | None = None,
    ) -> execution_pb2.Execution:
        """An execution (one plain query; the hottest read of the API).

        Args:
            ident: Which execution.
            into: An empty message to fill (the response's field), which saves copying a
                finished message into the response.

        Returns:
            The execution (``into`` when given).

        Raises:
            NotFoundError: No such execution.
        """
        row = self.ctx.db.read(lambda r: r.execution(ident.project, ident.domain, ident.name))
        if row is None:
            raise NotFoundError(
                f"execution {_fmt_exec(ident.project, ident.domain, ident.name)} does not exist"
            )
        return tf.execution_to_proto(row, into)

    def list_executions(
        self, project: str, domain: str, options: common_pb2.ListOptions
    ) -> tuple[list[execution_pb2.Execution], str]:
        """A page of executions, filtered and sorted."""
        query = list_query(options, EXECUTION_FILTERS)
        with self.ctx.db.transaction(readonly=True) as repos:
            rows, token = repos.executions.page(project, domain, query)
            return [tf.execution_to_proto(r) for r in rows], token

    def get_data(
        self, ident: identifier_pb2.WorkflowExecutionIdentifier
    ) -> tuple[common_pb2.LiteralMapData, common_pb2.LiteralMapData]:
        """Inputs and outputs: inline below the size limit, by URI above it."""
        with self.ctx.db.transaction(readonly=True) as repos:
            row = repos.executions.get(ident.project, ident.domain, ident.name)
            if row is None:
                raise NotFoundError(
                    f"execution {_fmt_exec(ident.project, ident.domain, ident.name)} does not exist"
                )
        return self.literal_data(row.inputs_uri), self.literal_data(row.outputs_uri)

    def literal_data(self, uri: str) -> common_pb2.LiteralMapData:
        """A LiteralMapData for a blob: literals inline when small enough, URI always."""
        if not uri:
            return common_pb2.LiteralMapData()
        store = self.ctx.store
        if not store.exists(uri):
            return common_pb2.LiteralMapData(uri=uri)
        size = store.size(uri)
        data = common_pb2.LiteralMapData(uri=uri, size_bytes=size)
        if size <= self.ctx.config.max_inline_data_bytes:
            data.literals.ParseFromString(store.get_bytes(uri))
        elif uri.startswith("s3://"):
            data.download_url = store.presigned_get_url(uri)
        return data

    # -- terminate, relaunch, recover --------------------------------------------------------

    def terminate(self, ident: identifier_pb2.WorkflowExecutionIdentifier, cause: str) -> None:
        """Abort an execution: ask propeller to stop it (or drop it from the quota queue).

        Raises:
            FailedPreconditionError: It already reached a terminal phase.
        """
        now = self.ctx.now_us()

        def work(repos: Repos) -> None:
            row = repos.executions.get_for_update(ident.project, ident.domain, ident.name)
            if row is None:
                raise NotFoundError(
                    f"execution {_fmt_exec(ident.project, ident.domain, ident.name)} does not exist"
                )
            if (
                row.phase in TERMINAL_PHASES
                or row.phase == core_exec.WORKFLOW_EXECUTION_PHASE_ABORTING
            ):
                raise FailedPreconditionError(
                    f"execution {_fmt_exec(row.project, row.domain, row.name)} is already "
                    f"{phase_name(row.phase)}; only running executions can be terminated"
                )
            closure = execution_pb2.ExecutionClosure()
            if row.closure:
                closure.ParseFromString(row.closure)
            closure.abort_metadata.cause = cause or "terminated by user"
            row.closure = closure.SerializeToString()
            row.updated_at = now
            if not row.admitted:
                # Never reached propeller: it ends here.
                repos.outbox.drop_held(row.id)
                row.phase = core_exec.WORKFLOW_EXECUTION_PHASE_ABORTED
                row.ended_at = now
                repos.executions.flush()
                return
            row.phase = core_exec.WORKFLOW_EXECUTION_PHASE_ABORTING
            repos.executions.flush()
            abort = prop.AbortExecutionRequest(
                execution_id=ident, cause=closure.abort_metadata.cause
            )
            repos.outbox.add("abort", row.id, abort.SerializeToString(), now)

        self.ctx.db.run(work)
        self.ctx.hooks.wake_dispatcher()

    def relaunch(
        self, ident: identifier_pb2.WorkflowExecutionIdentifier, name: str, overwrite_cache: bool
    ) -> str:
        """A new execution of the same launch plan version with the same inputs."""
        old = self.get(ident)
        inputs = self._user_inputs(ident)
        spec = execution_pb2.ExecutionSpec()
        spec.CopyFrom(old.spec)
        spec.metadata.mode = execution_pb2.EXECUTION_MODE_RELAUNCH
        spec.metadata.ClearField("scheduled_at")
        spec.metadata.reference_execution.CopyFrom(ident)
        if overwrite_cache:
            spec.overwrite_cache = True
        return self.create(
            LaunchRequest(ident.project, ident.domain, name, spec, inputs),
        )

    def recover(
        self,
        ident: identifier_pb2.WorkflowExecutionIdentifier,
        name: str,
        task_overrides: list[identifier_pb2.Identifier],
    ) -> str:
        """A new execution that reuses the succeeded nodes' outputs of a failed one.

        Propeller sees mode RECOVERED and the reference execution, and copies the outputs of
        nodes that succeeded there instead of running them. ``task_overrides`` swap in newer
        registered versions of tasks (same interface) for the rerun.
        """
        old = self.get(ident)
        if (
            old.closure.phase not in TERMINAL_PHASES
            or old.closure.phase == core_exec.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
        ):
            raise FailedPreconditionError(
                f"execution {_fmt_exec(ident.project, ident.domain, ident.name)} is "
                f"{phase_name(old.closure.phase)}; only failed, aborted or timed-out executions "
                "can be recovered"
            )
        inputs = self._user_inputs(ident)
        spec = execution_pb2.ExecutionSpec()
        spec.CopyFrom(old.spec)
        spec.metadata.mode = execution_pb2.EXECUTION_MODE_RECOVERED
        spec.metadata.ClearField("scheduled_at")
        spec.metadata.reference_execution.CopyFrom(ident)
        override = None
        if task_overrides:
            override = self._override_tasks(old, task_overrides)
        return self.create(
            LaunchRequest(
                ident.project,
                ident.domain,
                name,
                spec,
                inputs,
                reference_execution=ident.name,
                closure_override=override,
            )
        )

    def _user_inputs(
        self, ident: identifier_pb2.WorkflowExecutionIdentifier
    ) -> literals_pb2.LiteralMap:
        with self.ctx.db.transaction(readonly=True) as repos:
            row = repos.executions.get(ident.project, ident.domain, ident.name)
            assert row is not None
        if not row.user_inputs_uri:
            return literals_pb2.LiteralMap()
        return self.ctx.store.read_proto(row.user_inputs_uri, literals_pb2.LiteralMap)

    def _override_tasks(
        self, old: execution_pb2.Execution, overrides: list[identifier_pb2.Identifier]
    ) -> compiler_pb2.CompiledWorkflowClosure:
        from caddis_admin.manager.compile import iter_nodes

        with self.ctx.db.transaction(readonly=True) as repos:
            row = repos.executions.get(old.id.project, old.id.domain, old.id.name)
            assert row is not None
            templates = {}
            for ov in overrides:
                t = repos.tasks.get(
                    ov.project or old.id.project, ov.domain or old.id.domain, ov.name, ov.version
                )
                if t is None:
                    raise NotFoundError(f"task {ov.name}@{ov.version} is not registered")
                templates[ov.name] = tf.task_template(t)
        closure = self.ctx.store.read_proto(row.closure_uri, compiler_pb2.CompiledWorkflowClosure)
        replaced: dict[str, identifier_pb2.Identifier] = {}
        for task in closure.tasks:
            new = templates.get(task.template.id.name)
            if new is None:
                continue
            if new.interface != task.template.interface:
                raise InvalidArgumentError(
                    f"task {new.id.name}@{new.id.version} has a different interface than "
                    f"{task.template.id.version}; a recovery can only swap compatible versions",
                    field="task_version_overrides",
                )
            replaced[task.template.id.name] = new.id
            task.template.CopyFrom(new)
        unknown = set(templates) - set(replaced)
        if unknown:
            raise InvalidArgumentError(
                f"tasks {', '.join(sorted(unknown))} are not used by the workflow",
                field="task_version_overrides",
            )
        for wf in (closure.primary, *closure.sub_workflows):
            nodes = list(wf.template.nodes)
            if wf.template.HasField("failure_node"):
                nodes.append(wf.template.failure_node)
            for node in iter_nodes(nodes):
                if node.WhichOneof("target") == "task_node":
                    new_id = replaced.get(node.task_node.reference_id.name)
                    if new_id is not None:
                        node.task_node.reference_id.CopyFrom(new_id)
        return closure

    def update(
        self,
        ident: identifier_pb2.WorkflowExecutionIdentifier,
        state: int,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
    ) -> execution_pb2.Execution:
        """Archive or unarchive an execution, and add or remove its tags.

        Args:
            ident: Which execution.
            state: The new ExecutionState; UNSPECIFIED leaves it unchanged.
            add_tags: Tags to add; ones already present are ignored.
            remove_tags: Tags to remove; absent ones are ignored. A tag in both lists ends
                up present (removal first, then addition).

        Returns:
            The execution after the update.

        Raises:
            NotFoundError: No such execution.
            InvalidArgumentError: A tag is empty or too long.
        """
        check_tags(add_tags, "add_tags")
        check_tags(remove_tags, "remove_tags")
        now = self.ctx.now_us()

        def work(repos: Repos) -> execution_pb2.Execution:
            row = repos.executions.get_for_update(ident.project, ident.domain, ident.name)
            if row is None:
                raise NotFoundError(
                    f"execution {_fmt_exec(ident.project, ident.domain, ident.name)} does not exist"
                )
            if state:
                closure = execution_pb2.ExecutionClosure()
                if row.closure:
                    closure.ParseFromString(row.closure)
                closure.state_change_details.state = state  # type: ignore[assignment]
                closure.state_change_details.occurred_at.CopyFrom(tf.timestamp(now))
                row.closure = closure.SerializeToString()
                row.updated_at = now
            if add_tags or remove_tags:
                spec = execution_pb2.ExecutionSpec.FromString(row.spec)
                removed = set(remove_tags)
                tags = [t for t in spec.tags if t not in removed]
                tags.extend(t for t in dict.fromkeys(add_tags) if t not in tags)
                if tags != list(spec.tags):
                    del spec.tags[:]
                    spec.tags.extend(tags)
                    row.spec = spec.SerializeToString(deterministic=True)
                    row.updated_at = now
                repos.executions.change_tags(row.id, list(add_tags), list(remove_tags))
            repos.executions.flush()
            return tf.execution_to_proto(row)

        return self.ctx.db.run(work)

    def fail_refused_launch(self, repos: Repos, execution_id: int, reason: str) -> None:
        """Mark an execution FAILED because propeller refused to launch it.

        Runs in the dispatcher's transaction that settles the refused hand-over; an
        execution that already ended (or is being terminated) is left alone.

        Args:
            repos: The open transaction.
            execution_id: The execution's row id.
            reason: What propeller answered.
        """
        row = repos.executions.by_id(execution_id)
        if row is None or row.phase in TERMINAL_PHASES:
            return
        now = self.ctx.now_us()
        closure = execution_pb2.ExecutionClosure()
        if row.closure:
            closure.ParseFromString(row.closure)
        if row.phase == core_exec.WORKFLOW_EXECUTION_PHASE_ABORTING:
            # Terminated before propeller took it: nothing runs, so the abort is complete.
            row.phase = core_exec.WORKFLOW_EXECUTION_PHASE_ABORTED
        else:
            row.phase = core_exec.WORKFLOW_EXECUTION_PHASE_FAILED
            closure.error.CopyFrom(
                core_exec.ExecutionError(
                    code="SYSTEM:LaunchRefused",
                    message=f"propeller refused to launch the execution: {reason}",
                    kind=core_exec.ERROR_KIND_SYSTEM,
                    recoverable=False,
                    timestamp=tf.timestamp(now),
                )
            )
        row.closure = closure.SerializeToString()
        row.updated_at = now
        row.ended_at = now
        row.last_event_at = max(row.last_event_at, now)
        repos.executions.flush()
        self.admit_waiting(repos, row.project, row.domain)
        self.ctx.hooks.execution_phase(phase_name(row.phase))

    # -- quota -------------------------------------------------------------------------------

    def admit_waiting(self, repos: Repos, project: str, domain: str) -> int:
        """Hand over queued executions of a project+domain while slots are free.

        Runs inside the transaction that freed a slot, so the decision and the release of
        the held hand-over commit together.

        Returns:
            How many executions were admitted.
        """
        limit = self.ctx.config.max_concurrent_executions
        if limit <= 0:
            return 0
        repos.lock_quota(project, domain)
        free = limit - repos.executions.count_running(project, domain, TERMINAL_PHASES)
        if free <= 0:
            return 0
        admitted = 0
        for row in repos.executions.oldest_queued(project, domain, free):
            row.admitted = True
            row.updated_at = self.ctx.now_us()
            repos.outbox.release(row.id)
            admitted += 1
        repos.executions.flush()
        return admitted


MAX_TAG_LENGTH = 255


def check_tags(tags: Iterable[str], field: str) -> None:
    """Refuse empty tags and tags longer than a tag column holds.

    Raises:
        InvalidArgumentError: Naming every bad tag.
    """
    problems = [
        f"tag {t[:40]!r}... is longer than {MAX_TAG_LENGTH} characters"
        if len(t) > MAX_TAG_LENGTH
        else "tags cannot be empty"
        for t in tags
        if not t or len(t) > MAX_TAG_LENGTH
    ]
    if problems:
        raise InvalidArgumentError(join_messages(dict.fromkeys(problems)), field=field)


def check_inputs(
    given: literals_pb2.LiteralMap,
    spec: launch_plan_pb2.LaunchPlanSpec,
    closure: launch_plan_pb2.LaunchPlanClosure,
) -> literals_pb2.LiteralMap:
    """Validate a caller's inputs against a launch plan and merge defaults and fixed inputs.

    Every problem is collected (unknown, fixed, missing, wrong type), each naming the
    variable, the expected type and what was received.

    Raises:
        InvalidArgumentError: With all problems.
    """
    expected = closure.expected_inputs.parameters
    fixed = spec.fixed_inputs.literals
    problems: list[str] = []
    for name, lit in given.literals.items():
        if name in fixed:
            problems.append(f"input {name!r} is fixed by the launch plan and cannot be overridden")
        elif name not in expected:
            known = ", ".join(sorted(expected)) or "none"
            problems.append(f"input {name!r} is not an input of the launch plan (inputs: {known})")
        elif not literal_matches(lit, expected[name].var.type):
            problems.append(
                f"input {name!r}: expected {describe_type(expected[name].var.type)}, "
                f"received {describe_literal(lit)}"
            )
    merged = literals_pb2.LiteralMap()
    for name, param in expected.items():
        if name in given.literals:
            merged.literals[name].CopyFrom(given.literals[name])
        elif param.HasField("default"):
            merged.literals[name].CopyFrom(param.default)
        else:
            problems.append(
                f"input {name!r} ({describe_type(param.var.type)}) is required and was not given"
            )
    for name, lit in fixed.items():
        merged.literals[name].CopyFrom(lit)
    if problems:
        raise InvalidArgumentError("invalid inputs: " + join_messages(problems), field="inputs")
    return merged


def kickoff_literal(micros: int) -> literals_pb2.Literal:
    """A datetime literal holding a scheduled time."""
    ts = timestamp_pb2.Timestamp(seconds=micros // 1_000_000, nanos=(micros % 1_000_000) * 1000)
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(datetime=ts))
    )
