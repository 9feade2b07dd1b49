"""Gate nodes: sleep, wait_for_input and approve compile to GateNode and run locally."""

from __future__ import annotations

import time
import typing
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from caddis import approve, create_node, dynamic, sleep, task, wait_for_input, workflow
from caddis.core.errors import CompilationError, MissingTypeError, PromiseTypeError
from caddis.core.gate import LocalGates, MissingSignalError, local_signals
from caddis.core.promise import Promise, VoidPromise
from caddis.core.settings import SerializationSettings
from caddis_idl.core.v1 import identifier_pb2, literals_pb2, types_pb2, workflow_pb2
from caddis_propeller.compiler import compile_dynamic

SETTINGS = SerializationSettings(project="p", domain="d", version="v1")
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CADDIS_LOCAL_CACHE", "0")
    yield


@task
def plus_one(x: int) -> int:
    return x + 1


@task
def scale(x: int, factor: float) -> float:
    return x * factor


@task
def shout(s: str) -> str:
    return s.upper()


@task
def nothing() -> None:
    return None


@task
def two(x: int) -> tuple[int, str]:
    return x, str(x)


@workflow
def sleepy(x: int) -> int:
    a = plus_one(x=x)
    s = sleep(timedelta(days=2))
    b = plus_one(x=a)
    a >> s >> b
    return b


@workflow
def approval_flow(x: int) -> float:
    a = plus_one(x=x)
    factor = wait_for_input("factor", timeout=HOUR, expected_type=float)
    y = scale(x=a, factor=factor)
    return approve(y, "publish", timeout=timedelta(days=1))


@dynamic
def gated_dynamic(n: int) -> int:
    value = n
    for i in range(n):
        value = plus_one(x=value)
        sleep(timedelta(minutes=i + 1))
    return approve(value, "final", timeout=HOUR)


@workflow
def dynamic_wf(n: int) -> int:
    return gated_dynamic(n=n)


def _gate_nodes(tpl: workflow_pb2.WorkflowTemplate) -> list[workflow_pb2.Node]:
    return [n for n in tpl.nodes if n.WhichOneof("target") == "gate_node"]


# ---------------------------------------------------------------------- compilation
def test_sleep_compiles_to_a_sleep_gate_ordered_by_rshift() -> None:
    tpl = sleepy.to_template(SETTINGS)
    (gate,) = _gate_nodes(tpl)
    assert gate.gate_node.sleep.duration.ToTimedelta() == timedelta(days=2)
    assert gate.id == "n1"
    assert gate.metadata.name == "sleep"
    assert not gate.metadata.HasField("timeout")
    assert list(gate.inputs) == []
    assert list(gate.upstream_node_ids) == ["n0"]
    after = tpl.nodes[2]
    assert list(after.upstream_node_ids) == ["n0", "n1"]
    sleepy.compile(SETTINGS)


def test_wait_for_input_and_approve_compile() -> None:
    tpl = approval_flow.to_template(SETTINGS)
    signal, approval = _gate_nodes(tpl)
    cond = signal.gate_node.signal
    assert cond.signal_id == "factor"
    assert cond.type == types_pb2.LiteralType(simple=types_pb2.SIMPLE_TYPE_FLOAT)
    assert cond.output_variable_name == "o0"
    assert signal.metadata.timeout.ToTimedelta() == HOUR
    assert signal.metadata.name == "factor"
    # The task reads the signal's value like any output.
    scale_node = tpl.nodes[2]
    factor_in = next(b for b in scale_node.inputs if b.var == "factor")
    assert factor_in.binding.promise.node_id == signal.id
    assert factor_in.binding.promise.var == "o0"

    assert approval.gate_node.approve.signal_id == "publish"
    assert approval.metadata.timeout.ToTimedelta() == timedelta(days=1)
    (passed,) = approval.inputs
    assert passed.var == "o0"
    assert passed.binding.promise.node_id == scale_node.id
    assert tpl.outputs[0].binding.promise.node_id == approval.id
    closure = approval_flow.compile(SETTINGS)
    assert len(closure.primary.template.nodes) == 4


def test_returned_promises_have_the_right_types() -> None:
    seen: dict[str, typing.Any] = {}

    @workflow
    def wf(s: str) -> str:
        seen["void"] = sleep(timedelta(seconds=5))
        seen["signal"] = wait_for_input("name", timeout=HOUR, expected_type=str)
        seen["approved"] = approve(s, "ok", timeout=HOUR)  # a workflow input can be approved
        return shout(s=seen["approved"])

    assert isinstance(seen["void"], VoidPromise)
    assert isinstance(seen["signal"], Promise) and seen["signal"].python_type is str
    assert isinstance(seen["approved"], Promise) and seen["approved"].python_type is str
    tpl = wf.to_template(SETTINGS)
    assert tpl.nodes[2].inputs[0].binding.promise.node_id == "start-node"
    wf.compile(SETTINGS)


def test_gates_work_with_create_node_and_overrides() -> None:
    @workflow
    def wf() -> int:
        first = create_node(plus_one, x=1)
        pause = sleep(timedelta(minutes=1))
        v = wait_for_input("v", timeout=HOUR, expected_type=int).with_overrides(
            timeout=timedelta(minutes=5), name="ask-v"
        )
        first >> pause >> v
        return plus_one(x=v)

    signal = wf.to_template(SETTINGS).nodes[2]
    assert signal.metadata.timeout.ToTimedelta() == timedelta(minutes=5)
    assert signal.metadata.name == "ask-v"
    assert list(signal.upstream_node_ids) == ["n1"]


def test_complex_expected_types() -> None:
    @workflow
    def wf() -> list[int]:
        return wait_for_input("values", timeout=HOUR, expected_type=list[int])

    (gate,) = _gate_nodes(wf.to_template(SETTINGS))
    assert gate.gate_node.signal.type.collection_type.simple == types_pb2.SIMPLE_TYPE_INTEGER
    wf.compile(SETTINGS)


def test_seconds_are_accepted_like_task_timeouts() -> None:
    @workflow
    def wf() -> int:
        sleep(30)  # type: ignore[arg-type]
        return wait_for_input("n", timeout=60, expected_type=int)  # type: ignore[arg-type]

    sleep_node, signal = _gate_nodes(wf.to_template(SETTINGS))
    assert sleep_node.gate_node.sleep.duration.seconds == 30
    assert signal.metadata.timeout.seconds == 60


def test_gates_in_a_dynamic_job_spec() -> None:
    spec = gated_dynamic.compile_futures(SETTINGS, n=2)
    kinds = [n.WhichOneof("target") for n in spec.nodes]
    assert kinds == ["task_node", "gate_node", "task_node", "gate_node", "gate_node"]
    assert spec.nodes[3].gate_node.sleep.duration.ToTimedelta() == timedelta(minutes=2)
    assert spec.nodes[4].gate_node.approve.signal_id == "final"
    assert spec.nodes[4].inputs[0].binding.promise.node_id == "n2"
    assert [t.id.name for t in spec.tasks] == [plus_one.name]  # gates add no templates
    compile_dynamic(
        spec,
        node_id="n0",
        interface=gated_dynamic.python_interface.typed_interface(),
        parent_id=gated_dynamic.id(SETTINGS),
    )


# ---------------------------------------------------------------------- definition errors
def _define(body: typing.Callable[..., typing.Any]) -> None:
    workflow(body)


def test_gates_outside_a_workflow_body() -> None:
    with pytest.raises(CompilationError, match=r"sleep\(\) can only be used inside a @workflow"):
        sleep(HOUR)
    with pytest.raises(CompilationError, match="wait_for_input\\('x'\\) can only be used"):
        wait_for_input("x", timeout=HOUR, expected_type=int)
    with pytest.raises(CompilationError, match="approve"):
        approve(1, "x", timeout=HOUR)


def test_invalid_durations_name_the_workflow_and_gate() -> None:
    def negative_sleep() -> None:
        sleep(timedelta(seconds=-1))

    with pytest.raises(CompilationError, match=r"workflow '.*negative_sleep': sleep\(\).*positive"):
        _define(negative_sleep)

    def zero_timeout() -> int:
        return wait_for_input("n", timeout=timedelta(0), expected_type=int)

    with pytest.raises(
        CompilationError,
        match=r"workflow '.*zero_timeout': wait_for_input gate 'n': timeout must be positive",
    ):
        _define(zero_timeout)

    def text_timeout(x: int) -> int:
        return approve(plus_one(x=x), "ok", timeout="1h")  # type: ignore[arg-type]

    with pytest.raises(CompilationError, match=r"approve gate 'ok': timeout must be a .*timedelta"):
        _define(text_timeout)

    def promised_duration(x: int) -> None:
        sleep(x)  # type: ignore[arg-type]

    with pytest.raises(CompilationError, match="must be known when the workflow is defined"):
        _define(promised_duration)


def test_invalid_names_and_types() -> None:
    def empty_name() -> int:
        return wait_for_input("", timeout=HOUR, expected_type=int)

    with pytest.raises(CompilationError, match=r"empty_name': wait_for_input\(\) needs a non-"):
        _define(empty_name)

    def untyped() -> None:
        wait_for_input("thing", timeout=HOUR, expected_type=typing.Callable)  # type: ignore[arg-type]

    with pytest.raises(MissingTypeError, match=r"untyped': wait_for_input gate 'thing'"):
        _define(untyped)

    def clash() -> str:
        wait_for_input("same", timeout=HOUR, expected_type=int)
        return wait_for_input("same", timeout=HOUR, expected_type=str)

    with pytest.raises(CompilationError, match=r"clash': wait_for_input gate 'same' expects"):
        _define(clash)


def test_approve_needs_one_promise() -> None:
    def void() -> None:
        approve(nothing(), "go", timeout=HOUR)

    with pytest.raises(CompilationError, match=r"void': approve gate 'go': node n0 .*no outputs"):
        _define(void)

    def constant() -> int:
        return approve(3, "go", timeout=HOUR)

    with pytest.raises(CompilationError, match="constant': approve gate 'go': upstream_item must"):
        _define(constant)

    def several(x: int) -> int:
        return approve(two(x=x), "go", timeout=HOUR)

    with pytest.raises(CompilationError, match=r"several': approve gate 'go': .*all outputs"):
        _define(several)


def test_signal_type_mismatch_names_the_gate() -> None:
    def mismatch() -> str:
        text = wait_for_input("text", timeout=HOUR, expected_type=str)
        return str(plus_one(x=text))

    with pytest.raises(PromiseTypeError, match=r"wait_for_input gate 'text'"):
        _define(mismatch)


# ---------------------------------------------------------------------- local runs
def test_local_sleep_skips_ahead() -> None:
    started = time.perf_counter()
    assert sleepy(x=1) == 3
    assert time.perf_counter() - started < 30  # two days of sleep took no real time


def test_local_signals_feed_wait_for_input_and_approve() -> None:
    with local_signals({"factor": 2.5}, publish=True):
        assert approval_flow(x=1) == 5.0
    with local_signals(factor=2, publish=True):  # an int is accepted for a float
        assert approval_flow(x=1) == 4.0


def test_local_rejection_fails_the_run() -> None:
    with local_signals(factor=1.0, publish=False), pytest.raises(Exception) as info:
        approval_flow(x=1)
    assert "approval 'publish' was rejected" in str(info.value)


def test_local_missing_signal_raises_at_once() -> None:
    started = time.perf_counter()
    with pytest.raises(MissingSignalError) as info:
        approval_flow(x=1)
    assert time.perf_counter() - started < 30  # never waits for the one-hour timeout
    message = str(info.value)
    assert "approval_flow" in message and "'factor' (float)" in message
    assert "local_signals" in message and "do not prompt" in message
    assert info.value.signal_id == "factor"

    with local_signals(factor=1.0), pytest.raises(MissingSignalError, match="'publish'"):
        approval_flow(x=1)


def test_local_signal_of_the_wrong_type() -> None:
    with (
        local_signals(factor="lots", publish=True),
        pytest.raises(MissingSignalError, match=r"'lots' \(str\), does not fit its type"),
    ):
        approval_flow(x=1)
    with (
        local_signals(factor=1.0, publish="yes"),
        pytest.raises(MissingSignalError, match="publish"),
    ):
        approval_flow(x=1)


def test_local_signals_nest() -> None:
    with local_signals(factor=3.0, publish=False), local_signals(publish=True):
        assert approval_flow(x=0) == 3.0


def test_local_dynamic_with_gates() -> None:
    with local_signals(final=True):
        assert dynamic_wf(n=3) == 6
    with pytest.raises(MissingSignalError, match="'final'"):
        dynamic_wf(n=1)


# ---------------------------------------------------------------------- LocalGates
def test_local_gates_skip_only_when_idle() -> None:
    busy = [False]
    waited: list[float | None] = []
    gates = LocalGates("wf", busy=lambda: busy[0], signals={})
    before = gates.now()
    gates.wait(3600.0, waited.append)
    assert waited == [] and gates.skipped == 3600.0
    assert gates.now() - before >= 3600.0
    busy[0] = True
    gates.wait(5.0, waited.append)
    gates.wait(None, waited.append)
    assert waited == [5.0, None] and gates.skipped == 3600.0


def test_local_gates_signal_source() -> None:
    lit = literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=7))
    )
    gates = LocalGates("wf", signals={"n": 7, "raw": lit})
    exec_id = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="e")
    int_type = types_pb2.LiteralType(simple=types_pb2.SIMPLE_TYPE_INTEGER)
    assert gates.get_signal(exec_id, "n", int_type) == lit
    assert gates.get_signal(exec_id, "raw", int_type) is lit
    assert gates.get_signal(exec_id, "other", int_type) is None
    with pytest.raises(MissingSignalError, match="workflow 'wf' waits for signal 'other'"):
        gates.wait(None, lambda s: None)
