"""Workflows of the propeller leftover tests: cached maps, launch plans, gates, recovery.

Tasks run in separate processes and import this module from the repository root; each
writes a marker file per run (see :mod:`tests.propeller.service.workflows`).
"""

from __future__ import annotations

import os
from pathlib import Path

from caddis import Cache, map_task, task, workflow
from tests.propeller.service.workflows import _mark


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
