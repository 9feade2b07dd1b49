"""Engine overhead per node / per mapped item with a no-op in-process runner.

Measures the pure engine cost (binding resolution, state transitions, in-memory data path)
that local execution pays on top of the user's functions:

- a 500-node static chain (each node reads the previous node's output), events off and on;
- a 10,000-item array node (batch runner hook), events off.

Usage: python benchmarks/engine_overhead.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from caddis_idl.core.v1 import identifier_pb2, literals_pb2
from caddis_propeller.compiler import compile_workflow
from caddis_propeller.engine import (
    CollectingEventSink,
    Engine,
    EngineConfig,
    InMemoryDataStore,
    Succeeded,
    TaskAttempt,
    TaskStatus,
)
from tests.propeller.compiler.builders import (
    INT,
    LIST_INT,
    array_node,
    ref,
    task,
    task_node,
    workflow,
)


class NoopRunner:
    """Echoes input ``x`` as output ``o`` (the cheapest possible task)."""

    def start(self, attempt: TaskAttempt) -> TaskStatus:
        out = literals_pb2.LiteralMap()
        out.literals["o"].CopyFrom(attempt.inputs.literals["x"])
        return Succeeded(out)

    def check(self, attempt: TaskAttempt, handle: str) -> TaskStatus:
        raise AssertionError("never running")

    def abort(self, attempt: TaskAttempt, handle: str, reason: str) -> None:
        pass

    def start_batch(self, attempts: Sequence[TaskAttempt]) -> list[TaskStatus]:
        return [self.start(a) for a in attempts]


INC = task("inc", {"x": INT}, {"o": INT})


def chain_closure(n: int):
    nodes = [task_node("n0", INC, {"x": ref("start-node", "x")})]
    nodes += [task_node(f"n{i}", INC, {"x": ref(f"n{i - 1}", "o")}) for i in range(1, n)]
    wf = workflow("chain", {"x": INT}, {"y": INT}, nodes, {"y": ref(f"n{n - 1}", "o")})
    return compile_workflow(wf, [INC])


def array_closure():
    wf = workflow(
        "arr",
        {"xs": LIST_INT},
        {"ys": LIST_INT},
        [array_node("m", INC, {"x": ref("start-node", "xs")})],
        {"ys": ref("m", "o")},
    )
    return compile_workflow(wf, [INC])


def run_once(
    closure, inputs: literals_pb2.LiteralMap, events: bool, config: EngineConfig
) -> tuple[float, float]:
    engine = Engine(
        NoopRunner(),
        InMemoryDataStore(),
        events=CollectingEventSink() if events else None,
        config=config,
    )
    t0 = time.perf_counter()
    c0 = time.process_time()
    plan = engine.prepare(closure)
    state = engine.start(
        plan, inputs, execution_id=identifier_pb2.WorkflowExecutionIdentifier(name="b")
    )
    engine.run(plan, state)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    assert engine.outputs(state) is not None
    return elapsed, cpu


def report(label: str, runs: list[tuple[float, float]], units: int, unit: str) -> None:
    # CPU time is the fairer number on a shared machine (wall time includes other jobs).
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    print(
        f"{label}: median wall {wall * 1e3:7.2f} ms ({wall / units * 1e3:.4f} ms/{unit}), "
        f"cpu {cpu * 1e3:7.2f} ms ({cpu / units * 1e3:.4f} ms/{unit})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    local = EngineConfig(array_items_per_round=100_000)

    n = 500
    closure = chain_closure(n)
    inputs = literals_pb2.LiteralMap()
    inputs.literals["x"].scalar.primitive.integer = 1
    for events in (False, True):
        runs = [run_once(closure, inputs, events, local) for _ in range(args.repeat)]
        report(f"chain {n} nodes, events {'on ' if events else 'off'}", runs, n, "node")

    items = 10_000
    closure = array_closure()
    inputs = literals_pb2.LiteralMap()
    coll = inputs.literals["xs"].collection.literals
    for i in range(items):
        coll.add().scalar.primitive.integer = i
    runs = [run_once(closure, inputs, False, local) for _ in range(max(3, args.repeat // 3))]
    report(f"array {items} items", runs, items, "item")


if __name__ == "__main__":
    main()
