"""Thin bridge from the authoring layer to the type engine and the shared compiler.

Imports are deferred to the first use: `import caddis` must stay cheap, and the type engine
and the compiler are written by other engineers at the same time as this layer.
"""

from __future__ import annotations

import typing
from typing import Any

from caddis_idl.core.v1 import literals_pb2, types_pb2

__all__ = [
    "describe_literal_type",
    "is_castable",
    "literal_type_of",
    "to_literal",
    "type_name",
]


def _engine() -> Any:
    from caddis.core.type_engine import TypeEngine

    return TypeEngine


def literal_type_of(py_type: Any) -> types_pb2.LiteralType:
    """The IDL type of a Python type (raises whatever the type engine raises)."""
    lt = _engine().to_literal_type(py_type)
    if not isinstance(lt, types_pb2.LiteralType):  # pragma: no cover - guards the contract
        raise TypeError(f"the type engine returned {type(lt).__name__} for {py_type!r}")
    return lt


def to_literal(value: Any, py_type: Any, expected: types_pb2.LiteralType) -> literals_pb2.Literal:
    """Convert a Python value to a literal of ``expected`` type."""
    lit = _engine().to_literal(value, py_type, expected)
    if not isinstance(lit, literals_pb2.Literal):  # pragma: no cover - guards the contract
        raise TypeError(f"the type engine returned {type(lit).__name__} for {value!r}")
    return lit


def is_castable(from_type: types_pb2.LiteralType, to_type: types_pb2.LiteralType) -> bool:
    """Whether a value of ``from_type`` may feed an input of ``to_type``.

    Uses the shared compiler's rule so that a workflow accepted here is accepted at
    registration; falls back to a local approximation while the compiler is unavailable.
    """
    try:
        from caddis_propeller.compiler import is_castable as compiler_is_castable
    except ImportError:
        return _fallback_castable(from_type, to_type)
    return bool(compiler_is_castable(from_type, to_type))


def _fallback_castable(src: types_pb2.LiteralType, dst: types_pb2.LiteralType) -> bool:
    src_kind = src.WhichOneof("type")
    dst_kind = dst.WhichOneof("type")
    if dst_kind == "union_type":
        if src_kind == "union_type":
            return all(
                any(_fallback_castable(v, d) for d in dst.union_type.variants)
                for v in src.union_type.variants
            )
        return any(_fallback_castable(src, d) for d in dst.union_type.variants)
    if src_kind != dst_kind:
        return False
    if src_kind == "simple":
        return src.simple == dst.simple
    if src_kind == "collection_type":
        return _fallback_castable(src.collection_type, dst.collection_type)
    if src_kind == "map_value_type":
        return _fallback_castable(src.map_value_type, dst.map_value_type)
    if src_kind == "blob":
        return src.blob.dimensionality == dst.blob.dimensionality and (
            not src.blob.format or not dst.blob.format or src.blob.format == dst.blob.format
        )
    if src_kind == "enum_type":
        return set(src.enum_type.values) <= set(dst.enum_type.values)
    if src_kind == "structured_dataset_type":
        return True
    return True


def type_name(py_type: Any) -> str:
    """A short, readable name of a Python type for error messages (``List[int]``)."""
    if py_type is None or py_type is type(None):
        return "None"
    origin = typing.get_origin(py_type)
    if origin is None:
        return getattr(py_type, "__qualname__", None) or repr(py_type)
    args = typing.get_args(py_type)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1 and len(args) == 2:
            return f"Optional[{type_name(non_none[0])}]"
        return f"Union[{', '.join(type_name(a) for a in args)}]"
    if origin is typing.Annotated:
        return type_name(args[0])
    names = {list: "List", dict: "Dict", tuple: "Tuple", set: "Set"}
    base = names.get(origin, getattr(origin, "__qualname__", repr(origin)))
    if not args:
        return str(base)
    return f"{base}[{', '.join(type_name(a) for a in args)}]"


def describe_literal_type(lt: types_pb2.LiteralType) -> str:
    """A readable rendering of an IDL type, for messages where no Python type is known."""
    kind = lt.WhichOneof("type")
    if kind == "simple":
        return str(types_pb2.SimpleType.Name(lt.simple)).removeprefix("SIMPLE_TYPE_").lower()
    if kind == "collection_type":
        return f"list of {describe_literal_type(lt.collection_type)}"
    if kind == "map_value_type":
        return f"map of str to {describe_literal_type(lt.map_value_type)}"
    if kind == "blob":
        fmt = f" ({lt.blob.format})" if lt.blob.format else ""
        dim = lt.blob.dimensionality == types_pb2.BlobType.DIMENSIONALITY_MULTIPART
        return ("directory" if dim else "file") + fmt
    if kind == "union_type":
        return " | ".join(describe_literal_type(v) for v in lt.union_type.variants)
    if kind == "enum_type":
        return f"enum {list(lt.enum_type.values)}"
    if kind == "structured_dataset_type":
        return "structured dataset"
    return kind or "unknown"
