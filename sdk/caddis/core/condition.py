"""``conditional()``: branch nodes, chosen at run time by comparing promises.

::

    result = (
        conditional("size")
        .if_(n < 10).then(small(n=n))
        .elif_((n >= 10) & (n < 100)).then(medium(n=n))
        .else_().fail("n is too large")
    )

Each ``then`` takes exactly one call; all branches that do not ``fail`` must produce the
same outputs, which the branch node then produces.
"""

from __future__ import annotations

from typing import Any

from caddis.core._types import describe_literal_type
from caddis.core.context import (
    _COMPILATION,
    CompilationState,
    current_compilation_state,
)
from caddis.core.errors import CompilationError
from caddis.core.interface import Interface
from caddis.core.node import Node, outputs_of
from caddis.core.promise import (
    GLOBAL_INPUT_NODE_ID,
    Bound,
    BoundPromise,
    Promise,
    _Expression,
    node_of,
)
from caddis.core.settings import SerializationSettings
from caddis_idl.core.v1 import types_pb2, workflow_pb2

__all__ = ["BranchEntity", "ConditionalSection", "check_no_open_conditionals", "conditional"]


class _Case:
    def __init__(self, section: ConditionalSection, expr: _Expression | None, label: str) -> None:
        self.section = section
        self.expr = expr
        self.label = label
        self.node: Node | None = None
        self.error: str | None = None

    def then(self, result: Any) -> Any:
        """The call to run when this case is taken (exactly one call)."""
        return self.section._then(self, result)

    def fail(self, message: str) -> Any:
        """Fail the workflow with ``message`` when this case is taken (``else_`` only)."""
        return self.section._fail(self, message)


class ConditionalSection:
    """An open ``conditional(...)``: collects cases until ``else_()`` closes it."""

    def __init__(self, name: str) -> None:
        outer = current_compilation_state()
        if outer is None:
            raise CompilationError(
                f"conditional({name!r}) can only be used inside a @workflow or @dynamic body"
            )
        if not isinstance(name, str) or not name:
            raise CompilationError(f"conditional() needs a non-empty name, got {name!r}")
        self.name = name
        self.outer = outer
        self.node_id = outer.next_node_id()
        self.owner = outer.owner
        self.where = f"{self.owner}: conditional '{name}' (node {self.node_id})"
        # Calls made while the conditional is open land in the branch, not the workflow.
        self.inner = CompilationState(self.owner, mode="branch", prefix=f"{self.node_id}-")
        self.cases: list[_Case] = []
        self._mark = 0
        self._closed = False
        outer.open_sections.append(self)
        _COMPILATION.set(self.inner)

    # ------------------------------------------------------------------ building
    def _condition(self, expr: Any) -> _Expression:
        if isinstance(expr, Promise):
            if expr.literal_type.simple != types_pb2.SIMPLE_TYPE_BOOLEAN:
                raise CompilationError(
                    f"{self.where}: the condition {expr.describe()} is not a bool; compare it, "
                    f"e.g. `.if_(x > 0)`"
                )
            return expr.is_true()
        if isinstance(expr, bool):
            raise CompilationError(
                f"{self.where}: the condition is the Python bool {expr}, known at definition "
                f"time; a condition must compare promises (e.g. `.if_(x > 0)`). Use a plain "
                f"`if` for values known now."
            )
        if not isinstance(expr, _Expression):
            raise CompilationError(
                f"{self.where}: a condition must compare promises (`x > 0`, `x.is_true()`, "
                f"`(a > 1) & (b < 2)`), got {type(expr).__name__} {expr!r}"
            )
        return expr

    def _check_no_calls(self, what: str) -> None:
        if len(self.inner.nodes) != self._mark:
            extra = self.inner.nodes[self._mark]
            raise CompilationError(
                f"{self.where}: {extra.describe()} is called inside {what}; call it before "
                f"conditional() and compare its result"
            )

    def _open_case(self, expr: Any, label: str) -> _Case:
        if self._closed:
            raise CompilationError(f"{self.where}: the conditional is already closed by else_()")
        if self.cases and self.cases[-1].node is None and self.cases[-1].error is None:
            raise CompilationError(f"{self.where}: {self.cases[-1].label} has no then(...)")
        self._check_no_calls(f"the condition of {label}")
        case = _Case(self, None if expr is None else self._condition(expr), label)
        self.cases.append(case)
        return case

    def if_(self, expr: Any) -> _Case:
        """The first case."""
        if self.cases:
            raise CompilationError(f"{self.where}: if_() must come first, and only once")
        return self._open_case(expr, "if_")

    def elif_(self, expr: Any) -> _Case:
        """A further case, tried when the earlier ones are false."""
        if not self.cases:
            raise CompilationError(f"{self.where}: elif_() needs an if_() first")
        return self._open_case(expr, f"elif_ #{len(self.cases)}")

    def else_(self) -> _Case:
        """The case taken when no condition holds; ``then(...)`` or ``fail(...)`` closes."""
        if not self.cases:
            raise CompilationError(f"{self.where}: else_() needs an if_() first")
        case = self._open_case(None, "else_")
        return case

    def _then(self, case: _Case, result: Any) -> Any:
        new = self.inner.nodes[self._mark :]
        if len(new) != 1:
            raise CompilationError(
                f"{self.where}: {case.label}.then(...) must contain exactly one call of a "
                f"task, workflow or launch plan, found {len(new)}"
                + ("" if not new else f" ({', '.join(n.describe() for n in new)})")
                + "; wrap several calls in a @workflow and call that"
            )
        node = new[0]
        if node_of(result) is not node:
            raise CompilationError(
                f"{self.where}: {case.label}.then(...) must be given the result of the call "
                f"made in it"
            )
        self._mark = len(self.inner.nodes)
        case.node = node
        if case.expr is None:
            return self._close()
        return self

    def _fail(self, case: _Case, message: str) -> Any:
        if case.expr is not None:
            raise CompilationError(f"{self.where}: only else_() can fail(...)")
        self._check_no_calls("fail()")
        case.error = str(message)
        return self._close()

    # ------------------------------------------------------------------ closing
    def _close(self) -> Any:
        self._closed = True
        _COMPILATION.set(self.outer)
        if self in self.outer.open_sections:
            self.outer.open_sections.remove(self)
        producing = [c for c in self.cases if c.node is not None]
        if not producing:
            raise CompilationError(f"{self.where}: every case fails; nothing can run")
        first = producing[0]
        assert first.node is not None
        iface = first.node.entity.python_interface
        for case in producing[1:]:
            assert case.node is not None
            other = case.node.entity.python_interface
            self._check_same_outputs(first, iface, case, other)
        bindings, var_of = self._condition_bindings()
        entity = BranchEntity(self, iface, var_of)
        node = Node(self.node_id, entity, bindings, self.owner)
        node.metadata_name = self.name
        self.outer.add_node(node)
        return outputs_of(node, entity.python_interface, self.owner)

    def _check_same_outputs(self, a: _Case, ia: Interface, b: _Case, ib: Interface) -> None:
        if list(ia.outputs) != list(ib.outputs):
            raise CompilationError(
                f"{self.where}: all branches must produce the same outputs, but {a.label} "
                f"produces ({', '.join(ia.outputs) or 'none'}) and {b.label} produces "
                f"({', '.join(ib.outputs) or 'none'})"
            )
        for name in ia.outputs:
            ta, tb = ia.output_literal_types[name], ib.output_literal_types[name]
            if ta != tb:
                raise CompilationError(
                    f"{self.where}: output '{name}' is {describe_literal_type(ta)} in "
                    f"{a.label} but {describe_literal_type(tb)} in {b.label}; all branches "
                    f"must agree"
                )

    def _condition_bindings(self) -> tuple[dict[str, Bound], dict[int, str]]:
        bindings: dict[str, Bound] = {}
        var_of: dict[int, str] = {}
        names: dict[tuple[str, str, tuple[Any, ...]], str] = {}
        for case in self.cases:
            if case.expr is None:
                continue
            for p in case.expr.promises():
                key = (p.ref.node_id, p.ref.var, p.ref.attr_path)
                if key not in names:
                    path = "".join(f".{k}" for k in p.ref.attr_path)
                    names[key] = f"{p.ref.node_id}.{p.ref.var}{path}"
                    bindings[names[key]] = BoundPromise(p)
                var_of[id(p)] = names[key]
        return bindings, var_of


class BranchEntity:
    """What a branch node runs: its cases. Not registrable on its own."""

    kind = "branch"
    resource_type = 0

    def __init__(
        self, section: ConditionalSection, iface: Interface, var_of: dict[int, str]
    ) -> None:
        self.section = section
        self.name = section.name
        self.short_name = section.name
        self.python_interface = Interface(
            inputs={},
            outputs=dict(iface.outputs),
            output_tuple_name=iface.output_tuple_name,
            outputs_are_tuple=iface.outputs_are_tuple,
            output_literal_types=dict(iface.output_literal_types),
        )
        self.var_of = var_of

    def describe(self) -> str:
        """``conditional '<name>'``."""
        return f"conditional '{self.name}'"

    def dependencies(self) -> list[Any]:
        """The entities the cases run."""
        return [c.node.entity for c in self.section.cases if c.node is not None]

    def upstream_ids(self) -> list[str]:
        """Nodes the cases read from, outside the branch."""
        prefix = self.section.inner.prefix
        ids: list[str] = []
        for case in self.section.cases:
            if case.node is None:
                continue
            for nid in case.node.upstream_node_ids():
                if not nid.startswith(prefix) and nid != GLOBAL_INPUT_NODE_ID and nid not in ids:
                    ids.append(nid)
        return ids

    def fill_node_target(
        self, out: workflow_pb2.Node, node: Node, settings: SerializationSettings
    ) -> None:
        """Make ``out`` a branch node."""
        from caddis.core.translator import node_to_idl

        if_else = out.branch_node.if_else
        for i, case in enumerate(self.section.cases):
            if case.expr is None:
                if case.node is not None:
                    if_else.else_node.CopyFrom(node_to_idl(case.node, settings))
                else:
                    if_else.error.failed_node_id = node.id
                    if_else.error.message = case.error or ""
                continue
            assert case.node is not None
            block = if_else.case if i == 0 else if_else.other.add()
            block.condition.CopyFrom(case.expr.to_idl(self.var_of))
            block.then_node.CopyFrom(node_to_idl(case.node, settings))


def conditional(name: str) -> ConditionalSection:
    """Start a branch: ``conditional("name").if_(cond).then(call)...else_().then(call)``.

    Args:
        name: Name of the branch node (shown in the UI and in errors).

    Raises:
        CompilationError: Used outside a workflow or dynamic body.
    """
    return ConditionalSection(name)


def check_no_open_conditionals(state: CompilationState) -> None:
    """Raise when a traced body left a conditional without ``else_()``."""
    for section in state.open_sections:
        raise CompilationError(
            f"{section.where} is never closed; end it with .else_().then(...) or "
            f'.else_().fail("message")'
        )
