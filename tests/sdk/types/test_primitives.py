from __future__ import annotations

import datetime
from typing import Any

import pytest

from caddis.core.type_engine import TypeEngine, TypeTransformerFailedError
from caddis_idl.core.v1 import literals_pb2, types_pb2

UTC = datetime.UTC


def roundtrip(value: Any, t: Any) -> Any:
    lt = TypeEngine.to_literal_type(t)
    lit = TypeEngine.to_literal(value, t, lt)
    # Through the wire, as a task process would see it.
    wire = literals_pb2.Literal.FromString(lit.SerializeToString())
    return TypeEngine.to_python_value(wire, t)


@pytest.mark.parametrize(
    ("value", "t", "simple"),
    [
        (0, int, types_pb2.SIMPLE_TYPE_INTEGER),
        (-(2**63), int, types_pb2.SIMPLE_TYPE_INTEGER),
        (1.25, float, types_pb2.SIMPLE_TYPE_FLOAT),
        (0.0, float, types_pb2.SIMPLE_TYPE_FLOAT),
        ("", str, types_pb2.SIMPLE_TYPE_STRING),
        ("héllo", str, types_pb2.SIMPLE_TYPE_STRING),
        (False, bool, types_pb2.SIMPLE_TYPE_BOOLEAN),
        (True, bool, types_pb2.SIMPLE_TYPE_BOOLEAN),
        (b"\x00\x01", bytes, types_pb2.SIMPLE_TYPE_BINARY),
        (None, type(None), types_pb2.SIMPLE_TYPE_NONE),
        (
            datetime.timedelta(days=1, microseconds=5),
            datetime.timedelta,
            types_pb2.SIMPLE_TYPE_DURATION,
        ),
        (datetime.date(2024, 2, 29), datetime.date, types_pb2.SIMPLE_TYPE_DATETIME),
        (
            datetime.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            datetime.datetime,
            types_pb2.SIMPLE_TYPE_DATETIME,
        ),
    ],
)
def test_roundtrip_and_literal_type(value: Any, t: Any, simple: int) -> None:
    assert TypeEngine.to_literal_type(t) == types_pb2.LiteralType(simple=simple)  # type: ignore[arg-type]
    out = roundtrip(value, t)
    assert out == value
    assert type(out) is type(value)


def test_int_is_accepted_for_float() -> None:
    out = roundtrip(3, float)
    assert out == 3.0
    assert type(out) is float


def test_int_literal_reads_as_float() -> None:
    lit = TypeEngine.to_literal(4, int)
    assert TypeEngine.to_python_value(lit, float) == 4.0


@pytest.mark.parametrize("t", [int, float])
def test_bool_is_not_a_number(t: Any) -> None:
    with pytest.raises(TypeTransformerFailedError, match="received bool"):
        TypeEngine.to_literal(True, t)


@pytest.mark.parametrize(("value", "t"), [("1", int), (1, str), (1, bool), (1.5, int), (None, int)])
def test_wrong_primitive_type_is_refused(value: Any, t: Any) -> None:
    with pytest.raises(TypeTransformerFailedError):
        TypeEngine.to_literal(value, t)


def test_error_names_variable_expected_and_received() -> None:
    with pytest.raises(TypeTransformerFailedError) as info:
        TypeEngine.to_literal("abc", int, name="count")
    message = str(info.value)
    assert "'count'" in message
    assert "expected int" in message
    assert "received str" in message
    assert info.value.variable == "count"
    assert info.value.expected == "int"
    assert info.value.received_type == "str"


def test_error_on_reading_a_literal_of_another_kind() -> None:
    lit = TypeEngine.to_literal("abc", str)
    with pytest.raises(TypeTransformerFailedError) as info:
        TypeEngine.to_python_value(lit, int, name="n")
    assert "'n'" in str(info.value)
    assert "expected int" in str(info.value)
    assert "string_value" in str(info.value)


def test_zero_values_are_checked_against_their_kind() -> None:
    # A literal that is not an int reads as 0 from the integer field; it must still fail.
    empty = literals_pb2.Literal()
    empty.scalar.primitive.string_value = ""
    with pytest.raises(TypeTransformerFailedError):
        TypeEngine.to_python_value(empty, int)
    assert TypeEngine.to_python_value(TypeEngine.to_literal(0, int), int) == 0


def test_int64_overflow_is_a_type_error() -> None:
    with pytest.raises(TypeTransformerFailedError, match="'big'"):
        TypeEngine.to_literal(2**64, int, name="big")


def test_naive_datetime_is_taken_as_utc() -> None:
    naive = datetime.datetime(2024, 5, 6, 7, 8, 9)
    out = roundtrip(naive, datetime.datetime)
    assert out == naive.replace(tzinfo=UTC)
    assert out.tzinfo is not None


def test_aware_datetime_is_converted_to_utc() -> None:
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    value = datetime.datetime(2024, 5, 6, 9, 0, tzinfo=plus2)
    out = roundtrip(value, datetime.datetime)
    assert out == value  # the same instant
    assert out.utcoffset() == datetime.timedelta(0)


def test_datetime_is_not_silently_truncated_to_date() -> None:
    with pytest.raises(TypeTransformerFailedError):
        TypeEngine.to_literal(datetime.datetime(2024, 1, 1), datetime.date)


def test_bytearray_is_accepted_as_bytes() -> None:
    assert roundtrip(bytearray(b"ab"), bytes) == b"ab"


def test_numpy_scalars_are_accepted() -> None:
    np = pytest.importorskip("numpy")
    assert roundtrip(np.int64(5), int) == 5
    assert roundtrip(np.float32(0.5), float) == 0.5
    assert roundtrip(np.bool_(True), bool) is True
