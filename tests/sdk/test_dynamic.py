"""@dynamic: the seed examples compile into DynamicJobSpecs the shared compiler accepts."""

import typing

import joblib
import pytest
from sklearn.neighbors import KNeighborsClassifier

from caddis import conditional, dynamic, map_task, task, workflow
from caddis.core.dynamic import DynamicTask
from caddis.core.errors import CompilationError, PromiseUsageError
from caddis.core.settings import SerializationSettings, serialization_settings
from caddis.types.file import JoblibSerializedFile
from caddis_idl.core.v1 import dynamic_job_pb2
from caddis_propeller.compiler import compile_dynamic
from tests.sdk.programs import count_characters as cc
from tests.sdk.programs import knn

SETTINGS = SerializationSettings(project="p", domain="d", version="v1")


def _compile(dyn: DynamicTask, spec: dynamic_job_pb2.DynamicJobSpec) -> typing.Any:
    return compile_dynamic(
        spec,
        node_id="n0",
        interface=dyn.python_interface.typed_interface(),
        parent_id=dyn.id(SETTINGS),
    )


def test_count_characters_seed() -> None:
    assert cc.count_characters.to_template(SETTINGS).type == "dynamic"
    wf_tpl = cc.wf.to_template(SETTINGS)
    assert wf_tpl.nodes[0].task_node.reference_id.name == cc.count_characters.name
    cc.wf.compile(SETTINGS)

    spec = cc.count_characters.compile_futures(SETTINGS, s1="Pear", s2="Earth")
    # Two nodes per character plus the final count, in call order.
    assert [n.id for n in spec.nodes] == [f"n{i}" for i in range(2 * 9 + 1)]
    assert spec.min_successes == len(spec.nodes)
    assert [t.id.name for t in spec.tasks] == [
        cc.return_index.name,
        cc.update_list.name,
        cc.derive_count.name,
    ]
    # The first update_list gets the native list as a constant, later ones the promise.
    first_update = spec.nodes[1]
    assert len(first_update.inputs[0].binding.collection.bindings) == 26
    assert spec.nodes[3].inputs[0].binding.promise.node_id == "n1"
    assert spec.outputs[0].binding.promise.node_id == spec.nodes[-1].id
    assert spec.tasks[0].id.version == "v1"
    closure = _compile(cc.count_characters, spec)
    assert len(closure.primary.template.nodes) == 19
    assert dynamic_job_pb2.DynamicJobSpec.FromString(spec.SerializeToString()) == spec


def test_settings_come_from_context() -> None:
    with serialization_settings(SerializationSettings(project="q", domain="e", version="v9")):
        spec = cc.count_characters.execute(s1="a", s2="a")
    assert {t.id.project for t in spec.tasks} == {"q"}
    assert {t.id.version for t in spec.tasks} == {"v9"}


def test_knn_seed(tmp_path: typing.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tpl = knn.wf.to_template(SETTINGS)
    # X, y = get_dataset(): a tuple output unpacked into two promises.
    ev = tpl.nodes[2]
    assert {(b.var, b.binding.promise.node_id, b.binding.promise.var) for b in ev.inputs} == {
        ("models", "n1", "o0"),
        ("X", "n0", "o0"),
        ("y", "n0", "o1"),
    }
    ev_tpl = knn.evaluate_model.to_template(SETTINGS)
    assert ev_tpl.type == "dynamic" and ev_tpl.metadata.cacheable
    assert [e.value for e in ev_tpl.process.resources.limits] == ["1000Mi"]
    knn.wf.compile(SETTINGS)

    # Run the dynamic body on real inputs: three serialized models and a small dataset.
    models = []
    for k in (2, 3, 4):
        path = tmp_path / f"model-k{k}.joblib.dat"
        joblib.dump(KNeighborsClassifier(n_neighbors=k), path)
        models.append(JoblibSerializedFile(str(path)))
    X, y = knn.get_dataset.execute()
    spec = knn.evaluate_model.compile_futures(SETTINGS, models=models, X=X, y=y)
    assert len(spec.nodes) == 3
    assert all(n.task_node.reference_id.name == knn.helper_evaluate_model.name for n in spec.nodes)
    scores = spec.nodes[0].inputs[1].binding.collection.bindings
    assert len(scores) == 3 and scores[0].scalar.primitive.float_value > 0
    out = spec.outputs[0].binding.collection.bindings
    assert [b.promise.node_id for b in out] == ["n0", "n1", "n2"]
    _compile(knn.evaluate_model, spec)


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def sub_wf(x: int) -> int:
    return inc(x=inc(x=x))


@dynamic
def inner_dyn(n: int) -> list[int]:
    return [inc(x=i) for i in range(n)]


@dynamic
def outer_dyn(n: int) -> int:
    parts = []
    for i in range(n):
        parts.append(sub_wf(x=i))
    more = inner_dyn(n=n)
    mapped = map_task(inc)(x=more)
    small = conditional("small").if_(mapped[0] < 3).then(inc(x=1)).else_().then(inc(x=2))
    return total(xs=[*parts, small, n])


def test_nested_workflows_dynamics_maps_and_branches() -> None:
    spec = outer_dyn.compile_futures(SETTINGS, n=2)
    kinds = [n.WhichOneof("target") for n in spec.nodes]
    assert kinds == [
        "workflow_node",
        "workflow_node",
        "task_node",
        "array_node",
        "branch_node",
        "task_node",
    ]
    assert [w.id.name for w in spec.subworkflows] == [sub_wf.name]
    assert {t.id.name for t in spec.tasks} == {inc.name, total.name, inner_dyn.name}
    assert next(t for t in spec.tasks if t.id.name == inner_dyn.name).type == "dynamic"
    _compile(outer_dyn, spec)


def test_plain_native_return_without_nodes() -> None:
    @dynamic
    def const(n: int) -> int:
        return n * 2

    spec = const.compile_futures(n=4)
    assert not spec.nodes
    assert spec.outputs[0].binding.scalar.primitive.integer == 8


def test_promises_are_still_promises_in_a_dynamic() -> None:
    @dynamic
    def bad(n: int) -> int:
        return inc(x=n) + 1

    with pytest.raises(PromiseUsageError, match=r"dynamic '.*bad'.*operator \+"):
        bad.compile_futures(n=1)


def test_wrong_output_count_in_dynamic() -> None:
    @dynamic
    def bad(n: int) -> tuple[int, int]:
        return inc(x=n)

    with pytest.raises(CompilationError, match="declares 2 output"):
        bad.compile_futures(n=1)


def test_defaults_fill_missing_native_inputs() -> None:
    @dynamic
    def d(n: int = 3) -> list[int]:
        return [inc(x=i) for i in range(n)]

    assert len(d.compile_futures().nodes) == 3
