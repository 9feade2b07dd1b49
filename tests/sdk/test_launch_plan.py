"""Launch plans, schedules, reference entities and registration sets."""

import datetime

import pytest

from caddis import (
    CronSchedule,
    FixedRate,
    LaunchPlan,
    kwtypes,
    map_task,
    reference_launch_plan,
    reference_task,
    reference_workflow,
    task,
    workflow,
)
from caddis.core.errors import CompilationError, RemoteOnlyError
from caddis.core.settings import SerializationSettings
from caddis.core.translator import collect_entities, get_serializable
from caddis_idl.admin.v1 import launch_plan_pb2, schedule_pb2
from caddis_idl.core.v1 import identifier_pb2
from tests.sdk.programs import augment, count_characters

SETTINGS = SerializationSettings(project="p", domain="d", version="v1")


@task
def greet(name: str, punct: str = "!") -> str:
    return f"hello {name}{punct}"


@workflow
def hello(
    name: str, punct: str = "!", when: datetime.datetime = datetime.datetime(2024, 1, 1)
) -> str:
    return greet(name=name, punct=punct)


def test_default_launch_plan() -> None:
    lp = LaunchPlan.get_or_create(hello)
    assert lp.name == hello.name
    assert LaunchPlan.get_or_create(hello) is lp
    params = lp.parameters().parameters
    assert params["name"].required
    assert params["punct"].default.scalar.primitive.string_value == "!"
    spec = lp.to_spec(SETTINGS)
    assert spec.workflow_id.name == hello.name and spec.workflow_id.version == "v1"
    with pytest.raises(CompilationError, match="takes no options"):
        LaunchPlan.get_or_create(hello, fixed_inputs={"name": "x"})


def test_named_launch_plan_with_schedule_and_inputs() -> None:
    lp = LaunchPlan.get_or_create(
        hello,
        name="hello_hourly",
        default_inputs={"punct": "?"},
        fixed_inputs={"name": "world"},
        schedule=CronSchedule(schedule="0 * * * *", kickoff_time_input_arg="when"),
        labels={"team": "ml"},
        annotations={"note": "x"},
        max_parallelism=5,
    )
    assert list(lp.python_interface.inputs) == ["punct", "when"]
    idl = lp.to_idl(SETTINGS)
    assert idl.id.resource_type == identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN
    assert idl.id.name == "hello_hourly"
    spec = idl.spec
    assert spec.fixed_inputs.literals["name"].scalar.primitive.string_value == "world"
    assert spec.default_inputs.parameters["punct"].default.scalar.primitive.string_value == "?"
    assert "name" not in spec.default_inputs.parameters
    assert spec.schedule.cron_schedule.expression == "0 * * * *"
    assert spec.schedule.kickoff_time_input_arg == "when"
    assert dict(spec.labels.values) == {"team": "ml"}
    assert spec.max_parallelism == 5
    assert launch_plan_pb2.LaunchPlan.FromString(idl.SerializeToString()) == idl
    # Same settings again: the same object; different ones: refused.
    again = LaunchPlan.get_or_create(
        hello,
        name="hello_hourly",
        default_inputs={"punct": "?"},
        fixed_inputs={"name": "world"},
        schedule=CronSchedule(schedule="0 * * * *", kickoff_time_input_arg="when"),
        labels={"team": "ml"},
        annotations={"note": "x"},
        max_parallelism=5,
    )
    assert again is lp
    with pytest.raises(CompilationError, match="already exists with different settings"):
        LaunchPlan.get_or_create(hello, name="hello_hourly", fixed_inputs={"name": "mars"})


def test_launch_plan_input_errors() -> None:
    with pytest.raises(CompilationError, match="'nope', not an input"):
        LaunchPlan.get_or_create(hello, name="lp_bad1", fixed_inputs={"nope": 1})
    with pytest.raises(CompilationError, match="both a default and a fixed"):
        LaunchPlan.get_or_create(
            hello, name="lp_bad2", fixed_inputs={"name": "a"}, default_inputs={"name": "b"}
        )
    with pytest.raises(CompilationError, match="input 'name' expects str"):
        LaunchPlan.get_or_create(hello, name="lp_bad3", fixed_inputs={"name": 3})
    with pytest.raises(CompilationError, match="must be a datetime input"):
        LaunchPlan.get_or_create(
            hello, name="lp_bad4", schedule=FixedRate(datetime.timedelta(hours=1), "punct")
        )


def test_schedules() -> None:
    rate = FixedRate(duration=datetime.timedelta(hours=2))
    assert rate.to_idl().rate.unit == schedule_pb2.FIXED_RATE_UNIT_HOUR
    assert rate.to_idl().rate.value == 2
    assert (
        FixedRate(datetime.timedelta(days=1)).to_idl().rate.unit == schedule_pb2.FIXED_RATE_UNIT_DAY
    )
    assert FixedRate(datetime.timedelta(minutes=90)).to_idl().rate.value == 90
    with pytest.raises(CompilationError, match="whole number of minutes"):
        FixedRate(datetime.timedelta(seconds=30))
    assert CronSchedule(schedule="@daily").to_idl().cron_schedule.expression == "@daily"
    with pytest.raises(CompilationError, match="not a valid cron"):
        CronSchedule(schedule="99 * * * *")
    with pytest.raises(CompilationError, match="five fields"):
        CronSchedule(schedule="* * *")


def test_launch_plan_called_in_a_workflow() -> None:
    lp = LaunchPlan.get_or_create(hello, name="hello_fixed", fixed_inputs={"name": "x"})

    @workflow
    def parent(p: str) -> str:
        return lp(punct=p)

    tpl = parent.to_template(SETTINGS)
    node = tpl.nodes[0]
    assert node.workflow_node.launchplan_ref.name == "hello_fixed"
    # Omitted inputs with launch-plan defaults are left to the launch plan.
    assert [b.var for b in node.inputs] == ["punct"]
    ser = get_serializable(parent, settings=SETTINGS)
    assert [t.id.name for t in ser.tasks] == [greet.name]
    assert [w.id.name for w in ser.workflows] == [hello.name, parent.name]
    assert [lp_.id.name for lp_ in ser.launch_plans] == ["hello_fixed"]
    closure = parent.compile(SETTINGS)
    assert [x.template.id.name for x in closure.launch_plans] == ["hello_fixed"]
    with pytest.raises(CompilationError, match="no input named 'name'"):

        @workflow
        def parent2(p: str) -> str:
            return lp(name=p)


def test_reference_entities() -> None:
    rt = reference_task(
        "ref", "prod", "lib.clean", "v3", inputs=kwtypes(raw=str), outputs=kwtypes(o0=str)
    )

    @reference_workflow(project="ref", domain="prod", name="lib.pipeline", version="v2")
    def pipeline(x: str) -> str: ...

    rlp = reference_launch_plan(
        "ref", "prod", "lib.nightly", "v1", inputs=kwtypes(x=str), outputs=kwtypes(o0=str)
    )

    @workflow
    def wf(s: str) -> str:
        return rlp(x=pipeline(x=rt(raw=s)))

    tpl = wf.to_template(SETTINGS)
    ids = [
        tpl.nodes[0].task_node.reference_id,
        tpl.nodes[1].workflow_node.sub_workflow_ref,
        tpl.nodes[2].workflow_node.launchplan_ref,
    ]
    assert [(i.project, i.domain, i.name, i.version) for i in ids] == [
        ("ref", "prod", "lib.clean", "v3"),
        ("ref", "prod", "lib.pipeline", "v2"),
        ("ref", "prod", "lib.nightly", "v1"),
    ]
    ser = get_serializable(wf, settings=SETTINGS)
    assert ser.tasks == [] and [w.id.name for w in ser.workflows] == [wf.name]
    for entity, kwargs in ((rt, {"raw": "a"}), (pipeline, {"x": "a"}), (rlp, {"x": "a"})):
        with pytest.raises(RemoteOnlyError, match="cannot run locally"):
            entity(**kwargs)


def test_get_serializable_collects_everything_once() -> None:
    ser = get_serializable(count_characters.wf, augment.wf, settings=SETTINGS)
    names = [t.id.name for t in ser.tasks]
    assert len(names) == len(set(names))
    assert count_characters.count_characters.name in names
    assert augment.data_augment.name in names
    assert [w.id.name for w in ser.workflows] == [count_characters.wf.name, augment.wf.name]
    order = [e.name for e in collect_entities(augment.wf)]
    assert order.index(augment.fetch_urls.name) < order.index(augment.wf.name)
    m = map_task(greet)
    assert m.task is greet
