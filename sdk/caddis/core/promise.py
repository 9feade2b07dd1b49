"""Promises: stand-ins for values that exist only when a workflow runs.

The body of a ``@workflow`` (and of a ``@dynamic`` at run time) is traced once: every call of
a task returns :class:`Promise` objects that name an output of the node the call recorded.
Promises can be passed to other calls, returned, compared inside ``conditional`` and
addressed into (``p.field``, ``p["key"]``, ``p[0]``), but not used as Python values: that
raises :class:`~caddis.core.errors.PromiseUsageError` saying what to do instead.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from caddis.core._types import (
    describe_literal_type,
    is_castable,
    literal_type_of,
    to_literal,
    type_name,
)
from caddis.core.errors import CompilationError, PromiseTypeError, PromiseUsageError
from caddis_idl.core.v1 import condition_pb2, literals_pb2, types_pb2

if TYPE_CHECKING:
    from caddis.core.node import Node

__all__ = [
    "GLOBAL_INPUT_NODE_ID",
    "Bound",
    "BoundCollection",
    "BoundLiteral",
    "BoundMap",
    "BoundPromise",
    "ComparisonExpression",
    "ConjunctionExpression",
    "NodeOutput",
    "Promise",
    "UnaryExpression",
    "VoidPromise",
    "bind_value",
    "binding_to_idl",
    "contains_promise",
    "promises_in",
]

#: Node id under which a workflow's own inputs are referenced (IDL convention).
GLOBAL_INPUT_NODE_ID = "start-node"

_USE_INSTEAD = (
    "Its value exists only when the workflow runs, and a workflow body runs once, when it is "
    "defined. Pass the promise to a task (which receives the real value), use @dynamic to "
    "run Python logic on it at run time, or use conditional() to branch on it."
)


@dataclass
class NodeOutput:
    """Where a promise's value comes from: an output variable of a node.

    Attributes:
        node: The node (None for the workflow's own inputs).
        var: The output variable (or workflow input) name.
        attr_path: Keys/indices into the value (``p.a["b"][0]`` -> ``("a", "b", 0)``).
    """

    node: Node | None
    var: str
    attr_path: tuple[str | int, ...] = ()

    @property
    def node_id(self) -> str:
        """The node's current id (read live: ``with_overrides(node_name=...)`` may rename)."""
        return self.node.id if self.node is not None else GLOBAL_INPUT_NODE_ID


class Promise:
    """The future value of one output of a node (or one input of the workflow).

    Attributes:
        var: Output (or workflow input) name.
        ref: Where the value comes from.
        python_type: Python type of the value.
        literal_type: IDL type of the value.
        owner: The workflow/dynamic being traced when the promise was made.
    """

    # Comparisons build expressions (for conditional), so equality is not Python equality;
    # hash by identity so promises still work as dict keys and set members.
    __hash__ = object.__hash__

    def __init__(
        self,
        var: str,
        ref: NodeOutput,
        python_type: Any,
        literal_type: types_pb2.LiteralType,
        owner: str = "workflow",
    ) -> None:
        self.var = var
        self.ref = ref
        self.python_type = python_type
        self.literal_type = literal_type
        self.owner = owner

    # ---------------------------------------------------------------- description
    @property
    def attr_path(self) -> tuple[str | int, ...]:
        """Keys/indices into the referenced value."""
        return self.ref.attr_path

    def describe(self) -> str:
        """Human description, e.g. ``output 'o0' of node n1 (task 'pkg.t')``."""
        path = "".join(f"[{k!r}]" if isinstance(k, int) else f".{k}" for k in self.attr_path)
        if self.ref.node is None:
            return f"workflow input '{self.var}{path}'"
        return f"output '{self.var}{path}' of node {self.ref.node_id} ({self.ref.node.describe()})"

    def __repr__(self) -> str:
        return f"Promise({self.ref.node_id}.{self.var}{list(self.attr_path) or ''})"

    __str__ = __repr__

    def _misuse(self, what: str) -> PromiseUsageError:
        return PromiseUsageError(f"{self.owner}: {what} {self.describe()}. {_USE_INSTEAD}")

    # ---------------------------------------------------------------- ordering and overrides
    def with_overrides(self, **overrides: Any) -> Promise:
        """Override settings of the node producing this promise (``Node.with_overrides``)."""
        self._node("with_overrides").with_overrides(**overrides)
        return self

    def runs_before(self, other: Any) -> Any:
        """Make the node of ``other`` wait for this promise's node; returns ``other``."""
        return _order(self._node(">>"), other)

    def __rshift__(self, other: Any) -> Any:
        return self.runs_before(other)

    def _node(self, what: str) -> Node:
        if self.ref.node is None:
            raise CompilationError(
                f"{self.owner}: {what} needs a node, but {self.describe()} is a workflow input"
            )
        return self.ref.node

    # ---------------------------------------------------------------- attribute paths
    def __getattr__(self, name: str) -> Promise:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._sub(name)

    def __getitem__(self, key: Any) -> Promise:
        return self._sub(key)

    def _sub(self, key: Any) -> Promise:
        sub_type = _attribute_type(self, key)
        try:
            sub_lt = literal_type_of(sub_type)
        except Exception as exc:
            raise CompilationError(
                f"{self.owner}: {self.describe()}[{key!r}] has type {type_name(sub_type)}, "
                f"which caddis cannot pass between tasks ({exc})"
            ) from exc
        ref = NodeOutput(self.ref.node, self.ref.var, (*self.ref.attr_path, key))
        return Promise(self.var, ref, sub_type, sub_lt, self.owner)

    # ---------------------------------------------------------------- conditions
    def is_true(self) -> UnaryExpression:
        """Condition: the (boolean) value is true."""
        return UnaryExpression(condition_pb2.UnaryExpression.OPERATOR_IS_TRUE, self)

    def is_false(self) -> UnaryExpression:
        """Condition: the (boolean) value is false."""
        return UnaryExpression(condition_pb2.UnaryExpression.OPERATOR_IS_FALSE, self)

    def is_none(self) -> UnaryExpression:
        """Condition: the value is None."""
        return UnaryExpression(condition_pb2.UnaryExpression.OPERATOR_IS_NONE, self)

    def is_not_none(self) -> UnaryExpression:
        """Condition: the value is not None."""
        return UnaryExpression(condition_pb2.UnaryExpression.OPERATOR_IS_NOT_NONE, self)

    def __eq__(self, other: object) -> ComparisonExpression:  # type: ignore[override]
        return ComparisonExpression(condition_pb2.ComparisonExpression.OPERATOR_EQ, self, other)

    def __ne__(self, other: object) -> ComparisonExpression:  # type: ignore[override]
        return ComparisonExpression(condition_pb2.ComparisonExpression.OPERATOR_NEQ, self, other)

    def __gt__(self, other: object) -> ComparisonExpression:
        return ComparisonExpression(condition_pb2.ComparisonExpression.OPERATOR_GT, self, other)

    def __ge__(self, other: object) -> ComparisonExpression:
        return ComparisonExpression(condition_pb2.ComparisonExpression.OPERATOR_GTE, self, other)

    def __lt__(self, other: object) -> ComparisonExpression:
        return ComparisonExpression(condition_pb2.ComparisonExpression.OPERATOR_LT, self, other)

    def __le__(self, other: object) -> ComparisonExpression:
        return ComparisonExpression(condition_pb2.ComparisonExpression.OPERATOR_LTE, self, other)

    # ---------------------------------------------------------------- misuse
    def __bool__(self) -> bool:
        raise self._misuse("cannot use as a Python bool (if/while/and/or/not)")

    def __iter__(self) -> Iterator[Any]:
        raise self._misuse("cannot iterate over (or unpack)")

    def __len__(self) -> int:
        raise self._misuse("cannot take len() of")

    def __contains__(self, item: object) -> bool:
        raise self._misuse("cannot test membership (`in`) in")

    def __index__(self) -> int:
        raise self._misuse("cannot use as an int (index, range, ...)")

    def __int__(self) -> int:
        raise self._misuse("cannot convert to int")

    def __float__(self) -> float:
        raise self._misuse("cannot convert to float")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Always raises: a promise is not callable."""
        raise self._misuse("cannot call")


def _arith(op: str) -> Any:
    def method(self: Promise, *args: Any) -> Any:
        raise self._misuse(f"cannot apply the operator {op} to")

    method.__name__ = f"__{op}__"
    return method


# Arithmetic and bitwise operators on a promise are always a mistake at definition time.
for _name, _sym in {
    "add": "+",
    "radd": "+",
    "sub": "-",
    "rsub": "-",
    "mul": "*",
    "rmul": "*",
    "truediv": "/",
    "rtruediv": "/",
    "floordiv": "//",
    "rfloordiv": "//",
    "mod": "%",
    "rmod": "%",
    "pow": "**",
    "rpow": "**",
    "neg": "unary -",
    "pos": "unary +",
    "abs": "abs()",
    "invert": "~",
    "and": "&",
    "rand": "&",
    "or": "|",
    "ror": "|",
    "xor": "^",
    "matmul": "@",
    "round": "round()",
}.items():
    setattr(Promise, f"__{_name}__", _arith(_sym))


class VoidPromise:
    """What calling an entity without outputs returns: only good for ordering and overrides.

    Attributes:
        ref: The node of the call.
        owner: The workflow being traced.
    """

    def __init__(self, node: Node, owner: str) -> None:
        self.node = node
        self.owner = owner

    @property
    def ref(self) -> NodeOutput:
        """A reference to the node (no variable)."""
        return NodeOutput(self.node, "")

    def with_overrides(self, **overrides: Any) -> VoidPromise:
        """Override settings of the node (see ``Node.with_overrides``)."""
        self.node.with_overrides(**overrides)
        return self

    def runs_before(self, other: Any) -> Any:
        """Make the node of ``other`` wait for this node; returns ``other``."""
        return _order(self.node, other)

    def __rshift__(self, other: Any) -> Any:
        return self.runs_before(other)

    def __repr__(self) -> str:
        return f"VoidPromise({self.node.id})"

    def __bool__(self) -> bool:
        raise PromiseUsageError(
            f"{self.owner}: node {self.node.id} ({self.node.describe()}) has no outputs, so its "
            f"call has no value to test."
        )


class OutputsMixin:
    """Methods of the tuple of promises returned by a call with several outputs."""

    def _first_node(self) -> Node:
        for item in typing.cast(tuple[Any, ...], self):
            if isinstance(item, Promise) and item.ref.node is not None:
                return item.ref.node
        raise CompilationError("the outputs do not belong to a node")  # pragma: no cover

    def with_overrides(self, **overrides: Any) -> Any:
        """Override settings of the node (see ``Node.with_overrides``)."""
        self._first_node().with_overrides(**overrides)
        return self

    def runs_before(self, other: Any) -> Any:
        """Make the node of ``other`` wait for this node; returns ``other``."""
        return _order(self._first_node(), other)

    def __rshift__(self, other: Any) -> Any:
        return self.runs_before(other)

    @property
    def ref(self) -> NodeOutput:
        """A reference to the node (no variable)."""
        return NodeOutput(self._first_node(), "")


def node_of(value: Any) -> Node | None:
    """The node behind a promise, void promise, outputs tuple or node; else None."""
    from caddis.core.node import Node

    if isinstance(value, Node):
        return value
    if isinstance(value, Promise):
        return value.ref.node
    if isinstance(value, VoidPromise):
        return value.node
    if isinstance(value, OutputsMixin):
        return value._first_node()
    return None


def _order(first: Node, other: Any) -> Any:
    second = node_of(other)
    if second is None:
        raise CompilationError(
            f"`>>` orders calls: the right side must be the result of a call (a promise or "
            f"node), got {type(other).__name__}"
        )
    if all(n is not first for n in second.upstream_nodes):
        second.upstream_nodes.append(first)
    return other


# ---------------------------------------------------------------------- attribute path types
def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap_optional(args[0])
    return tp


def _attribute_type(promise: Promise, key: Any) -> Any:
    tp = _unwrap_optional(promise.python_type)
    origin = typing.get_origin(tp)
    where = f"{promise.owner}: {promise.describe()} (type {type_name(promise.python_type)})"
    if isinstance(key, slice):
        raise PromiseUsageError(
            f"{where}: cannot slice a list promise; its length is unknown until the workflow "
            f"runs. Slice inside a task, or use @dynamic."
        )
    if origin in (list, Sequence, typing.List):  # noqa: UP006
        if isinstance(key, bool) or not isinstance(key, int):
            raise CompilationError(f"{where}: a list is indexed by int, got {key!r}")
        if key < 0:
            raise PromiseUsageError(
                f"{where}: cannot index a list promise from the end ([{key}]); its length is "
                f"unknown until the workflow runs. Index from the start, or use @dynamic."
            )
        return typing.get_args(tp)[0] if typing.get_args(tp) else Any
    if origin in (dict, Mapping, typing.Dict):  # noqa: UP006
        if not isinstance(key, str):
            raise CompilationError(f"{where}: dict keys in a promise path must be str, got {key!r}")
        args = typing.get_args(tp)
        return args[1] if len(args) == 2 else Any
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        if key not in hints:
            raise CompilationError(
                f"{where}: dataclass {tp.__name__} has no field {key!r}; fields: {', '.join(hints)}"
            )
        return hints[key]
    fields_ = getattr(tp, "model_fields", None)  # pydantic models
    if isinstance(fields_, dict):
        if key not in fields_:
            raise CompilationError(f"{where}: {tp.__name__} has no field {key!r}")
        return fields_[key].annotation
    raise PromiseUsageError(
        f"{where}: cannot read [{key!r}] from it at definition time; attribute paths work on "
        f"dataclasses, lists (by index) and dicts (by key). {_USE_INSTEAD}"
    )


# ---------------------------------------------------------------------- conditions
class _Expression:
    """Base of boolean expressions over promises, used only in ``conditional().if_()``."""

    def __bool__(self) -> bool:
        raise PromiseUsageError(
            f"the condition {self!r} compares promises, whose values exist only when the "
            f"workflow runs, so it cannot be used as a Python bool (if/and/or/not). Use "
            f"conditional(...).if_(...) with & and | instead, pass the values to a task, "
            f"or use @dynamic."
        )

    def __and__(self, other: Any) -> ConjunctionExpression:
        return ConjunctionExpression(
            condition_pb2.ConjunctionExpression.LOGICAL_OPERATOR_AND, self, other
        )

    def __or__(self, other: Any) -> ConjunctionExpression:
        return ConjunctionExpression(
            condition_pb2.ConjunctionExpression.LOGICAL_OPERATOR_OR, self, other
        )

    def promises(self) -> list[Promise]:
        """The promises the expression reads, in order."""
        raise NotImplementedError

    def to_idl(self, var_of: Mapping[int, str]) -> condition_pb2.BooleanExpression:
        """The IDL expression; ``var_of`` maps ``id(promise)`` to its branch input name."""
        raise NotImplementedError


_OPERATOR_SYMBOLS = {
    condition_pb2.ComparisonExpression.OPERATOR_EQ: "==",
    condition_pb2.ComparisonExpression.OPERATOR_NEQ: "!=",
    condition_pb2.ComparisonExpression.OPERATOR_GT: ">",
    condition_pb2.ComparisonExpression.OPERATOR_GTE: ">=",
    condition_pb2.ComparisonExpression.OPERATOR_LT: "<",
    condition_pb2.ComparisonExpression.OPERATOR_LTE: "<=",
}

# A condition operand constant must be a primitive (or None); these Python types map to one.
_PRIMITIVE_TYPES = (bool, int, float, str, datetime.datetime, datetime.timedelta)


class ComparisonExpression(_Expression):
    """``lhs <op> rhs`` where at least one side is a promise."""

    def __init__(self, op: int, lhs: Any, rhs: Any) -> None:
        self.op = op
        self.lhs = lhs
        self.rhs = rhs
        for side in (lhs, rhs):
            if not isinstance(side, Promise):
                _check_operand(side)
        if isinstance(lhs, Promise) and isinstance(rhs, Promise):
            return
        if not isinstance(lhs, Promise) and not isinstance(rhs, Promise):  # pragma: no cover
            raise CompilationError("a comparison in a condition needs at least one promise")

    def __repr__(self) -> str:
        symbol = _OPERATOR_SYMBOLS.get(self.op, "?")  # type: ignore[call-overload]
        return f"({self.lhs!r} {symbol} {self.rhs!r})"

    def promises(self) -> list[Promise]:
        """The promises compared."""
        return [p for p in (self.lhs, self.rhs) if isinstance(p, Promise)]

    def to_idl(self, var_of: Mapping[int, str]) -> condition_pb2.BooleanExpression:
        """The IDL comparison."""
        return condition_pb2.BooleanExpression(
            comparison=condition_pb2.ComparisonExpression(
                operator=self.op,  # type: ignore[arg-type]
                left_value=_operand(self.lhs, var_of),
                right_value=_operand(self.rhs, var_of),
            )
        )


class UnaryExpression(_Expression):
    """A test of one promise: is true / is false / is none / is not none."""

    def __init__(self, op: int, operand: Promise) -> None:
        self.op = op
        self.operand = operand

    def __repr__(self) -> str:
        name = condition_pb2.UnaryExpression.Operator.Name(self.op)  # type: ignore[arg-type]
        return f"{name.removeprefix('OPERATOR_').lower()}({self.operand!r})"

    def promises(self) -> list[Promise]:
        """The promise tested."""
        return [self.operand]

    def to_idl(self, var_of: Mapping[int, str]) -> condition_pb2.BooleanExpression:
        """The IDL test."""
        return condition_pb2.BooleanExpression(
            unary=condition_pb2.UnaryExpression(
                operator=self.op,  # type: ignore[arg-type]
                operand=_operand(self.operand, var_of),
            )
        )


class ConjunctionExpression(_Expression):
    """``a & b`` or ``a | b`` of two expressions."""

    def __init__(self, op: int, lhs: Any, rhs: Any) -> None:
        for side in (lhs, rhs):
            if isinstance(side, Promise):
                raise CompilationError(
                    f"{side.owner}: {side.describe()} is combined with & or | directly; "
                    f"compare it first, e.g. `p.is_true() & q.is_true()` or `(p == 1) & ...`"
                )
            if not isinstance(side, _Expression):
                raise CompilationError(
                    f"& and | in a condition combine comparisons of promises, got "
                    f"{type(side).__name__} {side!r}. Use parentheses: `(a > 1) & (b < 2)`."
                )
        self.op = op
        self.lhs: _Expression = lhs
        self.rhs: _Expression = rhs

    def __repr__(self) -> str:
        sym = "&" if self.op == condition_pb2.ConjunctionExpression.LOGICAL_OPERATOR_AND else "|"
        return f"({self.lhs!r} {sym} {self.rhs!r})"

    def promises(self) -> list[Promise]:
        """The promises read by both sides."""
        return [*self.lhs.promises(), *self.rhs.promises()]

    def to_idl(self, var_of: Mapping[int, str]) -> condition_pb2.BooleanExpression:
        """The IDL conjunction."""
        return condition_pb2.BooleanExpression(
            conjunction=condition_pb2.ConjunctionExpression(
                operator=self.op,  # type: ignore[arg-type]
                left_expression=self.lhs.to_idl(var_of),
                right_expression=self.rhs.to_idl(var_of),
            )
        )


def _check_operand(value: Any) -> None:
    if value is None or isinstance(value, (*_PRIMITIVE_TYPES, enum.Enum)):
        return
    raise CompilationError(
        f"a condition can compare a promise only with a primitive constant (int, float, str, "
        f"bool, datetime, timedelta, None) or another promise, got {type(value).__name__} "
        f"{value!r}"
    )


def _operand(value: Any, var_of: Mapping[int, str]) -> condition_pb2.Operand:
    if isinstance(value, Promise):
        return condition_pb2.Operand(var=var_of[id(value)])
    if value is None:
        return condition_pb2.Operand(scalar=literals_pb2.Scalar(none_type=literals_pb2.Void()))
    if isinstance(value, enum.Enum):
        value = value.value
    py_type = type(value)
    lit = to_literal(value, py_type, literal_type_of(py_type))
    return condition_pb2.Operand(scalar=lit.scalar)


# ---------------------------------------------------------------------- bindings
@dataclass
class BoundPromise:
    """A node input fed by a promise."""

    promise: Promise
    union_target: types_pb2.LiteralType | None = None


@dataclass
class BoundLiteral:
    """A node input fed by a constant."""

    literal: literals_pb2.Literal


@dataclass
class BoundCollection:
    """A list input whose elements are bound one by one (some may be promises)."""

    items: list[Bound]


@dataclass
class BoundMap:
    """A dict input whose values are bound one by one (some may be promises)."""

    items: dict[str, Bound]


Bound = BoundPromise | BoundLiteral | BoundCollection | BoundMap


def contains_promise(value: Any) -> bool:
    """True when ``value`` is or holds (in lists, tuples, dicts) a promise."""
    if isinstance(value, Promise | VoidPromise | OutputsMixin):
        return True
    if isinstance(value, list | tuple):
        return any(contains_promise(v) for v in value)
    if isinstance(value, dict):
        return any(contains_promise(v) for v in value.values())
    return False


def promises_in(bound: Bound) -> Iterator[Promise]:
    """Every promise a binding reads."""
    if isinstance(bound, BoundPromise):
        yield bound.promise
    elif isinstance(bound, BoundCollection):
        for item in bound.items:
            yield from promises_in(item)
    elif isinstance(bound, BoundMap):
        for item in bound.items.values():
            yield from promises_in(item)


def bind_value(
    where: str, var: str, value: Any, py_type: Any, expected: types_pb2.LiteralType
) -> Bound:
    """Bind a Python value (constant, promise, or list/dict holding promises) to an input.

    Args:
        where: The node being bound, for errors (``workflow 'wf': node n1 (task 't')``).
        var: Input variable name.
        value: What the caller passed.
        py_type: The input's Python type.
        expected: The input's IDL type.

    Raises:
        PromiseTypeError: A promise's type does not fit the input.
        CompilationError: The value cannot be converted to the input's type.
    """
    if isinstance(value, Promise):
        if not is_castable(value.literal_type, expected):
            raise PromiseTypeError(
                f"{where}: input '{var}' expects {type_name(py_type)} "
                f"({describe_literal_type(expected)}) but received {value.describe()} of type "
                f"{type_name(value.python_type)} ({describe_literal_type(value.literal_type)})"
            )
        union = expected if _is_union(expected) and not _is_union(value.literal_type) else None
        return BoundPromise(value, union)
    if isinstance(value, VoidPromise):
        raise PromiseTypeError(
            f"{where}: input '{var}' received the result of node {value.node.id} "
            f"({value.node.describe()}), which has no outputs"
        )
    if isinstance(value, OutputsMixin):
        names = ", ".join(typing.cast(Any, value)._fields)
        raise PromiseTypeError(
            f"{where}: input '{var}' received all outputs ({names}) of node "
            f"{value._first_node().id} at once; unpack them first (`a, b = t(...)`) or pick "
            f"one (`t(...).{names.split(', ')[0]}`)"
        )
    if isinstance(value, _Expression):
        raise PromiseTypeError(
            f"{where}: input '{var}' received the condition {value!r}; conditions only work in "
            f"conditional(...).if_(...). To pass a computed bool, compute it in a task."
        )
    if contains_promise(value):
        return _bind_container(where, var, value, py_type, expected)
    try:
        return BoundLiteral(to_literal(value, py_type, expected))
    except Exception as exc:
        raise CompilationError(
            f"{where}: input '{var}' expects {type_name(py_type)} but received "
            f"{_short(value)} of type {type(value).__name__}: {exc}"
        ) from exc


def _bind_container(
    where: str, var: str, value: Any, py_type: Any, expected: types_pb2.LiteralType
) -> Bound:
    tp = _unwrap_optional(py_type)
    lt = expected
    if _is_union(lt):
        # Optional[List[T]] given a list: bind against the list variant.
        variants = [v for v in lt.union_type.variants if v.WhichOneof("type") != "simple"]
        if len(variants) == 1:
            lt = variants[0]
    args = typing.get_args(tp)
    if isinstance(value, list | tuple):
        if lt.WhichOneof("type") != "collection_type":
            raise PromiseTypeError(
                f"{where}: input '{var}' expects {type_name(py_type)} but received a list "
                f"holding promises"
            )
        elem_type = args[0] if args else Any
        return BoundCollection(
            [
                bind_value(where, f"{var}[{i}]", v, elem_type, lt.collection_type)
                for i, v in enumerate(value)
            ]
        )
    if lt.WhichOneof("type") != "map_value_type":
        raise PromiseTypeError(
            f"{where}: input '{var}' expects {type_name(py_type)} but received a dict holding "
            f"promises; only Dict[str, T] inputs can be built from promises"
        )
    val_type = args[1] if len(args) == 2 else Any
    out: dict[str, Bound] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise CompilationError(f"{where}: input '{var}' has a non-str key {k!r}")
        out[k] = bind_value(where, f"{var}[{k!r}]", v, val_type, lt.map_value_type)
    return BoundMap(out)


def _is_union(lt: types_pb2.LiteralType) -> bool:
    return lt.WhichOneof("type") == "union_type"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _literal_to_binding(lit: literals_pb2.Literal) -> literals_pb2.BindingData:
    kind = lit.WhichOneof("value")
    if kind == "collection":
        return literals_pb2.BindingData(
            collection=literals_pb2.BindingDataCollection(
                bindings=[_literal_to_binding(x) for x in lit.collection.literals]
            )
        )
    if kind == "map":
        bmap = literals_pb2.BindingDataMap()
        for k, v in lit.map.literals.items():
            bmap.bindings[k].CopyFrom(_literal_to_binding(v))
        return literals_pb2.BindingData(map=bmap)
    if kind == "offloaded_metadata":
        return literals_pb2.BindingData(offloaded_metadata=lit.offloaded_metadata)
    return literals_pb2.BindingData(scalar=lit.scalar)


def binding_to_idl(bound: Bound) -> literals_pb2.BindingData:
    """The IDL ``BindingData`` of a binding."""
    if isinstance(bound, BoundPromise):
        p = bound.promise
        ref = literals_pb2.OutputReference(node_id=p.ref.node_id, var=p.ref.var)
        for key in p.ref.attr_path:
            if isinstance(key, int):
                ref.attr_path.add(int_value=key)
            else:
                ref.attr_path.add(string_value=str(key))
        data = literals_pb2.BindingData(promise=ref)
        if bound.union_target is not None:
            data.union.target_type.CopyFrom(bound.union_target)
        return data
    if isinstance(bound, BoundLiteral):
        return _literal_to_binding(bound.literal)
    if isinstance(bound, BoundCollection):
        return literals_pb2.BindingData(
            collection=literals_pb2.BindingDataCollection(
                bindings=[binding_to_idl(x) for x in bound.items]
            )
        )
    bmap = literals_pb2.BindingDataMap()
    for k, v in bound.items.items():
        bmap.bindings[k].CopyFrom(binding_to_idl(v))
    return literals_pb2.BindingData(map=bmap)
