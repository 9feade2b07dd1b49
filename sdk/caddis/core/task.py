"""Tasks: ``@task`` and the classes behind it.

A task is a Python function with typed inputs and outputs that runs in its own process (or
in-process locally). At definition time ``@task`` reads the signature, validates every
option and fails with a message naming the task and parameter when something is wrong.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar, overload

from google.protobuf import struct_pb2

from caddis.core.base import Entity, local_execution_hook
from caddis.core.errors import CompilationError
from caddis.core.interface import Interface, transform_function_to_interface
from caddis.core.metadata import Cache, Secret, TaskMetadata, resolve_cache
from caddis.core.node import Node, to_timedelta
from caddis.core.resolver import DEFAULT_RESOLVER, module_name_of
from caddis.core.resources import Resources, resources_to_idl
from caddis.core.settings import SerializationSettings, current_serialization_settings
from caddis_idl.core.v1 import identifier_pb2, literals_pb2, tasks_pb2, workflow_pb2

__all__ = [
    "PYTHON_TASK_TYPE",
    "PythonFunctionTask",
    "PythonTask",
    "TaskPlugins",
    "task",
]

#: TaskTemplate.type of ``@task`` functions.
PYTHON_TASK_TYPE = "python-task"

F = TypeVar("F", bound=Callable[..., Any])


def _runtime_version() -> str:
    import caddis

    return str(getattr(caddis, "__version__", ""))


class PythonTask(Entity):
    """A task run by the caddis Python runtime: metadata, resources and its IDL template.

    Attributes:
        task_type: ``TaskTemplate.type`` (the plugin that runs it).
        metadata: Caching, retries, timeout, ...
        requests: Resources requested.
        limits: Resource limits.
        container_image: Image override (empty: the settings' default image).
        environment: Extra environment variables of the task process.
        secret_requests: Secrets the task needs.
        task_config: Plugin configuration object, when a plugin task.
        docs: Documentation object or string.
    """

    kind = "task"
    decorator = "task"
    resource_type = identifier_pb2.RESOURCE_TYPE_TASK
    task_type = PYTHON_TASK_TYPE
    task_type_version = 0

    def __init__(
        self,
        name: str,
        python_interface: Interface,
        *,
        metadata: TaskMetadata | None = None,
        requests: Resources | None = None,
        limits: Resources | None = None,
        container_image: str | None = None,
        environment: dict[str, str] | None = None,
        secret_requests: Sequence[Secret] | None = None,
        task_config: Any = None,
        docs: Any = None,
        module: str = "",
        attribute: str = "",
    ) -> None:
        super().__init__(name, python_interface)
        self.metadata = metadata or TaskMetadata()
        self.requests = requests
        self.limits = limits
        self.container_image = container_image
        self.environment = dict(environment or {})
        self.secret_requests = list(secret_requests or [])
        self.task_config = task_config
        self.docs = docs
        self.instantiated_in = module
        self.attribute = attribute or self.short_name

    # ---------------------------------------------------------------- process contract
    @property
    def location(self) -> tuple[str, str]:
        """``(module, attribute)`` that :func:`caddis.core.resolver.load_entity` loads."""
        return self.instantiated_in, self.attribute

    def execute(self, **kwargs: Any) -> Any:
        """Run the task body on native inputs and return its native result."""
        raise NotImplementedError(f"{self.describe()} has no Python body")

    def process_args(self, settings: SerializationSettings) -> list[str]:
        """Arguments of ``python -m caddis.runtime`` for this task (templated locations)."""
        module, attribute = self.location
        return [
            "execute",
            "--inputs",
            "{{.input}}",
            "--output-prefix",
            "{{.outputPrefix}}",
            "--raw-output-prefix",
            "{{.rawOutputDataPrefix}}",
            "--checkpoint-path",
            "{{.checkpointOutputPrefix}}",
            "--prev-checkpoint",
            "{{.prevCheckpointPrefix}}",
            "--resolver",
            settings.resolver or DEFAULT_RESOLVER,
            "--module",
            module,
            "--name",
            attribute,
        ]

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any] | None:
        """Plugin-specific JSON for ``TaskTemplate.custom`` (None: unset)."""
        to_custom = getattr(self.task_config, "to_custom", None)
        if callable(to_custom):
            return dict(to_custom())
        return None

    def get_config(self, settings: SerializationSettings) -> dict[str, str]:
        """``TaskTemplate.config`` entries (plugin string settings; none by default)."""
        get_config = getattr(self.task_config, "to_config", None)
        return dict(get_config()) if callable(get_config) else {}

    def process_spec(self, settings: SerializationSettings) -> tasks_pb2.ProcessSpec:
        """How to start the task's process."""
        env = {**settings.env, **self.environment}
        spec = tasks_pb2.ProcessSpec(
            image=self.container_image or settings.image,
            command=[settings.python_interpreter, "-m", "caddis.runtime"],
            args=self.process_args(settings),
            env=[literals_pb2.KeyValuePair(key=k, value=v) for k, v in sorted(env.items())],
        )
        resources = resources_to_idl(self.requests, self.limits)
        if resources is not None:
            spec.resources.CopyFrom(resources)
        if settings.code_bundle_uri:
            spec.code_bundle.uri = settings.code_bundle_uri
            spec.code_bundle.digest = settings.code_bundle_digest
        return spec

    def to_template(self, settings: SerializationSettings | None = None) -> tasks_pb2.TaskTemplate:
        """The registrable ``TaskTemplate`` of this task.

        Args:
            settings: Project, domain, version and image; defaults to the current settings.
        """
        settings = settings or current_serialization_settings()
        template = tasks_pb2.TaskTemplate(
            id=self.id(settings),
            type=self.task_type,
            metadata=self.metadata.to_idl(_runtime_version()),
            interface=self.python_interface.typed_interface(),
            process=self.process_spec(settings),
            task_type_version=self.task_type_version,
            config=self.get_config(settings),
        )
        if self.secret_requests:
            template.security_context.secrets.extend(s.to_idl() for s in self.secret_requests)
        custom = self.get_custom(settings)
        if custom is not None:
            struct = struct_pb2.Struct()
            struct.update(custom)
            template.custom.CopyFrom(struct)
        return template

    def configure_node(self, node: Node) -> None:
        """Tasks leave node metadata unset: nodes inherit the task's settings."""

    def dependencies(self) -> list[Entity]:
        """Entities registered with this one (none for a task)."""
        return []

    def fill_node_target(
        self, out: workflow_pb2.Node, node: Node, settings: SerializationSettings
    ) -> None:
        """Make ``out`` a task node running this task, with the node's overrides."""
        out.task_node.reference_id.CopyFrom(self.id(settings))
        fill_task_overrides(out.task_node, node, self)


def fill_task_overrides(target: workflow_pb2.TaskNode, node: Node, task: Any) -> None:
    """Copy a node's resource and image overrides into a task node.

    Overridden requests/limits replace the task's own; the other side is kept, so the
    override is complete on its own and needs no merging downstream.
    """
    if node.requests is not None or node.limits is not None:
        requests = node.requests if node.requests is not None else task.requests
        limits = node.limits if node.limits is not None else task.limits
        resources = resources_to_idl(requests, limits)
        if resources is not None:
            target.overrides.resources.CopyFrom(resources)
    if node.container_image:
        target.overrides.container_image = node.container_image


class PythonFunctionTask(PythonTask):
    """A task whose body is a decorated Python function (what ``@task`` returns).

    Attributes:
        task_function: The user's function.
    """

    def __init__(
        self,
        task_function: Callable[..., Any],
        python_interface: Interface | None = None,
        *,
        task_type: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        module = module_name_of(
            task_function.__module__, getattr(task_function, "__globals__", {}).get("__file__")
        )
        name = name or f"{module}.{task_function.__name__}"
        if python_interface is None:
            python_interface = transform_function_to_interface(
                task_function, f"{self.kind} '{name}'"
            )
        super().__init__(
            name,
            python_interface,
            module=module,
            attribute=task_function.__name__,
            **kwargs,
        )
        if task_type is not None:
            self.task_type = task_type
        self.task_function = task_function
        functools.update_wrapper(self, task_function)

    def execute(self, **kwargs: Any) -> Any:
        """Call the function with native inputs; returns what the function returns."""
        return self.task_function(**kwargs)

    def _local_execute(self, **inputs: Any) -> Any:
        """Run locally through ``caddis.local`` or, without it, by calling the function.

        Inputs the caller omitted take their defaults, as in a workflow.
        """
        if local_execution_hook() is not None:
            return super()._local_execute(**inputs)
        return self.execute(**inputs)


class TaskPlugins:
    """Registry of task classes by the type of their ``task_config`` (flytekit's plugin hook).

    A plugin registers ``TaskPlugins.register_pythontask_plugin(MyConfig, MyTask)``; then
    ``@task(task_config=MyConfig(...))`` builds ``MyTask(task_config=..., task_function=fn,
    **options)`` instead of a :class:`PythonFunctionTask`.
    """

    _registry: ClassVar[dict[type, type[PythonFunctionTask]]] = {}

    @classmethod
    def register_pythontask_plugin(
        cls, plugin_config_type: type, plugin: type[PythonFunctionTask]
    ) -> None:
        """Use ``plugin`` for tasks whose ``task_config`` is a ``plugin_config_type``.

        Raises:
            ValueError: Another plugin is already registered for the type.
        """
        existing = cls._registry.get(plugin_config_type)
        if existing is not None and existing is not plugin:
            raise ValueError(
                f"{plugin_config_type.__name__} already has the plugin {existing.__name__}"
            )
        cls._registry[plugin_config_type] = plugin

    @classmethod
    def find_pythontask_plugin(cls, plugin_config_type: type) -> type[PythonFunctionTask]:
        """The task class for a config type (:class:`PythonFunctionTask` when none)."""
        for klass in plugin_config_type.__mro__:
            if klass in cls._registry:
                return cls._registry[klass]
        return PythonFunctionTask


def _source_version(fn: Callable[..., Any]) -> Callable[[], str]:
    def version() -> str:
        # cache=True without a version: version the cache by the function's source, so an
        # edited body does not return stale results (flytekit's automatic cache version).
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            source = getattr(fn, "__qualname__", repr(fn))
        return "auto-" + hashlib.sha256(source.encode()).hexdigest()[:16]

    return version


def build_task_options(
    owner: str,
    fn: Callable[..., Any],
    interface: Interface,
    *,
    cache: bool | Cache,
    cache_serialize: bool,
    cache_version: str,
    cache_ignore_input_vars: Sequence[str] | str,
    retries: int,
    interruptible: bool | None,
    deprecated: str,
    timeout: int | float | datetime.timedelta | None,
    enable_deck: bool,
) -> TaskMetadata:
    """Validate the metadata options of ``@task``/``@dynamic`` into a :class:`TaskMetadata`."""
    on, version, serialize, ignored = resolve_cache(
        owner, cache, cache_version, cache_serialize, cache_ignore_input_vars, _source_version(fn)
    )
    unknown = [v for v in ignored if v not in interface.inputs]
    if unknown:
        raise CompilationError(
            f"{owner}: cache_ignore_input_vars names {', '.join(repr(u) for u in unknown)}, "
            f"which {'is' if len(unknown) == 1 else 'are'} not an input; inputs: "
            f"{', '.join(interface.inputs) or '(none)'}"
        )
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise CompilationError(f"{owner}: retries must be an int >= 0, got {retries!r}")
    if not isinstance(deprecated, str):
        raise CompilationError(f"{owner}: deprecated must be a message string, got {deprecated!r}")
    if timeout == 0:
        timeout = None  # flytekit's default: no timeout
    return TaskMetadata(
        cache=on,
        cache_serialize=serialize,
        cache_version=version,
        cache_ignore_input_vars=ignored,
        interruptible=interruptible,
        deprecated=deprecated,
        retries=retries,
        timeout=to_timedelta(timeout, owner),
        generates_deck=enable_deck,
    )


def make_function_task(
    fn: Callable[..., Any],
    klass: type[PythonFunctionTask],
    *,
    task_config: Any = None,
    cache: bool | Cache = False,
    cache_serialize: bool = False,
    cache_version: str = "",
    cache_ignore_input_vars: Sequence[str] | str = (),
    retries: int = 0,
    interruptible: bool | None = None,
    deprecated: str = "",
    timeout: int | float | datetime.timedelta | None = None,
    container_image: str | None = None,
    environment: dict[str, str] | None = None,
    requests: Resources | None = None,
    limits: Resources | None = None,
    secret_requests: Sequence[Secret] | None = None,
    docs: Any = None,
    enable_deck: bool = False,
    name: str | None = None,
) -> Any:
    """Validate the options of ``@task``/``@dynamic`` and build a ``klass`` for ``fn``."""
    if not callable(fn) or not hasattr(fn, "__name__"):
        raise CompilationError(f"@{klass.decorator} decorates a function, got {fn!r}")
    module = module_name_of(fn.__module__, getattr(fn, "__globals__", {}).get("__file__"))
    owner = f"{klass.kind} '{name or module + '.' + fn.__name__}'"
    interface = transform_function_to_interface(fn, owner)
    _check_resources(owner, requests, limits)
    metadata = build_task_options(
        owner,
        fn,
        interface,
        cache=cache,
        cache_serialize=cache_serialize,
        cache_version=cache_version,
        cache_ignore_input_vars=cache_ignore_input_vars,
        retries=retries,
        interruptible=interruptible,
        deprecated=deprecated,
        timeout=timeout,
        enable_deck=enable_deck,
    )
    return klass(
        fn,
        interface,
        name=name,
        metadata=metadata,
        requests=requests,
        limits=limits,
        container_image=container_image,
        environment=environment,
        secret_requests=secret_requests,
        task_config=task_config,
        docs=docs,
    )


def _check_resources(owner: str, requests: Any, limits: Any) -> None:
    for label, value in (("requests", requests), ("limits", limits)):
        if value is not None and not isinstance(value, Resources):
            raise CompilationError(
                f"{owner}: {label} must be a caddis Resources(...), got {type(value).__name__}"
            )


@overload
def task(_task_function: F, /) -> PythonFunctionTask: ...


@overload
def task(
    _task_function: None = None,
    /,
    *,
    task_config: Any = None,
    cache: bool | Cache = False,
    cache_serialize: bool = False,
    cache_version: str = "",
    cache_ignore_input_vars: Sequence[str] | str = (),
    retries: int = 0,
    interruptible: bool | None = None,
    deprecated: str = "",
    timeout: int | float | datetime.timedelta | None = None,
    container_image: str | None = None,
    environment: dict[str, str] | None = None,
    requests: Resources | None = None,
    limits: Resources | None = None,
    secret_requests: Sequence[Secret] | None = None,
    docs: Any = None,
    enable_deck: bool = False,
    name: str | None = None,
) -> Callable[[Callable[..., Any]], PythonFunctionTask]: ...


def task(
    _task_function: Callable[..., Any] | None = None,
    /,
    *,
    task_config: Any = None,
    cache: bool | Cache = False,
    cache_serialize: bool = False,
    cache_version: str = "",
    cache_ignore_input_vars: Sequence[str] | str = (),
    retries: int = 0,
    interruptible: bool | None = None,
    deprecated: str = "",
    timeout: int | float | datetime.timedelta | None = None,
    container_image: str | None = None,
    environment: dict[str, str] | None = None,
    requests: Resources | None = None,
    limits: Resources | None = None,
    secret_requests: Sequence[Secret] | None = None,
    docs: Any = None,
    enable_deck: bool = False,
    name: str | None = None,
) -> PythonFunctionTask | Callable[[Callable[..., Any]], PythonFunctionTask]:
    """Make a Python function a task; use bare (``@task``) or with options (``@task(...)``).

    Args:
        _task_function: The function (when used bare).
        task_config: Plugin configuration; its type selects the task class (TaskPlugins).
        cache: Memoize results by inputs (a bool, or a :class:`Cache`).
        cache_serialize: One execution computes a missing result; identical ones wait.
        cache_version: Version of cached results; derived from the source when empty.
        cache_ignore_input_vars: Inputs left out of the cache key.
        retries: Retries of recoverable failures.
        interruptible: May run on preemptible capacity.
        deprecated: Deprecation message; non-empty marks the task deprecated.
        timeout: Maximum duration of one attempt (seconds or timedelta; 0/None: none).
        container_image: Image of the task's process.
        environment: Extra environment variables of the task's process.
        requests: Resources requested.
        limits: Resource limits.
        secret_requests: Secrets the task needs.
        docs: Documentation of the task.
        enable_deck: The task renders a deck.
        name: Registered name; defaults to ``<module>.<function>``.

    Returns:
        A :class:`PythonFunctionTask` (or the plugin's class), or a decorator making one.

    Raises:
        MissingTypeError: An input lacks a type hint, or a type has no caddis type.
        CompilationError: An option is invalid.
    """
    options = {
        "cache": cache,
        "cache_serialize": cache_serialize,
        "cache_version": cache_version,
        "cache_ignore_input_vars": cache_ignore_input_vars,
        "retries": retries,
        "interruptible": interruptible,
        "deprecated": deprecated,
        "timeout": timeout,
        "container_image": container_image,
        "environment": environment,
        "requests": requests,
        "limits": limits,
        "secret_requests": secret_requests,
        "docs": docs,
        "enable_deck": enable_deck,
        "name": name,
    }

    def wrapper(fn: Callable[..., Any]) -> PythonFunctionTask:
        klass: type[PythonFunctionTask] = (
            TaskPlugins.find_pythontask_plugin(type(task_config))
            if task_config is not None
            else PythonFunctionTask
        )
        made: PythonFunctionTask = make_function_task(fn, klass, task_config=task_config, **options)
        return made

    if _task_function is not None:
        return wrapper(_task_function)
    return wrapper
