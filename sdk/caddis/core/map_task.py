"""``map_task``: run one task over the elements of list inputs, as one array node.

::

    map_task(data_augment, metadata=TaskMetadata(retries=1))(image=images)
    map_task(functools.partial(scale, factor=2.0), concurrency=10)(x=xs)

Mapped inputs are lists of equal length (checked by the engine; constant lists here);
inputs bound with ``functools.partial`` are passed whole to every element. Outputs are
lists; with ``min_success_ratio < 1`` failed elements yield None, so outputs are
``List[Optional[T]]``.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from caddis.core.base import Entity, local_execution_hook
from caddis.core.context import CompilationState
from caddis.core.errors import CompilationError
from caddis.core.interface import Interface
from caddis.core.metadata import TaskMetadata
from caddis.core.node import Node, outputs_of
from caddis.core.promise import Bound, bind_value
from caddis.core.settings import SerializationSettings
from caddis.core.task import PythonFunctionTask, fill_task_overrides
from caddis_idl.core.v1 import workflow_pb2

__all__ = ["MapTask", "map_task"]


class ArrayNodeRecord(Node):
    """A recorded map-task call; remembers which inputs are bound rather than mapped."""

    def __init__(
        self,
        node_id: str,
        entity: Any,
        bindings: dict[str, Bound],
        owner: str,
        bound_inputs: list[str],
    ) -> None:
        super().__init__(node_id, entity, bindings, owner)
        self.bound_inputs = bound_inputs


class MapTask(Entity):
    """A task mapped over list inputs (what ``map_task`` returns).

    Attributes:
        task: The task run per element.
        bound_inputs: Inputs fixed by ``functools.partial`` (passed whole to every element).
        concurrency: Most elements running at once (None: platform default).
        min_success_ratio: Fraction of elements that must succeed (None: all).
        metadata: Retries, timeout, cache and interruptible of each element, overriding the
            task's settings where given.
    """

    kind = "map task"

    def __init__(
        self,
        task: PythonFunctionTask,
        bound_inputs: dict[str, Any],
        *,
        concurrency: int | None = None,
        min_success_ratio: float | None = None,
        metadata: TaskMetadata | None = None,
    ) -> None:
        self.task = task
        self.bound_inputs = bound_inputs
        self.concurrency = concurrency
        self.min_success_ratio = min_success_ratio
        self.metadata = metadata
        iface = task.python_interface
        optional = min_success_ratio is not None and min_success_ratio < 1
        mapped = {n: list[t] for n, t in iface.inputs.items() if n not in bound_inputs}  # type: ignore[valid-type]
        outputs = {
            n: list[t | None] if optional else list[t]  # type: ignore[valid-type]
            for n, t in iface.outputs.items()
        }
        suffix = ""
        if bound_inputs:
            digest = hashlib.sha256(",".join(sorted(bound_inputs)).encode()).hexdigest()[:8]
            suffix = f"_{digest}"
        module, _, short = task.name.rpartition(".")
        name = f"{module}.map_{short}{suffix}" if module else f"map_{short}{suffix}"
        interface = Interface.build(
            mapped,
            outputs,
            owner=f"map_task({task.describe()})",
            output_tuple_name=iface.output_tuple_name,
            outputs_are_tuple=iface.outputs_are_tuple,
        )
        super().__init__(name, interface)

    def describe(self) -> str:
        """``map task '<name>'``."""
        return f"map task over {self.task.describe()}"

    # ------------------------------------------------------------------ compile
    def compile_call(self, state: CompilationState, inputs: dict[str, Any]) -> Any:
        """Record an array node: mapped inputs as lists, partial inputs as bound inputs."""
        node_id = state.next_node_id()
        where = f"{state.owner}: node {node_id} ({self.describe()})"
        task_iface = self.task.python_interface
        unknown = [k for k in inputs if k not in self.python_interface.inputs]
        if unknown:
            bound_note = (
                f" ({', '.join(unknown)} bound by functools.partial)"
                if any(k in self.bound_inputs for k in unknown)
                else ""
            )
            raise CompilationError(
                f"{where}: no mapped input named {', '.join(repr(u) for u in unknown)}"
                f"{bound_note}; mapped inputs are {', '.join(self.python_interface.inputs)}"
            )
        bindings: dict[str, Bound] = {}
        bound_names: list[str] = []
        lengths: dict[str, int] = {}
        for name, py_type in task_iface.inputs.items():
            scalar_lt = task_iface.input_literal_types[name]
            if name in self.bound_inputs:
                bindings[name] = bind_value(
                    where, name, self.bound_inputs[name], py_type, scalar_lt
                )
                bound_names.append(name)
            elif name in inputs:
                value = inputs[name]
                bindings[name] = bind_value(
                    where,
                    name,
                    value,
                    self.python_interface.inputs[name],
                    self.python_interface.input_literal_types[name],
                )
                if isinstance(value, list):
                    lengths[name] = len(value)
            elif name in task_iface.defaults:
                bindings[name] = bind_value(
                    where, name, task_iface.defaults[name], py_type, scalar_lt
                )
                bound_names.append(name)
            else:
                raise CompilationError(
                    f"{where}: input '{name}' is not bound; pass a list to map over "
                    f"({self.task.short_name}={name}=[...]) or bind one value with "
                    f"functools.partial({self.task.short_name}, {name}=...)"
                )
        if len(bound_names) == len(task_iface.inputs) and task_iface.inputs:
            raise CompilationError(
                f"{where}: every input is bound, so there is nothing to map over; pass at "
                f"least one list input"
            )
        if len(set(lengths.values())) > 1:
            described = ", ".join(f"{k} has {v}" for k, v in lengths.items())
            raise CompilationError(
                f"{where}: mapped inputs must have the same length, but {described} elements"
            )
        node = ArrayNodeRecord(node_id, self, bindings, state.owner, bound_names)
        node.metadata_name = self.task.short_name
        state.add_node(node)
        return outputs_of(node, self.python_interface, state.owner)

    # ------------------------------------------------------------------ IDL
    def dependencies(self) -> list[Entity]:
        """The mapped task."""
        return [self.task]

    def fill_node_target(
        self, out: workflow_pb2.Node, node: Node, settings: SerializationSettings
    ) -> None:
        """Make ``out`` an array node whose sub-node runs the task per element.

        The bindings stay on the array node (the compiler checks them there, list-typed for
        mapped inputs); the sub-node names the task and carries the per-element metadata.
        """
        array = out.array_node
        sub = array.node
        sub.id = f"{node.id}-sub"
        sub.metadata.name = self.task.short_name
        md = self.metadata
        if md is not None:
            if md.retries:
                sub.metadata.retries.retries = md.retries
            if md.timeout_delta is not None:
                sub.metadata.timeout.FromTimedelta(md.timeout_delta)
            if md.interruptible is not None:
                sub.metadata.interruptible = md.interruptible
            if md.cache:
                sub.metadata.cacheable = True
                sub.metadata.cache_version = md.cache_version
                sub.metadata.cache_serializable = md.cache_serialize
        sub.task_node.reference_id.CopyFrom(self.task.id(settings))
        fill_task_overrides(sub.task_node, node, self.task)
        if self.concurrency is not None:
            array.parallelism = self.concurrency
        if self.min_success_ratio is not None:
            array.min_success_ratio = self.min_success_ratio
        array.bound_inputs.extend(getattr(node, "bound_inputs", []))
        array.execution_mode = workflow_pb2.ArrayNode.EXECUTION_MODE_MINIMAL_STATE

    # ------------------------------------------------------------------ local
    def _local_execute(self, **inputs: Any) -> Any:
        """Run locally through ``caddis.local``, or element by element in-process."""
        if local_execution_hook() is not None:
            return super()._local_execute(**inputs)
        iface = self.task.python_interface
        lists = {k: list(v) for k, v in inputs.items()}
        sizes = {len(v) for v in lists.values()}
        if len(sizes) > 1:
            raise ValueError(f"{self.describe()}: mapped inputs have different lengths {sizes}")
        size = sizes.pop() if sizes else 0
        defaults = {k: v for k, v in iface.defaults.items() if k not in lists}
        results: list[Any] = []
        failures = 0
        for i in range(size):
            kwargs = {**defaults, **self.bound_inputs, **{k: v[i] for k, v in lists.items()}}
            try:
                results.append(self.task.execute(**kwargs))
            except Exception:
                if self.min_success_ratio is None or self.min_success_ratio >= 1:
                    raise
                failures += 1
                results.append(None)
        if (
            size
            and self.min_success_ratio is not None
            and (size - failures) / size < self.min_success_ratio
        ):
            raise RuntimeError(
                f"{self.describe()}: {size - failures} of {size} elements succeeded, below "
                f"min_success_ratio {self.min_success_ratio}"
            )
        names = list(iface.outputs)
        if not names:
            return None
        if not iface.outputs_are_tuple:
            return results
        columns = [[None if r is None else r[j] for r in results] for j in range(len(names))]
        return iface.output_tuple()(*columns) if iface.output_tuple_name else tuple(columns)


def map_task(
    target: Any,
    concurrency: int | None = None,
    min_success_ratio: float | None = None,
    metadata: TaskMetadata | None = None,
    **kwargs: Any,
) -> MapTask:
    """Map a task over list inputs (flytekit's ``map_task``).

    Args:
        target: A ``@task``, or ``functools.partial(task, name=value, ...)`` binding some
            inputs to one value for every element.
        concurrency: Most elements running at once (None or 0: platform default).
        min_success_ratio: Fraction (0, 1] of elements that must succeed; below 1, failed
            elements yield None and outputs become ``List[Optional[T]]``.
        metadata: Per-element retries, timeout, cache and interruptible; fields left at
            their defaults keep the task's own settings.
        **kwargs: Not supported; named to give a clear error.

    Returns:
        A :class:`MapTask` to call with list inputs.

    Raises:
        CompilationError: The target is not a task, or an option is invalid.
    """
    if kwargs:
        raise CompilationError(
            f"map_task() got unsupported option(s) {', '.join(sorted(kwargs))}; supported: "
            f"concurrency, min_success_ratio, metadata"
        )
    bound: dict[str, Any] = {}
    task_obj = target
    if isinstance(target, functools.partial):
        if target.args:
            raise CompilationError(
                "map_task(functools.partial(...)) binds inputs by keyword only; use "
                "functools.partial(task, name=value)"
            )
        task_obj = target.func
        bound = dict(target.keywords)
    from caddis.core.dynamic import DynamicTask

    if not isinstance(task_obj, PythonFunctionTask) or isinstance(task_obj, DynamicTask):
        what = task_obj.describe() if isinstance(task_obj, Entity) else repr(task_obj)
        raise CompilationError(
            f"map_task() maps a @task, got {what}; to fan out workflows or dynamics, loop "
            f"in a @dynamic"
        )
    unknown = [k for k in bound if k not in task_obj.python_interface.inputs]
    if unknown:
        raise CompilationError(
            f"map_task({task_obj.describe()}): functools.partial binds "
            f"{', '.join(repr(u) for u in unknown)}, which is not an input; inputs: "
            f"{', '.join(task_obj.python_interface.inputs)}"
        )
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0
    ):
        raise CompilationError(f"map_task(): concurrency must be an int >= 0, got {concurrency!r}")
    if min_success_ratio is not None and (
        isinstance(min_success_ratio, bool)
        or not isinstance(min_success_ratio, int | float)
        or not 0 < min_success_ratio <= 1
    ):
        raise CompilationError(
            f"map_task(): min_success_ratio must be in (0, 1], got {min_success_ratio!r}"
        )
    if metadata is not None and not isinstance(metadata, TaskMetadata):
        raise CompilationError(f"map_task(): metadata must be a TaskMetadata, got {metadata!r}")
    return MapTask(
        task_obj,
        bound,
        concurrency=concurrency,
        min_success_ratio=None if min_success_ratio is None else float(min_success_ratio),
        metadata=metadata,
    )
