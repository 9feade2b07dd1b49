# ruff: noqa: UP006, UP007, UP045 - flytekit users write typing.List/Dict/Optional/Union
from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any, Dict, List, Optional, Union  # noqa: UP035

import pytest

from caddis.core.type_engine import TypeEngine, TypeTransformerFailedError
from caddis_idl.core.v1 import literals_pb2, types_pb2


def roundtrip(value: Any, t: Any) -> Any:
    lit = TypeEngine.to_literal(value, t, TypeEngine.to_literal_type(t))
    wire = literals_pb2.Literal.FromString(lit.SerializeToString())
    return TypeEngine.to_python_value(wire, t)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Item:
    name: str
    size: int = 1


@pytest.mark.parametrize(
    ("value", "t"),
    [
        ([], List[int]),
        ([1, 2, 3], List[int]),
        ([0, 0, 1], list[int]),
        ([0.0, 1.5], List[float]),
        (["", "a"], List[str]),
        ([True, False], List[bool]),
        ([[1], [], [2, 3]], List[List[int]]),
        ({}, Dict[str, int]),
        ({"a": 1, "b": 2}, Dict[str, int]),
        ({"a": [1.5], "b": []}, dict[str, list[float]]),
        ({"a": {"b": "c"}}, Dict[str, Dict[str, str]]),
        ({"x": [1, {"y": None}], "z": b"raw"}, dict),
        ({1: "one", 2: "two"}, Dict[int, str]),
        ({"k": 1, "j": [1, 2]}, Dict[str, Any]),
        (None, Optional[int]),
        (5, Optional[int]),
        ("x", Union[int, str]),
        (Color.GREEN, Color),
        ([Color.RED, None], List[Optional[Color]]),
        ({"k": [Item("a"), None, Item("b", 3)]}, Dict[str, List[Optional[Item]]]),
        ([{"k": Item("a")}], List[Dict[str, Item]]),
    ],
)
def test_roundtrip(value: Any, t: Any) -> None:
    assert roundtrip(value, t) == value


def test_literal_types() -> None:
    lt = TypeEngine.to_literal_type(Dict[str, List[int]])
    assert lt.map_value_type.collection_type.simple == types_pb2.SIMPLE_TYPE_INTEGER
    assert TypeEngine.to_literal_type(dict).simple == types_pb2.SIMPLE_TYPE_STRUCT
    enum_lt = TypeEngine.to_literal_type(Color)
    assert list(enum_lt.enum_type.values) == ["red", "green"]
    union_lt = TypeEngine.to_literal_type(Optional[int])
    variants = union_lt.union_type.variants
    assert [v.WhichOneof("type") for v in variants] == ["simple", "simple"]
    assert [v.simple for v in variants] == [
        types_pb2.SIMPLE_TYPE_INTEGER,
        types_pb2.SIMPLE_TYPE_NONE,
    ]
    assert len({v.structure.tag for v in variants}) == 2


def test_pep604_union_equals_typing_union() -> None:
    assert TypeEngine.to_literal_type(int | None) == TypeEngine.to_literal_type(Optional[int])
    assert roundtrip(None, int | None) is None


def test_union_records_the_chosen_variant() -> None:
    t = Union[int, str, List[int]]
    lt = TypeEngine.to_literal_type(t)
    for value, index in [(3, 0), ("a", 1), ([1], 2)]:
        lit = TypeEngine.to_literal(value, t)
        assert lit.scalar.union.type == lt.union_type.variants[index]
        assert roundtrip(value, t) == value


def test_union_prefers_the_exact_type() -> None:
    t = Union[float, int]
    assert TypeEngine.to_literal(3, t).scalar.union.type.simple == types_pb2.SIMPLE_TYPE_INTEGER
    assert type(roundtrip(3, t)) is int
    assert type(roundtrip(3.0, t)) is float
    # bool is not an int, and not a float either.
    with pytest.raises(TypeTransformerFailedError, match="matches none"):
        TypeEngine.to_literal(True, t)


def test_union_picks_the_only_variant_that_fits() -> None:
    t = Union[List[int], List[str]]
    lit = TypeEngine.to_literal(["a"], t)
    assert lit.scalar.union.type.collection_type.simple == types_pb2.SIMPLE_TYPE_STRING
    assert roundtrip(["a"], t) == ["a"]
    assert roundtrip([1], t) == [1]


def test_ambiguous_union_raises() -> None:
    with pytest.raises(TypeTransformerFailedError, match="ambiguous") as info:
        TypeEngine.to_literal([], Union[List[int], List[str]], name="xs")
    assert "'xs'" in str(info.value)


def test_plain_literal_reads_into_optional() -> None:
    assert TypeEngine.to_python_value(TypeEngine.to_literal(4, int), Optional[int]) == 4
    none_lit = TypeEngine.to_literal(None, type(None))
    assert TypeEngine.to_python_value(none_lit, Optional[int]) is None


def test_union_literal_reads_into_its_variant_type() -> None:
    lit = TypeEngine.to_literal(4, Optional[int])
    assert TypeEngine.to_python_value(lit, int) == 4


def test_enum_accepts_its_values_and_refuses_others() -> None:
    assert roundtrip("red", Color) is Color.RED
    with pytest.raises(TypeTransformerFailedError, match="allowed values"):
        TypeEngine.to_literal("blue", Color, name="c")


def test_list_error_names_the_index() -> None:
    with pytest.raises(TypeTransformerFailedError) as info:
        TypeEngine.to_literal([1, 2, "3"], List[int], name="xs")
    assert "'xs[2]'" in str(info.value)
    assert "expected int" in str(info.value)
    assert "received str" in str(info.value)


def test_nested_error_names_the_path() -> None:
    t = Dict[str, List[Optional[Item]]]
    with pytest.raises(TypeTransformerFailedError) as info:
        TypeEngine.to_literal({"k": [None, Item(name=3)]}, t, name="arg")  # type: ignore[arg-type]
    assert "'arg['k'][1].name'" in str(info.value)
    assert "expected str" in str(info.value)


def test_map_keys_must_be_strings() -> None:
    with pytest.raises(TypeTransformerFailedError, match="keys must be strings"):
        TypeEngine.to_literal({1: 1}, Dict[str, int])


def test_not_a_list() -> None:
    with pytest.raises(TypeTransformerFailedError, match="received str"):
        TypeEngine.to_literal("abc", List[str])


def test_equal_dicts_built_in_different_orders_give_equal_literals() -> None:
    a = {"b": 1, "a": 2, "c": 3}
    b = {"c": 3, "a": 2, "b": 1}
    for t in (Dict[str, int], dict, Dict[str, Any]):
        la, lb = TypeEngine.to_literal(a, t), TypeEngine.to_literal(b, t)
        assert la == lb
        assert la.SerializeToString(deterministic=True) == lb.SerializeToString(deterministic=True)
    nested_a = {"x": {"q": 1, "p": [{"z": 1, "y": 2}]}}
    nested_b = {"x": {"p": [{"y": 2, "z": 1}], "q": 1}}
    assert TypeEngine.to_literal(nested_a, dict) == TypeEngine.to_literal(nested_b, dict)


def test_untyped_dict_is_msgpack_binary() -> None:
    lit = TypeEngine.to_literal({"a": 1}, dict)
    assert lit.scalar.binary.tag == "msgpack"


def test_untyped_dict_refuses_non_json_values() -> None:
    with pytest.raises(TypeTransformerFailedError, match="JSON-like") as info:
        TypeEngine.to_literal({"a": {1, 2}}, dict, name="d")
    assert "'d['a']'" in str(info.value)


def test_any_reads_back_what_was_written() -> None:
    for value in (1, "s", 2.5, None, [1, "a"], {"k": [1]}):
        assert roundtrip(value, Any) == value


def test_any_reads_any_literal() -> None:
    lit = TypeEngine.to_literal({"a": [1, 2]}, Dict[str, List[int]])
    assert TypeEngine.to_python_value(lit, Any) == {"a": [1, 2]}
    assert TypeEngine.to_python_value(TypeEngine.to_literal(3, Optional[int]), typing.Any) == 3


def test_typed_map_decodes_generic_struct_literals() -> None:
    # Older SDKs wrote dicts as google.protobuf.Struct; they still read.
    lit = literals_pb2.Literal()
    lit.scalar.generic.update({"a": 1, "b": "x"})
    assert TypeEngine.to_python_value(lit, dict) == {"a": 1, "b": "x"}
