from __future__ import annotations

import datetime
import subprocess
import sys
import typing
from typing import Annotated, Any

import pytest

from caddis.core.type_engine import (
    DataContext,
    HashMethod,
    SimpleTransformer,
    TypeEngine,
    TypeTransformer,
    TypeTransformerFailedError,
)
from caddis_idl.core.v1 import literals_pb2, types_pb2


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and other.cents == self.cents


class MoneyTransformer(TypeTransformer[Money]):
    """A flytekit-style transformer: (ctx, value, type, expected) signatures."""

    def __init__(self) -> None:
        super().__init__("money", Money)
        self.contexts: list[Any] = []

    def get_literal_type(self, t: type[Money]) -> types_pb2.LiteralType:
        return types_pb2.LiteralType(simple=types_pb2.SIMPLE_TYPE_STRING)

    def to_literal(
        self, ctx: Any, python_val: Money, python_type: type[Money], expected: Any
    ) -> literals_pb2.Literal:
        self.contexts.append(ctx)
        self.assert_type(python_type, python_val)
        lit = literals_pb2.Literal()
        lit.scalar.primitive.string_value = f"{python_val.cents}c"
        return lit

    def to_python_value(
        self, ctx: Any, lv: literals_pb2.Literal, expected_python_type: type[Money]
    ) -> Money:
        return Money(int(lv.scalar.primitive.string_value[:-1]))

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> type[Money]:
        if literal_type.structure.tag == "money":
            return Money
        raise ValueError("not money")


def test_user_transformer_registration(data_ctx: DataContext) -> None:
    tr = MoneyTransformer()
    TypeEngine.register(tr)
    assert TypeEngine.get_transformer(Money) is tr
    lit = TypeEngine.to_literal(Money(250), Money)
    assert lit.scalar.primitive.string_value == "250c"
    assert tr.contexts == [data_ctx]
    assert TypeEngine.to_python_value(lit, Money) == Money(250)
    # Containers of a user type use it per element.
    assert TypeEngine.to_python_value(
        TypeEngine.to_literal({"a": [Money(1)]}, dict[str, list[Money]]), dict[str, list[Money]]
    ) == {"a": [Money(1)]}
    with pytest.raises(TypeTransformerFailedError) as info:
        TypeEngine.to_literal(5, Money, name="price")
    assert "'price'" in str(info.value)
    assert "received int" in str(info.value)
    tagged = types_pb2.LiteralType(simple=types_pb2.SIMPLE_TYPE_STRING)
    tagged.structure.tag = "money"
    assert TypeEngine.guess_python_type(tagged) is Money


def test_simple_transformer() -> None:
    class Celsius(float):
        pass

    lt = types_pb2.LiteralType(simple=types_pb2.SIMPLE_TYPE_FLOAT)

    def to_lit(v: Celsius) -> literals_pb2.Literal:
        lit = literals_pb2.Literal()
        lit.scalar.primitive.float_value = float(v)
        return lit

    TypeEngine.register(
        SimpleTransformer(
            "celsius", Celsius, lt, to_lit, lambda lit: Celsius(lit.scalar.primitive.float_value)
        )
    )
    out = TypeEngine.to_python_value(TypeEngine.to_literal(Celsius(3.5), Celsius), Celsius)
    assert type(out) is Celsius
    assert out == 3.5
    with pytest.raises(TypeTransformerFailedError):
        TypeEngine.to_literal("hot", Celsius)


def test_subclass_of_registered_type_uses_its_transformer() -> None:
    class SpecialMoney(Money):
        pass

    TypeEngine.register(MoneyTransformer())
    assert TypeEngine.get_transformer(SpecialMoney).name == "money"


def test_annotated_passthrough_and_hash_method() -> None:
    t = Annotated[int, "some doc"]
    assert TypeEngine.to_literal_type(t) == TypeEngine.to_literal_type(int)
    assert TypeEngine.to_python_value(TypeEngine.to_literal(3, t), t) == 3
    hashed = Annotated[list[int], HashMethod(lambda xs: f"len{len(xs)}")]
    lit = TypeEngine.to_literal([1, 2], hashed)
    assert lit.hash == "len2"
    assert TypeEngine.to_python_value(lit, hashed) == [1, 2]


def test_dict_to_literal_map_and_back() -> None:
    types = {"n": int, "xs": list[float], "when": datetime.date, "maybe": int | None}
    values = {"xs": [1, 2.5], "n": 3, "when": datetime.date(2024, 1, 1), "maybe": None}
    lm = TypeEngine.dict_to_literal_map(values, types)
    assert set(lm.literals) == set(values)
    wire = literals_pb2.LiteralMap.FromString(lm.SerializeToString())
    assert TypeEngine.literal_map_to_kwargs(wire, types) == {**values, "xs": [1.0, 2.5]}


def test_literal_map_leaves_absent_inputs_to_the_caller() -> None:
    lm = TypeEngine.dict_to_literal_map({"a": 1}, {"a": int})
    assert TypeEngine.literal_map_to_kwargs(lm, {"a": int, "b": str}) == {"a": 1}


def test_literal_map_errors_name_the_variable() -> None:
    with pytest.raises(TypeTransformerFailedError) as info:
        TypeEngine.dict_to_literal_map({"a": "x"}, {"a": int})
    assert "'a'" in str(info.value) and "expected int" in str(info.value)
    with pytest.raises(TypeTransformerFailedError, match="not a declared variable"):
        TypeEngine.dict_to_literal_map({"zzz": 1}, {"a": int})
    lm = TypeEngine.dict_to_literal_map({"a": 1}, {"a": int})
    with pytest.raises(TypeTransformerFailedError, match="not a declared variable"):
        TypeEngine.literal_map_to_kwargs(lm, {"b": int})
    with pytest.raises(TypeTransformerFailedError) as info:
        TypeEngine.literal_map_to_kwargs(lm, {"a": str})
    assert "'a'" in str(info.value) and "expected str" in str(info.value)


def test_to_literal_type_returns_a_copy() -> None:
    lt = TypeEngine.to_literal_type(int)
    lt.simple = types_pb2.SIMPLE_TYPE_STRING
    assert TypeEngine.to_literal_type(int).simple == types_pb2.SIMPLE_TYPE_INTEGER


@pytest.mark.parametrize(
    "t",
    [
        int,
        float,
        str,
        bool,
        bytes,
        datetime.datetime,
        datetime.timedelta,
        type(None),
        list[int],
        dict[str, list[str]],
        int | None,
        typing.Union[int, str],  # noqa: UP007
    ],
)
def test_guess_python_type_round_trips_the_literal_type(t: Any) -> None:
    lt = TypeEngine.to_literal_type(t)
    guessed = TypeEngine.guess_python_type(lt)
    assert TypeEngine.to_literal_type(guessed) == lt


def test_unbound_typevar_is_an_error() -> None:
    with pytest.raises(TypeTransformerFailedError, match="type variable"):
        TypeEngine.to_literal_type(typing.TypeVar("T"))


def test_forward_reference_is_an_error() -> None:
    with pytest.raises(TypeTransformerFailedError, match="forward reference"):
        TypeEngine.to_literal_type("Missing")


_LAZY_CHECK = """
import sys, time
start = time.perf_counter()
import caddis
from caddis.core.type_engine import TypeEngine
import caddis.types.file, caddis.types.directory, caddis.types.structured, caddis.types.numpy
import dataclasses

@dataclasses.dataclass
class D:
    a: int
    b: list[str]

for value, t in [(1, int), ([1], list[int]), ({"a": 1.0}, dict[str, float]), (D(1, ["x"]), D)]:
    assert TypeEngine.to_python_value(TypeEngine.to_literal(value, t), t) == value
heavy = [m for m in ("grpc", "sqlalchemy", "minio", "pandas", "numpy", "pyarrow", "polars",
                     "pydantic") if m in sys.modules]
print(heavy)
"""


def test_conversions_do_not_import_heavy_libraries() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LAZY_CHECK], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_builtin_form_round_trips() -> None:
    import dataclasses

    @dataclasses.dataclass
    class P:
        when: datetime.datetime
        tags: dict[str, int]

    value = P(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC), {"b": 2, "a": 1})
    plain = TypeEngine.to_builtin(value, P)
    assert plain == {"tags": {"a": 1, "b": 2}, "when": "2024-01-01T00:00:00+00:00"}
    assert list(plain["tags"]) == ["a", "b"]
    assert TypeEngine.from_builtin(plain, P) == value
    assert TypeEngine.from_builtin(3, float) == 3.0


def test_set_and_reset_data_context(tmp_path: Any) -> None:
    from caddis.core.type_engine import current_data_context, reset_data_context, set_data_context

    ctx = DataContext(raw_output_prefix=tmp_path.as_uri(), local_dir=str(tmp_path / "l"))
    before = current_data_context()
    token = set_data_context(ctx)
    assert current_data_context() is ctx
    reset_data_context(token)
    assert current_data_context() is before


def test_literal_map_overflow_names_the_variable() -> None:
    with pytest.raises(TypeTransformerFailedError, match="'big'"):
        TypeEngine.dict_to_literal_map({"big": 2**70}, {"big": int})


def test_offloaded_literal_is_fetched(data_ctx: DataContext) -> None:
    from caddis.storage import get_store

    uri = data_ctx.new_raw_uri("big.pb")
    get_store(uri).write_proto(uri, TypeEngine.to_literal([1, 2, 3], list[int]))
    lit = literals_pb2.Literal()
    lit.offloaded_metadata.uri = uri
    lit.offloaded_metadata.inferred_type.CopyFrom(TypeEngine.to_literal_type(list[int]))
    assert TypeEngine.to_python_value(lit, list[int]) == [1, 2, 3]
