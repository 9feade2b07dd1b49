"""Workflows the local-execution tests run (module level, as users write them)."""

from __future__ import annotations

import dataclasses
import os
import time

from caddis import (
    LaunchPlan,
    TaskMetadata,
    conditional,
    current_context,
    dynamic,
    map_task,
    task,
    workflow,
)
from caddis.exceptions import NonRecoverableError
from caddis.runtime import Deck, RecoverableError
from caddis.types.file import FlyteFile

CALLS: dict[str, int] = {}


def bump(name: str) -> int:
    CALLS[name] = CALLS.get(name, 0) + 1
    return CALLS[name]


@task
def inc(x: int) -> int:
    bump("inc")
    return x + 1


@task
def double(x: int) -> int:
    return 2 * x


@workflow
def chain(x: int) -> int:
    return double(x=inc(x=inc(x=x)))


@workflow
def two_outputs(x: int, label: str = "v") -> tuple[int, str]:
    return inc(x=x), label


@task
def return_index(character: str) -> int:
    if character.islower():
        return ord(character) - ord("a")
    return ord(character) - ord("A")


@task
def update_list(freq_list: list[int], list_index: int) -> list[int]:
    freq_list[list_index] += 1
    return freq_list


@task
def derive_count(freq1: list[int], freq2: list[int]) -> int:
    return sum(min(freq1[i], freq2[i]) for i in range(26))


@dynamic
def count_characters(s1: str, s2: str) -> int:
    freq1 = [0] * 26
    freq2 = [0] * 26
    for ch in s1:
        freq1 = update_list(freq_list=freq1, list_index=return_index(character=ch))
    for ch in s2:
        freq2 = update_list(freq_list=freq2, list_index=return_index(character=ch))
    return derive_count(freq1=freq1, freq2=freq2)


@workflow
def count_wf(s1: str, s2: str) -> int:
    return count_characters(s1=s1, s2=s2)


@workflow
def mapped(xs: list[int]) -> list[int]:
    return map_task(inc)(x=xs)


@task
def odd_fails(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


@workflow
def tolerant(xs: list[int]) -> list[int | None]:
    return map_task(odd_fails, min_success_ratio=0.5)(x=xs)


@workflow
def intolerant(xs: list[int]) -> list[int | None]:
    return map_task(odd_fails, min_success_ratio=0.75)(x=xs)


@workflow
def branching(x: int) -> int:
    return conditional("sign").if_(x > 0).then(double(x=x)).else_().then(inc(x=x))


@task(retries=3)
def flaky(x: int) -> int:
    if bump("flaky") < 3:
        raise RecoverableError("not yet")
    return x


@task(retries=3)
def broken(x: int) -> int:
    bump("broken")
    raise ValueError(f"broken input {x}")


@task(retries=3)
def doomed(x: int) -> int:
    bump("doomed")
    raise NonRecoverableError(f"hopeless input {x}")


@workflow
def doomed_wf(x: int) -> int:
    return doomed(x=x)


@task(retries=2)
def flaky_plain(x: int) -> int:
    if bump("flaky_plain") < 2:
        raise ConnectionError("busy")
    return x


@workflow
def flaky_wf(x: int) -> int:
    return flaky(x=x)


@workflow
def broken_wf(x: int) -> int:
    return double(x=broken(x=x))


@task(timeout=0.2)
def slow(x: int) -> int:
    time.sleep(2)
    return x


@workflow
def slow_wf(x: int) -> int:
    return slow(x=x)


@task(retries=3)
def resumes(x: int) -> int:
    cp = current_context().checkpoint
    prev = cp.read()
    n = int(prev) if prev else 0
    cp.write(str(n + 1).encode())
    if n < 2:
        raise RecoverableError(f"checkpoint at {n}")
    return x + n


@workflow
def resume_wf(x: int) -> int:
    return resumes(x=x)


@task(cache=True, cache_version="1")
def cached_square(x: int) -> int:
    bump("cached_square")
    return x * x


@task(cache=True, cache_version="1", cache_ignore_input_vars=("note",))
def cached_ignoring(x: int, note: str) -> int:
    bump("cached_ignoring")
    return x


@workflow
def cached_map(xs: list[int]) -> list[int]:
    return map_task(cached_square)(x=xs)


@task
def make_file(text: str) -> FlyteFile:
    path = os.path.join(current_context().working_directory, "out.txt")
    with open(path, "w") as f:
        f.write(text)
    return FlyteFile(path)


@task
def read_file(f: FlyteFile) -> str:
    with open(f) as fh:
        return fh.read()


@workflow
def file_roundtrip(text: str) -> str:
    return read_file(f=make_file(text=text))


@workflow
def file_out(text: str) -> FlyteFile:
    return make_file(text=text)


@task(enable_deck=True)
def decked(x: int) -> int:
    Deck("notes", "<p>deck body</p>")
    return x


@workflow
def sub(x: int) -> int:
    return inc(x=x)


@workflow
def parent(x: int) -> int:
    return double(x=sub(x=x))


@task
def plus(a: int, b: int) -> int:
    return a + b


@workflow
def add(a: int, b: int) -> int:
    return plus(a=a, b=b)


add_lp = LaunchPlan.get_or_create(add, name="add_fixed", fixed_inputs={"b": 100})


@workflow
def uses_lp(a: int) -> int:
    return add_lp(a=a)


@workflow
def map_retry(xs: list[int]) -> list[int]:
    return map_task(flaky, metadata=TaskMetadata(retries=5))(x=xs)


@dataclasses.dataclass
class Report:
    name: str
    data: FlyteFile


@task
def make_report(text: str) -> Report:
    path = os.path.join(current_context().working_directory, "report.txt")
    with open(path, "w") as f:
        f.write(text)
    return Report(name="r", data=FlyteFile(path))


@workflow
def report_wf(text: str) -> Report:
    return make_report(text=text)


@task
def where_am_i(x: int) -> str:
    ctx = current_context()
    return f"{ctx.working_directory}|{ctx.attempt_number}|{ctx.checkpoint.dest}"


@workflow
def map_contexts(xs: list[int]) -> list[str]:
    return map_task(where_am_i)(x=xs)


@task
def whoami() -> str:
    eid = current_context().execution_id
    return f"{eid.project}/{eid.domain}/{eid.name}"
