"""Array nodes over a runner that is a CompletionTracker: a round costs per completion.

The runner below keeps every item in flight until the test finishes it; it counts ``check``
calls and the attempts the engine builds, so the tests can assert that a round's work follows
the completions, not the items in flight, and that results stay right under retries,
``min_success_ratio``, caching, timeouts and a persist/restore of the state between rounds.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from caddis_idl.core.v1 import execution_pb2, literals_pb2, tasks_pb2
from caddis_propeller.compiler import compile_workflow, list_of, optional
from caddis_propeller.engine import (
    CompletionTracker,
    EngineConfig,
    ExecutionState,
    Failed,
    Running,
    Succeeded,
    TaskAttempt,
    TaskStatus,
    make_error,
)
from tests.propeller.compiler.builders import INT, LIST_INT, array_node, lit, pymap, ref, task
from tests.propeller.compiler.builders import workflow as make_wf
from tests.propeller.engine.harness import EXEC_ID, Env, make_env

WP = execution_pb2.WorkflowExecutionPhase
CS = execution_pb2.CatalogCacheStatus
USER = execution_pb2.ErrorKind.ERROR_KIND_USER
OPT_INT = optional(INT)


@dataclass
class TrackingRunner:
    """Items run until ``finish`` is called; ``needs_check`` names finished (or unknown) ones.

    Attributes:
        outcome: item value -> list of outcomes per attempt ("ok", "fail", "fatal", "hang").
        track: False makes the runner a plain TaskRunner (no hook): the engine checks all.
    """

    outcome: dict[int, list[str]] = field(default_factory=dict)
    started: dict[str, TaskAttempt] = field(default_factory=dict)
    finished: dict[str, TaskStatus] = field(default_factory=dict)
    checks: int = 0
    asks: int = 0
    aborted: list[str] = field(default_factory=list)
    known: set[str] | None = None  # None: knows every handle it started

    def start_batch(self, attempts: Sequence[TaskAttempt]) -> list[TaskStatus]:
        return [self.start(a) for a in attempts]

    def start(self, attempt: TaskAttempt) -> TaskStatus:
        handle = f"{attempt.node_path}#{attempt.attempt}"
        self.started[handle] = attempt
        return Running(handle)

    def check(self, attempt: TaskAttempt, handle: str) -> TaskStatus:
        self.checks += 1
        assert attempt.node_path == handle.split("#")[0]
        return self.finished.pop(handle, Running(handle))

    def abort(self, attempt: TaskAttempt, handle: str, reason: str) -> None:
        self.aborted.append(handle)

    def needs_check(
        self, task: tasks_pb2.TaskTemplate, handles: Collection[str]
    ) -> Collection[str] | None:
        self.asks += 1
        if self.known is not None:
            # A restarted runner: what it does not know, it names (conservative).
            return [h for h in handles if h in self.finished or h not in self.known]
        return [h for h in handles if h in self.finished]

    def finish(self, count: int | None = None) -> int:
        """Finish up to ``count`` running attempts (all by default); returns how many."""
        todo = [h for h in self.started if h not in self.finished][:count]
        done = 0
        for handle in todo:
            att = self.started.pop(handle)
            x = pymap(att.inputs)["x"]
            plan = self.outcome.get(x, ["ok"])
            what = plan[min(att.attempt, len(plan) - 1)]
            if what == "hang":
                self.started[handle] = att
                continue
            done += 1
            if what == "ok":
                out = literals_pb2.LiteralMap()
                out.literals["o"].CopyFrom(lit(x * 10))
                self.finished[handle] = Succeeded(out)
            else:
                self.finished[handle] = Failed(
                    make_error("Boom", f"item {x} failed", kind=USER, recoverable=what == "fail")
                )
        return done


class PlainRunner(TrackingRunner):
    """The same runner without the hook."""

    needs_check = None  # type: ignore[assignment]


def _wf(retries: int = 0, ratio: float = 1.0, cacheable: bool = False, timeout: int = 0) -> Any:
    t = task(
        "ten",
        {"x": INT},
        {"o": INT},
        retries=retries,
        cacheable=cacheable,
        timeout=timeout or None,
    )
    wf = make_wf(
        "wf",
        {"xs": LIST_INT},
        {"ys": list_of(OPT_INT)},
        [array_node("m", t, {"x": ref("start-node", "xs")}, min_success_ratio=ratio)],
        {"ys": ref("m", "o")},
    )
    return wf, t


def _drive(
    env: Env,
    runner: TrackingRunner,
    wf: Any,
    t: Any,
    xs: list[int],
    *,
    per_round: int | None = None,
    restore: bool = False,
    name: str = "e1",
) -> tuple[ExecutionState, list[tuple[int, int]]]:
    """Run rounds, finishing ``per_round`` items between them; (state, [(finished, checks)])."""
    plan = env.engine.prepare(compile_workflow(wf, [t]))
    eid = type(EXEC_ID)(project="p", domain="d", name=name)
    inputs = literals_pb2.LiteralMap(literals={"xs": lit(xs)})
    state = env.engine.start(plan, inputs, execution_id=eid)
    log: list[tuple[int, int]] = []
    for _ in range(10_000):
        before = runner.checks
        r = env.engine.round(plan, state)
        log.append((0, runner.checks - before))
        if restore:
            state = ExecutionState.from_bytes(state.to_bytes())
        if r.done:
            break
        done = runner.finish(per_round)
        log[-1] = (done, log[-1][1])
        if not done and r.wake_at is not None:
            env.clock.advance(max(0.0, r.wake_at - env.clock.now()))
        elif not done and not runner.finished:
            env.clock.advance(1.0)
    return state, log


def test_runner_with_hook_is_a_completion_tracker() -> None:
    assert isinstance(TrackingRunner(), CompletionTracker)
    assert not isinstance(PlainRunner(), CompletionTracker)


def test_checks_follow_completions_not_items_in_flight() -> None:
    wf, t = _wf()
    runner = TrackingRunner()
    env = make_env({}, runner=runner)  # type: ignore[arg-type]
    xs = list(range(2000))
    state, log = _drive(env, runner, wf, t, xs, per_round=50)
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert env.outputs(state) == {"ys": [x * 10 for x in xs]}
    # Each item is checked exactly once: when it finished; rounds with 2,000 items in flight
    # and 50 completions check 50 items.
    assert runner.checks == len(xs)
    for (done_before, _), (_, checks) in itertools.pairwise(log):
        assert checks == done_before

    # Without the hook the engine checks everything in flight every round.
    plain = PlainRunner()
    env2 = make_env({}, runner=plain)  # type: ignore[arg-type]
    state2, _ = _drive(env2, plain, wf, t, xs[:200], per_round=50)
    assert env2.outputs(state2) == {"ys": [x * 10 for x in xs[:200]]}
    assert plain.checks == 200 + 150 + 100 + 50


def test_retries_and_min_success_ratio_with_the_hook() -> None:
    wf, t = _wf(retries=2, ratio=0.9)
    runner = TrackingRunner(
        outcome={3: ["fail", "ok"], 5: ["fail", "fail", "ok"], 7: ["fatal"], 9: ["fail"] * 3}
    )
    env = make_env({}, runner=runner, config=EngineConfig(backoff_base=2.0))  # type: ignore[arg-type]
    xs = list(range(40))
    state, _ = _drive(env, runner, wf, t, xs, per_round=7)
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert env.outputs(state) == {"ys": [None if x in (7, 9) else x * 10 for x in xs]}
    # One check per finished attempt: 40 first attempts, 3 and 5 and 9 retried (1 + 2 + 2).
    assert runner.checks == 40 + 1 + 2 + 2
    a = state.root.nodes[2].array
    assert a is not None and a.handles == {} and a.started == {} and a.retry_at == {}

    # Below the ratio: the node fails and names the first error.
    runner2 = TrackingRunner(outcome={x: ["fatal"] for x in range(0, 40, 5)})
    env2 = make_env({}, runner=runner2)  # type: ignore[arg-type]
    state2, _ = _drive(env2, runner2, wf, t, xs, per_round=9)
    assert state2.phase == WP.WORKFLOW_EXECUTION_PHASE_FAILED
    assert "item 0 failed" in state2.error.message


def test_cached_items_are_not_started_again() -> None:
    wf, t = _wf(cacheable=True)
    runner = TrackingRunner()
    env = make_env({}, runner=runner, catalog=True)  # type: ignore[arg-type]
    state, _ = _drive(env, runner, wf, t, [1, 2, 3], per_round=1, name="a")
    assert env.outputs(state) == {"ys": [10, 20, 30]}
    state, _ = _drive(env, runner, wf, t, [2, 3, 4], per_round=1, name="b")
    assert env.outputs(state) == {"ys": [20, 30, 40]}
    a = state.root.nodes[2].array
    assert a is not None
    assert list(a.cache) == [CS.CATALOG_CACHE_STATUS_HIT] * 2 + [CS.CATALOG_CACHE_STATUS_POPULATED]
    assert runner.checks == 3 + 1


def test_persist_restore_between_rounds_and_a_restarted_runner() -> None:
    wf, t = _wf(retries=1)
    runner = TrackingRunner(outcome={4: ["fail", "ok"]})
    env = make_env({}, runner=runner)  # type: ignore[arg-type]
    xs = list(range(30))
    # State restored from bytes after every round: the handle index is rebuilt, nothing lost.
    state, _ = _drive(env, runner, wf, t, xs, per_round=4, restore=True)
    assert env.outputs(state) == {"ys": [x * 10 for x in xs]}
    assert runner.checks == 31

    # A runner that lost its memory names the handles it does not know: each is checked once,
    # then only completions are.
    runner2 = TrackingRunner()
    env2 = make_env({}, runner=runner2)  # type: ignore[arg-type]
    plan = env2.engine.prepare(compile_workflow(wf, [t]))
    inputs = literals_pb2.LiteralMap(literals={"xs": lit(xs)})
    state2 = env2.engine.start(plan, inputs, execution_id=EXEC_ID)
    env2.engine.round(plan, state2)
    assert runner2.checks == 0 and len(runner2.started) == 30
    runner2.known = set(runner2.started)  # pretend these survived ...
    survivors = sorted(runner2.known)[:10]
    runner2.known = set(survivors)  # ... and only 10 of them did
    state2 = ExecutionState.from_bytes(state2.to_bytes())
    env2.engine.round(plan, state2)
    assert runner2.checks == 20  # the 20 unknown ones
    runner2.known = set(runner2.started)
    before = runner2.checks
    runner2.finish(5)
    env2.engine.round(plan, state2)
    assert runner2.checks - before == 5
    while not state2.done:
        runner2.finish()
        env2.engine.round(plan, state2)
    assert env2.outputs(state2) == {"ys": [x * 10 for x in xs]}


def test_timeouts_are_enforced_for_items_the_tracker_does_not_name() -> None:
    wf, t = _wf(ratio=0.5, timeout=5)
    runner = TrackingRunner(outcome={1: ["hang"]})
    env = make_env({}, runner=runner)  # type: ignore[arg-type]
    state, _ = _drive(env, runner, wf, t, [0, 1, 2, 3], per_round=None)
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert env.outputs(state) == {"ys": [0, None, 20, 30]}
    assert runner.aborted == ["m/0/1#0"]


def test_a_failing_or_ambiguous_tracker_falls_back_to_checking_everything() -> None:
    wf, t = _wf()

    class Broken(TrackingRunner):
        def needs_check(self, task: Any, handles: Collection[str]) -> Collection[str] | None:
            raise RuntimeError("tracker down")

    broken = Broken()
    env = make_env({}, runner=broken)  # type: ignore[arg-type]
    state, _ = _drive(env, broken, wf, t, list(range(10)), per_round=5)
    assert env.outputs(state) == {"ys": [x * 10 for x in range(10)]}
    assert broken.checks == 10 + 5

    class Shared(TrackingRunner):
        # Every item has the same handle: the engine cannot map names back to items.
        def start(self, attempt: TaskAttempt) -> TaskStatus:
            super().start(attempt)
            return Running("same")

        def check(self, attempt: TaskAttempt, handle: str) -> TaskStatus:
            self.checks += 1
            key = f"{attempt.node_path}#{attempt.attempt}"
            return self.finished.pop(key, Running("same"))

        def needs_check(self, task: Any, handles: Collection[str]) -> Collection[str] | None:
            return ["same"] if self.finished else []

    shared = Shared()
    env2 = make_env({}, runner=shared)  # type: ignore[arg-type]
    state2, _ = _drive(env2, shared, wf, t, list(range(10)), per_round=5)
    assert env2.outputs(state2) == {"ys": [x * 10 for x in range(10)]}
    assert shared.checks == 10 + 5


def test_items_in_flight_stay_within_the_round_budget() -> None:
    wf, t = _wf()
    runner = TrackingRunner()
    env = make_env({}, runner=runner, config=EngineConfig(array_items_per_round=300))  # type: ignore[arg-type]
    plan = env.engine.prepare(compile_workflow(wf, [t]))
    xs = list(range(2000))
    inputs = literals_pb2.LiteralMap(literals={"xs": lit(xs)})
    state = env.engine.start(plan, inputs, execution_id=EXEC_ID)
    peak = 0
    while not state.done:
        env.engine.round(plan, state)
        a = state.root.nodes[2].array
        if a is not None:
            peak = max(peak, len(a.handles))
            assert a.n_running == len(a.handles) <= 300
        runner.finish(120)
    assert peak == 300
    assert env.outputs(state) == {"ys": [x * 10 for x in xs]}
