"""Projects, registration of tasks, workflows and launch plans, and code bundles."""

from __future__ import annotations

import dataclasses
from typing import Any

from croniter import croniter

from caddis._serving.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
)
from caddis.storage import locations
from caddis_admin.manager import compile as compiling
from caddis_admin.manager.context import (
    AdminContext,
    differences,
    digest,
    enum_value,
    join_messages,
    list_query,
    parse_time,
)
from caddis_admin.manager.literals import describe_literal, describe_type, literal_matches
from caddis_admin.repository import transformers as tf
from caddis_admin.repository.models import (
    CodeBundleRow,
    LaunchPlanRow,
    ProjectRow,
    TaskRow,
    WorkflowRow,
)
from caddis_admin.repository.store import LP_ACTIVE, LP_INACTIVE, Repos
from caddis_idl.admin.v1 import (
    code_bundle_pb2,
    common_pb2,
    launch_plan_pb2,
    project_pb2,
    schedule_pb2,
    task_pb2,
    workflow_pb2,
)
from caddis_idl.core.v1 import compiler_pb2, identifier_pb2, interface_pb2, types_pb2

# Marks the digest of a default launch plan admin made itself: the first explicit
# registration of the same id replaces it instead of conflicting with it.
AUTO_PREFIX = "auto-"


def _check_id(ident: identifier_pb2.Identifier, what: str) -> None:
    missing = [f for f in ("project", "domain", "name", "version") if not getattr(ident, f)]
    if missing:
        raise InvalidArgumentError(
            f"{what} id needs {', '.join(missing)} (got {_fmt(ident)})", field="id"
        )


def _fmt(ident: identifier_pb2.Identifier) -> str:
    return f"{ident.project}/{ident.domain}/{ident.name}@{ident.version}"


class RegistrationManager:
    """Projects and the immutable, versioned entities.

    Args:
        ctx: The shared admin context.
    """

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    # -- projects ----------------------------------------------------------------------------

    def ensure_project(self, repos: Repos, project: str, domain: str) -> None:
        """Check project and domain, creating the project when configured to."""
        self.ctx.check_domain(project, domain)
        if repos.projects.get(project) is not None:
            return
        if not self.ctx.config.auto_create_projects:
            raise NotFoundError(f"project {project!r} does not exist; create it first")
        repos.projects.add(
            ProjectRow(
                id=project,
                name=project,
                description="",
                state=project_pb2.PROJECT_STATE_ACTIVE,
                labels=b"",
                created_at=self.ctx.now_us(),
            )
        )

    def create_project(self, project: project_pb2.Project) -> project_pb2.Project:
        """Register a project; the same id again is ALREADY_EXISTS."""
        if not project.id:
            raise InvalidArgumentError("a project id is required", field="project.id")
        locations.join("file:///x", project.id)  # refuses ids that cannot be a path segment
        row = ProjectRow(
            id=project.id,
            name=project.name or project.id,
            description=project.description,
            state=project.state or project_pb2.PROJECT_STATE_ACTIVE,
            labels=project.labels.SerializeToString(deterministic=True),
            created_at=self.ctx.now_us(),
        )

        def work(repos: Repos) -> project_pb2.Project:
            if not repos.projects.add(row):
                raise AlreadyExistsError(f"project {project.id!r} already exists")
            return tf.project_to_proto(row, self.ctx.config.domains)

        return self.ctx.db.run(work)

    def update_project(self, project: project_pb2.Project) -> project_pb2.Project:
        """Change a project's name, description, labels or state."""

        def work(repos: Repos) -> project_pb2.Project:
            row = repos.projects.get(project.id)
            if row is None:
                raise NotFoundError(f"project {project.id!r} does not exist")
            row.name = project.name or row.name
            row.description = project.description
            row.labels = project.labels.SerializeToString(deterministic=True)
            if project.state:
                row.state = project.state
            repos.flush()
            return tf.project_to_proto(row, self.ctx.config.domains)

        return self.ctx.db.run(work)

    def get_project(self, project_id: str) -> project_pb2.Project:
        """A project, with the configured domains."""
        with self.ctx.db.transaction(readonly=True) as repos:
            row = repos.projects.get(project_id)
            if row is None:
                raise NotFoundError(f"project {project_id!r} does not exist")
            return tf.project_to_proto(row, self.ctx.config.domains)

    def list_projects(
        self, options: common_pb2.ListOptions | None = None
    ) -> tuple[list[project_pb2.Project], str]:
        """A page of projects; by id ascending unless the options sort otherwise.

        Filter fields: id, name, state (ACTIVE / ARCHIVED), created_at.

        Args:
            options: Paging, filters and sort.

        Returns:
            The page and the next page's token (empty on the last page).
        """
        opts = options or common_pb2.ListOptions()
        query = list_query(
            opts,
            {
                "state": enum_value(project_pb2.ProjectState, "PROJECT_STATE_"),
                "created_at": parse_time,
            },
            default_sort="id",
        )
        if not opts.sort_by.key:
            query = dataclasses.replace(query, ascending=True)
        with self.ctx.db.transaction(readonly=True) as repos:
            rows, token = repos.projects.page(query)
            return [tf.project_to_proto(r, self.ctx.config.domains) for r in rows], token

    # -- tasks -------------------------------------------------------------------------------

    def create_task(self, ident: identifier_pb2.Identifier, spec: task_pb2.TaskSpec) -> None:
        """Register a task version (idempotent for identical content).

        Raises:
            InvalidArgumentError: The id or template is incomplete.
            AlreadyExistsError: The id is registered with different content.
        """
        _check_id(ident, "task")
        if not spec.HasField("template"):
            raise InvalidArgumentError("a task template is required", field="spec.template")
        stored = task_pb2.TaskSpec()
        stored.CopyFrom(spec)
        stored.template.id.CopyFrom(ident)
        stored.template.id.resource_type = identifier_pb2.RESOURCE_TYPE_TASK
        now = self.ctx.now_us()
        row = TaskRow(
            project=ident.project,
            domain=ident.domain,
            name=ident.name,
            version=ident.version,
            digest=digest(stored),
            created_at=now,
            task_type=stored.template.type,
            spec=stored.SerializeToString(deterministic=True),
        )

        def work(repos: Repos) -> None:
            self.ensure_project(repos, ident.project, ident.domain)
            existing = repos.tasks.add(row)
            if existing is not None and existing.digest != row.digest:
                old = task_pb2.TaskSpec.FromString(existing.spec)
                raise _conflict("task", ident, old, stored)

        self.ctx.db.run(work)

    def get_task(self, ident: identifier_pb2.Identifier) -> task_pb2.Task:
        """A registered task."""
        _check_id(ident, "task")
        with self.ctx.db.transaction(readonly=True) as repos:
            row = repos.tasks.get(ident.project, ident.domain, ident.name, ident.version)
            if row is None:
                raise NotFoundError(f"task {_fmt(ident)} is not registered")
            return tf.task_to_proto(row)

    def list_tasks(
        self, ident: common_pb2.NamedEntityIdentifier, options: common_pb2.ListOptions
    ) -> tuple[list[task_pb2.Task], str]:
        """A page of task versions."""
        query = list_query(options)
        with self.ctx.db.transaction(readonly=True) as repos:
            rows, token = repos.tasks.page(ident.project, ident.domain, ident.name, query)
            return [tf.task_to_proto(r) for r in rows], token

    def list_ids(
        self, kind: str, project: str, domain: str, options: common_pb2.ListOptions
    ) -> tuple[list[common_pb2.NamedEntityIdentifier], str]:
        """A page of distinct names of tasks, workflows or launch plans."""
        with self.ctx.db.transaction(readonly=True) as repos:
            repo: Any = getattr(repos, kind)
            names, token = repo.list_names(project, domain, options.limit or 100, options.token)
        return [
            common_pb2.NamedEntityIdentifier(project=project, domain=domain, name=n) for n in names
        ], token

    # -- workflows ---------------------------------------------------------------------------

    def create_workflow(
        self, ident: identifier_pb2.Identifier, spec: workflow_pb2.WorkflowSpec
    ) -> None:
        """Compile and register a workflow version, and its default launch plan.

        The referenced tasks and launch plans must be registered first. The compiled closure
        goes to the blob store; the row keeps its URI.

        Raises:
            InvalidArgumentError: The workflow does not compile (every error listed).
            AlreadyExistsError: The id is registered with different content.
        """
        _check_id(ident, "workflow")
        if not spec.HasField("template"):
            raise InvalidArgumentError("a workflow template is required", field="spec.template")
        stored = workflow_pb2.WorkflowSpec()
        stored.CopyFrom(spec)
        stored.template.id.CopyFrom(ident)
        stored.template.id.resource_type = identifier_pb2.RESOURCE_TYPE_WORKFLOW
        wf_digest = digest(stored)

        with self.ctx.db.transaction(readonly=True) as repos:
            self.ctx.check_domain(ident.project, ident.domain)
            existing = repos.workflows.get(ident.project, ident.domain, ident.name, ident.version)
            if existing is not None:
                if existing.digest == wf_digest:
                    return
                old = workflow_pb2.WorkflowSpec.FromString(existing.spec)
                raise _conflict("workflow", ident, old, stored)
            tasks = []
            for ref in compiling.referenced_tasks(stored.template, stored.sub_workflows):
                task_row = repos.tasks.get(ref.project, ref.domain, ref.name, ref.version)
                if task_row is not None:
                    tasks.append(tf.task_template(task_row))
            lps = []
            for ref in compiling.referenced_launch_plans(stored.template, stored.sub_workflows):
                lp = repos.launch_plans.get(ref.project, ref.domain, ref.name, ref.version)
                if lp is not None:
                    lps.append(_lp_template(lp))
        compiled = compiling.compile_workflow(
            stored.template, list(stored.sub_workflows), tasks, lps
        )
        uri = locations.join(
            self.ctx.config.resolved_metadata_prefix(),
            "workflows",
            ident.project,
            ident.domain,
            ident.name,
            f"{wf_digest}.pb",
        )
        self.ctx.store.write_proto(uri, compiled)
        now = self.ctx.now_us()
        row = WorkflowRow(
            project=ident.project,
            domain=ident.domain,
            name=ident.name,
            version=ident.version,
            digest=wf_digest,
            created_at=now,
            spec=stored.SerializeToString(deterministic=True),
            interface=stored.template.interface.SerializeToString(deterministic=True),
            closure_uri=uri,
        )
        lp_ident = identifier_pb2.Identifier()
        lp_ident.CopyFrom(ident)
        lp_ident.resource_type = identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN
        lp_spec = launch_plan_pb2.LaunchPlanSpec(workflow_id=ident)
        lp_spec.workflow_id.resource_type = identifier_pb2.RESOURCE_TYPE_WORKFLOW

        def work(repos: Repos) -> None:
            self.ensure_project(repos, ident.project, ident.domain)
            existing = repos.workflows.add(row)
            if existing is not None:
                if existing.digest != row.digest:
                    old = workflow_pb2.WorkflowSpec.FromString(existing.spec)
                    raise _conflict("workflow", ident, old, stored)
                return
            if repos.launch_plans.get(ident.project, ident.domain, ident.name, ident.version):
                return
            lp_row = self._launch_plan_row(repos, lp_ident, lp_spec, row, now)
            lp_row.digest = AUTO_PREFIX + lp_row.digest
            repos.launch_plans.add(lp_row)

        self.ctx.db.run(work)

    def get_workflow(
        self, ident: identifier_pb2.Identifier, include_closure: bool = False
    ) -> workflow_pb2.Workflow:
        """A registered workflow, with its compiled closure inline when asked."""
        _check_id(ident, "workflow")
        with self.ctx.db.transaction(readonly=True) as repos:
            row = repos.workflows.get(ident.project, ident.domain, ident.name, ident.version)
        if row is None:
            raise NotFoundError(f"workflow {_fmt(ident)} is not registered")
        compiled = None
        if include_closure:
            compiled = self.ctx.store.read_proto(
                row.closure_uri, compiler_pb2.CompiledWorkflowClosure
            )
        return tf.workflow_to_proto(row, compiled)

    def list_workflows(
        self, ident: common_pb2.NamedEntityIdentifier, options: common_pb2.ListOptions
    ) -> tuple[list[workflow_pb2.Workflow], str]:
        """A page of workflow versions."""
        query = list_query(options)
        with self.ctx.db.transaction(readonly=True) as repos:
            rows, token = repos.workflows.page(ident.project, ident.domain, ident.name, query)
            return [tf.workflow_to_proto(r) for r in rows], token

    # -- launch plans ------------------------------------------------------------------------

    def create_launch_plan(
        self, ident: identifier_pb2.Identifier, spec: launch_plan_pb2.LaunchPlanSpec
    ) -> None:
        """Register a launch plan version (idempotent for identical content).

        Raises:
            InvalidArgumentError: The workflow is unknown, or inputs or schedule do not fit it.
            AlreadyExistsError: The id is registered with different content.
        """
        _check_id(ident, "launch plan")
        wf_id = spec.workflow_id
        _check_id(wf_id, "workflow")
        now = self.ctx.now_us()

        def work(repos: Repos) -> None:
            self.ensure_project(repos, ident.project, ident.domain)
            wf = repos.workflows.get(wf_id.project, wf_id.domain, wf_id.name, wf_id.version)
            if wf is None:
                raise InvalidArgumentError(
                    f"launch plan {_fmt(ident)} refers to workflow {_fmt(wf_id)}, which is not "
                    "registered; register the workflow first",
                    field="spec.workflow_id",
                )
            row = self._launch_plan_row(repos, ident, spec, wf, now)
            existing = repos.launch_plans.add(row)
            if existing is None or existing.digest == row.digest:
                return
            if existing.digest.startswith(AUTO_PREFIX):
                # The default launch plan admin made is replaced by the user's own.
                existing.spec = row.spec
                existing.closure = row.closure
                existing.digest = row.digest
                existing.schedule_type = row.schedule_type
                existing.updated_at = now
                repos.flush()
                return
            old = launch_plan_pb2.LaunchPlanSpec.FromString(existing.spec)
            raise _conflict(
                "launch plan", ident, old, launch_plan_pb2.LaunchPlanSpec.FromString(row.spec)
            )

        self.ctx.db.run(work)

    def _launch_plan_row(
        self,
        repos: Repos,
        ident: identifier_pb2.Identifier,
        spec: launch_plan_pb2.LaunchPlanSpec,
        wf: WorkflowRow,
        now: int,
    ) -> LaunchPlanRow:
        interface = interface_pb2.TypedInterface.FromString(wf.interface)
        stored = launch_plan_pb2.LaunchPlanSpec()
        stored.CopyFrom(spec)
        stored.workflow_id.resource_type = identifier_pb2.RESOURCE_TYPE_WORKFLOW
        expected = _expected_inputs(ident, stored, interface)
        closure = launch_plan_pb2.LaunchPlanClosure(
            state=LP_INACTIVE,  # type: ignore[arg-type]
            expected_inputs=expected,
            expected_outputs=interface.outputs,
        )
        schedule_type = ""
        if stored.HasField("schedule"):
            schedule_type = _check_schedule(ident, stored.schedule, expected, interface)
        return LaunchPlanRow(
            project=ident.project,
            domain=ident.domain,
            name=ident.name,
            version=ident.version,
            digest=digest(stored),
            created_at=now,
            updated_at=now,
            workflow_name=wf.name,
            workflow_version=wf.version,
            state=LP_INACTIVE,
            schedule_type=schedule_type,
            spec=stored.SerializeToString(deterministic=True),
            closure=closure.SerializeToString(deterministic=True),
        )

    def get_launch_plan(self, ident: identifier_pb2.Identifier) -> launch_plan_pb2.LaunchPlan:
        """A registered launch plan."""
        _check_id(ident, "launch plan")
        with self.ctx.db.transaction(readonly=True) as repos:
            row = repos.launch_plans.get(ident.project, ident.domain, ident.name, ident.version)
            if row is None:
                raise NotFoundError(f"launch plan {_fmt(ident)} is not registered")
            return tf.launch_plan_to_proto(row)

    def get_active_launch_plan(
        self, ident: common_pb2.NamedEntityIdentifier
    ) -> launch_plan_pb2.LaunchPlan:
        """The active version of a launch plan name."""
        with self.ctx.db.transaction(readonly=True) as repos:
            row = repos.launch_plans.active(ident.project, ident.domain, ident.name)
            if row is None:
                raise NotFoundError(
                    f"launch plan {ident.project}/{ident.domain}/{ident.name} has no active version"
                )
            return tf.launch_plan_to_proto(row)

    def list_launch_plans(
        self,
        ident: common_pb2.NamedEntityIdentifier,
        options: common_pb2.ListOptions,
        *,
        active_only: bool = False,
    ) -> tuple[list[launch_plan_pb2.LaunchPlan], str]:
        """A page of launch plan versions (only active ones when asked)."""
        query = list_query(options)
        if active_only:
            from caddis_admin.repository.query import Filter

            query = type(query)(
                filters=(*query.filters, Filter("state", "eq", LP_ACTIVE)),
                sort_key=query.sort_key,
                ascending=query.ascending,
                limit=query.limit,
                token=query.token,
            )
        with self.ctx.db.transaction(readonly=True) as repos:
            rows, token = repos.launch_plans.page(ident.project, ident.domain, ident.name, query)
            return [tf.launch_plan_to_proto(r) for r in rows], token

    def update_launch_plan(self, ident: identifier_pb2.Identifier, state: int) -> None:
        """Activate (deactivating the other versions of the name) or deactivate a version."""
        _check_id(ident, "launch plan")
        if state not in (LP_ACTIVE, LP_INACTIVE):
            raise InvalidArgumentError("state must be ACTIVE or INACTIVE", field="state")
        now = self.ctx.now_us()

        def work(repos: Repos) -> None:
            row = repos.launch_plans.get(ident.project, ident.domain, ident.name, ident.version)
            if row is None:
                raise NotFoundError(f"launch plan {_fmt(ident)} is not registered")
            repos.launch_plans.set_state(row, state, now)
            if state == LP_INACTIVE or not row.schedule_type:
                if state == LP_INACTIVE or row.schedule_type == "":
                    repos.schedules.drop_state(row.project, row.domain, row.name)
                return
            from caddis_admin.repository.models import ScheduleStateRow

            current = repos.schedules.state(row.project, row.domain, row.name)
            since = now if current is None else current.since
            last = None if current is None else current.last_scheduled_at
            repos.schedules.save_state(
                ScheduleStateRow(
                    project=row.project,
                    domain=row.domain,
                    lp_name=row.name,
                    lp_version=row.version,
                    since=since,
                    last_scheduled_at=last,
                )
            )

        self.ctx.db.run(work)

    # -- code bundles ------------------------------------------------------------------------

    def create_upload_location(
        self, project: str, domain: str, bundle_digest: str, filename: str, expires_s: float
    ) -> tuple[str, str]:
        """Where to upload a content-addressed bundle: (signed URL or "", native URL)."""
        self.ctx.check_domain(project, domain)
        if not bundle_digest or not all(c in "0123456789abcdefABCDEF-_" for c in bundle_digest):
            raise InvalidArgumentError(
                "a hex content digest of the bundle is required", field="digest"
            )
        native = locations.join(
            self.ctx.config.resolved_metadata_prefix(),
            "bundles",
            project,
            domain,
            bundle_digest,
            filename or "bundle.tar.gz",
        )
        signed = ""
        if native.startswith("s3://"):
            from datetime import timedelta

            signed = self.ctx.store.presigned_get_url(native, timedelta(seconds=expires_s))
        return signed, native

    def register_code_bundle(
        self, project: str, domain: str, bundle_digest: str, uri: str, size: int, filename: str
    ) -> code_bundle_pb2.CodeBundle:
        """Record a bundle that was uploaded under its digest."""
        self.ctx.check_domain(project, domain)
        if not bundle_digest or not uri:
            raise InvalidArgumentError("digest and uri are required")
        row = CodeBundleRow(
            project=project,
            domain=domain,
            digest=bundle_digest,
            uri=uri,
            created_at=self.ctx.now_us(),
        )

        def work(repos: Repos) -> code_bundle_pb2.CodeBundle:
            self.ensure_project(repos, project, domain)
            got = repos.bundles.add(row)
            return code_bundle_pb2.CodeBundle(
                project=got.project,
                domain=got.domain,
                digest=got.digest,
                uri=got.uri,
                size_bytes=size,
                filename=filename,
                created_at=tf.timestamp(got.created_at),
            )

        return self.ctx.db.run(work)

    def get_code_bundle(
        self, project: str, domain: str, bundle_digest: str
    ) -> code_bundle_pb2.CodeBundle:
        """A recorded bundle."""
        with self.ctx.db.transaction(readonly=True) as repos:
            row = repos.bundles.get(project, domain, bundle_digest)
            if row is None:
                raise NotFoundError(f"no code bundle {bundle_digest!r} in {project}/{domain}")
            return code_bundle_pb2.CodeBundle(
                project=row.project,
                domain=row.domain,
                digest=row.digest,
                uri=row.uri,
                created_at=tf.timestamp(row.created_at),
            )


def _conflict(
    what: str, ident: identifier_pb2.Identifier, old: Any, new: Any
) -> AlreadyExistsError:
    diff = differences(old, new)
    return AlreadyExistsError(
        f"{what} {_fmt(ident)} is already registered with different content "
        f"(differs in: {', '.join(diff) or 'content'}); register the change under a new version"
    )


def _lp_template(row: LaunchPlanRow) -> Any:
    from caddis_idl.core.v1 import workflow_pb2 as core_wf

    spec = launch_plan_pb2.LaunchPlanSpec.FromString(row.spec)
    closure = launch_plan_pb2.LaunchPlanClosure.FromString(row.closure)
    inputs = interface_pb2.VariableMap()
    for name, param in closure.expected_inputs.parameters.items():
        inputs.variables[name].CopyFrom(param.var)
    return core_wf.LaunchPlanTemplate(
        id=tf.identifier(
            identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN,
            row.project,
            row.domain,
            row.name,
            row.version,
        ),
        interface=interface_pb2.TypedInterface(inputs=inputs, outputs=closure.expected_outputs),
        fixed_inputs=spec.fixed_inputs,
    )


def _expected_inputs(
    ident: identifier_pb2.Identifier,
    spec: launch_plan_pb2.LaunchPlanSpec,
    interface: interface_pb2.TypedInterface,
) -> interface_pb2.ParameterMap:
    """The inputs a caller gives: workflow inputs minus fixed ones, with defaults applied."""
    problems: list[str] = []
    declared = interface.inputs.variables
    for name, lit in spec.fixed_inputs.literals.items():
        if name not in declared:
            problems.append(f"fixed input {name!r} is not an input of the workflow")
        elif not literal_matches(lit, declared[name].type):
            problems.append(
                f"fixed input {name!r}: expected {describe_type(declared[name].type)}, "
                f"received {describe_literal(lit)}"
            )
    for name, param in spec.default_inputs.parameters.items():
        if name not in declared:
            problems.append(f"default input {name!r} is not an input of the workflow")
        elif name in spec.fixed_inputs.literals:
            problems.append(f"input {name!r} is both fixed and defaulted; keep one")
        elif param.HasField("default") and not literal_matches(param.default, declared[name].type):
            problems.append(
                f"default input {name!r}: expected {describe_type(declared[name].type)}, "
                f"received {describe_literal(param.default)}"
            )
    if problems:
        raise InvalidArgumentError(
            f"launch plan {_fmt(ident)}: " + join_messages(problems), field="spec"
        )
    expected = interface_pb2.ParameterMap()
    for name, var in declared.items():
        if name in spec.fixed_inputs.literals:
            continue
        param = expected.parameters[name]
        param.var.CopyFrom(var)
        given = spec.default_inputs.parameters.get(name)
        if given is not None and given.HasField("default"):
            param.default.CopyFrom(given.default)
        elif _is_optional(var.type):
            from caddis_idl.core.v1 import literals_pb2

            param.default.CopyFrom(
                literals_pb2.Literal(scalar=literals_pb2.Scalar(none_type=literals_pb2.Void()))
            )
        else:
            param.required = True
    return expected


def _is_optional(t: types_pb2.LiteralType) -> bool:
    return t.WhichOneof("type") == "union_type" and any(
        v.WhichOneof("type") == "simple" and v.simple == types_pb2.SIMPLE_TYPE_NONE
        for v in t.union_type.variants
    )


def _check_schedule(
    ident: identifier_pb2.Identifier,
    schedule: schedule_pb2.Schedule,
    expected: interface_pb2.ParameterMap,
    interface: interface_pb2.TypedInterface,
) -> str:
    kind = schedule.WhichOneof("schedule_expression")
    if kind == "cron_schedule":
        expr = schedule.cron_schedule.expression
        if not croniter.is_valid(expr):
            raise InvalidArgumentError(
                f"launch plan {_fmt(ident)}: {expr!r} is not a cron expression",
                field="spec.schedule.cron_schedule.expression",
            )
        result = "cron"
    elif kind == "rate":
        if schedule.rate.value == 0 or schedule.rate.unit == 0:
            raise InvalidArgumentError(
                f"launch plan {_fmt(ident)}: a fixed rate needs a value and a unit",
                field="spec.schedule.rate",
            )
        result = "rate"
    else:
        raise InvalidArgumentError(
            f"launch plan {_fmt(ident)}: a schedule needs a cron expression or a rate",
            field="spec.schedule",
        )
    arg = schedule.kickoff_time_input_arg
    if arg:
        var = expected.parameters.get(arg)
        if var is None:
            raise InvalidArgumentError(
                f"launch plan {_fmt(ident)}: kickoff time input {arg!r} is not an input the "
                "launch plan leaves open",
                field="spec.schedule.kickoff_time_input_arg",
            )
        t = var.var.type
        if not (t.WhichOneof("type") == "simple" and t.simple == types_pb2.SIMPLE_TYPE_DATETIME):
            raise InvalidArgumentError(
                f"launch plan {_fmt(ident)}: kickoff time input {arg!r} must be a datetime, "
                f"not {describe_type(t)}",
                field="spec.schedule.kickoff_time_input_arg",
            )
    missing = [
        n
        for n, p in expected.parameters.items()
        if p.WhichOneof("behavior") == "required" and p.required and n != arg
    ]
    if missing:
        raise InvalidArgumentError(
            f"launch plan {_fmt(ident)}: a scheduled launch plan must give every input; "
            f"{', '.join(sorted(missing))} have no default",
            field="spec.schedule",
        )
    del interface
    return result
