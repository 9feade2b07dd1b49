"""Which attempts run interruptible: task nodes and array items follow one rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from caddis_propeller.engine import EngineConfig
from caddis_propeller.engine.interfaces import TaskAttempt, TaskStatus
from tests.propeller.compiler.builders import (
    INT,
    LIST_INT,
    array_node,
    ref,
    task,
    task_node,
    workflow,
)
from tests.propeller.engine.harness import FuncRunner, SystemError_, make_env

FLAKY = task("flaky", {"x": INT}, {"o": INT}, retries=3, interruptible=True)


@dataclass
class RecordingRunner(FuncRunner):
    """Records (node path, attempt, interruptible) of every start."""

    seen: list[tuple[str, int, bool]] = field(default_factory=list)

    def start(self, attempt: TaskAttempt) -> TaskStatus:
        self.seen.append((attempt.node_path, attempt.attempt, attempt.interruptible))
        return super().start(attempt)


def fails_twice() -> Any:
    tries: dict[int, int] = {}

    def flaky(x: int) -> dict[str, int]:
        tries[x] = tries.get(x, 0) + 1
        if tries[x] <= 2:
            raise SystemError_("node preempted")
        return {"o": x}

    return flaky


def run(wf: Any, inputs: dict[str, Any], threshold: int) -> list[tuple[str, int, bool]]:
    runner = RecordingRunner({"flaky": fails_twice()})
    env = make_env(
        {}, runner=runner, config=EngineConfig(interruptible_failure_threshold=threshold)
    )
    state, _ = env.execute(wf, [FLAKY], inputs)
    assert state.done
    return runner.seen


def test_task_and_array_items_turn_non_interruptible_after_the_threshold() -> None:
    single = workflow(
        "single",
        {"x": INT},
        {"o": INT},
        [task_node("t", FLAKY, {"x": ref("start-node", "x")})],
        {"o": ref("t", "o")},
    )
    mapped = workflow(
        "mapped",
        {"xs": LIST_INT},
        {"ys": LIST_INT},
        [array_node("m", FLAKY, {"x": ref("start-node", "xs")})],
        {"ys": ref("m", "o")},
    )
    assert [i for _, _, i in run(single, {"x": 1}, threshold=1)] == [True, False, False]
    items = run(mapped, {"xs": [1, 2]}, threshold=1)
    assert sorted(items) == [
        ("m/0/0", 0, True),
        ("m/0/0", 1, False),
        ("m/0/0", 2, False),
        ("m/0/1", 0, True),
        ("m/0/1", 1, False),
        ("m/0/1", 2, False),
    ]
    # Without a threshold only the last attempt the budgets allow is non-interruptible, so
    # these attempts all stay interruptible, for the node and the items alike.
    assert {i for _, _, i in run(single, {"x": 1}, threshold=-1)} == {True}
    assert {i for _, _, i in run(mapped, {"xs": [1, 2]}, threshold=-1)} == {True}
