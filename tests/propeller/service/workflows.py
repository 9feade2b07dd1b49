"""Small workflows for the propeller service tests (tasks run in separate processes).

Every task writes a marker file per successful run (execution, node path, attempt) under
``CADDIS_TEST_MARKERS`` so tests can count how often each attempt's user code ran.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from caddis import Cache, Resources, dynamic, map_task, task, workflow


def _mark(kind: str) -> None:
    root = os.environ.get("CADDIS_TEST_MARKERS")
    if not root:
        return
    name = "|".join(
        [
            os.environ.get("CADDIS_EXECUTION_NAME", "?"),
            os.environ.get("CADDIS_NODE_PATH", "?").replace("/", "~"),
            os.environ.get("CADDIS_ATTEMPT", "?"),
            kind,
            uuid.uuid4().hex[:8],
        ]
    )
    Path(root).mkdir(parents=True, exist_ok=True)
    (Path(root) / name).write_text("")


def _maybe_slow() -> None:
    delay = float(os.environ.get("CADDIS_TEST_TASK_DELAY", "0") or 0)
    if delay:
        time.sleep(delay)


@task
def double(x: int) -> int:
    _maybe_slow()
    _mark("double")
    return x * 2


@task
def total(xs: list[int]) -> int:
    _mark("total")
    return sum(xs)


@task
def count_characters(text: str) -> int:
    _mark("count")
    return len(text)


@dynamic
def fan_out(n: int) -> list[int]:
    _mark("fan_out")
    return [double(x=i) for i in range(n)]


@workflow
def simple(x: int) -> int:
    return double(x=double(x=x))


@workflow
def pipeline(n: int) -> int:
    """Dynamic fan-out, then a map task over its results, then a sum."""
    doubled = fan_out(n=n)
    quadrupled = map_task(double)(x=doubled)
    return total(xs=quadrupled)


@task
def sleepy(seconds: float) -> float:
    _mark("sleepy")
    time.sleep(seconds)
    return seconds


@workflow
def sleeper(seconds: float) -> float:
    return sleepy(seconds=seconds)


@task(cache=Cache(version="1", serialize=True))
def cached_square(x: int) -> int:
    _maybe_slow()
    _mark("square")
    return x * x


@workflow
def cached(x: int) -> int:
    return cached_square(x=x)


@workflow
def mapped(xs: list[int]) -> list[int]:
    return map_task(double)(x=xs)


@workflow
def counting(text: str) -> int:
    return count_characters(text=text)


@task
def noop(x: int) -> int:
    return x


@workflow
def chain50(x: int) -> int:
    """50 task nodes in a row (per-node overhead)."""
    for _ in range(50):
        x = noop(x=x)
    return x


@dynamic
def fan_noop(n: int) -> list[int]:
    return [noop(x=i) for i in range(n)]


@workflow
def fan(n: int) -> list[int]:
    """A dynamic fan-out of ``n`` trivial tasks."""
    return fan_noop(n=n)


@workflow
def map_noop(xs: list[int]) -> list[int]:
    """A map task of trivial items."""
    return map_task(noop)(x=xs)


@task(requests=Resources(cpu="1", mem="10Mi"))
def hog(i: int) -> float:
    """Records when it ran, to check that slots keep such tasks from overlapping."""
    began = time.time()
    time.sleep(0.3)
    root = os.environ.get("CADDIS_TEST_MARKERS")
    if root:
        Path(root).mkdir(parents=True, exist_ok=True)
        (Path(root) / f"span-{i}").write_text(f"{began} {time.time()}")
    return began


@workflow
def hogs() -> list[float]:
    return [hog(i=0), hog(i=1), hog(i=2)]


@task(cache=Cache(version="1"))
def cached_noop(x: int) -> int:
    return x


@workflow
def map_cached(xs: list[int]) -> list[int]:
    """A map task of trivial cached items (a rerun is all cache hits)."""
    return map_task(cached_noop)(x=xs)
