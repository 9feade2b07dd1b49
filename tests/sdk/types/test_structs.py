from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any

import msgpack
import pydantic
import pytest

from caddis.core.type_engine import TypeEngine, TypeTransformerFailedError
from caddis_idl.core.v1 import literals_pb2, types_pb2


def roundtrip(value: Any, t: Any) -> Any:
    lit = TypeEngine.to_literal(value, t, TypeEngine.to_literal_type(t))
    wire = literals_pb2.Literal.FromString(lit.SerializeToString())
    return TypeEngine.to_python_value(wire, t)


class Kind(enum.Enum):
    A = "a"
    B = "b"


@dataclasses.dataclass
class Leaf:
    value: int
    note: str | None = None


@dataclasses.dataclass
class Tree:
    name: str
    leaves: list[Leaf]
    by_name: dict[str, Leaf] = dataclasses.field(default_factory=dict)
    kind: Kind = Kind.A
    weight: float = 1.0
    when: datetime.datetime | None = None
    blob: bytes = b""
    span: datetime.timedelta = datetime.timedelta(0)


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: int
    b: tuple[int, ...] = ()


@dataclasses.dataclass
class Node:
    label: str
    children: list[Node] = dataclasses.field(default_factory=list)


def test_nested_dataclass_roundtrip() -> None:
    tree = Tree(
        name="t",
        leaves=[Leaf(1), Leaf(2, "two")],
        by_name={"x": Leaf(3)},
        kind=Kind.B,
        weight=2,  # an int where a float is declared
        when=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        blob=b"\x00",
        span=datetime.timedelta(seconds=90),
    )
    out = roundtrip(tree, Tree)
    assert out == tree
    assert type(out.weight) is float


def test_defaults_fill_missing_fields() -> None:
    lit = literals_pb2.Literal()
    lit.scalar.binary.value = msgpack.packb({"name": "n", "leaves": [{"value": 1}]})
    lit.scalar.binary.tag = "msgpack"
    assert TypeEngine.to_python_value(lit, Tree) == Tree("n", [Leaf(1)])


def test_missing_required_field_is_an_error() -> None:
    lit = literals_pb2.Literal()
    lit.scalar.binary.value = msgpack.packb({"leaves": []})
    lit.scalar.binary.tag = "msgpack"
    with pytest.raises(TypeTransformerFailedError, match="missing") as info:
        TypeEngine.to_python_value(lit, Tree, name="t")
    assert "'t.name'" in str(info.value)


def test_recursive_dataclass() -> None:
    node = Node("root", [Node("a"), Node("b", [Node("c")])])
    assert roundtrip(node, Node) == node


def test_msgpack_binary_with_sorted_fields() -> None:
    lit = TypeEngine.to_literal(Leaf(1, "n"), Leaf)
    assert lit.scalar.binary.tag == "msgpack"
    decoded = msgpack.unpackb(lit.scalar.binary.value)
    assert list(decoded) == ["note", "value"]
    assert decoded == {"note": "n", "value": 1}


def test_equal_dataclasses_give_equal_literals() -> None:
    a = Tree("t", [Leaf(1)], by_name={"b": Leaf(2), "a": Leaf(1)})
    b = Tree("t", [Leaf(1)], by_name={"a": Leaf(1), "b": Leaf(2)})
    assert TypeEngine.to_literal(a, Tree) == TypeEngine.to_literal(b, Tree)


def test_dataclass_literal_type_carries_structure_and_schema() -> None:
    lt = TypeEngine.to_literal_type(Tree)
    assert lt.simple == types_pb2.SIMPLE_TYPE_STRUCT
    assert lt.structure.tag.endswith("Tree")
    fields = lt.structure.dataclass_type
    assert set(fields) == {"name", "leaves", "by_name", "kind", "weight", "when", "blob", "span"}
    assert fields["name"].simple == types_pb2.SIMPLE_TYPE_STRING
    leaf_lt = fields["leaves"].collection_type
    assert leaf_lt.structure.dataclass_type["value"].simple == types_pb2.SIMPLE_TYPE_INTEGER
    assert list(fields["kind"].enum_type.values) == ["a", "b"]
    schema = lt.metadata
    assert schema["title"] == "Tree"
    assert sorted(schema["required"]) == ["leaves", "name"]
    assert schema["properties"]["weight"]["type"] == "number"


def test_dataclass_field_type_error_names_the_field() -> None:
    with pytest.raises(TypeTransformerFailedError) as info:
        TypeEngine.to_literal(Tree("t", [Leaf("x")]), Tree, name="tree")  # type: ignore[arg-type]
    message = str(info.value)
    assert "'tree.leaves[0].value'" in message
    assert "expected int" in message
    assert "received str" in message


def test_wrong_class_is_refused() -> None:
    with pytest.raises(TypeTransformerFailedError, match="received"):
        TypeEngine.to_literal(Leaf(1), Tree)


def test_frozen_dataclass_with_tuple_is_pickled_field_free() -> None:
    # tuple[int, ...] has no transformer of its own; the whole value still round-trips.
    with pytest.warns(UserWarning, match="pickled"):
        assert roundtrip(Frozen(1, (2, 3)), Frozen) == Frozen(1, (2, 3))


class Address(pydantic.BaseModel):
    city: str
    zip_code: str | None = None


class Person(pydantic.BaseModel):
    name: str
    age: int
    addresses: list[Address] = []
    leaf: Leaf | None = None
    scores: dict[str, float] = {}


def test_pydantic_roundtrip() -> None:
    p = Person(
        name="ann", age=3, addresses=[Address(city="x")], leaf=Leaf(2), scores={"b": 1.0, "a": 2}
    )
    out = roundtrip(p, Person)
    assert out == p
    lt = TypeEngine.to_literal_type(Person)
    assert lt.simple == types_pb2.SIMPLE_TYPE_STRUCT
    assert lt.structure.dataclass_type["age"].simple == types_pb2.SIMPLE_TYPE_INTEGER
    assert lt.metadata["title"] == "Person"


def test_pydantic_validation_error_on_read() -> None:
    lit = literals_pb2.Literal()
    lit.scalar.binary.value = msgpack.packb({"name": "x", "age": "not a number"})
    lit.scalar.binary.tag = "msgpack"
    with pytest.raises(TypeTransformerFailedError, match="expected int") as info:
        TypeEngine.to_python_value(lit, Person, name="p")
    assert "'p.age'" in str(info.value)


def test_guess_python_type_rebuilds_a_dataclass() -> None:
    guessed = TypeEngine.guess_python_type(TypeEngine.to_literal_type(Leaf))
    assert dataclasses.is_dataclass(guessed)
    assert guessed.__name__ == "Leaf"
    lit = TypeEngine.to_literal(Leaf(5, "n"), Leaf)
    value = TypeEngine.to_python_value(lit, guessed)
    assert (value.value, value.note) == (5, "n")
