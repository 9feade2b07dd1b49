"""@task: decoration-time validation, interfaces, outputs, metadata and the TaskTemplate."""

import datetime
import typing
from typing import NamedTuple

import pytest

from caddis import Cache, Resources, Secret, TaskMetadata, task
from caddis.core.errors import CompilationError, MissingTypeError
from caddis.core.resolver import load_entity
from caddis.core.settings import SerializationSettings
from caddis.core.task import PythonFunctionTask
from caddis_idl.core.v1 import tasks_pb2, types_pb2

SETTINGS = SerializationSettings(project="p", domain="d", version="v1", image="img:1")


def test_bare_and_called_forms() -> None:
    @task
    def a(x: int) -> int:
        return x + 1

    @task()
    def b(x: int) -> int:
        return x + 2

    assert isinstance(a, PythonFunctionTask)
    assert isinstance(b, PythonFunctionTask)
    assert a.name.endswith("test_task.a")
    assert a(x=1) == 2  # outside a workflow: runs the function
    assert b(1) == 3  # positional inputs map to names in order
    assert a.execute(x=5) == 6


def test_zero_inputs_and_outputs() -> None:
    @task
    def nothing() -> None:
        pass

    assert nothing.python_interface.inputs == {}
    assert nothing.python_interface.outputs == {}
    ti = nothing.interface.typed_interface()
    assert not ti.inputs.variables and not ti.outputs.variables


def test_tuple_outputs_flytekit_form() -> None:
    @task
    def t() -> (list[list[float]], list[float]):  # type: ignore[syntax]
        return [[1.0]], [2.0]

    iface = t.python_interface
    assert list(iface.outputs) == ["o0", "o1"]
    assert iface.outputs["o0"] == list[list[float]]
    assert iface.outputs_are_tuple
    assert iface.unpack_outputs(t.execute()) == {"o0": [[1.0]], "o1": [2.0]}


def test_typing_tuple_outputs() -> None:
    @task
    def t() -> tuple[int, str]:
        return 1, "a"

    @task
    def u() -> tuple[int, str]:
        return 1, "a"

    for entity in (t, u):
        lts = entity.python_interface.output_literal_types
        assert list(lts) == ["o0", "o1"]
        assert lts["o0"].simple == types_pb2.SIMPLE_TYPE_INTEGER
        assert lts["o1"].simple == types_pb2.SIMPLE_TYPE_STRING


def test_variable_length_tuple_is_rejected() -> None:
    with pytest.raises(MissingTypeError, match=r"task '.*\.t'.*variable length"):

        @task
        def t() -> tuple[int, ...]:
            return (1,)


class Stats(NamedTuple):
    mean: float
    count: int


def test_named_tuple_outputs_keep_names() -> None:
    @task
    def t(xs: list[float]) -> Stats:
        return Stats(sum(xs) / len(xs), len(xs))

    iface = t.python_interface
    assert list(iface.outputs) == ["mean", "count"]
    assert iface.output_tuple_name == "Stats"
    assert iface.unpack_outputs(t.execute(xs=[1.0, 3.0])) == {"mean": 2.0, "count": 2}


def test_missing_input_hint_names_task_and_parameter() -> None:
    with pytest.raises(MissingTypeError, match=r"task '.*\.bad': input 'y' has no type hint"):

        @task
        def bad(x: int, y) -> int:  # type: ignore[no-untyped-def]
            return x


def test_unsupported_type_names_task_and_parameter() -> None:
    T = typing.TypeVar("T")

    with pytest.raises(MissingTypeError, match=r"task '.*\.bad': input 'x' has type ~T"):

        @task
        def bad(x: T) -> int:  # type: ignore[valid-type]
            return 1


def test_unsupported_output_type_names_output() -> None:
    T = typing.TypeVar("T")
    with pytest.raises(MissingTypeError, match=r"output 'o0'"):

        @task
        def bad(x: int) -> T:  # type: ignore[valid-type]
            return x


def test_var_args_rejected() -> None:
    with pytest.raises(CompilationError, match=r"parameter 'rest' is \*args"):

        @task
        def bad(*rest: int) -> int:
            return 1


def test_metadata_options_reach_template() -> None:
    @task(
        cache=True,
        cache_version="1.2",
        cache_serialize=True,
        cache_ignore_input_vars=["seed"],
        retries=3,
        timeout=90,
        interruptible=True,
        deprecated="use t2",
        requests=Resources(cpu="1", mem="1Gi"),
        limits=Resources(mem="2Gi", gpu=1, ephemeral_storage="10Gi"),
        container_image="custom:2",
        environment={"A": "1"},
        enable_deck=True,
        secret_requests=[Secret(group="db", key="password")],
    )
    def t(x: int, seed: int = 0) -> int:
        return x

    tpl = t.to_template(SETTINGS)
    assert tpl.type == "python-task"
    assert (tpl.id.project, tpl.id.domain, tpl.id.version) == ("p", "d", "v1")
    assert tpl.id.name == t.name
    md = tpl.metadata
    assert md.cacheable and md.cache_version == "1.2" and md.cache_serializable
    assert list(md.cache_ignore_input_vars) == ["seed"]
    assert md.retries.retries == 3
    assert md.timeout.ToTimedelta() == datetime.timedelta(seconds=90)
    assert md.HasField("interruptible") and md.interruptible
    assert md.deprecated_error_message == "use t2"
    assert md.generates_deck
    proc = tpl.process
    assert proc.image == "custom:2"
    assert list(proc.command) == ["python", "-m", "caddis.runtime"]
    args = list(proc.args)
    assert args[0] == "execute"
    for flag, value in [
        ("--inputs", "{{.input}}"),
        ("--output-prefix", "{{.outputPrefix}}"),
        ("--raw-output-prefix", "{{.rawOutputDataPrefix}}"),
        ("--checkpoint-path", "{{.checkpointOutputPrefix}}"),
        ("--resolver", "caddis.default"),
        ("--module", "tests.sdk.test_task"),
        ("--name", "t"),
    ]:
        assert args[args.index(flag) + 1] == value
    assert {(e.key, e.value) for e in proc.env} == {("A", "1")}
    req = {tasks_pb2.ResourceName.Name(e.name): e.value for e in proc.resources.requests}
    lim = {tasks_pb2.ResourceName.Name(e.name): e.value for e in proc.resources.limits}
    assert req == {"RESOURCE_NAME_CPU": "1", "RESOURCE_NAME_MEMORY": "1Gi"}
    assert lim == {
        "RESOURCE_NAME_MEMORY": "2Gi",
        "RESOURCE_NAME_GPU": "1",
        "RESOURCE_NAME_EPHEMERAL_STORAGE": "10Gi",
    }
    assert [(s.group, s.key) for s in tpl.security_context.secrets] == [("db", "password")]
    # Round trip through bytes: the template is plain, registrable IDL.
    assert tasks_pb2.TaskTemplate.FromString(tpl.SerializeToString()) == tpl


def test_default_image_and_timedelta_timeout() -> None:
    @task(timeout=datetime.timedelta(minutes=2))
    def t() -> None:
        pass

    tpl = t.to_template(SETTINGS)
    assert tpl.process.image == "img:1"
    assert tpl.metadata.timeout.ToTimedelta() == datetime.timedelta(minutes=2)
    assert not tpl.metadata.HasField("interruptible")
    assert not tpl.process.HasField("resources")


def test_cache_without_version_derives_one_from_source() -> None:
    @task(cache=True)
    def t(x: int) -> int:
        return x

    version = t.metadata.cache_version
    assert version.startswith("auto-") and len(version) > 10


def test_cache_object_form() -> None:
    @task(cache=Cache(version="9", serialize=True, ignored_inputs=("b",)))
    def t(a: int, b: int) -> int:
        return a

    md = t.metadata
    assert (md.cache, md.cache_version, md.cache_serialize) == (True, "9", True)
    assert md.cache_ignore_input_vars == ("b",)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cache_serialize": True}, "cache_serialize=True needs cache=True"),
        ({"cache": True, "cache_ignore_input_vars": ["nope"]}, "'nope', which is not an input"),
        ({"retries": -1}, "retries must be an int >= 0"),
        ({"timeout": "soon"}, "timeout must be seconds or a timedelta"),
        ({"limits": {"mem": "1Gi"}}, "limits must be a caddis Resources"),
    ],
)
def test_invalid_options_name_the_task(options: dict[str, typing.Any], message: str) -> None:
    with pytest.raises(CompilationError, match=message) as info:

        @task(**options)
        def t(x: int) -> int:
            return x

    assert "task '" in str(info.value)


def test_resources_validation() -> None:
    with pytest.raises(ValueError, match=r"Resources.cpu"):
        Resources(cpu=True)
    with pytest.raises(ValueError, match=r"Resources.mem"):
        Resources(mem="")


def test_task_metadata_public_and_validated() -> None:
    md = TaskMetadata(retries=2, timeout=30, cache=True, cache_version="1")
    assert md.timeout == datetime.timedelta(seconds=30)
    assert md.to_idl().retries.retries == 2
    with pytest.raises(CompilationError):
        TaskMetadata(retries=-1)
    with pytest.raises(CompilationError):
        TaskMetadata(cache_serialize=True)


def test_load_entity_finds_module_level_task() -> None:
    from tests.sdk.programs import count_characters as mod

    loaded = load_entity(*mod.return_index.location)
    assert loaded is mod.return_index
    assert mod.return_index.location == ("tests.sdk.programs.count_characters", "return_index")


def test_load_entity_errors_are_clear() -> None:
    from caddis.core.errors import EntityNotFoundError

    with pytest.raises(EntityNotFoundError, match="cannot import module"):
        load_entity("tests.sdk.programs.nope", "x")
    with pytest.raises(EntityNotFoundError, match="has no entity 'nope'"):
        load_entity("tests.sdk.programs.count_characters", "nope")
    with pytest.raises(EntityNotFoundError, match="unknown resolver"):
        load_entity("tests.sdk.programs.count_characters", "wf", resolver="other")


def test_docstring_descriptions_reach_interface() -> None:
    @task
    def t(x: int) -> int:
        """Doubles.

        Args:
            x: the number to double
        """
        return 2 * x

    assert t.interface.typed_interface().inputs.variables["x"].description == (
        "the number to double"
    )


def test_task_plugins_pick_the_class_by_config_type() -> None:
    from caddis import TaskPlugins

    class MyConfig:
        def to_custom(self) -> dict[str, typing.Any]:
            return {"workers": 2}

    class MyTask(PythonFunctionTask):
        task_type = "my-plugin"

    TaskPlugins.register_pythontask_plugin(MyConfig, MyTask)

    @task(task_config=MyConfig())
    def t(x: int) -> int:
        return x

    assert isinstance(t, MyTask)
    tpl = t.to_template(SETTINGS)
    assert tpl.type == "my-plugin"
    assert dict(tpl.custom) == {"workers": 2}
