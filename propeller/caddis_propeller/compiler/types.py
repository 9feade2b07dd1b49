"""Type rules shared by the compiler and the engine: castability, readable names, inference.

The rules follow what a Python programmer expects of the annotations the types came from:
``int`` flows into ``float``; ``None`` flows into ``Optional[T]``; a union flows into a
target only if every variant does; collections and maps are checked element-wise; files and
directories must agree on format (an empty format means "any"); a structured dataset flows
into one that asks for a subset of its columns.
"""

from __future__ import annotations

from caddis_idl.core.v1 import literals_pb2, types_pb2

_ST = types_pb2  # top-level enum values: plain ints, fast to read

_SIMPLE_NAMES: dict[int, str] = {
    _ST.SIMPLE_TYPE_UNSPECIFIED: "unspecified",
    _ST.SIMPLE_TYPE_NONE: "None",
    _ST.SIMPLE_TYPE_INTEGER: "int",
    _ST.SIMPLE_TYPE_FLOAT: "float",
    _ST.SIMPLE_TYPE_STRING: "str",
    _ST.SIMPLE_TYPE_BOOLEAN: "bool",
    _ST.SIMPLE_TYPE_DATETIME: "datetime",
    _ST.SIMPLE_TYPE_DURATION: "timedelta",
    _ST.SIMPLE_TYPE_BINARY: "binary",
    _ST.SIMPLE_TYPE_ERROR: "Error",
    _ST.SIMPLE_TYPE_STRUCT: "struct",
}

# Types a branch condition may compare: simple scalars (and enums, which travel as strings).
PRIMITIVE_SIMPLE_TYPES = frozenset(
    {
        _ST.SIMPLE_TYPE_NONE,
        _ST.SIMPLE_TYPE_INTEGER,
        _ST.SIMPLE_TYPE_FLOAT,
        _ST.SIMPLE_TYPE_STRING,
        _ST.SIMPLE_TYPE_BOOLEAN,
        _ST.SIMPLE_TYPE_DATETIME,
        _ST.SIMPLE_TYPE_DURATION,
    }
)

_MULTIPART = types_pb2.BlobType.Dimensionality.DIMENSIONALITY_MULTIPART


def simple(t: types_pb2.SimpleType.ValueType) -> types_pb2.LiteralType:
    """Return a LiteralType for a simple type (a small convenience for callers and tests)."""
    return types_pb2.LiteralType(simple=t)


def list_of(t: types_pb2.LiteralType) -> types_pb2.LiteralType:
    """Return the LiteralType ``List[t]``."""
    return types_pb2.LiteralType(collection_type=t)


def optional(t: types_pb2.LiteralType) -> types_pb2.LiteralType:
    """Return ``Optional[t]`` (a union of ``t`` and None); ``t`` itself if already optional."""
    if is_optional(t):
        return t
    return types_pb2.LiteralType(
        union_type=types_pb2.UnionType(variants=[t, simple(_ST.SIMPLE_TYPE_NONE)])
    )


def is_none_type(t: types_pb2.LiteralType) -> bool:
    """True for the ``None`` type."""
    return t.WhichOneof("type") == "simple" and t.simple == _ST.SIMPLE_TYPE_NONE


def is_optional(t: types_pb2.LiteralType) -> bool:
    """True when None is an accepted value of ``t`` (None itself or a union with None)."""
    kind = t.WhichOneof("type")
    if kind == "simple":
        return t.simple == _ST.SIMPLE_TYPE_NONE
    if kind == "union_type":
        return any(is_optional(v) for v in t.union_type.variants)
    return False


def is_primitive(t: types_pb2.LiteralType) -> bool:
    """True when a branch condition may compare values of ``t``.

    Simple scalar types, enums, and unions (e.g. ``Optional[int]``) made only of those qualify.
    """
    kind = t.WhichOneof("type")
    if kind == "simple":
        return t.simple in PRIMITIVE_SIMPLE_TYPES
    if kind == "enum_type":
        return True
    if kind == "union_type":
        return all(is_primitive(v) for v in t.union_type.variants)
    return False


def format_type(t: types_pb2.LiteralType | None) -> str:
    """Render a LiteralType the way a Python user would write it, e.g. ``List[int]``.

    Args:
        t: The type; None renders as ``<unknown>``.

    Returns:
        A readable name: ``int``, ``Optional[str]``, ``Dict[str, List[float]]``,
        ``File[csv]``, ``Directory``, ``StructuredDataset[parquet](a: int)``, ``Enum[a|b]``,
        a dataclass name when the type carries a structure tag.
    """
    if t is None:
        return "<unknown>"
    kind = t.WhichOneof("type")
    if kind == "simple":
        if t.simple in (_ST.SIMPLE_TYPE_STRUCT, _ST.SIMPLE_TYPE_BINARY) and t.structure.tag:
            return t.structure.tag
        return _SIMPLE_NAMES.get(t.simple, f"simple({t.simple})")
    if kind == "collection_type":
        return f"List[{format_type(t.collection_type)}]"
    if kind == "map_value_type":
        return f"Dict[str, {format_type(t.map_value_type)}]"
    if kind == "blob":
        name = "Directory" if t.blob.dimensionality == _MULTIPART else "File"
        return f"{name}[{t.blob.format}]" if t.blob.format else name
    if kind == "enum_type":
        return f"Enum[{'|'.join(t.enum_type.values)}]"
    if kind == "structured_dataset_type":
        sd = t.structured_dataset_type
        out = "StructuredDataset"
        if sd.format:
            out += f"[{sd.format}]"
        if sd.columns:
            cols = ", ".join(f"{c.name}: {format_type(c.literal_type)}" for c in sd.columns)
            out += f"({cols})"
        return out
    if kind == "union_type":
        variants = list(t.union_type.variants)
        non_none = [v for v in variants if not is_none_type(v)]
        if len(non_none) == 1 and len(variants) == 2:
            return f"Optional[{format_type(non_none[0])}]"
        return f"Union[{', '.join(format_type(v) for v in variants)}]"
    return "<unknown>"


def is_castable(upstream: types_pb2.LiteralType, downstream: types_pb2.LiteralType) -> bool:
    """Whether a value of type ``upstream`` may be bound to an input of type ``downstream``.

    Args:
        upstream: The type of the value produced (an output, a literal).
        downstream: The type the consumer declares.

    Returns:
        True when the value is accepted. Rules: identical kinds recurse (collections, maps);
        ``int`` into ``float``; ``None`` into anything optional; a union into a target when
        every variant is accepted; anything into a union when some variant accepts it; enum
        into enum with a superset of values or into ``str``; files/directories by format
        (empty = any) and dimensionality; structured datasets when the downstream columns are a
        subset of the upstream ones; structs/dataclasses field-wise when both declare fields.
        An unspecified type on either side is accepted (nothing to check against).
    """
    up = upstream.WhichOneof("type")
    down = downstream.WhichOneof("type")
    if up is None or down is None:
        return True
    if up == "union_type":
        return all(is_castable(v, downstream) for v in upstream.union_type.variants)
    if down == "union_type":
        return any(is_castable(upstream, v) for v in downstream.union_type.variants)
    if up == "simple" and down == "simple":
        return _simple_castable(upstream, downstream)
    if up == "enum_type":
        if down == "enum_type":
            return set(upstream.enum_type.values) <= set(downstream.enum_type.values)
        return down == "simple" and downstream.simple == _ST.SIMPLE_TYPE_STRING
    if up != down:
        return False
    if up == "collection_type":
        return is_castable(upstream.collection_type, downstream.collection_type)
    if up == "map_value_type":
        return is_castable(upstream.map_value_type, downstream.map_value_type)
    if up == "blob":
        return _blob_castable(upstream.blob, downstream.blob)
    if up == "structured_dataset_type":
        return _sd_castable(upstream.structured_dataset_type, downstream.structured_dataset_type)
    return False


def _simple_castable(upstream: types_pb2.LiteralType, downstream: types_pb2.LiteralType) -> bool:
    u, d = upstream.simple, downstream.simple
    if u == _ST.SIMPLE_TYPE_UNSPECIFIED or d == _ST.SIMPLE_TYPE_UNSPECIFIED:
        return True
    if u == _ST.SIMPLE_TYPE_INTEGER and d == _ST.SIMPLE_TYPE_FLOAT:
        return True
    if u != d:
        return False
    if u in (_ST.SIMPLE_TYPE_STRUCT, _ST.SIMPLE_TYPE_BINARY):
        return _structure_castable(upstream.structure, downstream.structure)
    return True


def _structure_castable(up: types_pb2.TypeStructure, down: types_pb2.TypeStructure) -> bool:
    # Without declared fields on both sides there is nothing to compare: a generic dict or an
    # untyped dataclass is accepted (the type engine validates at run time).
    if not up.dataclass_type or not down.dataclass_type:
        return True
    for name, field_type in down.dataclass_type.items():
        if name not in up.dataclass_type:
            if is_optional(field_type):
                continue
            return False
        if not is_castable(up.dataclass_type[name], field_type):
            return False
    return True


def _blob_castable(up: types_pb2.BlobType, down: types_pb2.BlobType) -> bool:
    up_multi = up.dimensionality == _MULTIPART
    down_multi = down.dimensionality == _MULTIPART
    if up_multi != down_multi:
        return False
    return not (up.format and down.format and up.format != down.format)


def _sd_castable(
    up: types_pb2.StructuredDatasetType, down: types_pb2.StructuredDatasetType
) -> bool:
    if up.format and down.format and up.format != down.format:
        return False
    if not up.columns or not down.columns:
        return True
    up_cols = {c.name: c.literal_type for c in up.columns}
    for col in down.columns:
        if col.name not in up_cols or not is_castable(up_cols[col.name], col.literal_type):
            return False
    return True


def literal_type_of(literal: literals_pb2.Literal) -> types_pb2.LiteralType | None:
    """Infer the type of a literal value, or None where the value alone does not tell.

    Used to type-check constant bindings. Collections infer from their elements (empty
    collections and mixed elements give None, meaning "do not check").
    """
    kind = literal.WhichOneof("value")
    if kind == "scalar":
        return scalar_type_of(literal.scalar)
    if kind == "collection":
        elems = [literal_type_of(x) for x in literal.collection.literals]
        if not elems or any(e is None for e in elems):
            return None
        first = elems[0]
        assert first is not None
        if any(e != first for e in elems[1:]):
            return None
        return list_of(first)
    if kind == "map":
        vals = [literal_type_of(x) for x in literal.map.literals.values()]
        if not vals or any(v is None for v in vals):
            return None
        head = vals[0]
        assert head is not None
        if any(v != head for v in vals[1:]):
            return None
        return types_pb2.LiteralType(map_value_type=head)
    if kind == "offloaded_metadata" and literal.offloaded_metadata.HasField("inferred_type"):
        return literal.offloaded_metadata.inferred_type
    return None


_PRIMITIVE_KIND_TYPES = {
    "integer": _ST.SIMPLE_TYPE_INTEGER,
    "float_value": _ST.SIMPLE_TYPE_FLOAT,
    "string_value": _ST.SIMPLE_TYPE_STRING,
    "boolean": _ST.SIMPLE_TYPE_BOOLEAN,
    "datetime": _ST.SIMPLE_TYPE_DATETIME,
    "duration": _ST.SIMPLE_TYPE_DURATION,
}


def scalar_type_of(scalar: literals_pb2.Scalar) -> types_pb2.LiteralType | None:
    """Infer the type of a scalar value, or None where the value alone does not tell."""
    kind = scalar.WhichOneof("value")
    if kind == "primitive":
        pk = scalar.primitive.WhichOneof("value")
        if pk is None:
            return None
        return simple(_PRIMITIVE_KIND_TYPES[pk])
    if kind == "none_type":
        return simple(_ST.SIMPLE_TYPE_NONE)
    if kind == "blob":
        return types_pb2.LiteralType(blob=scalar.blob.metadata.type)
    if kind == "structured_dataset":
        return types_pb2.LiteralType(
            structured_dataset_type=scalar.structured_dataset.metadata.structured_dataset_type
        )
    if kind == "union":
        return scalar.union.type
    if kind == "error":
        return simple(_ST.SIMPLE_TYPE_ERROR)
    if kind == "generic":
        return simple(_ST.SIMPLE_TYPE_STRUCT)
    # A Binary carries msgpack for dataclasses / dicts whose declared type is STRUCT; the
    # bytes alone do not tell which, so binary values are not type-checked.
    return None
