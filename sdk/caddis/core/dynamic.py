"""``@dynamic``: a task whose body, run at run time on real inputs, builds a workflow.

The body receives native values (it can loop over them, call plain Python, read files);
calls of tasks, workflows, launch plans and other dynamics inside it return promises and
record nodes. What the body returns becomes the output bindings of a ``DynamicJobSpec``
(the "futures" a dynamic task writes instead of outputs), which the engine compiles and runs.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from caddis.core.base import Entity
from caddis.core.context import CompilationState, compilation_state
from caddis.core.metadata import Cache, Secret
from caddis.core.resources import Resources
from caddis.core.settings import SerializationSettings, current_serialization_settings
from caddis.core.task import PythonFunctionTask, make_function_task
from caddis_idl.core.v1 import dynamic_job_pb2

__all__ = ["DYNAMIC_TASK_TYPE", "DynamicTask", "dynamic"]

#: TaskTemplate.type of ``@dynamic`` functions.
DYNAMIC_TASK_TYPE = "dynamic"

F = TypeVar("F", bound=Callable[..., Any])


class DynamicTask(PythonFunctionTask):
    """A task whose run produces a workflow (what ``@dynamic`` returns)."""

    kind = "dynamic"
    decorator = "dynamic"
    task_type = DYNAMIC_TASK_TYPE

    def _local_execute(self, **inputs: Any) -> Any:
        """Run locally through ``caddis.local`` (the futures need the engine to run)."""
        return Entity._local_execute(self, **inputs)

    def execute(self, **kwargs: Any) -> dynamic_job_pb2.DynamicJobSpec:
        """Run the body on native inputs; returns the ``DynamicJobSpec`` (see compile_futures)."""
        return self.compile_futures(**kwargs)

    def compile_futures(
        self, settings: SerializationSettings | None = None, /, **native_inputs: Any
    ) -> dynamic_job_pb2.DynamicJobSpec:
        """Run the body on native inputs and compile what it called into a ``DynamicJobSpec``.

        Args:
            settings: Project, domain and version of the identifiers the spec references
                (default: the settings installed with ``serialization_settings()``).
            **native_inputs: The task's inputs as Python values; omitted ones take defaults.

        Returns:
            The spec: nodes in call order (``n0``, ``n1``, ...), ``min_successes`` = number
            of nodes, output bindings, and the templates of every task and subworkflow the
            nodes use (launch plans are referenced by id only).

        Raises:
            CompilationError: The body misuses a promise or returns the wrong outputs.
        """
        from caddis.core.condition import check_no_open_conditionals
        from caddis.core.launch_plan import LaunchPlan
        from caddis.core.reference import ReferenceEntity
        from caddis.core.task import PythonTask
        from caddis.core.translator import bindings_to_idl, collect_entities, node_to_idl
        from caddis.core.workflow import WorkflowBase, trace_outputs

        settings = settings or current_serialization_settings()
        inputs = {**self.python_interface.defaults, **native_inputs}
        owner = self.describe()
        state = CompilationState(owner, mode="dynamic")
        with compilation_state(state):
            result = self.task_function(**inputs)
        check_no_open_conditionals(state)
        outputs = trace_outputs(owner, result, self.python_interface)

        spec = dynamic_job_pb2.DynamicJobSpec(
            nodes=[node_to_idl(n, settings) for n in state.nodes],
            min_successes=len(state.nodes),
            outputs=bindings_to_idl(outputs),
        )
        for entity in collect_entities(*[n.entity for n in state.nodes]):
            if isinstance(entity, ReferenceEntity | LaunchPlan):
                continue
            if isinstance(entity, PythonTask):
                spec.tasks.append(entity.to_template(settings))
            elif isinstance(entity, WorkflowBase):
                spec.subworkflows.append(entity.to_template(settings))
        return spec


@overload
def dynamic(_task_function: F, /) -> DynamicTask: ...


@overload
def dynamic(
    _task_function: None = None,
    /,
    *,
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
) -> Callable[[Callable[..., Any]], DynamicTask]: ...


def dynamic(
    _task_function: Callable[..., Any] | None = None,
    /,
    *,
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
) -> DynamicTask | Callable[[Callable[..., Any]], DynamicTask]:
    """Make a function a dynamic workflow: a task whose body builds a workflow at run time.

    Takes the same options as :func:`~caddis.core.task.task`; they apply to the task that
    runs the body (caching a dynamic caches the whole sub-workflow's result).

    Returns:
        A :class:`DynamicTask`, or a decorator making one.
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

    def wrapper(fn: Callable[..., Any]) -> DynamicTask:
        result: DynamicTask = make_function_task(fn, DynamicTask, **options)
        return result

    if _task_function is not None:
        return wrapper(_task_function)
    return wrapper
