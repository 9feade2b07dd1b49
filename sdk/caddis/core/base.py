"""What tasks, workflows, launch plans and reference entities have in common."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from caddis.core.context import current_compilation_state
from caddis.core.errors import CompilationError
from caddis.core.interface import Interface
from caddis.core.promise import contains_promise
from caddis.core.settings import SerializationSettings, current_serialization_settings
from caddis_idl.core.v1 import identifier_pb2

__all__ = ["Entity", "local_execution_hook"]


def local_execution_hook() -> Any:
    """The local executor, ``caddis._local.execute_entity(entity, inputs)``, or None.

    Local execution (running a workflow on this machine with the shared engine) lives in
    ``caddis._local``; it is looked up at call time so that this layer neither depends on it
    nor pays for importing it.
    """
    module = sys.modules.get("caddis._local")
    if module is None:
        try:
            module = importlib.import_module("caddis._local")
        except ImportError:
            return None
    return getattr(module, "execute_entity", None)


class Entity:
    """An addressable, typed unit: a task, a workflow, a launch plan or a reference.

    Calling an entity inside a ``@workflow`` or ``@dynamic`` body records a node and returns
    promises; calling it anywhere else runs it locally (see :meth:`_local_execute`).

    Attributes:
        name: Registered name, e.g. ``pkg.module.function``.
        python_interface: Inputs and outputs (Python and IDL types).
    """

    #: Kind of entity, used in messages ("task", "workflow", ...).
    kind = "entity"
    #: Resource type of its identifier.
    resource_type: int = identifier_pb2.RESOURCE_TYPE_UNSPECIFIED
    #: Whether a call that omits an input with a default binds the default as a constant
    #: (tasks, subworkflows) or leaves it to the callee (launch plans apply their own).
    binds_defaults = True

    def __init__(self, name: str, python_interface: Interface) -> None:
        self.name = name
        self.python_interface = python_interface

    @property
    def interface(self) -> Interface:
        """The entity's interface (Python types; ``.typed_interface()`` for the IDL)."""
        return self.python_interface

    @property
    def short_name(self) -> str:
        """The last dotted component of the name."""
        return self.name.rsplit(".", 1)[-1]

    def describe(self) -> str:
        """``<kind> '<name>'``, for messages."""
        return f"{self.kind} '{self.name}'"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def id(self, settings: SerializationSettings | None = None) -> identifier_pb2.Identifier:
        """The entity's IDL identifier under ``settings`` (default: the current settings)."""
        settings = settings or current_serialization_settings()
        return settings.identifier(self.resource_type, self.name)

    # ------------------------------------------------------------------ calling
    def _kwargs_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        names = list(self.python_interface.inputs)
        if len(args) > len(names):
            raise CompilationError(
                f"{self.describe()} takes {len(names)} input(s) ({', '.join(names) or 'none'}) "
                f"but {len(args)} positional argument(s) were given"
            )
        merged: dict[str, Any] = {}
        for name, value in zip(names, args, strict=False):
            merged[name] = value
        for name, value in kwargs.items():
            if name in merged:
                raise CompilationError(f"{self.describe()} got input '{name}' twice")
            merged[name] = value
        return merged

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Record a node (inside a workflow or dynamic body) or run locally (elsewhere)."""
        inputs = self._kwargs_of(args, kwargs)
        state = current_compilation_state()
        if state is not None:
            return self.compile_call(state, inputs)
        for name, value in inputs.items():
            if contains_promise(value):
                raise CompilationError(
                    f"{self.describe()}: input '{name}' is a promise, but the call happens "
                    f"outside a @workflow or @dynamic body; promises only exist while a "
                    f"workflow is being defined"
                )
        return self._local_execute(**inputs)

    def compile_call(self, state: Any, inputs: dict[str, Any]) -> Any:
        """Record a call in the body being traced; returns the output promise(s)."""
        from caddis.core.node import create_and_link_node

        return create_and_link_node(self, state, inputs)

    def configure_node(self, node: Any) -> None:
        """Adjust a freshly recorded node (subclasses copy settings onto it)."""

    def _local_execute(self, **inputs: Any) -> Any:
        """Run the entity on this machine with native inputs and return native outputs.

        Delegates to ``caddis._local.execute_entity(entity, inputs)``, which runs the
        entity with the shared engine (so local runs behave like remote ones).

        Raises:
            NotImplementedError: Local execution is not available in this installation.
        """
        hook = local_execution_hook()
        if hook is None:
            raise NotImplementedError(
                f"{self.describe()} cannot run locally yet: local execution "
                f"(caddis._local.execute_entity) is not available in this installation. "
                f"Register it and run it on a caddis cluster instead."
            )
        return hook(self, inputs)
