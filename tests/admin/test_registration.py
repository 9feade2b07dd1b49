"""Registration through the gRPC API: idempotency, conflicts, compile errors, listing."""

from __future__ import annotations

import grpc
import pytest

from caddis_idl.admin.v1 import (
    common_pb2,
    launch_plan_pb2,
    task_pb2,
    workflow_pb2,
)
from caddis_idl.admin.v1 import (
    launch_plan_service_pb2 as lps,
)
from caddis_idl.admin.v1 import (
    task_service_pb2 as ts,
)
from caddis_idl.admin.v1 import (
    workflow_service_pb2 as ws,
)
from caddis_idl.core.v1 import literals_pb2
from tests.admin.helpers import (
    STR,
    D,
    P,
    int_lit,
    lp_id,
    promise,
    task_id,
    task_template,
    wf_id,
    workflow_template,
)


def register_basics(stubs, wf="wf", task="t1"):
    stubs.tasks.CreateTask(
        ts.CreateTaskRequest(id=task_id(task), spec=task_pb2.TaskSpec(template=task_template(task)))
    )
    stubs.workflows.CreateWorkflow(
        ws.CreateWorkflowRequest(
            id=wf_id(wf), spec=workflow_pb2.WorkflowSpec(template=workflow_template(wf, task))
        )
    )


def test_identical_registration_succeeds_and_different_content_conflicts(stubs):
    spec = task_pb2.TaskSpec(template=task_template("t1"))
    stubs.tasks.CreateTask(ts.CreateTaskRequest(id=task_id("t1"), spec=spec))
    stubs.tasks.CreateTask(ts.CreateTaskRequest(id=task_id("t1"), spec=spec))
    changed = task_pb2.TaskSpec(template=task_template("t1"))
    changed.template.type = "container"
    with pytest.raises(grpc.RpcError) as err:
        stubs.tasks.CreateTask(ts.CreateTaskRequest(id=task_id("t1"), spec=changed))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "template.type" in err.value.details()
    got = stubs.tasks.GetTask(ts.GetTaskRequest(id=task_id("t1"))).task
    assert got.closure.compiled_task.template.type == "python-task"


def test_workflow_registration_compiles_and_makes_default_launch_plan(stubs, admin):
    register_basics(stubs)
    register_basics(stubs)  # identical again: fine
    wf = stubs.workflows.GetWorkflow(
        ws.GetWorkflowRequest(id=wf_id("wf"), include_compiled_closure=True)
    ).workflow
    assert wf.closure.compiled_closure_uri.startswith("file://")
    assert wf.closure.compiled_workflow.primary.template.id.name == "wf"
    assert [t.template.id.name for t in wf.closure.compiled_workflow.tasks] == ["t1"]
    lp = stubs.launch_plans.GetLaunchPlan(lps.GetLaunchPlanRequest(id=lp_id("wf"))).launch_plan
    assert lp.spec.workflow_id.name == "wf"
    assert lp.closure.expected_inputs.parameters["x"].required


def test_compile_errors_name_every_node_and_variable(stubs):
    stubs.tasks.CreateTask(
        ts.CreateTaskRequest(id=task_id("t1"), spec=task_pb2.TaskSpec(template=task_template("t1")))
    )
    bad = workflow_template("bad", x=STR)  # n0.x wants an integer, gets the string input
    extra = bad.nodes.add()
    extra.CopyFrom(bad.nodes[0])
    extra.id = "n1"
    del extra.inputs[:]  # n1.x unbound
    bad.outputs.append(literals_pb2.Binding(var="o", binding=promise("n0", "nope")))
    with pytest.raises(grpc.RpcError) as err:
        stubs.workflows.CreateWorkflow(
            ws.CreateWorkflowRequest(id=wf_id("bad"), spec=workflow_pb2.WorkflowSpec(template=bad))
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details()
    assert "node 'n0' variable 'x'" in details
    assert "node 'n1' variable 'x'" in details


def test_launch_plan_conflict_fixed_inputs_and_activation(stubs):
    register_basics(stubs)
    spec = launch_plan_pb2.LaunchPlanSpec(
        workflow_id=wf_id("wf"), fixed_inputs=literals_pb2.LiteralMap(literals={"x": int_lit(3)})
    )
    for version in ("v1", "v2"):
        stubs.launch_plans.CreateLaunchPlan(
            lps.CreateLaunchPlanRequest(id=lp_id("lp", version), spec=spec)
        )
    other = launch_plan_pb2.LaunchPlanSpec(
        workflow_id=wf_id("wf"), fixed_inputs=literals_pb2.LiteralMap(literals={"x": int_lit(4)})
    )
    with pytest.raises(grpc.RpcError) as err:
        stubs.launch_plans.CreateLaunchPlan(lps.CreateLaunchPlanRequest(id=lp_id("lp"), spec=other))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "fixed_inputs" in err.value.details()
    wrong = launch_plan_pb2.LaunchPlanSpec(
        workflow_id=wf_id("wf"),
        fixed_inputs=literals_pb2.LiteralMap(
            literals={
                "x": literals_pb2.Literal(
                    scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value="s"))
                )
            }
        ),
    )
    with pytest.raises(grpc.RpcError) as err:
        stubs.launch_plans.CreateLaunchPlan(
            lps.CreateLaunchPlanRequest(id=lp_id("lp3"), spec=wrong)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'x'" in err.value.details() and "integer" in err.value.details()

    active = launch_plan_pb2.LAUNCH_PLAN_STATE_ACTIVE
    stubs.launch_plans.UpdateLaunchPlan(
        lps.UpdateLaunchPlanRequest(id=lp_id("lp", "v1"), state=active)
    )
    stubs.launch_plans.UpdateLaunchPlan(
        lps.UpdateLaunchPlanRequest(id=lp_id("lp", "v2"), state=active)
    )
    got = stubs.launch_plans.GetActiveLaunchPlan(
        lps.GetActiveLaunchPlanRequest(
            id=common_pb2.NamedEntityIdentifier(project=P, domain=D, name="lp")
        )
    ).launch_plan
    assert got.id.version == "v2"
    v1 = stubs.launch_plans.GetLaunchPlan(
        lps.GetLaunchPlanRequest(id=lp_id("lp", "v1"))
    ).launch_plan
    assert v1.closure.state == launch_plan_pb2.LAUNCH_PLAN_STATE_INACTIVE


def test_list_tasks_pages_and_ids(stubs):
    for i in range(25):
        stubs.tasks.CreateTask(
            ts.CreateTaskRequest(
                id=task_id("t", f"v{i:02d}"),
                spec=task_pb2.TaskSpec(template=task_template("t", f"v{i:02d}")),
            )
        )
    seen, token = [], ""
    while True:
        resp = stubs.tasks.ListTasks(
            ts.ListTasksRequest(
                id=common_pb2.NamedEntityIdentifier(project=P, domain=D, name="t"),
                options=common_pb2.ListOptions(
                    limit=10,
                    token=token,
                    sort_by=common_pb2.Sort(
                        key="version", direction=common_pb2.SORT_DIRECTION_ASCENDING
                    ),
                ),
            )
        )
        seen += [t.id.version for t in resp.tasks]
        token = resp.next_token
        if not token:
            break
    assert seen == [f"v{i:02d}" for i in range(25)]
    ids = stubs.tasks.ListTaskIds(ts.ListTaskIdsRequest(project=P, domain=D)).entities
    assert [i.name for i in ids] == ["t"]


def test_unknown_domain_is_invalid(stubs):
    bad = task_id("t1")
    bad.domain = "nowhere"
    with pytest.raises(grpc.RpcError) as err:
        stubs.tasks.CreateTask(
            ts.CreateTaskRequest(id=bad, spec=task_pb2.TaskSpec(template=task_template("t1")))
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "development" in err.value.details()
