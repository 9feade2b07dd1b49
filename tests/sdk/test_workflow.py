"""@workflow: tracing, node ids, bindings, overrides, ordering and definition-time errors."""

import dataclasses
from typing import NamedTuple

import pytest

from caddis import Resources, WorkflowFailurePolicy, create_node, task, workflow
from caddis.core.errors import (
    CompilationError,
    MissingTypeError,
    PromiseTypeError,
    PromiseUsageError,
)
from caddis.core.settings import SerializationSettings
from caddis_idl.core.v1 import workflow_pb2

SETTINGS = SerializationSettings(project="p", domain="d", version="v1")


@task
def add(a: int, b: int = 10) -> int:
    return a + b


@task
def to_str(x: int) -> str:
    return str(x)


@task
def split(x: int) -> tuple[int, str]:
    return x, str(x)


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def side_effect() -> None:
    pass


@dataclasses.dataclass
class Point:
    x: int
    label: str


@task
def make_point(x: int) -> Point:
    return Point(x, "p")


@task
def table() -> dict[str, int]:
    return {"a": 1}


class Pair(NamedTuple):
    left: int
    right: str


@task
def pair(x: int) -> Pair:
    return Pair(x, str(x))


def test_node_ids_bindings_and_outputs() -> None:
    @workflow
    def wf(x: int, y: int = 3) -> str:
        s = add(a=x, b=y)
        t = add(a=s)  # b takes the task's default
        return to_str(x=t)

    tpl = wf.to_template(SETTINGS)
    assert [n.id for n in tpl.nodes] == ["n0", "n1", "n2"]
    n0, n1, n2 = tpl.nodes
    assert n0.inputs[0].binding.promise.node_id == "start-node"
    assert n0.inputs[1].binding.promise.var == "y"
    assert n1.inputs[0].binding.promise.node_id == "n0"
    assert n1.inputs[1].binding.scalar.primitive.integer == 10
    assert list(n1.upstream_node_ids) == ["n0"]
    assert list(n2.upstream_node_ids) == ["n1"]
    assert n2.task_node.reference_id.name == to_str.name
    assert n2.task_node.reference_id.version == "v1"
    assert [(b.var, b.binding.promise.node_id) for b in tpl.outputs] == [("o0", "n2")]
    assert wf.python_interface.defaults == {"y": 3}
    assert workflow_pb2.WorkflowTemplate.FromString(tpl.SerializeToString()) == tpl


def test_multiple_outputs_unpack_and_named_tuple() -> None:
    @workflow
    def wf(x: int) -> tuple[int, str, str]:
        a, b = split(x=x)
        p = pair(x=a)
        return p.left, p.right, b

    tpl = wf.to_template(SETTINGS)
    assert [(o.var, o.binding.promise.node_id, o.binding.promise.var) for o in tpl.outputs] == [
        ("o0", "n1", "left"),
        ("o1", "n1", "right"),
        ("o2", "n0", "o1"),
    ]


def test_named_tuple_call_result_is_named() -> None:
    seen = {}

    @workflow
    def wf(x: int) -> int:
        p = pair(x=x)
        seen["type"] = type(p).__name__
        seen["fields"] = p._fields
        return p.left

    assert seen == {"type": "Pair", "fields": ("left", "right")}


def test_attribute_paths_into_dataclass_list_and_dict() -> None:
    @workflow
    def wf(x: int) -> tuple[int, str, int, int]:
        p = make_point(x=x)
        return p.x, p.label, numbers(n=x)[2], table()["a"]

    tpl = wf.to_template(SETTINGS)
    paths = []
    for out in tpl.outputs:
        ref = out.binding.promise
        paths.append((ref.node_id, [a.string_value or a.int_value for a in ref.attr_path]))
    assert paths == [("n0", ["x"]), ("n0", ["label"]), ("n1", [2]), ("n2", ["a"])]
    wf.compile(SETTINGS)  # the shared compiler agrees with the attribute types


def test_compiles_with_shared_compiler() -> None:
    @workflow
    def wf(x: int) -> str:
        return to_str(x=add(a=x))

    closure = wf.compile(SETTINGS)
    assert closure.primary.template.id.name == wf.name
    assert {t.template.id.name for t in closure.tasks} == {add.name, to_str.name}
    assert list(closure.primary.connections.upstream["n1"].ids) == ["n0"]


def test_with_overrides_and_ordering() -> None:
    @workflow
    def wf(x: int) -> int:
        first = side_effect()
        s = add(a=x).with_overrides(
            name="adder",
            retries=5,
            timeout=60,
            requests=Resources(cpu="2"),
            limits=Resources(mem="1Gi"),
            cache=True,
            cache_version="7",
            container_image="other:1",
            interruptible=False,
        )
        first >> s
        last = side_effect()
        s >> last
        return s

    tpl = wf.to_template(SETTINGS)
    n0, n1, n2 = tpl.nodes
    md = n1.metadata
    assert md.name == "adder" and md.retries.retries == 5 and md.timeout.seconds == 60
    assert md.cacheable and md.cache_version == "7"
    assert md.HasField("interruptible") and not md.interruptible
    ov = n1.task_node.overrides
    assert ov.container_image == "other:1"
    assert [e.value for e in ov.resources.requests] == ["2"]
    assert [e.value for e in ov.resources.limits] == ["1Gi"]
    assert list(n1.upstream_node_ids) == ["n0"]
    assert list(n2.upstream_node_ids) == ["n1"]
    # Nodes without overrides leave node metadata to the task.
    assert not n0.metadata.HasField("retries")


def test_node_name_override_renames_references() -> None:
    @workflow
    def wf(x: int) -> str:
        s = add(a=x).with_overrides(node_name="Sum Step")
        return to_str(x=s)

    tpl = wf.to_template(SETTINGS)
    assert tpl.nodes[0].id == "sum-step"
    assert tpl.nodes[1].inputs[0].binding.promise.node_id == "sum-step"


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(CompilationError, match="unknown override"):

        @workflow
        def wf(x: int) -> int:
            return add(a=x).with_overrides(gpus=3)


def test_create_node_and_rshift_on_nodes() -> None:
    @workflow
    def wf(x: int) -> int:
        n1 = create_node(side_effect)
        n2 = create_node(add, a=x)
        n1 >> n2
        return n2.o0

    tpl = wf.to_template(SETTINGS)
    assert list(tpl.nodes[1].upstream_node_ids) == ["n0"]


def test_subworkflow_node() -> None:
    @workflow
    def inner(a: int) -> int:
        return add(a=a)

    @workflow
    def outer(x: int) -> int:
        return inner(a=x)

    tpl = outer.to_template(SETTINGS)
    assert tpl.nodes[0].workflow_node.sub_workflow_ref.name == inner.name
    closure = outer.compile(SETTINGS)
    assert [w.template.id.name for w in closure.sub_workflows] == [inner.name]


def test_failure_policy_and_on_failure() -> None:
    @task
    def cleanup(x: int, err: str | None = None) -> None:
        pass

    @workflow(
        failure_policy=WorkflowFailurePolicy.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE,
        on_failure=cleanup,
    )
    def wf(x: int) -> int:
        return add(a=x)

    tpl = wf.to_template(SETTINGS)
    assert (
        tpl.metadata.on_failure
        == workflow_pb2.WorkflowMetadata.ON_FAILURE_POLICY_FAIL_AFTER_EXECUTABLE_NODES_COMPLETE
    )
    assert tpl.failure_node.id == "fn0"
    assert [b.var for b in tpl.failure_node.inputs] == ["x"]
    wf.compile(SETTINGS)


def test_on_failure_with_foreign_input_is_rejected() -> None:
    @task
    def cleanup(other: int) -> None:
        pass

    with pytest.raises(CompilationError, match=r"on_failure .* has input 'other'"):

        @workflow(on_failure=cleanup)
        def wf(x: int) -> int:
            return add(a=x)


def test_calling_workflow_runs_it_locally_through_the_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @workflow
    def wf(x: int, y: int = 2) -> int:
        return add(a=x, b=y)

    calls = []

    def fake_executor(entity: object, inputs: dict[str, object]) -> int:
        calls.append((entity, inputs))
        return 42

    monkeypatch.setattr("caddis.core.base.local_execution_hook", lambda: fake_executor)
    assert wf(1) == 42
    assert calls == [(wf, {"x": 1})]

    monkeypatch.setattr("caddis.core.base.local_execution_hook", lambda: None)
    with pytest.raises(NotImplementedError, match="cannot run locally yet"):
        wf(x=1)


# ---------------------------------------------------------------- definition-time errors
def test_missing_workflow_hint() -> None:
    with pytest.raises(MissingTypeError, match=r"workflow '.*\.wf': input 'x' has no type hint"):

        @workflow
        def wf(x) -> int:  # type: ignore[no-untyped-def]
            return add(a=x)


def test_iterating_a_promise() -> None:
    with pytest.raises(PromiseUsageError) as info:

        @workflow
        def wf(n: int) -> int:
            for v in numbers(n=n):
                add(a=v)
            return n

    msg = str(info.value)
    assert "workflow '" in msg and ".wf'" in msg
    assert "cannot iterate" in msg and "output 'o0' of node n0" in msg
    assert "@dynamic" in msg


def test_bool_of_a_promise() -> None:
    with pytest.raises(PromiseUsageError, match=r"Python bool.*input 'x'.*conditional\(\)"):

        @workflow
        def wf(x: bool) -> int:
            if x:
                return add(a=1)
            return add(a=2)


def test_arithmetic_on_a_promise() -> None:
    with pytest.raises(PromiseUsageError, match=r"operator \+ to output 'o0' of node n0"):

        @workflow
        def wf(x: int) -> int:
            return add(a=add(a=x) + 1)


def test_comparison_used_as_python_bool() -> None:
    with pytest.raises(PromiseUsageError, match=r"conditional\(.*\)\.if_"):

        @workflow
        def wf(x: int) -> int:
            if add(a=x) > 3:
                return add(a=1)
            return add(a=2)


def test_negative_index_and_slice_of_list_promise() -> None:
    with pytest.raises(PromiseUsageError, match=r"length is\\s+unknown|length is unknown"):

        @workflow
        def wf(n: int) -> int:
            return numbers(n=n)[-1]

    with pytest.raises(PromiseUsageError, match="cannot slice"):

        @workflow
        def wf2(n: int) -> list[int]:
            return numbers(n=n)[1:]


def test_len_of_promise() -> None:
    with pytest.raises(PromiseUsageError, match="len"):

        @workflow
        def wf(n: int) -> int:
            return add(a=len(numbers(n=n)))


def test_unknown_attribute_of_dataclass_promise() -> None:
    with pytest.raises(CompilationError, match="has no field 'z'"):

        @workflow
        def wf(x: int) -> int:
            return make_point(x=x).z


def test_unbound_input() -> None:
    @task
    def needs(a: int, b: int) -> int:
        return a + b

    with pytest.raises(CompilationError) as info:

        @workflow
        def wf(x: int) -> int:
            return needs(a=x)

    msg = str(info.value)
    assert ".wf': node n0 (task '" in msg and "input 'b' is not bound" in msg


def test_unknown_input_name() -> None:
    with pytest.raises(CompilationError, match="no input named 'c'; its inputs are a, b"):

        @workflow
        def wf(x: int) -> int:
            return add(a=x, c=1)


def test_promise_of_wrong_type() -> None:
    with pytest.raises(PromiseTypeError) as info:

        @workflow
        def wf(x: int) -> int:
            return add(a=to_str(x=x))

    msg = str(info.value)
    assert "node n1 (task '" in msg and "input 'a' expects int" in msg
    assert "received output 'o0' of node n0" in msg and "of type str" in msg


def test_constant_of_wrong_type() -> None:
    with pytest.raises(
        CompilationError, match="input 'a' expects int but received 'x' of type str"
    ):

        @workflow
        def wf() -> int:
            return add(a="x")


def test_passing_all_outputs_at_once() -> None:
    with pytest.raises(PromiseTypeError, match="unpack them first"):

        @workflow
        def wf(x: int) -> int:
            return add(a=split(x=x))


def test_passing_a_void_promise() -> None:
    with pytest.raises(PromiseTypeError, match="has no outputs"):

        @workflow
        def wf() -> int:
            return add(a=side_effect())


def test_wrong_output_count() -> None:
    with pytest.raises(CompilationError, match=r"declares 2 output\(s\) .* returned 1 value"):

        @workflow
        def wf(x: int) -> tuple[int, int]:
            return add(a=x)

    with pytest.raises(CompilationError, match="declares no outputs but its body returned"):

        @workflow
        def wf2(x: int) -> None:
            return add(a=x)

    with pytest.raises(CompilationError, match="returned nothing"):

        @workflow
        def wf3(x: int) -> int:
            add(a=x)


def test_workflow_output_type_mismatch() -> None:
    with pytest.raises(PromiseTypeError, match="workflow outputs: input 'o0' expects int"):

        @workflow
        def wf(x: int) -> int:
            return to_str(x=x)


def test_outputs_may_be_lists_of_promises_and_constants() -> None:
    @workflow
    def wf(x: int) -> tuple[list[int], int]:
        return [add(a=x), add(a=x, b=2), 7], 5

    tpl = wf.to_template(SETTINGS)
    coll = tpl.outputs[0].binding.collection.bindings
    assert [c.WhichOneof("value") for c in coll] == ["promise", "promise", "scalar"]
    assert tpl.outputs[1].binding.scalar.primitive.integer == 5
    wf.compile(SETTINGS)


def test_promise_outside_workflow_is_rejected() -> None:
    captured = {}

    @workflow
    def wf(x: int) -> int:
        captured["p"] = add(a=x)
        return captured["p"]

    with pytest.raises(CompilationError, match="outside a @workflow"):
        add(a=captured["p"])
