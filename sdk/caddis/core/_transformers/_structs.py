"""Structured values as MessagePack Binary: dataclasses, pydantic models, untyped dicts, Any.

The wire form follows Flyte's RFC: ``Scalar.binary{value=msgpack bytes, tag="msgpack"}`` with
LiteralType ``simple=STRUCT``. For dataclasses and models the LiteralType also carries a JSON
schema in ``metadata`` and the field types in ``structure.dataclass_type``, so the compiler can
type-check attribute access (``o0.field``) without Python.

Canonical bytes: every msgpack map is written with its keys sorted (dataclass fields by name,
dict keys by value), so equal values give byte-identical literals whatever order they were
built in.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Any

from caddis.core._transformers._engine import (
    BuiltinCodec,
    Decoder,
    Encoder,
    TypeEngine,
    TypeTransformer,
    TypeTransformerFailedError,
    _Plan,
    add_path,
    failed,
    is_dataclass_type,
    type_name,
)
from caddis_idl.core.v1 import literals_pb2, types_pb2

Literal = literals_pb2.Literal
LiteralType = types_pb2.LiteralType
MSGPACK_TAG = "msgpack"

_msgpack: Any = None


def _mp() -> Any:
    global _msgpack
    if _msgpack is None:
        import msgpack

        _msgpack = msgpack
    return _msgpack


def pack(obj: Any) -> bytes:
    """MessagePack-encodes a builtin object (bytes stay binary)."""
    return bytes(_mp().packb(obj, use_bin_type=True))


def unpack(data: bytes) -> Any:
    """Decodes MessagePack bytes (maps may have non-string keys)."""
    return _mp().unpackb(data, raw=False, strict_map_key=False)


def _sort_key(key: Any) -> tuple[str, Any]:
    # Keys of different types never compare; group by type name first.
    if isinstance(key, str | int | float | bool):
        return (type(key).__name__, key)
    return (type(key).__name__, repr(key))


def sorted_items(d: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """Items of ``d`` in a canonical order."""
    try:
        return sorted(d.items())
    except TypeError:
        return sorted(d.items(), key=lambda kv: _sort_key(kv[0]))


# ---------------------------------------------------------------------------------------------
# Generic (untyped) values


def generic_to_builtin(v: Any) -> Any:
    """Canonicalises a JSON-like value (sorted maps, lists for tuples) for msgpack."""
    if v is None or type(v) in (bool, int, float, str, bytes):
        return v
    if isinstance(v, dict):
        out = {}
        for k, item in sorted_items(v):
            try:
                out[generic_to_builtin(k)] = generic_to_builtin(item)
            except TypeTransformerFailedError as exc:
                raise add_path(exc, f"[{k!r}]") from None
        return out
    if isinstance(v, list | tuple):
        items = []
        for i, item in enumerate(v):
            try:
                items.append(generic_to_builtin(item))
            except TypeTransformerFailedError as exc:
                raise add_path(exc, f"[{i}]") from None
        return items
    if isinstance(v, str | int | float | bytes) and not isinstance(v, bool):
        return _plain(v)
    # A typed value inside an untyped container: its own builtin form (a dataclass becomes a
    # map). Decoding then yields the plain form, as json.loads would.
    t = type(v)
    plan = TypeEngine._plan(t) if _has_structured_transformer(t) else None
    if plan is not None:
        return plan.builtin()[0](v)
    raise failed(
        "a JSON-like value (None, bool, int, float, str, bytes, list, dict)",
        v,
        "declare a precise type (for example a dataclass or Dict[str, T]) to carry it",
    )


def _plain(v: Any) -> Any:
    for base in (bool, int, float, str, bytes):
        if isinstance(v, base):
            return base(v)  # type: ignore[arg-type]
    return v


def _has_structured_transformer(t: Any) -> bool:
    return is_dataclass_type(t) or _is_pydantic_model(t)


def generic_from_builtin(obj: Any) -> Any:
    """Identity: an untyped value decodes to its plain builtin form."""
    return obj


def _struct_to_builtin(struct: Any) -> Any:
    from google.protobuf import json_format

    return json_format.MessageToDict(struct)


def compile_msgpack(t: Any, codec: BuiltinCodec) -> tuple[Encoder, Decoder]:
    """Encoder/decoder of a msgpack Binary literal, given the value's builtin codec."""
    to_b, from_b = codec

    def encode(v: Any) -> Any:
        data = pack(to_b(v))
        lit = Literal()
        b = lit.scalar.binary
        b.value = data
        b.tag = MSGPACK_TAG
        return lit

    def decode(lit: Any) -> Any:
        scalar = lit.scalar
        kind = scalar.WhichOneof("value")
        if kind == "binary":
            if scalar.binary.tag not in (MSGPACK_TAG, ""):
                raise failed(t, lit, f"unknown binary tag {scalar.binary.tag!r}")
            return from_b(unpack(scalar.binary.value))
        if kind == "generic":  # JSON Struct, as older SDKs wrote dataclasses and dicts
            return from_b(_struct_to_builtin(scalar.generic))
        if kind == "union":
            return decode(scalar.union.value)
        from caddis.core._transformers._builtins import failed_literal

        raise failed_literal(t, lit)

    return encode, decode


def dict_builtin_codec(t: Any) -> BuiltinCodec:
    """Builtin codec of ``dict`` / ``Dict[K, V]``: a map with canonically sorted keys."""
    args = typing.get_args(t)
    key_t, value_t = (args[0], args[1]) if len(args) == 2 else (Any, Any)
    if key_t is Any and value_t is Any:
        return _generic_dict_codec(t)
    key_plan = TypeEngine._plan(key_t)
    value_plan = TypeEngine._plan(value_t)

    def to_builtin(v: Any) -> Any:
        if not isinstance(v, dict):
            raise failed(t, v)
        kb, vb = key_plan.builtin()[0], value_plan.builtin()[0]
        out = {}
        for k, item in sorted_items(v):
            try:
                out[kb(k)] = vb(item)
            except TypeTransformerFailedError as exc:
                raise add_path(exc, f"[{k!r}]") from None
        return out

    def from_builtin(obj: Any) -> Any:
        if not isinstance(obj, dict):
            raise failed(t, obj)
        kb, vb = key_plan.builtin()[1], value_plan.builtin()[1]
        out = {}
        for k, item in obj.items():
            try:
                out[kb(k)] = vb(item)
            except TypeTransformerFailedError as exc:
                raise add_path(exc, f"[{k!r}]") from None
        return out

    return to_builtin, from_builtin


def _generic_dict_codec(t: Any) -> BuiltinCodec:
    def to_builtin(v: Any) -> Any:
        if not isinstance(v, dict):
            raise failed(t, v)
        return generic_to_builtin(v)

    def from_builtin(obj: Any) -> Any:
        if not isinstance(obj, dict):
            raise failed(t, obj)
        return obj

    return to_builtin, from_builtin


class UntypedTransformer(TypeTransformer[Any]):
    """``typing.Any`` / ``object``: JSON-like values as msgpack; other values by their type.

    On the way in, a value whose own type has a transformer (an int, a dataclass, a file) is
    converted with it and a JSON-like container becomes msgpack; on the way out any literal
    is read back by its kind. The LiteralType is ``STRUCT``.
    """

    def __init__(self) -> None:
        super().__init__("any", object)

    def get_literal_type(self, t: Any = None) -> types_pb2.LiteralType:
        return LiteralType(simple=types_pb2.SIMPLE_TYPE_STRUCT)

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        msgpack_encode, _ = compile_msgpack(t, (generic_to_builtin, generic_from_builtin))

        def encode(v: Any) -> Any:
            vt = type(v)
            if vt in (dict, list, tuple):
                return msgpack_encode(v)
            return TypeEngine.to_literal(v, vt)

        return encode, decode_any

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        return generic_to_builtin, generic_from_builtin


def decode_any(lit: Any) -> Any:
    """Reads any literal back into a plain Python value, by what it holds."""
    kind = lit.WhichOneof("value")
    if kind == "collection":
        return [decode_any(x) for x in lit.collection.literals]
    if kind == "map":
        return {k: decode_any(x) for k, x in lit.map.literals.items()}
    if kind == "offloaded_metadata":
        from caddis.core._transformers._blobs import load_offloaded

        return decode_any(load_offloaded(lit))
    scalar = lit.scalar
    skind = scalar.WhichOneof("value")
    if skind == "primitive":
        p = scalar.primitive
        pkind = p.WhichOneof("value")
        if pkind == "datetime":
            import datetime

            return p.datetime.ToDatetime(tzinfo=datetime.UTC)
        if pkind == "duration":
            return p.duration.ToTimedelta()
        return getattr(p, pkind) if pkind else None
    if skind == "none_type" or skind is None:
        return None
    if skind == "union":
        return decode_any(scalar.union.value)
    if skind == "binary":
        if scalar.binary.tag == MSGPACK_TAG:
            return unpack(scalar.binary.value)
        return scalar.binary.value
    if skind == "generic":
        return _struct_to_builtin(scalar.generic)
    if skind == "blob":
        from caddis.core._transformers._blobs import decode_any_blob

        return decode_any_blob(lit)
    if skind == "structured_dataset":
        from caddis.types.structured import StructuredDataset

        return TypeEngine.to_python_value(lit, StructuredDataset)
    if skind == "error":
        raise failed("a value", lit, f"upstream error: {scalar.error.message}")
    raise failed("a value", lit)


# ---------------------------------------------------------------------------------------------
# JSON schema from a LiteralType (for dataclass metadata)


def json_schema(lt: types_pb2.LiteralType) -> dict[str, Any]:
    """A JSON schema describing values of ``lt`` in their msgpack/JSON form."""
    kind = lt.WhichOneof("type")
    if kind == "simple":
        st = types_pb2
        simple = lt.simple
        if simple == st.SIMPLE_TYPE_STRUCT:
            if lt.HasField("metadata") and lt.metadata.fields:
                from google.protobuf import json_format

                return dict(json_format.MessageToDict(lt.metadata))
            return {"type": "object"}
        return {
            st.SIMPLE_TYPE_NONE: {"type": "null"},
            st.SIMPLE_TYPE_INTEGER: {"type": "integer"},
            st.SIMPLE_TYPE_FLOAT: {"type": "number"},
            st.SIMPLE_TYPE_STRING: {"type": "string"},
            st.SIMPLE_TYPE_BOOLEAN: {"type": "boolean"},
            st.SIMPLE_TYPE_DATETIME: {"type": "string", "format": "date-time"},
            st.SIMPLE_TYPE_DURATION: {"type": "number", "format": "duration-seconds"},
            st.SIMPLE_TYPE_BINARY: {"type": "string", "contentEncoding": "binary"},
        }.get(simple, {})
    if kind == "collection_type":
        return {"type": "array", "items": json_schema(lt.collection_type)}
    if kind == "map_value_type":
        return {"type": "object", "additionalProperties": json_schema(lt.map_value_type)}
    if kind == "enum_type":
        return {"type": "string", "enum": list(lt.enum_type.values)}
    if kind == "union_type":
        return {"anyOf": [json_schema(v) for v in lt.union_type.variants]}
    if kind == "blob":
        return {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "format": f"blob:{lt.blob.format}",
        }
    if kind == "structured_dataset_type":
        return {
            "type": "object",
            "properties": {"uri": {"type": "string"}, "file_format": {"type": "string"}},
        }
    return {}


# ---------------------------------------------------------------------------------------------
# Dataclasses


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    python_type: Any
    required: bool


def _dataclass_fields(t: Any) -> list[_Field]:
    hints = typing.get_type_hints(t, include_extras=True)
    out = []
    for f in dataclasses.fields(t):
        if not f.init:
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out.append(_Field(f.name, hints.get(f.name, Any), required))
    return sorted(out, key=lambda f: f.name)


def _struct_literal_type(
    t: Any, fields: list[_Field], schema_extra: dict[str, Any] | None = None
) -> types_pb2.LiteralType:
    lt = LiteralType(simple=types_pb2.SIMPLE_TYPE_STRUCT)
    lt.structure.tag = type_name(t)
    properties: dict[str, Any] = {}
    for f in fields:
        field_lt = TypeEngine._plan(f.python_type).literal_type
        lt.structure.dataclass_type[f.name].CopyFrom(field_lt)
        properties[f.name] = json_schema(field_lt)
    schema = schema_extra or {
        "title": t.__name__,
        "type": "object",
        "properties": properties,
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }
    lt.metadata.update(schema)
    return lt


class DataclassTransformer(TypeTransformer[Any]):
    """Dataclasses (nested, with defaults) as msgpack maps of their fields, sorted by name."""

    def __init__(self) -> None:
        super().__init__("dataclass", object)

    def _matches(self, t: Any) -> bool:
        return is_dataclass_type(t)

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        return _struct_literal_type(t, _dataclass_fields(t))

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        return guess_struct(literal_type)

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        return compile_msgpack(t, self._codec(t))

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        return self._codec(t)

    def _codec(self, t: Any) -> BuiltinCodec:
        fields = _dataclass_fields(t)
        plans = [(f.name, TypeEngine._plan(f.python_type), f.required) for f in fields]

        def to_builtin(v: Any) -> Any:
            if not isinstance(v, t):
                raise failed(t, v)
            out = {}
            for name, plan, _ in plans:
                try:
                    out[name] = plan.builtin()[0](getattr(v, name))
                except TypeTransformerFailedError as exc:
                    raise add_path(exc, f".{name}") from None
            return out

        def from_builtin(obj: Any) -> Any:
            if isinstance(obj, t):
                return obj
            if not isinstance(obj, dict):
                raise failed(t, obj)
            kwargs = {}
            for name, plan, required in plans:
                if name in obj:
                    try:
                        kwargs[name] = plan.builtin()[1](obj[name])
                    except TypeTransformerFailedError as exc:
                        raise add_path(exc, f".{name}") from None
                elif required:
                    raise add_path(failed(t, obj, "the field is missing"), f".{name}")
            return t(**kwargs)

        return to_builtin, from_builtin


def guess_struct(lt: types_pb2.LiteralType) -> Any:
    """A dataclass rebuilt from ``structure.dataclass_type``, else ``dict``."""
    if not lt.structure.dataclass_type:
        return dict
    name = lt.structure.tag.rsplit(".", 1)[-1] or "GuessedStruct"
    fields = [
        (field_name, TypeEngine.guess_python_type(field_lt))
        for field_name, field_lt in sorted(lt.structure.dataclass_type.items())
    ]
    return dataclasses.make_dataclass(name, fields)


# ---------------------------------------------------------------------------------------------
# Pydantic


def _is_pydantic_model(t: Any) -> bool:
    # Never import pydantic here: a type can only be a model if pydantic is already loaded.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(t, type) and issubclass(t, pydantic.BaseModel)


class PydanticTransformer(TypeTransformer[Any]):
    """pydantic ``BaseModel`` subclasses as msgpack maps of their fields.

    Fields whose types caddis knows (files, dataframes, nested dataclasses...) use caddis's
    conversion; the others use pydantic's own JSON mode. Decoding validates with
    ``model_validate``.
    """

    def __init__(self) -> None:
        super().__init__("pydantic", object)

    def _matches(self, t: Any) -> bool:
        return _is_pydantic_model(t)

    @staticmethod
    def _fields(t: Any) -> tuple[list[_Field], set[str]]:
        known: list[_Field] = []
        native: set[str] = set()
        for name, info in t.model_fields.items():
            ann = info.annotation if info.annotation is not None else Any
            tr = TypeEngine._find_transformer_quiet(ann)
            if tr is None or tr.name == "any":
                native.add(name)
            else:
                known.append(_Field(name, ann, info.is_required()))
        return sorted(known, key=lambda f: f.name), native

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        known, _ = self._fields(t)
        try:
            schema = t.model_json_schema()
        except Exception:  # schema generation fails for arbitrary types; the map still works
            schema = None
        return _struct_literal_type(t, known, schema)

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        return compile_msgpack(t, self._codec(t))

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        return self._codec(t)

    def _codec(self, t: Any) -> BuiltinCodec:
        known, native = self._fields(t)
        plans = [(f.name, TypeEngine._plan(f.python_type)) for f in known]

        def to_builtin(v: Any) -> Any:
            if not isinstance(v, t):
                raise failed(t, v)
            out: dict[str, Any] = {}
            if native:
                out.update(v.model_dump(mode="json", include=native))
            for name, plan in plans:
                try:
                    out[name] = plan.builtin()[0](getattr(v, name))
                except TypeTransformerFailedError as exc:
                    raise add_path(exc, f".{name}") from None
            return {k: generic_to_builtin(out[k]) if k in native else out[k] for k in sorted(out)}

        def from_builtin(obj: Any) -> Any:
            if isinstance(obj, t):
                return obj
            if not isinstance(obj, dict):
                raise failed(t, obj)
            data = dict(obj)
            for name, plan in plans:
                if name in data:
                    try:
                        data[name] = plan.builtin()[1](data[name])
                    except TypeTransformerFailedError as exc:
                        raise add_path(exc, f".{name}") from None
            try:
                return t.model_validate(data)
            except ValueError as exc:  # pydantic.ValidationError is a ValueError
                raise failed(t, obj, str(exc)) from None

        return to_builtin, from_builtin


__all__ = [
    "DataclassTransformer",
    "PydanticTransformer",
    "UntypedTransformer",
    "compile_msgpack",
    "decode_any",
    "dict_builtin_codec",
    "generic_to_builtin",
    "guess_struct",
    "json_schema",
]
