"""map_task: array nodes, partials, success ratios and the seed augmentation skeleton."""

import functools
import typing

import pytest

from caddis import Resources, TaskMetadata, dynamic, map_task, task, workflow
from caddis.core.errors import CompilationError
from caddis.core.settings import SerializationSettings
from caddis_idl.core.v1 import types_pb2, workflow_pb2
from tests.sdk.programs import augment

SETTINGS = SerializationSettings(project="p", domain="d", version="v1")


@task
def scale(x: float, factor: float = 1.0) -> float:
    return x * factor


@task
def pair(a: int, b: str) -> tuple[int, str]:
    return a, b


@task
def floats(n: int) -> list[float]:
    return [float(i) for i in range(n)]


def test_seed_augmentation_skeleton() -> None:
    tpl = augment.wf.to_template(SETTINGS)
    fetch, mapped, coalesce = tpl.nodes
    assert mapped.WhichOneof("target") == "array_node"
    array = mapped.array_node
    assert array.node.task_node.reference_id.name == augment.data_augment.name
    assert array.node.metadata.retries.retries == 1
    # The mapped list feeds the array node; the compiler types it as a list of files.
    assert mapped.inputs[0].var == "image"
    assert mapped.inputs[0].binding.promise.node_id == fetch.id
    assert coalesce.inputs[0].binding.promise.node_id == mapped.id
    closure = augment.wf.compile(SETTINGS)
    names = {t.template.id.name for t in closure.tasks}
    assert augment.data_augment.name in names
    # The mapped task keeps its own cache settings (metadata only added retries).
    data_augment_tpl = next(
        t.template for t in closure.tasks if t.template.id.name == augment.data_augment.name
    )
    assert data_augment_tpl.metadata.cacheable


def test_map_interface_is_list_ified() -> None:
    m = map_task(scale)
    lt = m.python_interface.input_literal_types["x"]
    assert lt.collection_type.simple == types_pb2.SIMPLE_TYPE_FLOAT
    assert m.python_interface.outputs["o0"] == list[float]


def test_partial_binds_inputs() -> None:
    @workflow
    def wf(xs: list[float]) -> list[float]:
        return map_task(functools.partial(scale, factor=2.0), concurrency=4)(x=xs)

    node = wf.to_template(SETTINGS).nodes[0]
    assert list(node.array_node.bound_inputs) == ["factor"]
    assert node.array_node.parallelism == 4
    bindings = {b.var: b.binding for b in node.inputs}
    assert bindings["factor"].scalar.primitive.float_value == 2.0
    assert bindings["x"].promise.var == "xs"
    wf.compile(SETTINGS)


def test_partial_with_a_promise() -> None:
    @task
    def factor() -> float:
        return 3.0

    @workflow
    def wf(xs: list[float]) -> list[float]:
        return map_task(functools.partial(scale, factor=factor()))(x=xs)

    node = wf.to_template(SETTINGS).nodes[1]
    assert list(node.upstream_node_ids) == ["n0"]
    wf.compile(SETTINGS)


def test_defaults_of_the_task_are_bound_not_mapped() -> None:
    @workflow
    def wf(xs: list[float]) -> list[float]:
        return map_task(scale)(x=xs)

    node = wf.to_template(SETTINGS).nodes[0]
    assert list(node.array_node.bound_inputs) == ["factor"]
    wf.compile(SETTINGS)


def test_min_success_ratio_makes_outputs_optional() -> None:
    m = map_task(scale, min_success_ratio=0.5)
    assert m.python_interface.outputs["o0"] == list[float | None]
    out_lt = m.python_interface.output_literal_types["o0"]
    variants = out_lt.collection_type.union_type.variants
    assert {v.simple for v in variants} == {
        types_pb2.SIMPLE_TYPE_FLOAT,
        types_pb2.SIMPLE_TYPE_NONE,
    }

    @task
    def keep(xs: list[float | None]) -> int:
        return len(xs)

    @workflow
    def wf(xs: list[float]) -> int:
        return keep(xs=m(x=xs))

    node = wf.to_template(SETTINGS).nodes[0]
    assert node.array_node.min_success_ratio == pytest.approx(0.5)
    wf.compile(SETTINGS)

    @task
    def strict(xs: list[float]) -> int:
        return len(xs)

    with pytest.raises(CompilationError, match=r"expects List\[float\]"):

        @workflow
        def wf2(xs: list[float]) -> int:
            return strict(xs=m(x=xs))


def test_multiple_mapped_inputs_and_outputs() -> None:
    @workflow
    def wf(a: list[int], b: list[str]) -> tuple[list[int], list[str]]:
        xs, ys = map_task(pair)(a=a, b=b)
        return xs, ys

    tpl = wf.to_template(SETTINGS)
    assert [o.binding.promise.var for o in tpl.outputs] == ["o0", "o1"]
    wf.compile(SETTINGS)


def test_metadata_and_overrides_reach_the_sub_node() -> None:
    @workflow
    def wf(n: int) -> list[float]:
        meta = TaskMetadata(retries=2, timeout=30, cache=True, cache_version="3")
        return map_task(scale, metadata=meta)(x=floats(n=n)).with_overrides(
            limits=Resources(mem="2Gi")
        )

    node = wf.to_template(SETTINGS).nodes[1]
    sub = node.array_node.node
    assert sub.metadata.retries.retries == 2
    assert sub.metadata.timeout.seconds == 30
    assert sub.metadata.cacheable and sub.metadata.cache_version == "3"
    assert [e.value for e in sub.task_node.overrides.resources.limits] == ["2Gi"]
    assert node.array_node.execution_mode == workflow_pb2.ArrayNode.EXECUTION_MODE_MINIMAL_STATE


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: map_task(scale, min_success_ratio=0), r"min_success_ratio must be in \(0, 1\]"),
        (lambda: map_task(scale, min_success_ratio=1.5), "min_success_ratio"),
        (lambda: map_task(scale, concurrency=-1), "concurrency"),
        (lambda: map_task(scale, bogus=1), "unsupported option"),
        (lambda: map_task(functools.partial(scale, 1.0)), "keyword only"),
        (lambda: map_task(functools.partial(scale, nope=1.0)), "'nope', which is not an input"),
        (lambda: map_task(scale, metadata={"retries": 1}), "metadata must be a TaskMetadata"),
    ],
)
def test_invalid_map_task_options(make: typing.Callable[[], object], message: str) -> None:
    with pytest.raises(CompilationError, match=message):
        make()


def test_mapping_a_workflow_or_dynamic_is_rejected() -> None:
    @workflow
    def wf(x: float) -> float:
        return scale(x=x)

    @dynamic
    def dyn(x: float) -> float:
        return scale(x=x)

    with pytest.raises(CompilationError, match="maps a @task"):
        map_task(wf)
    with pytest.raises(CompilationError, match="maps a @task"):
        map_task(dyn)


def test_unequal_constant_lists_and_missing_inputs() -> None:
    with pytest.raises(CompilationError, match="same length"):

        @workflow
        def wf() -> tuple[list[int], list[str]]:
            return map_task(pair)(a=[1, 2], b=["x"])

    with pytest.raises(CompilationError, match="input 'b' is not bound"):

        @workflow
        def wf2() -> tuple[list[int], list[str]]:
            return map_task(pair)(a=[1, 2])

    with pytest.raises(CompilationError, match="nothing to map over"):

        @workflow
        def wf3() -> list[float]:
            return map_task(functools.partial(scale, x=1.0))()


def test_local_fallback_runs_elements() -> None:
    m = map_task(functools.partial(scale, factor=10.0))
    assert m._local_execute(x=[1.0, 2.0]) == [10.0, 20.0]
