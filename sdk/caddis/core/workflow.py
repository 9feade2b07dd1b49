"""Workflows: ``@workflow`` traces its body once, at definition time, into a graph of nodes."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any, TypeVar, overload

from caddis.core.base import Entity
from caddis.core.context import CompilationState, compilation_state
from caddis.core.errors import CompilationError
from caddis.core.interface import Interface, transform_function_to_interface
from caddis.core.node import Node, bind_inputs
from caddis.core.promise import (
    Bound,
    NodeOutput,
    OutputsMixin,
    Promise,
    VoidPromise,
    bind_value,
)
from caddis.core.resolver import module_name_of
from caddis.core.settings import SerializationSettings
from caddis_idl.core.v1 import identifier_pb2, workflow_pb2

__all__ = [
    "FAILURE_NODE_ID",
    "PythonFunctionWorkflow",
    "WorkflowBase",
    "WorkflowFailurePolicy",
    "workflow",
]

#: Id of the node that runs ``on_failure``.
FAILURE_NODE_ID = "fn0"
#: Input through which the failure node receives the workflow's error (filled by the engine).
FAILURE_ERROR_INPUT = "err"

F = TypeVar("F", bound=Callable[..., Any])


class WorkflowFailurePolicy(enum.Enum):
    """What a workflow does when a node fails.

    Attributes:
        FAIL_IMMEDIATELY: Fail the workflow at once (running nodes are aborted).
        FAIL_AFTER_EXECUTABLE_NODES_COMPLETE: Let every node that can still run finish,
            then fail.
    """

    FAIL_IMMEDIATELY = 0
    FAIL_AFTER_EXECUTABLE_NODES_COMPLETE = 1

    def to_idl(self) -> int:
        """The IDL ``OnFailurePolicy`` value."""
        policy = workflow_pb2.WorkflowMetadata.OnFailurePolicy
        if self is WorkflowFailurePolicy.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE:
            return int(policy.ON_FAILURE_POLICY_FAIL_AFTER_EXECUTABLE_NODES_COMPLETE)
        return int(policy.ON_FAILURE_POLICY_FAIL_IMMEDIATELY)


def trace_outputs(
    owner: str, result: Any, interface: Interface, *, what: str = "its body"
) -> dict[str, Bound]:
    """Bind what a traced body returned to the declared outputs.

    Raises:
        CompilationError: The body returned the wrong number of values.
        PromiseTypeError: A returned promise's type does not fit its output.
    """
    names = list(interface.outputs)
    described = ", ".join(f"{n}: {_tn(interface.outputs[n])}" for n in names)
    if not names:
        if result is None or isinstance(result, VoidPromise):
            return {}
        raise CompilationError(
            f"{owner} declares no outputs but {what} returned {_describe_value(result)}; "
            f"annotate the return type (-> int, -> Tuple[int, str], ...) or return nothing"
        )
    if len(names) == 1 and not interface.outputs_are_tuple:
        values: tuple[Any, ...] = (result,)
        if isinstance(result, OutputsMixin):
            values = tuple(result)  # type: ignore[arg-type]
    elif isinstance(result, tuple | list) and not isinstance(result, Promise):
        values = tuple(result)
    else:
        values = (result,)
    if result is None or isinstance(result, VoidPromise):
        raise CompilationError(
            f"{owner} declares {len(names)} output(s) ({described}) but {what} returned "
            f"nothing; return the value(s), e.g. `return t(...)`"
        )
    if len(values) != len(names):
        raise CompilationError(
            f"{owner} declares {len(names)} output(s) ({described}) but {what} returned "
            f"{len(values)} value(s)"
        )
    where = f"{owner}: workflow outputs"
    return {
        name: bind_value(
            where, name, value, interface.outputs[name], interface.output_literal_types[name]
        )
        for name, value in zip(names, values, strict=True)
    }


def _tn(tp: Any) -> str:
    from caddis.core._types import type_name

    return type_name(tp)


def _describe_value(value: Any) -> str:
    if isinstance(value, Promise):
        return value.describe()
    if isinstance(value, OutputsMixin):
        return f"{len(value)} outputs of node {value._first_node().id}"  # type: ignore[arg-type]
    return f"a {type(value).__name__}"


def input_promises(interface: Interface, owner: str) -> dict[str, Promise]:
    """Promises standing for a workflow's own inputs (read from ``start-node``)."""
    return {
        name: Promise(
            name,
            NodeOutput(None, name),
            py_type,
            interface.input_literal_types[name],
            owner,
        )
        for name, py_type in interface.inputs.items()
    }


class WorkflowBase(Entity):
    """A workflow: typed inputs and outputs and a graph of nodes.

    Attributes:
        nodes: The nodes, in call order.
        output_bindings: Output name to what feeds it.
        failure_policy: What happens when a node fails.
        on_failure: Entity run when the workflow fails, if any.
        failure_node: The node running ``on_failure``.
        interruptible: Default of the nodes' ``interruptible``.
    """

    kind = "workflow"
    resource_type = identifier_pb2.RESOURCE_TYPE_WORKFLOW

    def __init__(
        self,
        name: str,
        python_interface: Interface,
        *,
        failure_policy: WorkflowFailurePolicy | None = None,
        on_failure: Entity | None = None,
        interruptible: bool = False,
        docs: Any = None,
    ) -> None:
        super().__init__(name, python_interface)
        if failure_policy is not None and not isinstance(failure_policy, WorkflowFailurePolicy):
            raise CompilationError(
                f"{self.describe()}: failure_policy must be a WorkflowFailurePolicy, got "
                f"{failure_policy!r}"
            )
        self.failure_policy = failure_policy or WorkflowFailurePolicy.FAIL_IMMEDIATELY
        self.on_failure = on_failure
        self.interruptible = interruptible
        self.docs = docs
        self.nodes: list[Node] = []
        self.output_bindings: dict[str, Bound] = {}
        self.failure_node: Node | None = None

    def _build_failure_node(self) -> None:
        handler = self.on_failure
        if handler is None:
            return
        if not isinstance(handler, Entity):
            raise CompilationError(
                f"{self.describe()}: on_failure must be a task or workflow, got {handler!r}"
            )
        owner = self.describe()
        state = CompilationState(owner)
        iface = handler.python_interface
        kwargs: dict[str, Any] = {}
        promises = input_promises(self.python_interface, owner)
        for name in iface.inputs:
            if name == FAILURE_ERROR_INPUT:
                continue
            if name in promises:
                kwargs[name] = promises[name]
            elif name not in iface.defaults:
                raise CompilationError(
                    f"{owner}: on_failure {handler.describe()} has input '{name}', which the "
                    f"workflow does not have; a failure handler receives the workflow's inputs "
                    f"(by name) and optionally '{FAILURE_ERROR_INPUT}'"
                )
        # The error input is filled in by the engine when the workflow fails.
        bindings = bind_inputs(
            handler, FAILURE_NODE_ID, state, kwargs, skip=frozenset({FAILURE_ERROR_INPUT})
        )
        node = Node(FAILURE_NODE_ID, handler, bindings, owner)
        handler.configure_node(node)
        self.failure_node = node

    # ------------------------------------------------------------------ IDL
    def dependencies(self) -> list[Any]:
        """The entities its nodes (and failure node) run, in node order."""
        out: list[Any] = [n.entity for n in self.nodes]
        if self.failure_node is not None:
            out.append(self.failure_node.entity)
        return out

    def fill_node_target(
        self, out: workflow_pb2.Node, node: Node, settings: SerializationSettings
    ) -> None:
        """Make ``out`` a subworkflow node running this workflow."""
        out.workflow_node.sub_workflow_ref.CopyFrom(self.id(settings))

    def to_template(
        self, settings: SerializationSettings | None = None
    ) -> workflow_pb2.WorkflowTemplate:
        """The registrable ``WorkflowTemplate``."""
        from caddis.core.translator import workflow_template

        return workflow_template(self, settings)

    def compile(self, settings: SerializationSettings | None = None) -> Any:
        """Compile with the shared compiler into a ``CompiledWorkflowClosure``.

        Raises:
            caddis_propeller.compiler.CompilationError: The compiler found problems.
        """
        from caddis.core.translator import compile_closure

        return compile_closure(self, settings)


class PythonFunctionWorkflow(WorkflowBase):
    """A workflow defined by a Python function (what ``@workflow`` returns).

    Attributes:
        workflow_function: The user's function.
    """

    def __init__(
        self,
        workflow_function: Callable[..., Any],
        *,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        module = module_name_of(
            workflow_function.__module__,
            getattr(workflow_function, "__globals__", {}).get("__file__"),
        )
        name = name or f"{module}.{workflow_function.__name__}"
        interface = transform_function_to_interface(workflow_function, f"workflow '{name}'")
        super().__init__(name, interface, **kwargs)
        self.workflow_function = workflow_function
        self.instantiated_in = module
        functools.update_wrapper(self, workflow_function)
        self.compile_body()

    def compile_body(self) -> None:
        """Trace the body with promises for inputs, recording nodes and output bindings."""
        owner = self.describe()
        state = CompilationState(owner, mode="workflow")
        with compilation_state(state):
            result = self.workflow_function(**input_promises(self.python_interface, owner))
        from caddis.core.condition import check_no_open_conditionals

        check_no_open_conditionals(state)
        self.nodes = state.nodes
        self.output_bindings = trace_outputs(owner, result, self.python_interface)
        self._build_failure_node()


@overload
def workflow(_workflow_function: F, /) -> PythonFunctionWorkflow: ...


@overload
def workflow(
    _workflow_function: None = None,
    /,
    *,
    failure_policy: WorkflowFailurePolicy | None = None,
    interruptible: bool = False,
    on_failure: Entity | None = None,
    docs: Any = None,
    name: str | None = None,
) -> Callable[[Callable[..., Any]], PythonFunctionWorkflow]: ...


def workflow(
    _workflow_function: Callable[..., Any] | None = None,
    /,
    *,
    failure_policy: WorkflowFailurePolicy | None = None,
    interruptible: bool = False,
    on_failure: Entity | None = None,
    docs: Any = None,
    name: str | None = None,
) -> PythonFunctionWorkflow | Callable[[Callable[..., Any]], PythonFunctionWorkflow]:
    """Make a Python function a workflow; use bare (``@workflow``) or with options.

    The body runs once, now, with promises for its inputs: calls of tasks, workflows and
    launch plans in it record nodes. Calling the workflow later (``wf(x=1)``) runs it locally.

    Args:
        _workflow_function: The function (when used bare).
        failure_policy: What happens when a node fails.
        interruptible: Default ``interruptible`` of the workflow's nodes.
        on_failure: A task or workflow run when the workflow fails; it receives the
            workflow's inputs by name and, if it declares one, the error as ``err``.
        docs: Documentation of the workflow.
        name: Registered name; defaults to ``<module>.<function>``.

    Returns:
        A :class:`PythonFunctionWorkflow`, or a decorator making one.

    Raises:
        MissingTypeError: An input lacks a type hint, or a type has no caddis type.
        CompilationError: The body uses a promise as a value, leaves an input unbound,
            passes a promise of the wrong type, or returns the wrong number of outputs.
    """

    def wrapper(fn: Callable[..., Any]) -> PythonFunctionWorkflow:
        return PythonFunctionWorkflow(
            fn,
            name=name,
            failure_policy=failure_policy,
            on_failure=on_failure,
            interruptible=interruptible,
            docs=docs,
        )

    if _workflow_function is not None:
        return wrapper(_workflow_function)
    return wrapper
