"""Workflows of the propeller leftover tests: cached maps, launch plans, gates, recovery.

Tasks run in separate processes and import this module from the repository root; each
writes a marker file per run (see :mod:`tests.propeller.service.workflows`).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from caddis import Cache, LaunchPlan, approve, dynamic, map_task, task, wait_for_input, workflow
from tests.propeller.service.workflows import _mark, sleepy, total


@task(cache=Cache(version="1"))
def cached_triple(x: int) -> int:
    _mark("triple")
    return 3 * x


@workflow
def cached_map(xs: list[int]) -> list[int]:
    return map_task(cached_triple)(x=xs)


@task
def add_one(x: int) -> int:
    _mark("add_one")
    return x + 1


@task
def flaky_square(x: int) -> int:
    """Fails while the file named by ``CADDIS_TEST_FAIL_ONCE`` exists (and removes it)."""
    _mark("flaky_square")
    flag = os.environ.get("CADDIS_TEST_FAIL_ONCE", "")
    if flag and Path(flag).exists():
        Path(flag).unlink()
        raise RuntimeError("failing once, as the test asked")
    return x * x


@workflow
def recoverable(x: int) -> int:
    return flaky_square(x=add_one(x=x))


@workflow
def child(x: int) -> int:
    return add_one(x=x)


child_lp = LaunchPlan.get_or_create(child, name="child_lp")


@workflow
def parent(x: int) -> int:
    """Runs ``child`` as a child execution (launch-plan node), then adds one more."""
    return add_one(x=child_lp(x=x))


@task
def total2(a: int, b: int) -> int:
    _mark("total2")
    return a + b


@workflow
def gated(x: int) -> int:
    """Waits for an integer signal ``bonus`` and an approval before adding them."""
    bonus = wait_for_input("bonus", timeout=timedelta(minutes=5), expected_type=int)
    first = add_one(x=x)
    approved = approve(first, "go", timeout=timedelta(minutes=5))
    return total2(a=approved, b=bonus)


@dynamic
def fan_flaky(n: int) -> int:
    """``n`` add_one tasks and their sum, then a flaky square: recovery keeps all but it."""
    ones = [add_one(x=i) for i in range(n)]
    return flaky_square(x=total(xs=ones))


@workflow
def recoverable_dynamic(n: int) -> int:
    return fan_flaky(n=n)


@workflow
def slow_child(seconds: float) -> float:
    return sleepy(seconds=seconds)


slow_child_lp = LaunchPlan.get_or_create(slow_child, name="slow_child_lp")


@workflow
def slow_parent(seconds: float) -> float:
    return slow_child_lp(seconds=seconds)


@workflow
def recoverable_map(xs: list[int]) -> int:
    return flaky_square(x=total(xs=map_task(add_one)(x=xs)))


@task
def flaky_item(x: int) -> int:
    """Item 2 fails while the file named by ``CADDIS_TEST_FAIL_ONCE`` exists (and removes it)."""
    _mark("flaky_item")
    flag = os.environ.get("CADDIS_TEST_FAIL_ONCE", "")
    if x == 2 and flag and Path(flag).exists():
        Path(flag).unlink()
        raise RuntimeError("item 2 failing once, as the test asked")
    return x + 10


@workflow
def partly_failing_map(xs: list[int]) -> list[int]:
    # One item at a time: items 0 and 1 have succeeded (outputs recorded) before item 2 fails,
    # so what the recovery may reuse does not depend on timing.
    return map_task(flaky_item, concurrency=1)(x=xs)
