"""``CaddisRemote``: register, launch, follow and inspect executions on admin.

flytekit's ``FlyteRemote`` analogue.

Usage::

    from caddis.remote import CaddisRemote

    remote = CaddisRemote("127.0.0.1:30080", project="flytesnacks", domain="development")
    execution = remote.execute(my_workflow, inputs={"x": 3}, wait=True)
    print(execution.outputs)
"""

from __future__ import annotations

import hashlib
import inspect
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from caddis.remote._bundle import BundleCache, CodeBundle
from caddis.remote._client import AdminClient, make_channel
from caddis.remote._config import RemoteConfig
from caddis.remote._errors import (
    EntityNotFoundError,
    ExecutionFailedError,
    ExecutionTimeoutError,
    RemoteError,
)
from caddis.remote._types import NodeTree, RemoteEntity, RemoteExecution, id_str
from caddis.storage import StorageConfig
from caddis_idl.admin.v1 import (
    code_bundle_service_pb2,
    common_pb2,
    execution_pb2,
    execution_service_pb2,
    launch_plan_pb2,
    launch_plan_service_pb2,
    node_execution_service_pb2,
    task_pb2,
    task_service_pb2,
    workflow_pb2,
    workflow_service_pb2,
)
from caddis_idl.core.v1 import (
    identifier_pb2,
    interface_pb2,
    literals_pb2,
    tasks_pb2,
)
from caddis_idl.core.v1 import workflow_pb2 as core_workflow_pb2

_RT_TASK = identifier_pb2.RESOURCE_TYPE_TASK
_RT_WORKFLOW = identifier_pb2.RESOURCE_TYPE_WORKFLOW
_RT_LAUNCH_PLAN = identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN
_START = "start-node"
# follow()/wait() poll admin (it has no watch RPC). The pause between polls is a tenth of the
# time waited so far, at least 20 ms and at most poll_interval: an execution is seen done at
# most ~10% (on average ~5%) after it ended, plus one round trip, while a long one costs one
# GetExecution per poll_interval. (A fixed 50 ms x 1.5 schedule polled at 0.41 s and 0.66 s,
# so a 0.42 s execution was seen at 0.66 s.)
_FIRST_POLL_S = 0.02
_POLL_FRACTION = 0.1


@dataclass
class RegistrationResult:
    """What :meth:`CaddisRemote.register` registered.

    Attributes:
        version: The version every entity was registered under.
        tasks: Task identifiers.
        workflows: Workflow identifiers.
        launch_plans: Launch plan identifiers.
        bundle: The code bundle uploaded, if any.
        bundle_uri: Where the bundle lives in the blob store.
    """

    version: str
    tasks: list[identifier_pb2.Identifier] = field(default_factory=list)
    workflows: list[identifier_pb2.Identifier] = field(default_factory=list)
    launch_plans: list[identifier_pb2.Identifier] = field(default_factory=list)
    bundle: CodeBundle | None = None
    bundle_uri: str = ""

    def all_ids(self) -> list[identifier_pb2.Identifier]:
        """Every identifier registered, tasks first."""
        return [*self.tasks, *self.workflows, *self.launch_plans]


class CaddisRemote:
    """A client of admin: registration, executions and their data, as Python values.

    Args:
        endpoint: ``host:port`` of admin; the ``remote`` config section (or
            ``CADDIS_REMOTE_ENDPOINT``) when ``None``.
        project: Default project; from config when ``None``.
        domain: Default domain; from config when ``None``.
        insecure: Plain-text gRPC; from config when ``None``.
        config: A full :class:`RemoteConfig`; loaded from ``config_file`` / the environment
            when ``None``.
        config_file: A YAML/TOML file with a ``remote`` (and ``storage``) section.
        channel: A ready gRPC channel to use instead of opening one (tests inject this).
        storage: Blob store settings used to upload code bundles and read offloaded data;
            the ``storage`` section when ``None``.

    Registration is remembered for the life of the client: registering (or executing) the
    same unchanged code again builds no bundle, uploads nothing and makes no registration
    call (admin's registrations are immutable, so repeating one changes nothing). A changed
    source file gives a new bundle digest, hence a new version, which is registered.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        project: str | None = None,
        domain: str | None = None,
        *,
        insecure: bool | None = None,
        config: RemoteConfig | None = None,
        config_file: str | os.PathLike[str] | None = None,
        channel: grpc.Channel | None = None,
        storage: StorageConfig | None = None,
    ) -> None:
        import dataclasses

        cfg = config if config is not None else RemoteConfig.load(config_file)
        overrides: dict[str, Any] = {}
        if endpoint is not None:
            overrides["endpoint"] = endpoint
        if project is not None:
            overrides["project"] = project
        if domain is not None:
            overrides["domain"] = domain
        if insecure is not None:
            overrides["insecure"] = insecure
        self.config = dataclasses.replace(cfg, **overrides)
        self._storage = storage
        self._config_file = config_file
        self.client = AdminClient(
            channel if channel is not None else make_channel(self.config),
            endpoint=self.config.endpoint,
            timeout_s=self.config.timeout_s,
            connect_timeout_s=self.config.connect_timeout_s,
        )
        self._bundles = BundleCache()
        # (project, domain, digest) -> blob URI of bundles registered through this client.
        self._uploaded: dict[tuple[str, str, str], str] = {}
        # Digests of Create{Task,Workflow,LaunchPlan} requests admin accepted.
        self._created: set[bytes] = set()

    # ------------------------------------------------------------------ basics
    @property
    def project(self) -> str:
        """Default project."""
        return self.config.project

    @property
    def domain(self) -> str:
        """Default domain."""
        return self.config.domain

    @property
    def storage(self) -> StorageConfig:
        """Blob store settings (loaded on first use)."""
        if self._storage is None:
            self._storage = StorageConfig.load(self._config_file)
        return self._storage

    def close(self) -> None:
        """Close the connection to admin."""
        self.client.close()

    def forget_registrations(self) -> None:
        """Forget what this client registered, so the next registration repeats every call."""
        self._bundles.clear()
        self._uploaded.clear()
        self._created.clear()

    def _create_once(self, method: Any, request: Any, *, what: str) -> None:
        # Admin registrations are immutable: an identical request it accepted before is a
        # no-op there, so it need not be sent again.
        key = hashlib.sha256(
            request.DESCRIPTOR.full_name.encode() + request.SerializeToString(deterministic=True)
        ).digest()
        if key in self._created:
            return
        self.client.call(method, request, what=what)
        self._created.add(key)

    def __enter__(self) -> CaddisRemote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ident(
        self, rt: int, name: str, version: str, project: str | None, domain: str | None
    ) -> identifier_pb2.Identifier:
        return identifier_pb2.Identifier(
            resource_type=rt,  # type: ignore[arg-type]
            project=project or self.project,
            domain=domain or self.domain,
            name=name,
            version=version,
        )

    def _exec_id(
        self, name: str, project: str | None = None, domain: str | None = None
    ) -> identifier_pb2.WorkflowExecutionIdentifier:
        return identifier_pb2.WorkflowExecutionIdentifier(
            project=project or self.project, domain=domain or self.domain, name=name
        )

    # ------------------------------------------------------------------ fetching entities
    def fetch_task(
        self,
        name: str,
        version: str | None = None,
        *,
        project: str | None = None,
        domain: str | None = None,
    ) -> RemoteEntity:
        """A registered task; the newest version when ``version`` is ``None``.

        Raises:
            EntityNotFoundError: No such task (version).
        """
        if version is None:
            listed = self.client.call(
                self.client.tasks.ListTasks,
                task_service_pb2.ListTasksRequest(
                    id=common_pb2.NamedEntityIdentifier(
                        project=project or self.project, domain=domain or self.domain, name=name
                    )
                ),
                what=f"list versions of task {name}",
            )
            if not listed.tasks:
                raise EntityNotFoundError(f"task {name!r} is not registered")
            task = max(listed.tasks, key=lambda t: t.closure.created_at.ToNanoseconds())
        else:
            ident = self._ident(_RT_TASK, name, version, project, domain)
            task = self.client.call(
                self.client.tasks.GetTask,
                task_service_pb2.GetTaskRequest(id=ident),
                what=f"fetch task {id_str(ident)}",
            ).task
        return RemoteEntity(id=task.id, interface=task.closure.compiled_task.template.interface)

    def fetch_workflow(
        self,
        name: str,
        version: str | None = None,
        *,
        project: str | None = None,
        domain: str | None = None,
    ) -> RemoteEntity:
        """A registered workflow; the newest version when ``version`` is ``None``.

        Raises:
            EntityNotFoundError: No such workflow (version).
        """
        if version is None:
            version = self._latest_workflow_version(name, project, domain)
        ident = self._ident(_RT_WORKFLOW, name, version, project, domain)
        wf = self.client.call(
            self.client.workflows.GetWorkflow,
            workflow_service_pb2.GetWorkflowRequest(id=ident, include_compiled_closure=True),
            what=f"fetch workflow {id_str(ident)}",
        ).workflow
        interface = wf.closure.compiled_workflow.primary.template.interface
        return RemoteEntity(id=wf.id, interface=interface, launch_target=wf.id)

    def _latest_workflow_version(self, name: str, project: str | None, domain: str | None) -> str:
        listed = self.client.call(
            self.client.workflows.ListWorkflows,
            workflow_service_pb2.ListWorkflowsRequest(
                id=common_pb2.NamedEntityIdentifier(
                    project=project or self.project, domain=domain or self.domain, name=name
                ),
                options=common_pb2.ListOptions(limit=100),
            ),
            what=f"list versions of workflow {name}",
        )
        if not listed.workflows:
            raise EntityNotFoundError(f"workflow {name!r} is not registered")
        newest = max(listed.workflows, key=lambda w: w.closure.created_at.ToNanoseconds())
        return str(newest.id.version)

    def fetch_launch_plan(
        self,
        name: str,
        version: str | None = None,
        *,
        project: str | None = None,
        domain: str | None = None,
    ) -> RemoteEntity:
        """A registered launch plan; the newest version when ``version`` is ``None``.

        Raises:
            EntityNotFoundError: No such launch plan (version).
        """
        lp = self._launch_plan_proto(name, version, project, domain)
        iface = interface_pb2.TypedInterface(outputs=lp.closure.expected_outputs)
        for var_name, param in lp.closure.expected_inputs.parameters.items():
            iface.inputs.variables[var_name].CopyFrom(param.var)
        return RemoteEntity(id=lp.id, interface=iface, launch_target=lp.id)

    def _launch_plan_proto(
        self, name: str, version: str | None, project: str | None, domain: str | None
    ) -> launch_plan_pb2.LaunchPlan:
        if version is None:
            listed = self.client.call(
                self.client.launch_plans.ListLaunchPlans,
                launch_plan_service_pb2.ListLaunchPlansRequest(
                    id=common_pb2.NamedEntityIdentifier(
                        project=project or self.project, domain=domain or self.domain, name=name
                    ),
                    options=common_pb2.ListOptions(limit=100),
                ),
                what=f"list versions of launch plan {name}",
            )
            if not listed.launch_plans:
                raise EntityNotFoundError(f"launch plan {name!r} is not registered")
            return max(listed.launch_plans, key=lambda p: p.closure.created_at.ToNanoseconds())
        ident = self._ident(_RT_LAUNCH_PLAN, name, version, project, domain)
        return self.client.call(
            self.client.launch_plans.GetLaunchPlan,
            launch_plan_service_pb2.GetLaunchPlanRequest(id=ident),
            what=f"fetch launch plan {id_str(ident)}",
        ).launch_plan

    def set_launch_plan_state(
        self,
        name: str,
        version: str,
        active: bool,
        *,
        project: str | None = None,
        domain: str | None = None,
    ) -> None:
        """Activate (its schedule runs) or deactivate a launch plan version."""
        ident = self._ident(_RT_LAUNCH_PLAN, name, version, project, domain)
        state = (
            launch_plan_pb2.LAUNCH_PLAN_STATE_ACTIVE
            if active
            else launch_plan_pb2.LAUNCH_PLAN_STATE_INACTIVE
        )
        self.client.call(
            self.client.launch_plans.UpdateLaunchPlan,
            launch_plan_service_pb2.UpdateLaunchPlanRequest(id=ident, state=state),
            what=f"{'activate' if active else 'deactivate'} launch plan {id_str(ident)}",
        )

    # ------------------------------------------------------------------ registration
    def upload_code(
        self,
        root: str | os.PathLike[str],
        *,
        project: str | None = None,
        domain: str | None = None,
    ) -> tuple[CodeBundle, str]:
        """Package ``root`` as a content-addressed bundle, upload it and register its digest.

        Nothing is uploaded when the blob store already holds that digest; nothing is built,
        uploaded or registered when this client registered the same unchanged tree before.

        Args:
            root: Directory put on ``sys.path`` of task processes.
            project: Project of the bundle.
            domain: Domain of the bundle.

        Returns:
            The bundle and its blob store URI.
        """
        from caddis.storage import get_store

        project = project or self.project
        domain = domain or self.domain
        bundle = self._bundles.build(root)
        known = self._uploaded.get((project, domain, bundle.digest))
        if known is not None:
            return bundle, known
        md5 = hashlib.md5(bundle.data, usedforsecurity=False).digest()
        # The IDL names digests "sha256:<hex>"; an admin that accepts only the bare hex gets
        # that instead (the task templates always carry the prefixed form).
        digest = bundle.digest
        try:
            location = self._upload_location(project, domain, digest, md5, bundle.filename)
        except RemoteError as exc:
            if "digest" not in str(exc):
                raise
            digest = digest.split(":", 1)[1]
            location = self._upload_location(project, domain, digest, md5, bundle.filename)
        uri = location.native_url
        store = get_store(uri, self.storage)
        if not store.exists(uri):
            store.put_bytes(uri, bundle.data)
        self.client.call(
            self.client.code_bundles.RegisterCodeBundle,
            code_bundle_service_pb2.RegisterCodeBundleRequest(
                project=project,
                domain=domain,
                digest=digest,
                uri=uri,
                size_bytes=len(bundle.data),
                filename=bundle.filename,
            ),
            what=f"register code bundle {bundle.digest}",
        )
        self._uploaded[(project, domain, bundle.digest)] = uri
        return bundle, uri

    def _upload_location(
        self, project: str, domain: str, digest: str, md5: bytes, filename: str
    ) -> code_bundle_service_pb2.CreateUploadLocationResponse:
        return self.client.call(
            self.client.code_bundles.CreateUploadLocation,
            code_bundle_service_pb2.CreateUploadLocationRequest(
                project=project, domain=domain, digest=digest, content_md5=md5, filename=filename
            ),
            what=f"ask for an upload location of code bundle {digest}",
        )

    def register(
        self,
        *entities: Any,
        version: str | None = None,
        project: str | None = None,
        domain: str | None = None,
        code_root: str | os.PathLike[str] | None = None,
        fast: bool = True,
        image: str = "",
    ) -> RegistrationResult:
        """Register local tasks, workflows and launch plans and everything they use.

        Args:
            *entities: Local entities (``@task``, ``@workflow``, ``LaunchPlan``).
            version: Version of every entity; the code bundle's digest (or, without a bundle,
                a digest of the serialized entities) when ``None``.
            project: Project; the default when ``None``.
            domain: Domain; the default when ``None``.
            code_root: Directory to bundle; derived from the entities' modules when ``None``.
            fast: Upload the code as a bundle that task processes fetch ("fast register").
                Without it, task processes must find the code in their image or environment.
            image: Default container image named in task templates.

        Returns:
            What was registered.
        """
        from caddis.core.settings import SerializationSettings

        project = project or self.project
        domain = domain or self.domain
        roots = [e for e in entities if e is not None]
        bundle: CodeBundle | None = None
        bundle_uri = ""
        if fast:
            root = Path(code_root) if code_root is not None else _code_root(roots)
            bundle, bundle_uri = self.upload_code(root, project=project, domain=domain)
        if version is None:
            version = bundle.short_digest if bundle else _entities_digest(roots, project, domain)
        settings = SerializationSettings(
            project=project,
            domain=domain,
            version=version,
            image=image,
            code_bundle_uri=bundle_uri,
            code_bundle_digest=bundle.digest if bundle else "",
        )
        result = RegistrationResult(version=version, bundle=bundle, bundle_uri=bundle_uri)
        self._register_with(roots, settings, result)
        return result

    def _register_with(self, roots: list[Any], settings: Any, result: RegistrationResult) -> None:
        from caddis.core.launch_plan import LaunchPlan
        from caddis.core.reference import ReferenceEntity
        from caddis.core.task import PythonTask
        from caddis.core.translator import collect_entities, get_serializable
        from caddis.core.workflow import WorkflowBase

        for entity in collect_entities(*roots):
            if isinstance(entity, ReferenceEntity):
                continue
            if isinstance(entity, PythonTask):
                task_template = entity.to_template(settings)
                self._create_task(task_template)
                result.tasks.append(task_template.id)
            elif isinstance(entity, WorkflowBase):
                template = entity.to_template(settings)
                subs = [
                    w
                    for w in get_serializable(entity, settings=settings).workflows
                    if w.id.name != template.id.name
                ]
                self._create_workflow(template, subs)
                result.workflows.append(template.id)
            elif isinstance(entity, LaunchPlan):
                lp = entity.to_idl(settings)
                self._create_once(
                    self.client.launch_plans.CreateLaunchPlan,
                    launch_plan_service_pb2.CreateLaunchPlanRequest(id=lp.id, spec=lp.spec),
                    what=f"register launch plan {id_str(lp.id)}",
                )
                result.launch_plans.append(lp.id)

    def _create_task(self, template: tasks_pb2.TaskTemplate) -> None:
        self._create_once(
            self.client.tasks.CreateTask,
            task_service_pb2.CreateTaskRequest(
                id=template.id, spec=task_pb2.TaskSpec(template=template)
            ),
            what=f"register task {id_str(template.id)}",
        )

    def _create_workflow(
        self,
        template: core_workflow_pb2.WorkflowTemplate,
        subs: Iterable[core_workflow_pb2.WorkflowTemplate] = (),
    ) -> None:
        self._create_once(
            self.client.workflows.CreateWorkflow,
            workflow_service_pb2.CreateWorkflowRequest(
                id=template.id,
                spec=workflow_pb2.WorkflowSpec(template=template, sub_workflows=list(subs)),
            ),
            what=f"register workflow {id_str(template.id)}",
        )

    def _task_wrapper(self, task_id: identifier_pb2.Identifier, iface: Any) -> RemoteEntity:
        """Register a one-node workflow that runs the task (admin launches workflows only)."""
        wf_id = identifier_pb2.Identifier(
            resource_type=_RT_WORKFLOW,
            project=task_id.project,
            domain=task_id.domain,
            name=task_id.name,
            version=task_id.version,
        )
        node = core_workflow_pb2.Node(
            id="n0",
            metadata=core_workflow_pb2.NodeMetadata(name=task_id.name.rsplit(".", 1)[-1]),
            task_node=core_workflow_pb2.TaskNode(reference_id=task_id),
        )
        for var in iface.inputs.variables:
            node.inputs.append(
                literals_pb2.Binding(
                    var=var,
                    binding=literals_pb2.BindingData(
                        promise=literals_pb2.OutputReference(node_id=_START, var=var)
                    ),
                )
            )
        template = core_workflow_pb2.WorkflowTemplate(id=wf_id, interface=iface, nodes=[node])
        for var in iface.outputs.variables:
            template.outputs.append(
                literals_pb2.Binding(
                    var=var,
                    binding=literals_pb2.BindingData(
                        promise=literals_pb2.OutputReference(node_id="n0", var=var)
                    ),
                )
            )
        self._create_workflow(template)
        return RemoteEntity(id=task_id, interface=iface, launch_target=wf_id)

    # ------------------------------------------------------------------ executions
    def execute(
        self,
        entity: Any,
        inputs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        version: str | None = None,
        project: str | None = None,
        domain: str | None = None,
        wait: bool = False,
        timeout: float | None = None,
        overwrite_cache: bool = False,
        skip_cache: bool = False,
        max_parallelism: int = 0,
        tags: Iterable[str] = (),
    ) -> RemoteExecution:
        """Launch an execution of a task, workflow or launch plan.

        A local entity is registered first (with its code bundle, see :meth:`register`); a
        :class:`RemoteEntity` from a ``fetch_*`` call is launched as registered. A task is
        launched through a one-node workflow of the same name and version.

        Args:
            entity: A local ``@task``/``@workflow``/``LaunchPlan`` or a :class:`RemoteEntity`.
            inputs: Inputs as Python values, converted with the type engine.
            name: Execution name; admin picks one when ``None``.
            version: Registration version of a local entity (default: code digest).
            project: Project; the default when ``None``.
            domain: Domain; the default when ``None``.
            wait: Block until the execution finishes (then its outputs are fetched).
            timeout: Seconds to wait at most when ``wait`` is set.
            overwrite_cache: Rerun cached tasks and replace their cached results.
            skip_cache: Neither read nor write cached results.
            max_parallelism: Nodes running at once; 0 leaves it to the launch plan.
            tags: Free-form tags of the execution.

        Returns:
            The execution (finished when ``wait`` was set).
        """
        project = project or self.project
        domain = domain or self.domain
        remote_entity = self._launchable(entity, version, project, domain)
        literal_inputs = self._inputs_to_literals(remote_entity, dict(inputs or {}))
        target = remote_entity.launch_target or remote_entity.id
        spec = execution_pb2.ExecutionSpec(
            overwrite_cache=overwrite_cache,
            skip_cache=skip_cache,
            max_parallelism=max_parallelism,
            tags=list(tags),
        )
        if target.resource_type == _RT_LAUNCH_PLAN:
            spec.launch_plan.CopyFrom(target)
        else:
            spec.workflow.CopyFrom(target)
        request = execution_service_pb2.CreateExecutionRequest(
            project=project, domain=domain, name=name or "", spec=spec, inputs=literal_inputs
        )
        what = f"launch {id_str(target)}"
        try:
            created = self.client.call(self.client.executions.CreateExecution, request, what=what)
        except EntityNotFoundError:
            if isinstance(entity, RemoteEntity) or not self._created:
                raise
            # Admin lost what this client registered before (e.g. a sandbox started afresh
            # while the client lived): register again, calls and all, and launch once more.
            self.forget_registrations()
            self._launchable(entity, version, project, domain)
            created = self.client.call(self.client.executions.CreateExecution, request, what=what)
        if wait:
            # wait() fetches the execution first thing: no separate fetch before it.
            execution = RemoteExecution(
                id=created.id, proto=execution_pb2.Execution(id=created.id), entity=remote_entity
            )
            return self.wait(execution, timeout=timeout)
        execution = self.fetch_execution(created.id.name, project=project, domain=domain)
        execution.entity = remote_entity
        return execution

    def _launchable(
        self, entity: Any, version: str | None, project: str, domain: str
    ) -> RemoteEntity:
        if isinstance(entity, RemoteEntity):
            if entity.id.resource_type == _RT_TASK and entity.launch_target is None:
                return self._task_wrapper(entity.id, entity.interface)
            return entity
        from caddis.core.launch_plan import LaunchPlan
        from caddis.core.task import PythonTask
        from caddis.core.workflow import WorkflowBase

        if not isinstance(entity, PythonTask | WorkflowBase | LaunchPlan):
            raise TypeError(
                f"cannot execute {entity!r}: expected a task, workflow, launch plan or an entity "
                f"returned by fetch_task/fetch_workflow/fetch_launch_plan"
            )
        if isinstance(entity, WorkflowBase):
            # Launch through the workflow's default launch plan, which carries the workflow's
            # Python defaults; admin's own default launch plan knows only the interface.
            entity = LaunchPlan.get_or_create(entity)
        result = self.register(entity, version=version, project=project, domain=domain)
        iface = entity.python_interface.typed_interface()
        if isinstance(entity, PythonTask):
            remote = self._task_wrapper(result.tasks[-1], iface)
        elif isinstance(entity, LaunchPlan):
            remote = RemoteEntity(id=result.launch_plans[-1], interface=iface)
            remote.launch_target = remote.id
        else:
            remote = RemoteEntity(id=result.workflows[-1], interface=iface)
            remote.launch_target = remote.id
        remote.python_interface = entity.python_interface
        return remote

    def _inputs_to_literals(
        self, entity: RemoteEntity, inputs: dict[str, Any]
    ) -> literals_pb2.LiteralMap:
        from caddis.core._transformers._context import DataContext, data_context
        from caddis.core.type_engine import TypeEngine

        declared = entity.interface.inputs.variables
        unknown = sorted(set(inputs) - set(declared))
        if unknown:
            raise RemoteError(
                f"{id_str(entity.id)} has no input(s) {unknown}; its inputs are {sorted(declared)}"
            )
        out = literals_pb2.LiteralMap()
        local_dir = os.path.join(os.path.expanduser("~/.caddis"), "remote-data")
        ctx = DataContext(
            raw_output_prefix=self.storage.resolved_raw_data_prefix(), local_dir=local_dir
        )
        with data_context(ctx):
            for key, value in inputs.items():
                lt = declared[key].type
                py_type = _python_type(entity, "inputs", key, lt)
                out.literals[key].CopyFrom(TypeEngine.to_literal(value, py_type, lt, name=key))
        return out

    def fetch_execution(
        self, name: str, *, project: str | None = None, domain: str | None = None
    ) -> RemoteExecution:
        """The current state of an execution.

        Raises:
            EntityNotFoundError: No such execution.
        """
        ident = self._exec_id(name, project, domain)
        proto = self.client.call(
            self.client.executions.GetExecution,
            execution_service_pb2.GetExecutionRequest(id=ident),
            what=f"fetch execution {ident.project}/{ident.domain}/{ident.name}",
        ).execution
        return RemoteExecution(id=proto.id, proto=proto)

    def sync(self, execution: RemoteExecution) -> RemoteExecution:
        """Refresh ``execution`` from admin (in place) and return it."""
        fresh = self.fetch_execution(
            execution.id.name, project=execution.id.project, domain=execution.id.domain
        )
        execution.proto = fresh.proto
        return execution

    def wait(
        self,
        execution: RemoteExecution,
        timeout: float | None = None,
        *,
        poll_interval: float = 1.0,
    ) -> RemoteExecution:
        """Block until ``execution`` is terminal; fetch its outputs when it succeeded.

        Args:
            execution: The execution to follow.
            timeout: Seconds to wait at most (forever when ``None``).
            poll_interval: Largest delay between two polls (polling starts faster).

        Returns:
            The finished execution.

        Raises:
            ExecutionTimeoutError: Still running when ``timeout`` passed.
        """
        for _ in self.follow(execution, timeout=timeout, poll_interval=poll_interval):
            pass
        if execution.is_successful and execution.outputs is None:
            execution.outputs = self.fetch_outputs(execution)
        return execution

    def follow(
        self,
        execution: RemoteExecution,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
    ) -> Iterator[RemoteExecution]:
        """Yield ``execution`` after every poll until it is terminal (for live views).

        Raises:
            ExecutionTimeoutError: Still running when ``timeout`` passed.
        """
        began = time.monotonic()
        deadline = None if timeout is None else began + timeout
        while True:
            self.sync(execution)
            yield execution
            if execution.is_done:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise ExecutionTimeoutError(
                    f"execution {execution.name} is still {execution.phase} after {timeout:g}s"
                )
            now = time.monotonic()
            delay = min(max(_FIRST_POLL_S, (now - began) * _POLL_FRACTION), poll_interval)
            pause = delay if deadline is None else min(delay, max(0.0, deadline - now))
            time.sleep(pause)  # polling a remote service: nothing local to wait on

    def _literal_map(self, data: common_pb2.LiteralMapData) -> literals_pb2.LiteralMap:
        if data.HasField("literals") or not data.uri:
            return data.literals
        from caddis.storage import get_store

        return get_store(data.uri, self.storage).read_proto(data.uri, literals_pb2.LiteralMap)

    def fetch_inputs_literals(self, execution: RemoteExecution) -> literals_pb2.LiteralMap:
        """The execution's inputs as a LiteralMap."""
        data = self.client.call(
            self.client.executions.GetExecutionData,
            execution_service_pb2.GetExecutionDataRequest(id=execution.id),
            what=f"fetch data of execution {execution.name}",
        )
        return self._literal_map(data.inputs)

    def fetch_outputs(self, execution: RemoteExecution) -> dict[str, Any]:
        """The outputs of a succeeded execution as Python values.

        Types come from the launched entity's Python interface when it was launched from
        local code, else they are guessed from the declared literal types.

        Raises:
            ExecutionFailedError: The execution did not succeed.
        """
        if not execution.is_successful:
            raise ExecutionFailedError(
                f"execution {execution.name} is {execution.phase}, so it has no outputs"
                + (f": {execution.error}" if execution.error else "")
            )
        data = self.client.call(
            self.client.executions.GetExecutionData,
            execution_service_pb2.GetExecutionDataRequest(id=execution.id),
            what=f"fetch outputs of execution {execution.name}",
        )
        literals = self._literal_map(data.outputs)
        entity = execution.entity or self._entity_of(execution)
        return _literals_to_python(entity, literals)

    def _entity_of(self, execution: RemoteExecution) -> RemoteEntity | None:
        lp_id = execution.proto.closure.launch_plan_id
        if lp_id.name:
            try:
                return self.fetch_launch_plan(
                    lp_id.name, lp_id.version, project=lp_id.project, domain=lp_id.domain
                )
            except EntityNotFoundError:
                return None
        return None

    def terminate(self, execution: RemoteExecution | str, cause: str = "terminated") -> None:
        """Abort a running execution."""
        ident = self._as_exec_id(execution)
        self.client.call(
            self.client.executions.TerminateExecution,
            execution_service_pb2.TerminateExecutionRequest(id=ident, cause=cause),
            what=f"terminate execution {ident.name}",
        )

    def relaunch(
        self, execution: RemoteExecution | str, *, name: str = "", overwrite_cache: bool = False
    ) -> RemoteExecution:
        """A new execution of the same launch plan version with the same inputs."""
        ident = self._as_exec_id(execution)
        created = self.client.call(
            self.client.executions.RelaunchExecution,
            execution_service_pb2.RelaunchExecutionRequest(
                id=ident, name=name, overwrite_cache=overwrite_cache
            ),
            what=f"relaunch execution {ident.name}",
        )
        return self.fetch_execution(
            created.id.name, project=created.id.project, domain=created.id.domain
        )

    def recover(self, execution: RemoteExecution | str, *, name: str = "") -> RemoteExecution:
        """A new execution of a failed one that reuses the outputs of nodes that succeeded."""
        ident = self._as_exec_id(execution)
        created = self.client.call(
            self.client.executions.RecoverExecution,
            execution_service_pb2.RecoverExecutionRequest(id=ident, name=name),
            what=f"recover execution {ident.name}",
        )
        return self.fetch_execution(
            created.id.name, project=created.id.project, domain=created.id.domain
        )

    def _as_exec_id(
        self, execution: RemoteExecution | str
    ) -> identifier_pb2.WorkflowExecutionIdentifier:
        if isinstance(execution, RemoteExecution):
            return execution.id
        return self._exec_id(execution)

    def list_executions(
        self,
        *,
        project: str | None = None,
        domain: str | None = None,
        limit: int = 50,
        filters: Iterable[common_pb2.Filter] = (),
    ) -> list[RemoteExecution]:
        """The newest executions of a project and domain (newest first)."""
        response = self.client.call(
            self.client.executions.ListExecutions,
            execution_service_pb2.ListExecutionsRequest(
                project=project or self.project,
                domain=domain or self.domain,
                options=common_pb2.ListOptions(
                    limit=limit,
                    filters=list(filters),
                    sort_by=common_pb2.Sort(
                        key="created_at", direction=common_pb2.SORT_DIRECTION_DESCENDING
                    ),
                ),
            ),
            what="list executions",
        )
        return [RemoteExecution(id=e.id, proto=e) for e in response.executions]

    def node_executions(self, execution: RemoteExecution | str) -> list[NodeTree]:
        """Every node execution of ``execution`` as a tree, in start order.

        Dynamic, array and subworkflow children sit under their parent node.
        """
        ident = self._as_exec_id(execution)
        nodes: list[Any] = []
        token = ""
        while True:
            page = self.client.call(
                self.client.node_executions.ListNodeExecutions,
                node_execution_service_pb2.ListNodeExecutionsRequest(
                    execution_id=ident,
                    all_levels=True,
                    options=common_pb2.ListOptions(limit=500, token=token),
                ),
                what=f"list node executions of {ident.name}",
            )
            nodes.extend(page.node_executions)
            token = page.next_token
            if not token:
                break
        return build_tree(nodes)


def build_tree(nodes: Iterable[Any]) -> list[NodeTree]:
    """Arrange node executions under their parents (``metadata.parent_node_id``)."""
    trees = {n.id.node_id: NodeTree(n) for n in nodes}
    roots: list[NodeTree] = []
    for tree in trees.values():
        parent = tree.node.metadata.parent_node_id
        if parent and parent in trees and parent != tree.node_id:
            trees[parent].children.append(tree)
        else:
            roots.append(tree)

    def order(items: list[NodeTree]) -> None:
        items.sort(
            key=lambda t: (
                t.node.closure.created_at.ToNanoseconds()
                or t.node.closure.started_at.ToNanoseconds(),
                t.node_id,
            )
        )
        for item in items:
            order(item.children)

    order(roots)
    return roots


def _python_type(entity: RemoteEntity | None, kind: str, name: str, lt: Any) -> Any:
    from caddis.core.type_engine import TypeEngine

    if entity is not None and entity.python_interface is not None:
        declared = getattr(entity.python_interface, kind)
        if name in declared:
            return declared[name]
    return TypeEngine.guess_python_type(lt)


def _literals_to_python(
    entity: RemoteEntity | None, literals: literals_pb2.LiteralMap
) -> dict[str, Any]:
    from caddis.core.type_engine import TypeEngine

    out: dict[str, Any] = {}
    variables = entity.interface.outputs.variables if entity is not None else {}
    for key, literal in literals.literals.items():
        if key in variables:
            py_type = _python_type(entity, "outputs", key, variables[key].type)
        else:
            py_type = _guess_from_literal(literal)
        out[key] = TypeEngine.to_python_value(literal, py_type, name=key)
    return out


def _guess_from_literal(literal: literals_pb2.Literal) -> Any:
    # Without an interface, primitives still come back as Python values.
    if literal.HasField("scalar") and literal.scalar.HasField("primitive"):
        kind = literal.scalar.primitive.WhichOneof("value")
        return {
            "integer": int,
            "float_value": float,
            "string_value": str,
            "boolean": bool,
        }.get(kind or "", Any)
    return Any


def _module_of(entity: Any) -> str | None:
    for attr in ("task_function", "workflow_function", "_task_function", "_workflow_function"):
        fn = getattr(entity, attr, None)
        if fn is not None:
            from caddis.core.resolver import module_name_of

            return module_name_of(fn.__module__, getattr(fn, "__globals__", {}).get("__file__"))
    workflow = getattr(entity, "workflow", None)
    return _module_of(workflow) if workflow is not None else None


def _file_of(entity: Any) -> str | None:
    for attr in ("task_function", "workflow_function", "_task_function", "_workflow_function"):
        fn = getattr(entity, attr, None)
        if fn is not None:
            try:
                return inspect.getfile(fn)
            except TypeError:
                return None
    workflow = getattr(entity, "workflow", None)
    return _file_of(workflow) if workflow is not None else None


def _code_root(entities: list[Any]) -> Path:
    """The directory from which the entities' modules import (their dotted name's root)."""
    from caddis.remote._bundle import source_root

    for entity in entities:
        module = _module_of(entity)
        path = _file_of(entity)
        if not module or not path:
            continue
        parts = module.split(".")
        file_path = Path(path).resolve()
        root = file_path.parent
        # pkg/sub/wf.py named "pkg.sub.wf": go up one directory per package level.
        for _ in parts[:-1]:
            root = root.parent
        if file_path.stem == parts[-1]:
            return root
        return source_root(file_path)
    return Path.cwd()


def _entities_digest(entities: list[Any], project: str, domain: str) -> str:
    from caddis.core.settings import SerializationSettings
    from caddis.core.translator import get_serializable

    ser = get_serializable(
        *entities, settings=SerializationSettings(project=project, domain=domain, version="_")
    )
    h = hashlib.sha256()
    for msg in [*ser.tasks, *ser.workflows]:
        h.update(msg.SerializeToString(deterministic=True))
    return h.hexdigest()[:16]


__all__ = ["CaddisRemote", "RegistrationResult", "build_tree"]
