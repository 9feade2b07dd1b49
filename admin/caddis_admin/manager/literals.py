"""Checking literals against declared types, and naming both in error messages."""

from __future__ import annotations

from typing import Any

from caddis_idl.core.v1 import literals_pb2, types_pb2

_SIMPLE_NAMES = {
    types_pb2.SIMPLE_TYPE_NONE: "none",
    types_pb2.SIMPLE_TYPE_INTEGER: "integer",
    types_pb2.SIMPLE_TYPE_FLOAT: "float",
    types_pb2.SIMPLE_TYPE_STRING: "string",
    types_pb2.SIMPLE_TYPE_BOOLEAN: "boolean",
    types_pb2.SIMPLE_TYPE_DATETIME: "datetime",
    types_pb2.SIMPLE_TYPE_DURATION: "duration",
    types_pb2.SIMPLE_TYPE_BINARY: "binary",
    types_pb2.SIMPLE_TYPE_ERROR: "error",
    types_pb2.SIMPLE_TYPE_STRUCT: "struct",
}

_PRIMITIVE_TYPES = {
    "integer": types_pb2.SIMPLE_TYPE_INTEGER,
    "float_value": types_pb2.SIMPLE_TYPE_FLOAT,
    "string_value": types_pb2.SIMPLE_TYPE_STRING,
    "boolean": types_pb2.SIMPLE_TYPE_BOOLEAN,
    "datetime": types_pb2.SIMPLE_TYPE_DATETIME,
    "duration": types_pb2.SIMPLE_TYPE_DURATION,
}


def describe_type(t: types_pb2.LiteralType) -> str:
    """A short human name for a literal type, e.g. ``list[integer]`` or ``blob(csv)``."""
    kind = t.WhichOneof("type")
    if kind == "simple":
        return _SIMPLE_NAMES.get(t.simple, "unspecified")
    if kind == "collection_type":
        return f"list[{describe_type(t.collection_type)}]"
    if kind == "map_value_type":
        return f"dict[string, {describe_type(t.map_value_type)}]"
    if kind == "blob":
        multi = t.blob.dimensionality == types_pb2.BlobType.DIMENSIONALITY_MULTIPART
        return f"{'directory' if multi else 'file'}({t.blob.format or 'any'})"
    if kind == "enum_type":
        return "enum{" + ", ".join(t.enum_type.values) + "}"
    if kind == "structured_dataset_type":
        return f"structured_dataset({t.structured_dataset_type.format or 'any'})"
    if kind == "union_type":
        return " | ".join(describe_type(v) for v in t.union_type.variants)
    return "unspecified"


def describe_literal(lit: literals_pb2.Literal) -> str:
    """A short human name for what a literal holds, in the words of :func:`describe_type`."""
    kind = lit.WhichOneof("value")
    if kind == "collection":
        items = {describe_literal(x) for x in lit.collection.literals}
        return f"list[{' | '.join(sorted(items)) or 'empty'}]"
    if kind == "map":
        items = {describe_literal(x) for x in lit.map.literals.values()}
        return f"dict[string, {' | '.join(sorted(items)) or 'empty'}]"
    if kind == "offloaded_metadata":
        return describe_type(lit.offloaded_metadata.inferred_type)
    if kind != "scalar":
        return "nothing"
    scalar = lit.scalar
    skind = scalar.WhichOneof("value")
    if skind == "primitive":
        pkind = scalar.primitive.WhichOneof("value")
        simple: Any = _PRIMITIVE_TYPES.get(pkind or "", 0)
        return _SIMPLE_NAMES.get(simple, "unspecified")
    if skind == "blob":
        return describe_type(types_pb2.LiteralType(blob=scalar.blob.metadata.type))
    if skind == "union":
        return describe_literal(scalar.union.value)
    names = {
        "binary": "binary",
        "none_type": "none",
        "error": "error",
        "generic": "struct",
        "structured_dataset": "structured_dataset",
    }
    return names.get(skind or "", "nothing")


def literal_matches(lit: literals_pb2.Literal, t: types_pb2.LiteralType) -> bool:
    """Whether ``lit`` is a value of type ``t`` (the check CreateExecution runs on inputs)."""
    kind = t.WhichOneof("type")
    if kind == "union_type":
        value = lit
        if lit.WhichOneof("value") == "scalar" and lit.scalar.WhichOneof("value") == "union":
            value = lit.scalar.union.value
        return any(literal_matches(value, v) for v in t.union_type.variants)
    lkind = lit.WhichOneof("value")
    if lkind == "scalar" and lit.scalar.WhichOneof("value") == "union":
        return literal_matches(lit.scalar.union.value, t)
    if lkind == "offloaded_metadata":
        return _types_match(lit.offloaded_metadata.inferred_type, t)
    if kind == "collection_type":
        return lkind == "collection" and all(
            literal_matches(x, t.collection_type) for x in lit.collection.literals
        )
    if kind == "map_value_type":
        return lkind == "map" and all(
            literal_matches(x, t.map_value_type) for x in lit.map.literals.values()
        )
    if lkind != "scalar":
        return False
    scalar = lit.scalar
    skind = scalar.WhichOneof("value")
    if kind == "simple":
        if skind == "primitive":
            pkind = scalar.primitive.WhichOneof("value") or ""
            return _PRIMITIVE_TYPES.get(pkind) == t.simple
        expected = {
            "none_type": (types_pb2.SIMPLE_TYPE_NONE,),
            "error": (types_pb2.SIMPLE_TYPE_ERROR,),
            "generic": (types_pb2.SIMPLE_TYPE_STRUCT,),
            # Dataclasses travel as msgpack bytes in a Binary literal.
            "binary": (types_pb2.SIMPLE_TYPE_BINARY, types_pb2.SIMPLE_TYPE_STRUCT),
        }
        return t.simple in expected.get(skind or "", ())
    if kind == "enum_type":
        return (
            skind == "primitive"
            and scalar.primitive.WhichOneof("value") == "string_value"
            and scalar.primitive.string_value in t.enum_type.values
        )
    if kind == "blob":
        if skind != "blob":
            return False
        got = scalar.blob.metadata.type
        return got.dimensionality == t.blob.dimensionality and (
            not t.blob.format or not got.format or got.format == t.blob.format
        )
    if kind == "structured_dataset_type":
        if skind != "structured_dataset":
            return False
        got_format = scalar.structured_dataset.metadata.structured_dataset_type.format
        want = t.structured_dataset_type.format
        return not want or not got_format or got_format == want
    return False


def _types_match(got: types_pb2.LiteralType, want: types_pb2.LiteralType) -> bool:
    if want.WhichOneof("type") == "union_type":
        return any(_types_match(got, v) for v in want.union_type.variants)
    kind = want.WhichOneof("type")
    if kind != got.WhichOneof("type"):
        return False
    if kind == "collection_type":
        return _types_match(got.collection_type, want.collection_type)
    if kind == "map_value_type":
        return _types_match(got.map_value_type, want.map_value_type)
    if kind == "simple":
        return got.simple == want.simple
    return True
