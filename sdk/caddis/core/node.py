"""Nodes: one recorded call of a task, workflow, launch plan, map task or branch."""

from __future__ import annotations

import datetime
import typing
from typing import TYPE_CHECKING, Any

from caddis.core.context import CompilationState
from caddis.core.errors import CompilationError
from caddis.core.promise import (
    GLOBAL_INPUT_NODE_ID,
    Bound,
    NodeOutput,
    OutputsMixin,
    Promise,
    VoidPromise,
    bind_value,
    promises_in,
)
from caddis.core.resources import Resources

if TYPE_CHECKING:
    from caddis.core.base import Entity

__all__ = ["Node", "create_and_link_node", "create_node", "outputs_of"]

_OVERRIDES = {
    "name",
    "node_name",
    "requests",
    "limits",
    "retries",
    "timeout",
    "interruptible",
    "cache",
    "cache_version",
    "cache_serialize",
    "container_image",
}


class Node:
    """One call recorded in a workflow or dynamic body.

    Attributes:
        id: Node id, unique in its workflow (``n0``, ``n1``, ...).
        entity: What the node runs.
        bindings: Input name to what feeds it.
        upstream_nodes: Nodes that must finish first besides those feeding inputs (``>>``).
        owner: The workflow the node belongs to (for messages).
        metadata_name: Display name of the node.
        retries, timeout, interruptible, cache, cache_version, cache_serialize: Overrides of
            the entity's settings for this node (None: inherit).
        requests, limits, container_image: Resource and image overrides of a task node.
    """

    def __init__(self, node_id: str, entity: Any, bindings: dict[str, Bound], owner: str) -> None:
        self.id = node_id
        self.entity = entity
        self.bindings = bindings
        self.owner = owner
        self.upstream_nodes: list[Node] = []
        self.metadata_name: str = getattr(entity, "short_name", None) or str(
            getattr(entity, "name", node_id)
        )
        self.retries: int | None = None
        self.timeout: datetime.timedelta | None = None
        self.interruptible: bool | None = None
        self.cache: bool | None = None
        self.cache_version: str | None = None
        self.cache_serialize: bool | None = None
        self.requests: Resources | None = None
        self.limits: Resources | None = None
        self.container_image: str | None = None
        self._outputs: dict[str, Promise] = {}

    def describe(self) -> str:
        """What the node runs, e.g. ``task 'pkg.mod.t'``."""
        describe = getattr(self.entity, "describe", None)
        return str(describe()) if callable(describe) else repr(self.entity)

    def __repr__(self) -> str:
        return f"Node({self.id}: {self.describe()})"

    # ------------------------------------------------------------------ dependencies
    def upstream_node_ids(self) -> list[str]:
        """Ids of the nodes this one waits for: data dependencies, then ``>>`` edges."""
        ids: list[str] = []
        for bound in self.bindings.values():
            for p in promises_in(bound):
                node_id = p.ref.node_id
                if node_id != GLOBAL_INPUT_NODE_ID and node_id not in ids:
                    ids.append(node_id)
        for node in self.upstream_nodes:
            if node.id not in ids:
                ids.append(node.id)
        # A branch also waits for what its cases read (they run inside it).
        extra = getattr(self.entity, "upstream_ids", None)
        if callable(extra):
            for node_id in extra():
                if node_id not in ids:
                    ids.append(node_id)
        return ids

    # ------------------------------------------------------------------ outputs
    @property
    def outputs(self) -> dict[str, Promise]:
        """Output name to promise."""
        return self._outputs

    def __getattr__(self, name: str) -> Promise:
        # flytekit's create_node() result exposes outputs as attributes: node.o0
        outputs = self.__dict__.get("_outputs", {})
        if name in outputs:
            return typing.cast(Promise, outputs[name])
        raise AttributeError(f"{self!r} has no attribute or output {name!r}")

    # ------------------------------------------------------------------ ordering
    def runs_before(self, other: Any) -> Any:
        """Make the node of ``other`` wait for this node; returns ``other``."""
        from caddis.core.promise import _order

        return _order(self, other)

    def __rshift__(self, other: Any) -> Any:
        return self.runs_before(other)

    # ------------------------------------------------------------------ overrides
    def with_overrides(self, **overrides: Any) -> Node:
        """Override settings of this node only.

        Args:
            **overrides: Any of ``name`` (display name), ``node_name`` (the node id),
                ``requests``/``limits`` (:class:`Resources`), ``retries`` (int), ``timeout``
                (seconds or timedelta), ``interruptible``, ``cache``, ``cache_version``,
                ``cache_serialize`` and ``container_image``.

        Raises:
            CompilationError: An unknown override, or a value of the wrong type.
        """
        unknown = sorted(set(overrides) - _OVERRIDES)
        where = f"{self.owner}: node {self.id} ({self.describe()})"
        if unknown:
            raise CompilationError(
                f"{where}: unknown override(s) {', '.join(unknown)}; supported: "
                f"{', '.join(sorted(_OVERRIDES))}"
            )
        for key in ("requests", "limits"):
            if key in overrides:
                value = overrides[key]
                if value is not None and not isinstance(value, Resources):
                    raise CompilationError(f"{where}: {key} must be a Resources, got {value!r}")
                setattr(self, key, value)
        if "name" in overrides:
            self.metadata_name = str(overrides["name"])
        if "node_name" in overrides:
            self.id = _valid_node_name(where, overrides["node_name"])
        if "retries" in overrides:
            retries = overrides["retries"]
            if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)):
                raise CompilationError(f"{where}: retries must be an int, got {retries!r}")
            if retries is not None and retries < 0:
                raise CompilationError(f"{where}: retries must be >= 0, got {retries}")
            self.retries = retries
        if "timeout" in overrides:
            self.timeout = to_timedelta(overrides["timeout"], where)
        for key in ("interruptible", "cache", "cache_serialize"):
            if key in overrides:
                setattr(self, key, None if overrides[key] is None else bool(overrides[key]))
        if "cache_version" in overrides:
            self.cache_version = overrides["cache_version"]
        if "container_image" in overrides:
            self.container_image = overrides["container_image"]
        return self


def _valid_node_name(where: str, name: Any) -> str:
    if not isinstance(name, str) or not name or name in {GLOBAL_INPUT_NODE_ID, "end-node"}:
        raise CompilationError(f"{where}: node_name must be a non-empty str, got {name!r}")
    # Node ids travel in paths and label values: keep them to a conservative alphabet.
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower())
    return cleaned


def to_timedelta(value: Any, where: str) -> datetime.timedelta | None:
    """Accept a timeout as seconds (int/float) or a timedelta; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = datetime.timedelta(seconds=value)
    else:
        raise CompilationError(f"{where}: timeout must be seconds or a timedelta, got {value!r}")
    if result <= datetime.timedelta(0):
        raise CompilationError(f"{where}: timeout must be positive, got {value!r}")
    return result


def outputs_of(node: Node, entity_interface: Any, owner: str) -> Any:
    """Make the output promises of ``node`` and return what the call returns.

    Zero outputs give a :class:`VoidPromise`, one a :class:`Promise`, several (or a
    ``NamedTuple``) a named tuple of promises with ``with_overrides`` and ``>>``.
    """
    promises: dict[str, Promise] = {}
    for name, py_type in entity_interface.outputs.items():
        lt = entity_interface.output_literal_types[name]
        promises[name] = Promise(name, NodeOutput(node, name), py_type, lt, owner)
    node._outputs = promises
    if not promises:
        return VoidPromise(node, owner)
    if len(promises) == 1 and not entity_interface.output_tuple_name:
        return next(iter(promises.values()))
    cls = _outputs_class(entity_interface.output_tuple_name or "Outputs", tuple(promises))
    return cls(*promises.values())


_OUTPUT_CLASSES: dict[tuple[str, tuple[str, ...]], type] = {}


def _outputs_class(name: str, fields_: tuple[str, ...]) -> type:
    import collections

    key = (name, fields_)
    cls = _OUTPUT_CLASSES.get(key)
    if cls is None:
        base = collections.namedtuple(name, fields_)  # type: ignore[misc]
        cls = type(name, (base, OutputsMixin), {"__slots__": ()})
        _OUTPUT_CLASSES[key] = cls
    return cls


def bind_inputs(
    entity: Entity,
    node_id: str,
    state: CompilationState,
    kwargs: dict[str, Any],
    *,
    bind_defaults: bool = True,
    skip: frozenset[str] = frozenset(),
) -> dict[str, Bound]:
    """Bind the call's keyword arguments to the entity's inputs, checking each.

    Inputs in ``skip`` are left unbound (the failure node's error input, filled at run time).
    """
    iface = entity.python_interface
    where = f"{state.owner}: node {node_id} ({entity.describe()})"
    unknown = [k for k in kwargs if k not in iface.inputs]
    if unknown:
        raise CompilationError(
            f"{where}: no input named {', '.join(repr(u) for u in unknown)}; its inputs are "
            f"{', '.join(iface.inputs) or '(none)'}"
        )
    bindings: dict[str, Bound] = {}
    for name, py_type in iface.inputs.items():
        expected = iface.input_literal_types[name]
        if name in skip and name not in kwargs:
            continue
        if name in kwargs:
            bindings[name] = bind_value(where, name, kwargs[name], py_type, expected)
        elif name in iface.defaults:
            if bind_defaults:
                bindings[name] = bind_value(where, name, iface.defaults[name], py_type, expected)
        else:
            raise CompilationError(
                f"{where}: input '{name}' is not bound. Pass it in the call "
                f"({entity.short_name}({name}=...)) or give the parameter a default."
            )
    return bindings


def create_and_link_node(entity: Entity, state: CompilationState, kwargs: dict[str, Any]) -> Any:
    """Record a call of ``entity`` in ``state`` and return its output promise(s)."""
    node_id = state.next_node_id()
    bindings = bind_inputs(entity, node_id, state, kwargs, bind_defaults=entity.binds_defaults)
    node = Node(node_id, entity, bindings, state.owner)
    entity.configure_node(node)
    state.add_node(node)
    return outputs_of(node, entity.python_interface, state.owner)


def create_node(entity: Any, *args: Any, **kwargs: Any) -> Node:
    """Call ``entity`` in a workflow body and return the :class:`Node` (flytekit's ``create_node``).

    The node's outputs are attributes (``node.o0``) and it can be ordered with ``>>``.

    Raises:
        CompilationError: Called outside a workflow or dynamic body.
    """
    from caddis.core.context import current_compilation_state

    if current_compilation_state() is None:
        raise CompilationError("create_node() can only be used inside a @workflow or @dynamic body")
    result = entity(*args, **kwargs)
    from caddis.core.promise import node_of

    node = node_of(result)
    if node is None:  # pragma: no cover - every entity call yields a node
        raise CompilationError(f"{entity!r} did not create a node")
    return node
