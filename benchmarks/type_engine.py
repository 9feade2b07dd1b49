"""Type engine round-trip benchmark: to_literal + to_python_value per type.

Run: python benchmarks/type_engine.py  (prints medians; record them in benchmarks/README.md)
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

from caddis.core.type_engine import TypeEngine


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: str
    tags: list[str] = dataclasses.field(default_factory=list)
    weight: float | None = None


def _median_us(fn: Callable[[], Any], number: int, repeat: int = 7) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number * 1e6)
    return statistics.median(samples)


def _case(value: Any, t: Any, number: int) -> tuple[float, float, float]:
    lt = TypeEngine.to_literal_type(t)
    lit = TypeEngine.to_literal(value, t, lt)
    assert TypeEngine.to_python_value(lit, t) == value
    to_lit = _median_us(lambda: TypeEngine.to_literal(value, t, lt), number)
    to_py = _median_us(lambda: TypeEngine.to_python_value(lit, t), number)
    both = _median_us(
        lambda: TypeEngine.to_python_value(TypeEngine.to_literal(value, t, lt), t), number
    )
    return to_lit, to_py, both


def main() -> None:
    cases: list[tuple[str, Any, Any, int]] = [
        ("int", 42, int, 100_000),
        ("float", 1.5, float, 100_000),
        ("str", "hello", str, 100_000),
        ("Optional[int]", 7, int | None, 50_000),
        ("List[int] (1000)", list(range(1000)), list[int], 300),
        ("Dict[str, int] (100)", {f"k{i}": i for i in range(100)}, dict[str, int], 1_000),
        ("dataclass (5 fields)", Point(1, 2.5, "p", ["a", "b"], None), Point, 10_000),
    ]
    print(f"{'case':<24}{'to_literal us':>16}{'to_python us':>16}{'round trip us':>16}")
    for name, value, t, number in cases:
        to_lit, to_py, both = _case(value, t, number)
        print(f"{name:<24}{to_lit:>16.2f}{to_py:>16.2f}{both:>16.2f}")

    # What a trivial int -> int task pays for conversions: inputs LiteralMap -> kwargs, then
    # the output value -> outputs LiteralMap.
    inputs = TypeEngine.dict_to_literal_map({"x": 1}, {"x": int})
    in_types, out_types = {"x": int}, {"o0": int}

    def task_io() -> None:
        kwargs = TypeEngine.literal_map_to_kwargs(inputs, in_types)
        TypeEngine.dict_to_literal_map({"o0": kwargs["x"] + 1}, out_types)

    print(f"task io int->int (LiteralMap in and out): {_median_us(task_io, 50_000):.2f} us")


if __name__ == "__main__":
    main()
