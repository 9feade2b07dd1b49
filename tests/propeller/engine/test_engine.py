from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import duration_pb2

from caddis_idl.core.v1 import dynamic_job_pb2, execution_pb2, literals_pb2, workflow_pb2
from caddis_propeller.compiler import list_of, optional
from caddis_propeller.engine import (
    EngineConfig,
    ExecutionOptions,
    ExecutionState,
    NodeEvent,
    TaskEvent,
    WorkflowEvent,
)
from tests.propeller.compiler.builders import (
    ERROR,
    INT,
    LIST_INT,
    OPT_INT,
    STR,
    array_node,
    branch_node,
    cmp,
    conj,
    const,
    ident,
    lit,
    lp_node,
    py,
    ref,
    subwf_node,
    task,
    task_node,
    typed_interface,
    unary,
    workflow,
)
from tests.propeller.engine.harness import (
    BatchFuncRunner,
    FuncRunner,
    Hang,
    SystemError_,
    UserError,
    make_env,
    phases,
)

WP = execution_pb2.WorkflowExecutionPhase
NP = execution_pb2.NodeExecutionPhase
CS = execution_pb2.CatalogCacheStatus

ADD = task("add", {"a": INT, "b": INT}, {"o": INT})
INC = task("inc", {"x": INT}, {"o": INT})


def chain(n: int, t=INC) -> Any:
    nodes = [task_node("n0", t, {"x": ref("start-node", "x")})]
    for i in range(1, n):
        nodes.append(task_node(f"n{i}", t, {"x": ref(f"n{i - 1}", "o")}))
    return workflow("chain", {"x": INT}, {"y": INT}, nodes, {"y": ref(f"n{n - 1}", "o")})


def test_chain_runs_in_one_round() -> None:
    env = make_env({"inc": lambda x: {"o": x + 1}})
    state, _ = env.execute(chain(50), [INC], {"x": 0})
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert env.outputs(state) == {"y": 50}
    assert state.rounds == 1
    assert phases(env, "n3") == [
        NP.NODE_EXECUTION_PHASE_QUEUED,
        NP.NODE_EXECUTION_PHASE_RUNNING,
        NP.NODE_EXECUTION_PHASE_SUCCEEDED,
    ]


def test_async_runner_state_survives_persist_restore() -> None:
    runner = FuncRunner({"inc": lambda x: {"o": x + 1}}, async_checks=2)
    env = make_env({}, runner=runner)
    from caddis_propeller.compiler import compile_workflow

    plan = env.engine.prepare(compile_workflow(chain(3), [INC]))
    from tests.propeller.engine.harness import EXEC_ID

    state = env.engine.start(
        plan, literals_pb2.LiteralMap(literals={"x": lit(1)}), execution_id=EXEC_ID
    )
    for _ in range(100):
        r = env.engine.round(plan, state)
        # Persist and restore every round, like propeller does; a fresh engine works too.
        state = ExecutionState.from_bytes(state.to_bytes())
        if r.done:
            break
        assert r.pending
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert env.outputs(state) == {"y": 4}


def test_user_retries_and_system_budget_are_separate() -> None:
    calls = {"u": 0, "s": 0}

    def flaky_user(x: int) -> dict[str, int]:
        calls["u"] += 1
        if calls["u"] < 3:
            raise UserError("try again")
        return {"o": x}

    def flaky_system(x: int) -> dict[str, int]:
        calls["s"] += 1
        if calls["s"] < 4:
            raise SystemError_("node lost")
        return {"o": x}

    u = task("u", {"x": INT}, {"o": INT}, retries=2)
    s = task("s", {"x": INT}, {"o": INT}, retries=0)
    wf = workflow(
        "wf",
        {"x": INT},
        {"a": INT, "b": INT},
        [
            task_node("nu", u, {"x": ref("start-node", "x")}),
            task_node("ns", s, {"x": ref("start-node", "x")}),
        ],
        {"a": ref("nu", "o"), "b": ref("ns", "o")},
    )
    env = make_env({"u": flaky_user, "s": flaky_system}, config=EngineConfig(max_system_retries=3))
    state, _ = env.execute(wf, [u, s], {"x": 7})
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert calls == {"u": 3, "s": 4}
    ns = state.root.nodes[3]
    assert (ns.user_failures, ns.system_failures) == (0, 3)

    # Exhausting the user budget fails; a non-recoverable user error is not retried.
    calls["u"] = -10
    env2 = make_env({"u": flaky_user, "s": lambda x: {"o": x}})
    state2, _ = env2.execute(wf, [u, s], {"x": 7})
    assert state2.phase == WP.WORKFLOW_EXECUTION_PHASE_FAILED
    assert state2.error.message == "try again"
    assert [a for p, a in env2.runner.calls if p == "nu"] == [0, 1, 2]

    def fatal(x: int) -> dict[str, int]:
        raise UserError("bad input", recoverable=False)

    env3 = make_env({"u": fatal, "s": lambda x: {"o": x}})
    state3, _ = env3.execute(wf, [u, s], {"x": 7})
    assert state3.phase == WP.WORKFLOW_EXECUTION_PHASE_FAILED
    assert [a for p, a in env3.runner.calls if p == "nu"] == [0]


def test_timeout_retries_then_times_out_with_backoff() -> None:
    def hang(x: int) -> dict[str, int]:
        raise Hang

    t = task("slow", {"x": INT}, {"o": INT}, retries=1, timeout=5)
    wf = workflow(
        "wf",
        {"x": INT},
        {"y": INT},
        [task_node("n", t, {"x": ref("start-node", "x")})],
        {"y": ref("n", "o")},
    )
    env = make_env({"slow": hang}, config=EngineConfig(backoff_base=10))
    start = env.clock.now()
    state, _ = env.execute(wf, [t], {"x": 1})
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_FAILED
    node = state.root.nodes[2]
    assert node.phase.name == "TIMED_OUT"
    assert node.error.code == "TimeoutExpired"
    assert env.runner.aborted == ["n", "n"]
    # two attempts of 5s each plus a 10s backoff between them
    assert env.clock.now() - start == pytest.approx(20)
    assert NP.NODE_EXECUTION_PHASE_TIMED_OUT in phases(env, "n")


def test_branch_with_conjunction_else_and_skips() -> None:
    t_small = task("small", {"x": OPT_INT}, {"o": STR})
    t_big = task("big", {"x": OPT_INT}, {"o": STR})
    t_none = task("none", {}, {"o": STR})
    cond_big = conj("and", cmp(">", "$x", 10), unary("is_not_none", "x"))
    br = branch_node(
        "b",
        {"x": ref("start-node", "x")},
        [
            (cond_big, task_node("tb", t_big, {"x": ref("start-node", "x")})),
            (cmp("<=", "$x", 10), task_node("ts", t_small, {"x": ref("start-node", "x")})),
        ],
        else_node=task_node("tn", t_none),
    )
    wf = workflow("wf", {"x": OPT_INT}, {"o": STR}, [br], {"o": ref("b", "o")})
    funcs = {
        "small": lambda x: {"o": f"small {x}"},
        "big": lambda x: {"o": f"big {x}"},
        "none": lambda: {"o": "none"},
    }
    for x, want in [(11, "big 11"), (3, "small 3"), (None, "none")]:
        env = make_env(funcs)
        state, _ = env.execute(wf, [t_small, t_big, t_none], {"x": x})
        assert env.outputs(state) == {"o": want}, x
    skipped = [
        e.node_path
        for e in env.sink.events
        if isinstance(e, NodeEvent) and e.phase == NP.NODE_EXECUTION_PHASE_SKIPPED
    ]
    assert skipped == ["b/0/tb", "b/0/ts"]


def test_branch_error_default() -> None:
    t = task("t", {}, {"o": INT})
    br = branch_node(
        "b",
        {"x": ref("start-node", "x")},
        [(cmp("==", "$x", 1), task_node("t1", t))],
        error="x must be 1",
    )
    wf = workflow("wf", {"x": INT}, {}, [br], {})
    env = make_env({"t": lambda: {"o": 1}})
    state, _ = env.execute(wf, [t], {"x": 2})
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_FAILED
    assert state.error.message == "x must be 1"


def test_subworkflow_and_launch_plan() -> None:
    inner = workflow(
        "inner",
        {"a": INT},
        {"o": INT},
        [task_node("n", INC, {"x": ref("start-node", "a")})],
        {"o": ref("n", "o")},
    )
    lp = workflow_pb2.LaunchPlanTemplate(
        id=ident("lp", 3), interface=typed_interface({"a": INT}, {"o": INT})
    )

    class InlineLP:
        def __init__(self) -> None:
            self.requests: list[Any] = []

        def launch(self, request):
            from caddis_propeller.engine import Succeeded

            self.requests.append(request)
            out = literals_pb2.LiteralMap(
                literals={"o": lit(py(request.inputs.literals["a"]) * 100)}
            )
            return Succeeded(out)

        def check(self, request, handle):
            raise AssertionError

        def abort(self, request, handle, reason):
            pass

    outer = workflow(
        "outer",
        {"x": INT},
        {"a": INT, "b": INT},
        [
            subwf_node("s", inner, {"a": ref("start-node", "x")}),
            lp_node("l", lp, {"a": ref("s", "o")}),
        ],
        {"a": ref("s", "o"), "b": ref("l", "o")},
    )
    lpr = InlineLP()
    env = make_env({"inc": lambda x: {"o": x + 1}}, launch_plans=lpr)
    state, _ = env.execute(outer, [INC], {"x": 1}, subworkflows=[inner], launch_plans=[lp])
    assert env.outputs(state) == {"a": 2, "b": 200}
    assert "s/0/n" in [e.node_path for e in env.sink.events if isinstance(e, NodeEvent)]
    assert (
        lpr.requests[0].child_name == lpr.requests[0].child_name
        and len(lpr.requests[0].child_name) == 20
    )


def test_gates_sleep_approve_signal() -> None:
    echo = task("echo", {"x": INT}, {"o": INT})
    sleep = workflow_pb2.Node(
        id="sleep",
        gate_node=workflow_pb2.GateNode(
            sleep=workflow_pb2.SleepCondition(duration=duration_pb2.Duration(seconds=30))
        ),
    )
    approve = workflow_pb2.Node(
        id="ok",
        inputs=[literals_pb2.Binding(var="x", binding=ref("start-node", "x"))],
        upstream_node_ids=["sleep"],
        gate_node=workflow_pb2.GateNode(approve=workflow_pb2.ApproveCondition(signal_id="go")),
    )
    signal = workflow_pb2.Node(
        id="sig",
        upstream_node_ids=["ok"],
        gate_node=workflow_pb2.GateNode(
            signal=workflow_pb2.SignalCondition(signal_id="num", type=INT, output_variable_name="v")
        ),
    )
    wf = workflow(
        "wf",
        {"x": INT},
        {"a": INT, "b": INT},
        [sleep, approve, signal, task_node("e", echo, {"x": ref("sig", "v")})],
        {"a": ref("ok", "x"), "b": ref("e", "o")},
    )

    class Signals:
        def __init__(self, env_clock) -> None:
            self.clock = env_clock
            self.asked: list[str] = []

        def get_signal(self, execution_id, signal_id, signal_type):
            self.asked.append(signal_id)
            if self.clock.now() < 1_000_100:
                return None
            return lit(True) if signal_id == "go" else lit(42)

    env = make_env({"echo": lambda x: {"o": x}})
    sig = Signals(env.clock)
    env.engine._signals = sig
    state, _ = env.execute(wf, [echo], {"x": 5})
    assert env.outputs(state) == {"a": 5, "b": 42}
    assert env.clock.now() >= 1_000_100
    assert sig.asked[0] == "go"


def test_array_node_ratio_retries_order_and_batching() -> None:
    def sq(x: int) -> dict[str, int]:
        if x % 10 == 3:
            raise UserError("bad item", recoverable=False)
        return {"o": x * x}

    t = task("sq", {"x": INT}, {"o": INT}, retries=1)
    wf = workflow(
        "wf",
        {"xs": LIST_INT},
        {"ys": list_of(OPT_INT)},
        [array_node("m", t, {"x": ref("start-node", "xs")}, min_success_ratio=0.8, parallelism=7)],
        {"ys": ref("m", "o")},
    )
    runner = BatchFuncRunner({"sq": sq})
    env = make_env({}, runner=runner)
    state, _ = env.execute(wf, [t], {"xs": list(range(20))})
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    ys = env.outputs(state)["ys"]
    assert ys == [None if x % 10 == 3 else x * x for x in range(20)]
    assert max(runner.batches) <= 7

    # Below the ratio the node fails, naming the first error.
    state2, _ = make_env({}, runner=BatchFuncRunner({"sq": sq})).execute(
        wf, [t], {"xs": [3, 13, 23, 1, 2]}
    )
    assert state2.phase == WP.WORKFLOW_EXECUTION_PHASE_FAILED
    assert "bad item" in state2.error.message and "3 of 5" in state2.error.message


def test_array_min_successes_bound_inputs_and_async_items() -> None:
    t = task("mul", {"x": INT, "k": INT}, {"o": INT}, retries=2)
    seen: dict[int, int] = {}

    def mul(x: int, k: int) -> dict[str, int]:
        seen[x] = seen.get(x, 0) + 1
        if seen[x] == 1 and x == 2:
            raise UserError("transient")
        return {"o": x * k}

    wf = workflow(
        "wf",
        {"xs": LIST_INT},
        {"ys": list_of(OPT_INT)},
        [
            array_node(
                "m", t, {"x": ref("start-node", "xs"), "k": const(10)}, bound=["k"], min_successes=2
            )
        ],
        {"ys": ref("m", "o")},
    )
    env = make_env({}, runner=FuncRunner({"mul": mul}, async_checks=2))
    state, _ = env.execute(wf, [t], {"xs": [1, 2, 3]})
    assert env.outputs(state) == {"ys": [10, 20, 30]}
    assert seen[2] == 2


def test_array_mismatched_lengths_fail() -> None:
    t = task("add2", {"a": INT, "b": INT}, {"o": INT})
    wf = workflow(
        "wf",
        {"a": LIST_INT, "b": LIST_INT},
        {},
        [array_node("m", t, {"a": ref("start-node", "a"), "b": ref("start-node", "b")})],
        {},
    )
    env = make_env({"add2": lambda a, b: {"o": a + b}})
    state, _ = env.execute(wf, [t], {"a": [1, 2], "b": [1]})
    assert state.error.code == "InvalidArrayLength"


def test_bounded_work_per_round_for_large_arrays() -> None:
    t = task("id", {"x": INT}, {"o": INT})
    wf = workflow(
        "wf",
        {"xs": LIST_INT},
        {"ys": LIST_INT},
        [array_node("m", t, {"x": ref("start-node", "xs")})],
        {"ys": ref("m", "o")},
    )
    env = make_env({"id": lambda x: {"o": x}}, config=EngineConfig(array_items_per_round=100))
    state, _ = env.execute(wf, [t], {"xs": list(range(1000))})
    assert env.outputs(state)["ys"] == list(range(1000))
    assert state.rounds >= 10


def test_array_state_of_100k_items_is_small() -> None:
    from caddis_propeller.engine import ArrayState, NodeState

    a = ArrayState(100_000, cache=True)
    for i in range(0, 100_000, 3):
        a.phases[i] = 3
        a.user_failures[i] = 1
    ns = NodeState()
    ns.array = a
    raw = ns.to_obj()
    import json
    import zlib

    size = len(zlib.compress(json.dumps(raw).encode()))
    assert len(json.dumps(raw)) < 2_000_000
    assert size < 200_000
    back = NodeState.from_obj(raw).array
    assert back is not None and back.phases == a.phases and back.user_failures == a.user_failures


def _cached_wf(serializable: bool = False) -> tuple[Any, Any]:
    t = task(
        "sq",
        {"x": INT, "noise": STR},
        {"o": INT},
        cacheable=True,
        cache_version="1",
        serializable=serializable,
        ignore=["noise"],
    )
    wf = workflow(
        "wf",
        {"x": INT, "noise": STR},
        {"y": INT},
        [task_node("n", t, {"x": ref("start-node", "x"), "noise": ref("start-node", "noise")})],
        {"y": ref("n", "o")},
    )
    return wf, t


def test_cache_miss_then_hit_ignoring_inputs_and_overwrite() -> None:
    wf, t = _cached_wf()
    env = make_env({"sq": lambda x, noise: {"o": x * x}}, catalog=True)
    s1, _ = env.execute(wf, [t], {"x": 3, "noise": "a"}, name="e1")
    s2, _ = env.execute(wf, [t], {"x": 3, "noise": "b"}, name="e2")
    assert env.outputs(s2) == {"y": 9}
    assert len(env.runner.calls) == 1
    assert s1.root.nodes[2].cache_status == CS.CATALOG_CACHE_STATUS_POPULATED
    assert s2.root.nodes[2].cache_status == CS.CATALOG_CACHE_STATUS_HIT
    _s3, _ = env.execute(
        wf, [t], {"x": 3, "noise": "c"}, name="e3", options=ExecutionOptions(overwrite_cache=True)
    )
    assert len(env.runner.calls) == 2
    s4, _ = env.execute(
        wf, [t], {"x": 3, "noise": "c"}, name="e4", options=ExecutionOptions(skip_cache=True)
    )
    assert len(env.runner.calls) == 3
    assert s4.root.nodes[2].cache_status == 0


def test_catalog_down_never_fails_a_task() -> None:
    wf, t = _cached_wf(serializable=True)

    class Down:
        def lookup(self, key):
            raise ConnectionError("catalog down")

        put = get_or_extend_reservation = release_reservation = lookup

    env = make_env({"sq": lambda x, noise: {"o": x * x}})
    env.engine._catalog = Down()
    state, _ = env.execute(wf, [t], {"x": 4, "noise": ""})
    assert env.outputs(state) == {"y": 16}
    ev = [
        e
        for e in env.sink.events
        if isinstance(e, NodeEvent) and e.phase == NP.NODE_EXECUTION_PHASE_SUCCEEDED
    ]
    assert ev[0].cache_status == CS.CATALOG_CACHE_STATUS_PUT_FAILURE


def test_cache_serialize_waits_for_the_holder() -> None:
    from caddis_idl.core.v1 import identifier_pb2
    from caddis_propeller.compiler import compile_workflow

    wf, t = _cached_wf(serializable=True)
    runner = FuncRunner({"sq": lambda x, noise: {"o": x * x}}, async_checks=3)
    env = make_env({}, runner=runner, catalog=True)
    plan = env.engine.prepare(compile_workflow(wf, [t]))
    inputs = literals_pb2.LiteralMap(literals={"x": lit(5), "noise": lit("")})
    a = env.engine.start(
        plan, inputs, execution_id=identifier_pb2.WorkflowExecutionIdentifier(name="a")
    )
    b = env.engine.start(
        plan, inputs, execution_id=identifier_pb2.WorkflowExecutionIdentifier(name="b")
    )
    for _ in range(20):
        env.engine.round(plan, a)
        env.engine.round(plan, b)
        if a.done and b.done:
            break
    assert env.outputs(a) == env.outputs(b) == {"y": 25}
    assert len(runner.calls) == 1
    assert b.root.nodes[2].cache_status == CS.CATALOG_CACHE_STATUS_HIT
    assert env.catalog.reservations == {}


def test_array_items_cached_one_by_one() -> None:
    t = task("sq", {"x": INT}, {"o": INT}, cacheable=True)
    wf = workflow(
        "wf",
        {"xs": LIST_INT},
        {"ys": LIST_INT},
        [array_node("m", t, {"x": ref("start-node", "xs")})],
        {"ys": ref("m", "o")},
    )
    env = make_env({"sq": lambda x: {"o": x * x}}, catalog=True)
    env.execute(wf, [t], {"xs": [1, 2, 3]}, name="a")
    state, _ = env.execute(wf, [t], {"xs": [2, 3, 4]}, name="b")
    assert env.outputs(state) == {"ys": [4, 9, 16]}
    assert [c[0] for c in env.runner.calls] == ["m/0/0", "m/0/1", "m/0/2", "m/0/2"]


def test_fail_immediately_aborts_running_and_failure_node_runs() -> None:
    def boom() -> dict[str, int]:
        raise UserError("kaboom", recoverable=False)

    def hang() -> dict[str, int]:
        raise Hang

    t_boom, t_hang = task("boom", {}, {"o": INT}), task("hang", {}, {"o": INT})
    t_clean = task("clean", {"err": optional(ERROR), "x": INT}, {})
    got: dict[str, Any] = {}

    def clean(err, x):
        got["err"] = (err.failed_node_id, err.message, x)
        return {}

    fn = task_node("fn", t_clean, {"x": ref("start-node", "x")})
    wf = workflow(
        "wf", {"x": INT}, {}, [task_node("h", t_hang), task_node("b", t_boom)], {}, failure_node=fn
    )
    env = make_env({"boom": boom, "hang": hang, "clean": clean})
    state, _ = env.execute(wf, [t_boom, t_hang, t_clean], {"x": 9})
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_FAILED
    assert env.runner.aborted == ["h"]
    assert got["err"] == ("b", "kaboom", 9)
    assert state.error.message == "kaboom"
    wf_phases = [e.phase for e in env.sink.events if isinstance(e, WorkflowEvent)]
    assert wf_phases[-2:] == [
        WP.WORKFLOW_EXECUTION_PHASE_FAILING,
        WP.WORKFLOW_EXECUTION_PHASE_FAILED,
    ]


def test_fail_after_executable_nodes_complete() -> None:
    def boom() -> dict[str, int]:
        raise UserError("kaboom", recoverable=False)

    t_boom = task("boom", {}, {"o": INT})
    wf = workflow(
        "wf",
        {"x": INT},
        {},
        [
            task_node("b", t_boom),
            task_node("a0", INC, {"x": ref("start-node", "x")}),
            task_node("a1", INC, {"x": ref("a0", "o")}),
            task_node("after", INC, {"x": ref("b", "o")}),
        ],
        {},
        fail_immediately=False,
    )
    runner = FuncRunner({"boom": boom, "inc": lambda x: {"o": x + 1}}, async_checks=2)
    env = make_env({}, runner=runner)
    state, _ = env.execute(wf, [t_boom, INC], {"x": 1})
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_FAILED
    assert {p for p, _ in runner.calls} == {"b", "a0", "a1"}
    assert state.root.nodes[4].phase.name == "SUCCEEDED"
    assert runner.aborted == []


def test_abort_execution() -> None:
    from caddis_propeller.compiler import compile_workflow
    from tests.propeller.engine.harness import EXEC_ID

    t = task("hang", {}, {"o": INT})
    wf = workflow("wf", {}, {}, [task_node("h1", t), task_node("h2", t)], {})
    env = make_env({"hang": lambda: (_ for _ in ()).throw(Hang())})
    plan = env.engine.prepare(compile_workflow(wf, [t]))
    state = env.engine.start(plan, literals_pb2.LiteralMap(), execution_id=EXEC_ID)
    r = env.engine.round(plan, state)
    assert r.pending and not r.done
    state = ExecutionState.from_bytes(state.to_bytes())
    env.engine.abort(plan, state, "user asked")
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_ABORTED
    assert sorted(env.runner.aborted) == ["h1", "h2"]
    assert {
        e.node_path
        for e in env.sink.events
        if isinstance(e, NodeEvent) and e.phase == NP.NODE_EXECUTION_PHASE_ABORTED
    } == {"h1", "h2"}
    assert env.engine.round(plan, state).done


def _dyn_spec(n: int, depth: int) -> dynamic_job_pb2.DynamicJobSpec:
    """A spec that sums 1..n through INC nodes, or recurses into another dynamic node."""
    dyn = task("dyn", {"n": INT, "depth": INT}, {"o": INT})
    if depth > 0:
        node = task_node("inner", dyn, {"n": const(n), "depth": const(depth - 1)})
        return dynamic_job_pb2.DynamicJobSpec(
            nodes=[node],
            outputs=[literals_pb2.Binding(var="o", binding=ref("inner", "o"))],
            tasks=[dyn],
        )
    nodes = [task_node("d0", INC, {"x": const(0)})]
    for i in range(1, n):
        nodes.append(task_node(f"d{i}", INC, {"x": ref(f"d{i - 1}", "o")}))
    return dynamic_job_pb2.DynamicJobSpec(
        nodes=nodes,
        outputs=[literals_pb2.Binding(var="o", binding=ref(f"d{n - 1}", "o"))],
        tasks=[INC],
    )


def test_nested_dynamic() -> None:
    dyn = task("dyn", {"n": INT, "depth": INT}, {"o": INT}, cacheable=True)
    wf = workflow(
        "wf",
        {"n": INT},
        {"o": INT},
        [task_node("top", dyn, {"n": ref("start-node", "n"), "depth": const(2)})],
        {"o": ref("top", "o")},
    )
    env = make_env(
        {"dyn": lambda n, depth: _dyn_spec(n, depth), "inc": lambda x: {"o": x + 1}}, catalog=True
    )
    state, _ = env.execute(wf, [dyn], {"n": 4})
    assert env.outputs(state) == {"o": 4}
    paths = {p for p, _ in env.runner.calls}
    assert "top/0/inner/0/inner/0/d3" in paths
    assert (
        env.data.get(
            "p/d/e1/top/0/dynamic_compiled.pb",
            __import__("caddis_idl.core.v1.compiler_pb2", fromlist=["x"]).CompiledWorkflowClosure,
        )
        is not None
    )
    ev = [e for e in env.sink.events if isinstance(e, NodeEvent) and e.node_path == "top"]
    assert NP.NODE_EXECUTION_PHASE_DYNAMIC_RUNNING in [e.phase for e in ev]
    # The dynamic node's final outputs were cached: a second run skips the whole sub-DAG.
    before = len(env.runner.calls)
    state2, _ = env.execute(wf, [dyn], {"n": 4}, name="e2")
    assert env.outputs(state2) == {"o": 4} and len(env.runner.calls) == before


def test_malformed_dynamic_fails_with_compile_errors() -> None:
    dyn = task("dyn", {}, {"o": INT})
    bad = dynamic_job_pb2.DynamicJobSpec(nodes=[task_node("x", INC, {})], tasks=[INC])
    wf = workflow("wf", {}, {"o": INT}, [task_node("d", dyn)], {"o": ref("d", "o")})
    env = make_env({"dyn": lambda: bad})
    state, _ = env.execute(wf, [dyn])
    assert state.error.code == "MalformedDynamicWorkflow"
    assert "UnboundInput" in state.error.message


def test_attr_paths_into_collections_maps_and_structs() -> None:
    from google.protobuf import struct_pb2

    mk = task(
        "mk",
        {},
        {
            "l": LIST_INT,
            "m": __import__("caddis_idl.core.v1.types_pb2", fromlist=["x"]).LiteralType(
                map_value_type=INT
            ),
            "s": __import__("tests.propeller.compiler.builders", fromlist=["x"]).STRUCT,
        },
    )
    wf = workflow(
        "wf",
        {},
        {"a": INT, "b": INT, "c": INT},
        [
            task_node("mk", mk),
            task_node("i1", INC, {"x": ref("mk", "l", 1)}),
            task_node("i2", INC, {"x": ref("mk", "m", "k")}),
            task_node("i3", INC, {"x": ref("mk", "s", "inner", "n")}),
        ],
        {"a": ref("i1", "o"), "b": ref("i2", "o"), "c": ref("i3", "o")},
    )

    s = struct_pb2.Struct()
    s.update({"inner": {"n": 41}})

    def make():
        return {
            "l": [5, 6],
            "m": {"k": 9},
            "s": literals_pb2.Literal(scalar=literals_pb2.Scalar(generic=s)),
        }

    env = make_env({"mk": make, "inc": lambda x: {"o": x + 1}})
    state, _ = env.execute(wf, [mk, INC])
    assert env.outputs(state) == {"a": 7, "b": 10, "c": 42}


def test_recovery_reuses_prior_outputs() -> None:
    class Prior:
        def get(self, node_path):
            return literals_pb2.LiteralMap(literals={"o": lit(100)}) if node_path == "n1" else None

    env = make_env({"inc": lambda x: {"o": x + 1}})
    state, _ = env.execute(chain(3), [INC], {"x": 0}, recovery=Prior())
    assert env.outputs(state) == {"y": 101}
    assert [p for p, _ in env.runner.calls] == ["n0", "n2"]
    assert NP.NODE_EXECUTION_PHASE_RECOVERED in phases(env, "n1")


def test_max_parallelism() -> None:
    t = task("hang2", {"i": INT}, {"o": INT})
    wf = workflow("wf", {}, {}, [task_node(f"n{i}", t, {"i": const(i)}) for i in range(6)], {})
    runner = FuncRunner({"hang2": lambda i: {"o": i}}, async_checks=2)
    env = make_env({}, runner=runner)
    from caddis_propeller.compiler import compile_workflow
    from tests.propeller.engine.harness import EXEC_ID

    plan = env.engine.prepare(compile_workflow(wf, [t]))
    state = env.engine.start(
        plan,
        literals_pb2.LiteralMap(),
        execution_id=EXEC_ID,
        options=ExecutionOptions(max_parallelism=2),
    )
    peak = 0
    while not state.done:
        env.engine.round(plan, state)
        peak = max(peak, len(runner.pending))
    assert peak == 2
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED


def test_task_events_and_proto_conversion() -> None:
    from caddis_propeller.engine.events import to_proto
    from tests.propeller.engine.harness import EXEC_ID

    env = make_env({"inc": lambda x: {"o": x + 1}})
    _state, _ = env.execute(chain(2), [INC], {"x": 0})
    protos = [to_proto(e, EXEC_ID, uri_of=lambda k: "s3://b/" + k) for e in env.sink.events]
    node = [p for p in protos if p.DESCRIPTOR.name == "NodeExecutionEvent"][-1]
    assert node.id.node_id == "n1" and node.output_uri == "s3://b/p/d/e1/n1/0/outputs.pb"
    assert any(p.DESCRIPTOR.name == "TaskExecutionEvent" for p in protos)
    assert isinstance(env.sink.events[-1], WorkflowEvent)
    assert any(isinstance(e, TaskEvent) for e in env.sink.events)


def test_recovery_reuses_succeeded_items_of_a_partly_failed_array() -> None:
    t = task("sq", {"x": INT}, {"o": INT})
    wf = workflow(
        "wf",
        {"xs": LIST_INT},
        {"ys": LIST_INT},
        [array_node("m", t, {"x": ref("start-node", "xs")})],
        {"ys": ref("m", "o")},
    )

    class Prior:
        """The reference execution: items 0 and 2 succeeded, item 1 failed."""

        asked: list[str] = []

        def get(self, node_path):
            self.asked.append(node_path)
            done = {"m/0/0": 100, "m/0/2": 300}
            if node_path in done:
                return literals_pb2.LiteralMap(literals={"o": lit(done[node_path])})
            return None

    prior = Prior()
    env = make_env({"sq": lambda x: {"o": x * x}})
    state, _ = env.execute(wf, [t], {"xs": [1, 2, 3]}, recovery=prior)
    assert env.outputs(state) == {"ys": [100, 4, 300]}
    assert [c[0] for c in env.runner.calls] == ["m/0/1"]
    assert {"m", "m/0/0", "m/0/1", "m/0/2"} <= set(prior.asked)
