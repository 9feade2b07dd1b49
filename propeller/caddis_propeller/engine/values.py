"""Literal helpers for the engine: attribute paths and branch conditions (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import struct_pb2

from caddis_idl.core.v1 import condition_pb2, literals_pb2
from caddis_propeller.engine.interfaces import BinaryAttrResolver

_CMP = condition_pb2.ComparisonExpression.Operator
_UN = condition_pb2.UnaryExpression.Operator
_AND = condition_pb2.ConjunctionExpression.LogicalOperator.LOGICAL_OPERATOR_AND


class ResolutionError(Exception):
    """A binding, attribute path or condition could not be evaluated (a user error)."""


def struct_to_literal(value: struct_pb2.Value) -> literals_pb2.Literal:
    """Convert a Struct value to a literal: numbers, strings, bools, None, lists, dicts.

    Integral numbers become integers (Struct stores every number as a double, but a dataclass
    field read this way was almost always an int; floats downstream accept ints).
    """
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        n = value.number_value
        if n.is_integer() and abs(n) < 2**63:
            return literals_pb2.Literal(
                scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=int(n)))
            )
        return literals_pb2.Literal(
            scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(float_value=n))
        )
    if kind == "string_value":
        return literals_pb2.Literal(
            scalar=literals_pb2.Scalar(
                primitive=literals_pb2.Primitive(string_value=value.string_value)
            )
        )
    if kind == "bool_value":
        return literals_pb2.Literal(
            scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=value.bool_value))
        )
    if kind == "struct_value":
        return literals_pb2.Literal(scalar=literals_pb2.Scalar(generic=value.struct_value))
    if kind == "list_value":
        return literals_pb2.Literal(
            collection=literals_pb2.LiteralCollection(
                literals=[struct_to_literal(v) for v in value.list_value.values]
            )
        )
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(none_type=literals_pb2.Void()))


def resolve_attr_path(
    literal: literals_pb2.Literal,
    path: Sequence[str | int],
    binary_resolver: BinaryAttrResolver | None,
) -> literals_pb2.Literal:
    """Follow an attribute path (``o0.a[2]["k"]``) into a literal.

    Collections take int indices, maps and Struct values take keys; Unions are looked
    through; Binary values are delegated to ``binary_resolver``.

    Raises:
        ResolutionError: When a step does not exist or cannot be taken.
    """
    cur = literal
    for pos, attr in enumerate(path):
        while cur.WhichOneof("value") == "scalar" and cur.scalar.WhichOneof("value") == "union":
            cur = cur.scalar.union.value
        kind = cur.WhichOneof("value")
        try:
            if kind == "collection" and isinstance(attr, int):
                cur = cur.collection.literals[attr]
                continue
            if kind == "map" and isinstance(attr, str):
                cur = cur.map.literals[attr]
                continue
        except (IndexError, KeyError) as exc:
            raise ResolutionError(f"attribute {attr!r} does not exist") from exc
        if kind == "scalar":
            sk = cur.scalar.WhichOneof("value")
            if sk == "generic":
                sv = struct_pb2.Value(struct_value=cur.scalar.generic)
                for a in path[pos:]:
                    sk2 = sv.WhichOneof("kind")
                    if sk2 == "struct_value" and isinstance(a, str) and a in sv.struct_value.fields:
                        sv = sv.struct_value.fields[a]
                    elif (
                        sk2 == "list_value"
                        and isinstance(a, int)
                        and -len(sv.list_value.values) <= a < len(sv.list_value.values)
                    ):
                        sv = sv.list_value.values[a]
                    else:
                        raise ResolutionError(f"attribute {a!r} does not exist")
                return struct_to_literal(sv)
            if sk == "binary":
                if binary_resolver is None:
                    raise ResolutionError(
                        "attribute access into a Binary (msgpack) value needs a binary attribute "
                        "resolver; none is configured in this engine"
                    )
                try:
                    return binary_resolver(cur.scalar.binary, list(path[pos:]))
                except Exception as exc:
                    raise ResolutionError(f"attribute path {list(path[pos:])!r}: {exc}") from exc
        raise ResolutionError(f"cannot take attribute {attr!r} of a {kind or 'empty'} value")
    return cur


def primitive_value(literal: literals_pb2.Literal) -> Any:
    """The Python value of a scalar literal for comparisons (None for none/absent values)."""
    while literal.WhichOneof("value") == "scalar" and literal.scalar.WhichOneof("value") == "union":
        literal = literal.scalar.union.value
    if literal.WhichOneof("value") != "scalar":
        raise ResolutionError("conditions compare scalars only")
    sk = literal.scalar.WhichOneof("value")
    if sk == "none_type" or sk is None:
        return None
    if sk == "primitive":
        return _prim(literal.scalar.primitive)
    raise ResolutionError(f"conditions cannot compare a {sk} value")


def _prim(p: literals_pb2.Primitive) -> Any:
    pk = p.WhichOneof("value")
    if pk == "datetime":
        return (p.datetime.seconds, p.datetime.nanos)
    if pk == "duration":
        return (p.duration.seconds, p.duration.nanos)
    if pk is None:
        return None
    return getattr(p, pk)


def _operand(op: condition_pb2.Operand, inputs: literals_pb2.LiteralMap) -> Any:
    kind = op.WhichOneof("val")
    if kind == "var":
        if op.var not in inputs.literals:
            raise ResolutionError(f"condition variable '{op.var}' is not bound")
        return primitive_value(inputs.literals[op.var])
    if kind == "primitive":
        return _prim(op.primitive)
    if kind == "scalar":
        return primitive_value(literals_pb2.Literal(scalar=op.scalar))
    raise ResolutionError("empty condition operand")


def evaluate_condition(
    expr: condition_pb2.BooleanExpression, inputs: literals_pb2.LiteralMap
) -> bool:
    """Evaluate a branch condition over the branch node's resolved inputs.

    Raises:
        ResolutionError: For missing variables or values that cannot be compared.
    """
    kind = expr.WhichOneof("expr")
    if kind == "conjunction":
        c = expr.conjunction
        left = evaluate_condition(c.left_expression, inputs)
        if c.operator == _AND:
            return left and evaluate_condition(c.right_expression, inputs)
        return left or evaluate_condition(c.right_expression, inputs)
    if kind == "unary":
        v = _operand(expr.unary.operand, inputs)
        op = expr.unary.operator
        if op == _UN.OPERATOR_IS_NONE:
            return v is None
        if op == _UN.OPERATOR_IS_NOT_NONE:
            return v is not None
        if op == _UN.OPERATOR_IS_TRUE:
            return v is True
        if op == _UN.OPERATOR_IS_FALSE:
            return v is False
        raise ResolutionError(f"unknown unary operator {op}")
    if kind == "comparison":
        c2 = expr.comparison
        a = _operand(c2.left_value, inputs)
        b = _operand(c2.right_value, inputs)
        if (a is None or b is None) and c2.operator not in (_CMP.OPERATOR_EQ, _CMP.OPERATOR_NEQ):
            return False  # None is not ordered: an ordering test on it is simply not true
        try:
            if c2.operator == _CMP.OPERATOR_EQ:
                return bool(a == b)
            if c2.operator == _CMP.OPERATOR_NEQ:
                return bool(a != b)
            if c2.operator == _CMP.OPERATOR_GT:
                return bool(a > b)
            if c2.operator == _CMP.OPERATOR_GTE:
                return bool(a >= b)
            if c2.operator == _CMP.OPERATOR_LT:
                return bool(a < b)
            if c2.operator == _CMP.OPERATOR_LTE:
                return bool(a <= b)
        except TypeError as exc:
            raise ResolutionError(f"cannot compare {a!r} with {b!r}") from exc
        raise ResolutionError(f"unknown comparison operator {c2.operator}")
    raise ResolutionError("empty condition")
