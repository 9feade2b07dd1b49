"""Built-in transformers: primitives, None, bytes, time types, List, Dict, Union, Enum, Annotated.

Encoders fill protobuf fields in place (``lit.scalar.primitive.integer = v``): constructing
nested messages with keyword arguments is three times slower in the upb backend.

Decoders of primitives read the field directly and only check which oneof member is set when
the value read is the default (0, "", False): a literal of another kind always reads as the
default, so this catches every mismatch while the common case pays no ``WhichOneof`` call.
"""

from __future__ import annotations

import datetime
import enum
import numbers
import typing
from typing import Any

from caddis.core._transformers._engine import (
    BuiltinCodec,
    Decoder,
    Encoder,
    HashMethod,
    TypeEngine,
    TypeTransformer,
    TypeTransformerFailedError,
    _PickleMarker,
    _Plan,
    add_path,
    describe_literal,
    failed,
    is_enum_type,
    type_name,
)
from caddis_idl.core.v1 import literals_pb2, types_pb2

Literal = literals_pb2.Literal
LiteralType = types_pb2.LiteralType
ST = types_pb2

_UTC = datetime.UTC
_NoneType = type(None)


def _simple(simple: int) -> types_pb2.LiteralType:
    return LiteralType(simple=simple)  # type: ignore[arg-type]


def failed_literal(expected: Any, lit: Any) -> TypeTransformerFailedError:
    """The error for a literal that does not hold a value of the expected type."""
    exp = expected if isinstance(expected, str) else type_name(expected)
    exc = TypeTransformerFailedError(expected=exp)
    exc.received_type = describe_literal(lit)
    exc.received_repr = ""
    return exc


def unwrap_union(lit: Any) -> Any:
    """Returns the value inside a Union literal, or None when ``lit`` is not one."""
    if lit.WhichOneof("value") == "scalar" and lit.scalar.WhichOneof("value") == "union":
        return lit.scalar.union.value
    return None


# ---------------------------------------------------------------------------------------------
# Primitives


def _as_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise failed(int, v)
    return int(v)


def _as_float(v: Any) -> float:
    # An int is accepted where a float is declared, as Python itself does (flytekit refuses).
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise failed(float, v)
    return float(v)


def _as_str(v: Any) -> str:
    if not isinstance(v, str):
        raise failed(str, v)
    return str(v)


def _as_bool(v: Any) -> bool:
    if type(v).__module__ == "numpy" and type(v).__name__ in ("bool", "bool_"):
        return bool(v)
    raise failed(bool, v)


class _PrimitiveTransformer(TypeTransformer[Any]):
    """int, float, str, bool: fixed LiteralType, specialised closures."""

    def __init__(
        self,
        t: type,
        simple: int,
        field: str,
        coerce: typing.Callable[[Any], Any],
    ) -> None:
        super().__init__(t.__name__, t)
        self._lt = _simple(simple)
        self._field = field
        self._coerce = coerce

    def get_literal_type(self, t: Any = None) -> types_pb2.LiteralType:
        out = LiteralType()
        out.CopyFrom(self._lt)
        return out

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(self._t).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(self._t).decode(lv)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        if literal_type.WhichOneof("type") == "simple" and literal_type.simple == self._lt.simple:
            return self._t
        raise ValueError(f"not a {self.name}")

    def _fill_hook(self) -> typing.Callable[[Any, Any], None] | None:
        return self.fill()

    def fill(self) -> typing.Callable[[Any, Any], None]:
        """Returns ``fill(literal, value)`` that writes a value into an empty Literal."""
        t, field, coerce = self._t, self._field, self._coerce
        if field == "integer":

            def fill_int(lit: Any, v: Any) -> None:
                lit.scalar.primitive.integer = v if type(v) is int else coerce(v)

            return fill_int
        if field == "float_value":

            def fill_float(lit: Any, v: Any) -> None:
                lit.scalar.primitive.float_value = v if type(v) is float else coerce(v)

            return fill_float
        if field == "string_value":

            def fill_str(lit: Any, v: Any) -> None:
                lit.scalar.primitive.string_value = v if type(v) is str else coerce(v)

            return fill_str

        def fill_bool(lit: Any, v: Any) -> None:
            lit.scalar.primitive.boolean = v if type(v) is bool else coerce(v)

        del t
        return fill_bool

    def read(self) -> typing.Callable[[Any], Any]:
        """Returns ``read(literal) -> value`` for a literal of this type."""
        field = self._field
        name = self._t

        if field == "float_value":

            def read_float(lit: Any) -> Any:
                p = lit.scalar.primitive
                v = p.float_value
                if v:
                    return v
                kind = p.WhichOneof("value")
                if kind == "float_value":
                    return v
                if kind == "integer":  # an int flowing into a float input
                    return float(p.integer)
                return _slow_read(lit, read_float, name)

            return read_float

        def read_field(lit: Any) -> Any:
            p = lit.scalar.primitive
            v = getattr(p, field)
            if v or p.WhichOneof("value") == field:
                return v
            return _slow_read(lit, read_field, name)

        if field == "integer":

            def read_int(lit: Any) -> Any:
                p = lit.scalar.primitive
                v = p.integer
                if v or p.WhichOneof("value") == "integer":
                    return v
                return _slow_read(lit, read_int, name)

            return read_int
        if field == "string_value":

            def read_str(lit: Any) -> Any:
                p = lit.scalar.primitive
                v = p.string_value
                if v or p.WhichOneof("value") == "string_value":
                    return v
                return _slow_read(lit, read_str, name)

            return read_str
        return read_field

    def list_codec(
        self,
    ) -> tuple[typing.Callable[[Any, Any], None], typing.Callable[[Any], list[Any]]]:
        """Returns ``(fill_items(literals, values), read_items(literals))`` for List[T].

        Generated per field so that the loop body is a plain attribute store/load: a function
        call per element would double the cost of a long list.
        """
        namespace: dict[str, Any] = {}
        exec(_LIST_CODEC_SRC.format(field=self._field), namespace)
        exact, coerce, read = self._t, self._coerce, self.read()
        zero = exact()
        fill_items, read_items = namespace["fill_items"], namespace["read_items"]

        def fill(literals: Any, values: Any) -> None:
            fill_items(literals.add, values, exact, coerce)

        def read_all(literals: Any) -> list[Any]:
            return read_items(literals, zero, read)  # type: ignore[no-any-return]

        return fill, read_all

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        fill = self.fill()

        def encode(v: Any) -> Any:
            lit = Literal()
            fill(lit, v)
            return lit

        return encode, self.read()

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        exact, coerce = self._t, self._coerce

        def to_builtin(v: Any) -> Any:
            return v if type(v) is exact else coerce(v)

        def from_builtin(obj: Any) -> Any:
            if type(obj) is exact:
                return obj
            if exact is float and type(obj) is int:
                return float(obj)
            raise failed(exact, obj)

        return to_builtin, from_builtin


_LIST_CODEC_SRC = """
def fill_items(add, values, exact, coerce):
    for x in values:
        if type(x) is not exact:
            x = coerce(x)
        add().scalar.primitive.{field} = x

def read_items(items, zero, read):
    out = [x.scalar.primitive.{field} for x in items]
    if zero in out:
        # Only a default value can hide a literal of another kind; check those one by one.
        for i, value in enumerate(out):
            if not value:
                out[i] = read(items[i])
    return out
"""


def _slow_read(lit: Any, read: typing.Callable[[Any], Any], expected: Any) -> Any:
    inner = unwrap_union(lit)
    if inner is not None:
        return read(inner)
    raise failed_literal(expected, lit)


# ---------------------------------------------------------------------------------------------
# None, bytes, datetime, date, timedelta


class _NoneTransformer(TypeTransformer[None]):
    def __init__(self) -> None:
        super().__init__("none", _NoneType)

    def get_literal_type(self, t: Any = None) -> types_pb2.LiteralType:
        return _simple(ST.SIMPLE_TYPE_NONE)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        if literal_type.WhichOneof("type") == "simple" and (
            literal_type.simple == ST.SIMPLE_TYPE_NONE
        ):
            return _NoneType
        raise ValueError("not none")

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        def encode(v: Any) -> Any:
            if v is not None:
                raise failed(None, v)
            lit = Literal()
            lit.scalar.none_type.SetInParent()
            return lit

        def decode(lit: Any) -> Any:
            kind = lit.scalar.WhichOneof("value")
            if kind == "none_type" or (kind is None and lit.WhichOneof("value") is None):
                return None
            inner = unwrap_union(lit)
            if inner is not None:
                return decode(inner)
            raise failed_literal("None", lit)

        return encode, decode

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        def to_builtin(v: Any) -> Any:
            if v is not None:
                raise failed(None, v)
            return None

        def from_builtin(obj: Any) -> Any:
            if obj is not None:
                raise failed(None, obj)
            return None

        return to_builtin, from_builtin


class _ScalarTransformer(TypeTransformer[Any]):
    """bytes, datetime, date, timedelta: a fixed LiteralType and hand-written closures."""

    def __init__(
        self,
        t: type,
        simple: int,
        encode: Encoder,
        decode: Decoder,
        to_builtin: typing.Callable[[Any], Any],
        from_builtin: typing.Callable[[Any], Any],
    ) -> None:
        super().__init__(t.__name__, t)
        self._simple_type = simple
        self._encode = encode
        self._decode = decode
        self._to_b = to_builtin
        self._from_b = from_builtin

    def get_literal_type(self, t: Any = None) -> types_pb2.LiteralType:
        return _simple(self._simple_type)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        if literal_type.WhichOneof("type") == "simple" and (
            literal_type.simple == self._simple_type
        ):
            return self._t
        raise ValueError(f"not {self.name}")

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        return self._encode, self._decode

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        return self._to_b, self._from_b


def _bytes_encode(v: Any) -> Any:
    if not isinstance(v, bytes | bytearray | memoryview):
        raise failed(bytes, v)
    lit = Literal()
    b = lit.scalar.binary
    b.value = bytes(v)
    b.tag = "bytes"
    return lit


def _bytes_decode(lit: Any) -> Any:
    if lit.scalar.WhichOneof("value") == "binary":
        return lit.scalar.binary.value
    return _slow_read(lit, _bytes_decode, bytes)


def _bytes_to_b(v: Any) -> Any:
    if not isinstance(v, bytes | bytearray | memoryview):
        raise failed(bytes, v)
    return bytes(v)


def _bytes_from_b(obj: Any) -> Any:
    if not isinstance(obj, bytes):
        raise failed(bytes, obj)
    return obj


def _datetime_encode(v: Any) -> Any:
    if not isinstance(v, datetime.datetime):
        raise failed(datetime.datetime, v)
    lit = Literal()
    # Naive datetimes are taken as UTC (never as the machine's local time, which differs
    # between the machine that submits and the one that runs a task).
    lit.scalar.primitive.datetime.FromDatetime(v)
    return lit


def _datetime_decode(lit: Any) -> Any:
    p = lit.scalar.primitive
    if p.WhichOneof("value") == "datetime":
        return p.datetime.ToDatetime(tzinfo=_UTC)
    return _slow_read(lit, _datetime_decode, datetime.datetime)


def _datetime_to_b(v: Any) -> Any:
    if not isinstance(v, datetime.datetime):
        raise failed(datetime.datetime, v)
    if v.tzinfo is None:
        v = v.replace(tzinfo=_UTC)
    return v.astimezone(_UTC).isoformat()


def _datetime_from_b(obj: Any) -> Any:
    if not isinstance(obj, str):
        raise failed("ISO 8601 datetime string", obj)
    value = datetime.datetime.fromisoformat(obj)
    return value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)


def _check_date(v: Any) -> datetime.date:
    # datetime is a subclass of date; silently dropping its time of day would lose data.
    if not isinstance(v, datetime.date) or isinstance(v, datetime.datetime):
        raise failed(datetime.date, v)
    return v


def _date_encode(v: Any) -> Any:
    d = _check_date(v)
    lit = Literal()
    lit.scalar.primitive.datetime.FromDatetime(datetime.datetime(d.year, d.month, d.day))
    return lit


def _date_decode(lit: Any) -> Any:
    p = lit.scalar.primitive
    if p.WhichOneof("value") == "datetime":
        return p.datetime.ToDatetime().date()
    return _slow_read(lit, _date_decode, datetime.date)


def _date_from_b(obj: Any) -> Any:
    if not isinstance(obj, str):
        raise failed("ISO 8601 date string", obj)
    return datetime.date.fromisoformat(obj)


def _timedelta_encode(v: Any) -> Any:
    if not isinstance(v, datetime.timedelta):
        raise failed(datetime.timedelta, v)
    lit = Literal()
    lit.scalar.primitive.duration.FromTimedelta(v)
    return lit


def _timedelta_decode(lit: Any) -> Any:
    p = lit.scalar.primitive
    if p.WhichOneof("value") == "duration":
        return p.duration.ToTimedelta()
    return _slow_read(lit, _timedelta_decode, datetime.timedelta)


def _timedelta_to_b(v: Any) -> Any:
    if not isinstance(v, datetime.timedelta):
        raise failed(datetime.timedelta, v)
    return v.total_seconds()


def _timedelta_from_b(obj: Any) -> Any:
    if isinstance(obj, bool) or not isinstance(obj, int | float):
        raise failed("duration in seconds", obj)
    return datetime.timedelta(seconds=obj)


# ---------------------------------------------------------------------------------------------
# List


def _list_elem(t: Any) -> Any:
    args = typing.get_args(t)
    return args[0] if args else Any


class ListTransformer(TypeTransformer[list[Any]]):
    """``List[T]`` as a LiteralCollection of T literals."""

    def __init__(self) -> None:
        super().__init__("list", list)

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        lt = LiteralType()
        lt.collection_type.CopyFrom(TypeEngine._plan(_list_elem(t)).literal_type)
        return lt

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        if literal_type.WhichOneof("type") == "collection_type":
            return list[TypeEngine.guess_python_type(literal_type.collection_type)]  # type: ignore[misc]
        raise ValueError("not a collection")

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        elem_plan = TypeEngine._plan(_list_elem(t))
        elem_tr = elem_plan.transformer
        enc, dec = elem_plan.encode, elem_plan.decode
        fast = elem_tr.list_codec() if isinstance(elem_tr, _PrimitiveTransformer) else None

        def locate(v: Any, exc: TypeTransformerFailedError) -> TypeTransformerFailedError:
            # Error path only: find the failing element to name its index.
            for i, x in enumerate(v):
                try:
                    enc(x)
                except TypeTransformerFailedError as inner:
                    return add_path(inner, f"[{i}]")
            return exc

        if fast is not None:
            fill_items, read_items = fast

            def encode(v: Any) -> Any:
                if not isinstance(v, list | tuple):
                    raise failed(t, v)
                lit = Literal()
                coll = lit.collection
                coll.SetInParent()
                try:
                    fill_items(coll.literals, v)
                except TypeTransformerFailedError as exc:
                    raise locate(v, exc) from None
                return lit

        else:

            def encode(v: Any) -> Any:
                if not isinstance(v, list | tuple):
                    raise failed(t, v)
                lit = Literal()
                coll = lit.collection
                coll.SetInParent()
                try:
                    coll.literals.extend([enc(x) for x in v])
                except TypeTransformerFailedError as exc:
                    raise locate(v, exc) from None
                return lit

        def decode(lit: Any) -> Any:
            if lit.WhichOneof("value") != "collection":
                return _slow_read(lit, decode, t)
            items = lit.collection.literals
            try:
                if fast is not None:
                    return read_items(items)
                return [dec(x) for x in items]
            except TypeTransformerFailedError as exc:
                for i, x in enumerate(items):
                    try:
                        dec(x)
                    except TypeTransformerFailedError as inner:
                        raise add_path(inner, f"[{i}]") from None
                raise exc from None

        return encode, decode

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        elem = TypeEngine._plan(_list_elem(t))

        def to_builtin(v: Any) -> Any:
            if not isinstance(v, list | tuple):
                raise failed(t, v)
            to_b = elem.builtin()[0]
            out = []
            for i, x in enumerate(v):
                try:
                    out.append(to_b(x))
                except TypeTransformerFailedError as exc:
                    raise add_path(exc, f"[{i}]") from None
            return out

        def from_builtin(obj: Any) -> Any:
            if not isinstance(obj, list):
                raise failed(t, obj)
            from_b = elem.builtin()[1]
            out = []
            for i, x in enumerate(obj):
                try:
                    out.append(from_b(x))
                except TypeTransformerFailedError as exc:
                    raise add_path(exc, f"[{i}]") from None
            return out

        return to_builtin, from_builtin


# ---------------------------------------------------------------------------------------------
# Dict


def _dict_args(t: Any) -> tuple[Any, Any]:
    args = typing.get_args(t)
    return (args[0], args[1]) if len(args) == 2 else (Any, Any)


def _is_typed_map(t: Any) -> bool:
    key, value = _dict_args(t)
    return key is str and value is not Any


class DictTransformer(TypeTransformer[dict[Any, Any]]):
    """``Dict[str, T]`` as a LiteralMap; any other dict as msgpack Binary (STRUCT)."""

    def __init__(self) -> None:
        super().__init__("dict", dict)

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        if _is_typed_map(t):
            lt = LiteralType()
            lt.map_value_type.CopyFrom(TypeEngine._plan(_dict_args(t)[1]).literal_type)
            return lt
        return _simple(ST.SIMPLE_TYPE_STRUCT)

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        if literal_type.WhichOneof("type") == "map_value_type":
            return dict[str, TypeEngine.guess_python_type(literal_type.map_value_type)]  # type: ignore[misc]
        raise ValueError("not a map")

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        if not _is_typed_map(t):
            from caddis.core._transformers._structs import compile_msgpack, dict_builtin_codec

            return compile_msgpack(t, dict_builtin_codec(t))
        value_plan = TypeEngine._plan(_dict_args(t)[1])
        enc, dec = value_plan.encode, value_plan.decode
        vtr = value_plan.transformer
        fill = vtr.fill() if isinstance(vtr, _PrimitiveTransformer) else None

        def encode(v: Any) -> Any:
            if not isinstance(v, dict):
                raise failed(t, v)
            lit = Literal()
            m = lit.map
            m.SetInParent()
            literals = m.literals
            # Sorted keys: equal dicts built in different orders give identical literals.
            for key in sorted(v):
                if type(key) is not str:
                    raise add_path(failed(str, key, "map keys must be strings"), "<key>")
                try:
                    if fill is not None:
                        fill(literals[key], v[key])
                    else:
                        literals[key].CopyFrom(enc(v[key]))
                except TypeTransformerFailedError as exc:
                    raise add_path(exc, f"[{key!r}]") from None
            return lit

        def decode(lit: Any) -> Any:
            if lit.WhichOneof("value") != "map":
                return _slow_read(lit, decode, t)
            out = {}
            for key, item in lit.map.literals.items():
                try:
                    out[key] = dec(item)
                except TypeTransformerFailedError as exc:
                    raise add_path(exc, f"[{key!r}]") from None
            return out

        return encode, decode

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        from caddis.core._transformers._structs import dict_builtin_codec

        return dict_builtin_codec(t)


# ---------------------------------------------------------------------------------------------
# Union / Optional


def _variant_class(t: Any) -> Any:
    if t is None or t is _NoneType:
        return _NoneType
    origin = typing.get_origin(t)
    if origin is typing.Annotated:
        return _variant_class(typing.get_args(t)[0])
    if origin is not None:
        return origin if isinstance(origin, type) else None
    return t if isinstance(t, type) else None


class UnionTransformer(TypeTransformer[Any]):
    """``Union[...]`` / ``Optional[T]`` / ``A | B``: the literal records the chosen variant."""

    def __init__(self) -> None:
        super().__init__("union", typing.Union)  # type: ignore[arg-type]

    @staticmethod
    def _variants(t: Any) -> list[Any]:
        return [_NoneType if a is None else a for a in typing.get_args(t)]

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        lt = LiteralType()
        variants = lt.union_type.variants
        for v in self._variants(t):
            variant = variants.add()
            variant.CopyFrom(TypeEngine._plan(v).literal_type)
            variant.structure.tag = type_name(v)
        return lt

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        if literal_type.WhichOneof("type") == "union_type":
            args = tuple(TypeEngine.guess_python_type(v) for v in literal_type.union_type.variants)
            return typing.Union[args]  # noqa: UP007
        raise ValueError("not a union")

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        variants = self._variants(t)
        plans = [TypeEngine._plan(v) for v in variants]
        variant_types = list(lt.union_type.variants)
        by_tag = {vt.structure.tag: i for i, vt in enumerate(variant_types)}
        classes: dict[Any, list[int]] = {}
        for i, v in enumerate(variants):
            classes.setdefault(_variant_class(v), []).append(i)
        exact = {cls: idxs[0] for cls, idxs in classes.items() if cls and len(idxs) == 1}
        names = ", ".join(type_name(v) for v in variants)
        none_index = classes.get(_NoneType, [None])[0]

        def wrap(i: int, inner: Any) -> Any:
            lit = Literal()
            u = lit.scalar.union
            u.value.CopyFrom(inner)
            u.type.CopyFrom(variant_types[i])
            return lit

        def encode(v: Any) -> Any:
            i = exact.get(type(v))
            exact_error = None
            if i is not None:
                try:
                    return wrap(i, plans[i].encode(v))
                except TypeTransformerFailedError as exc:
                    exact_error = exc
            matches: list[tuple[int, Any]] = []
            for j, plan in enumerate(plans):
                if j == i:
                    continue
                try:
                    matches.append((j, plan.encode(v)))
                except TypeTransformerFailedError:
                    continue
            if len(matches) == 1:
                return wrap(*matches[0])
            if not matches:
                if exact_error is not None:
                    # The variant of the value's own class is the one the user meant: its
                    # error says what is wrong inside the value.
                    raise exact_error
                raise failed(t, v, f"the value matches none of the variants ({names})")
            matched = ", ".join(type_name(variants[j]) for j, _ in matches)
            raise failed(
                t,
                v,
                f"ambiguous: the value matches several variants ({matched}); annotate a "
                "narrower type",
            )

        def decode(lit: Any) -> Any:
            scalar_kind = lit.scalar.WhichOneof("value") if lit.HasField("scalar") else None
            if scalar_kind == "union":
                u = lit.scalar.union
                i = by_tag.get(u.type.structure.tag)
                if i is None:
                    i = _match_variant(u.type, variant_types)
                if i is None:
                    raise failed_literal(t, lit)
                return plans[i].decode(u.value)
            if scalar_kind == "none_type" and none_index is not None:
                return None
            # A plain literal (a constant bound to an Optional input): the first variant
            # that reads it wins.
            for plan in plans:
                try:
                    return plan.decode(lit)
                except TypeTransformerFailedError:
                    continue
            raise failed_literal(t, lit)

        return encode, decode

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        variants = self._variants(t)
        plans = [TypeEngine._plan(v) for v in variants]
        exact: dict[Any, int] = {}
        for i, v in enumerate(variants):
            cls = _variant_class(v)
            if cls is not None:
                exact.setdefault(cls, i)

        def to_builtin(v: Any) -> Any:
            i = exact.get(type(v))
            order = ([plans[i]] if i is not None else []) + plans
            for p in order:
                try:
                    return p.builtin()[0](v)
                except TypeTransformerFailedError:
                    continue
            raise failed(t, v)

        def from_builtin(obj: Any) -> Any:
            for p in plans:
                try:
                    return p.builtin()[1](obj)
                except (TypeTransformerFailedError, TypeError, ValueError):
                    continue
            raise failed(t, obj)

        return to_builtin, from_builtin


def _strip_structure(lt: Any) -> Any:
    out = LiteralType()
    out.CopyFrom(lt)
    out.ClearField("structure")
    return out


def _match_variant(lt: Any, variants: list[Any]) -> int | None:
    stripped = _strip_structure(lt)
    for i, v in enumerate(variants):
        if _strip_structure(v) == stripped:
            return i
    return None


# ---------------------------------------------------------------------------------------------
# Enum


class EnumTransformer(TypeTransformer[enum.Enum]):
    """Enum classes as EnumType; a member travels as the string of its value."""

    def __init__(self) -> None:
        super().__init__("enum", enum.Enum)

    def _matches(self, t: Any) -> bool:
        return is_enum_type(t)

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        lt = LiteralType()
        lt.enum_type.values.extend(str(m.value) for m in t)
        lt.structure.tag = type_name(t)
        return lt

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        if literal_type.WhichOneof("type") == "enum_type":
            values = list(literal_type.enum_type.values)
            name = literal_type.structure.tag.rsplit(".", 1)[-1] or "GuessedEnum"
            return enum.Enum(name, {v.upper() or "EMPTY": v for v in values})
        raise ValueError("not an enum")

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        to_b, from_b = self._codec(t)

        def encode(v: Any) -> Any:
            lit = Literal()
            lit.scalar.primitive.string_value = to_b(v)
            return lit

        def decode(lit: Any) -> Any:
            p = lit.scalar.primitive
            if p.WhichOneof("value") != "string_value":
                return _slow_read(lit, decode, t)
            return from_b(p.string_value)

        return encode, decode

    @staticmethod
    def _codec(t: Any) -> BuiltinCodec:
        by_value = {str(m.value): m for m in t}

        def to_builtin(v: Any) -> Any:
            if isinstance(v, t):
                return str(v.value)
            if isinstance(v, str) and v in by_value:  # the value itself, as Enum(value) takes
                return v
            raise failed(t, v, f"allowed values: {sorted(by_value)}")

        def from_builtin(obj: Any) -> Any:
            try:
                return by_value[obj]
            except (KeyError, TypeError):
                raise failed(t, obj, f"allowed values: {sorted(by_value)}") from None

        return to_builtin, from_builtin

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        return self._codec(t)


# ---------------------------------------------------------------------------------------------
# Annotated


class AnnotatedTransformer(TypeTransformer[Any]):
    """``Annotated[T, ...]``: T's conversion; a ``HashMethod`` in the metadata sets the hash.

    Transformers that understand annotations (dataframe columns) get the whole Annotated type.
    """

    def __init__(self) -> None:
        super().__init__("annotated", typing.Annotated)  # type: ignore[arg-type]

    @staticmethod
    def inner(t: Any) -> tuple[Any, tuple[Any, ...]]:
        """Returns (T, metadata) of ``Annotated[T, *metadata]``."""
        return t.__origin__, t.__metadata__

    def _inner_transformer(self, t: Any) -> TypeTransformer[Any]:
        return TypeEngine._plan(self.inner(t)[0]).transformer

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        inner, _ = self.inner(t)
        tr = self._inner_transformer(t)
        if getattr(tr, "handles_annotated", False):
            return tr.get_literal_type(t)
        lt = LiteralType()
        lt.CopyFrom(TypeEngine._plan(inner).literal_type)
        return lt

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        inner, metadata = self.inner(t)
        tr = self._inner_transformer(t)
        if getattr(tr, "handles_annotated", False):
            encode, decode = tr._compile(t, lt)
        else:
            plan = TypeEngine._plan(inner)
            encode, decode = plan.encode, plan.decode
        hashers = [m for m in metadata if isinstance(m, HashMethod)]
        if not hashers:
            return encode, decode
        hasher = hashers[-1]
        inner_encode = encode

        def encode_hashed(v: Any) -> Any:
            lit = inner_encode(v)
            lit.hash = hasher.calculate(v)
            return lit

        return encode_hashed, decode

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        return TypeEngine._plan(self.inner(t)[0]).builtin()


# ---------------------------------------------------------------------------------------------
# Registration and guessing

_BUILTIN_IDS: set[int] = set()


def builtin_transformer_ids() -> set[int]:
    """Ids of the transformers registered by caddis itself (guessing asks users' first)."""
    return _BUILTIN_IDS


def register_all(engine: type[TypeEngine]) -> None:
    """Registers every built-in transformer with ``engine`` (called once, lazily)."""
    from caddis.core._transformers import _blobs, _dataframes, _structs

    registry = engine._REGISTRY

    def put(tr: TypeTransformer[Any], *keys: Any) -> None:
        _BUILTIN_IDS.add(id(tr))
        for key in keys or (tr.python_type,):
            registry[key] = tr

    put(_PrimitiveTransformer(int, ST.SIMPLE_TYPE_INTEGER, "integer", _as_int))
    put(_PrimitiveTransformer(float, ST.SIMPLE_TYPE_FLOAT, "float_value", _as_float))
    put(_PrimitiveTransformer(str, ST.SIMPLE_TYPE_STRING, "string_value", _as_str))
    put(_PrimitiveTransformer(bool, ST.SIMPLE_TYPE_BOOLEAN, "boolean", _as_bool))
    put(_NoneTransformer(), _NoneType, None)
    put(
        _ScalarTransformer(
            bytes, ST.SIMPLE_TYPE_BINARY, _bytes_encode, _bytes_decode, _bytes_to_b, _bytes_from_b
        )
    )
    put(
        _ScalarTransformer(
            datetime.datetime,
            ST.SIMPLE_TYPE_DATETIME,
            _datetime_encode,
            _datetime_decode,
            _datetime_to_b,
            _datetime_from_b,
        )
    )
    put(
        _ScalarTransformer(
            datetime.date,
            ST.SIMPLE_TYPE_DATETIME,
            _date_encode,
            _date_decode,
            lambda v: _check_date(v).isoformat(),
            _date_from_b,
        )
    )
    put(
        _ScalarTransformer(
            datetime.timedelta,
            ST.SIMPLE_TYPE_DURATION,
            _timedelta_encode,
            _timedelta_decode,
            _timedelta_to_b,
            _timedelta_from_b,
        )
    )
    put(ListTransformer(), list)
    put(DictTransformer(), dict)
    put(UnionTransformer(), typing.Union)
    put(AnnotatedTransformer(), typing.Annotated)
    untyped = _structs.UntypedTransformer()
    put(untyped, typing.Any, object)
    pickle_tr = _blobs.PickleTransformer()
    put(pickle_tr, _PickleMarker)
    for tr in _blobs.builtin_transformers():
        put(tr)
    matchers: list[TypeTransformer[Any]] = [
        EnumTransformer(),
        _structs.DataclassTransformer(),
        _structs.PydanticTransformer(),
        *_dataframes.builtin_matchers(),
        _blobs.NumpyArrayTransformer(),
    ]
    for tr in matchers:
        _BUILTIN_IDS.add(id(tr))
        engine._MATCHERS.append(tr)
    _BUILTIN_IDS.add(id(pickle_tr))


def guess_builtin(lt: types_pb2.LiteralType) -> Any:
    """Guesses a Python type for a LiteralType with the built-in rules."""
    from caddis.core._transformers import _blobs, _dataframes, _structs

    kind = lt.WhichOneof("type")
    if kind == "simple":
        simple_map: dict[int, Any] = {
            ST.SIMPLE_TYPE_NONE: _NoneType,
            ST.SIMPLE_TYPE_INTEGER: int,
            ST.SIMPLE_TYPE_FLOAT: float,
            ST.SIMPLE_TYPE_STRING: str,
            ST.SIMPLE_TYPE_BOOLEAN: bool,
            ST.SIMPLE_TYPE_DATETIME: datetime.datetime,
            ST.SIMPLE_TYPE_DURATION: datetime.timedelta,
            ST.SIMPLE_TYPE_BINARY: bytes,
        }
        if lt.simple in simple_map:
            return simple_map[lt.simple]
        if lt.simple == ST.SIMPLE_TYPE_STRUCT:
            return _structs.guess_struct(lt)
    elif kind == "collection_type":
        return list[guess_builtin_or_registered(lt.collection_type)]  # type: ignore[misc]
    elif kind == "map_value_type":
        return dict[str, guess_builtin_or_registered(lt.map_value_type)]  # type: ignore[misc]
    elif kind == "union_type":
        args = tuple(guess_builtin_or_registered(v) for v in lt.union_type.variants)
        return typing.Union[args]  # noqa: UP007
    elif kind == "enum_type":
        return EnumTransformer().guess_python_type(lt)
    elif kind == "blob":
        return _blobs.guess_blob(lt)
    elif kind == "structured_dataset_type":
        return _dataframes.guess_structured(lt)
    raise ValueError(f"No Python type is known for the literal type {lt}")


def guess_builtin_or_registered(lt: types_pb2.LiteralType) -> Any:
    """Guesses through the engine (users' transformers first) for nested types."""
    return TypeEngine.guess_python_type(lt)


__all__ = [
    "AnnotatedTransformer",
    "DictTransformer",
    "EnumTransformer",
    "ListTransformer",
    "UnionTransformer",
    "failed_literal",
    "register_all",
    "unwrap_union",
]
