"""Executions through the gRPC API: validation, defaults, listing, terminate, relaunch,
recover, data, outbox hand-over and quotas."""

from __future__ import annotations

import grpc
import pytest

from caddis_admin.repository.models import ExecutionRow
from caddis_idl.admin.v1 import (
    common_pb2,
    execution_pb2,
    launch_plan_pb2,
)
from caddis_idl.admin.v1 import (
    event_service_pb2 as evs,
)
from caddis_idl.admin.v1 import (
    execution_service_pb2 as es,
)
from caddis_idl.admin.v1 import (
    launch_plan_service_pb2 as lps,
)
from caddis_idl.core.v1 import execution_pb2 as core_exec
from caddis_idl.core.v1 import identifier_pb2, literals_pb2
from caddis_idl.event.v1 import event_pb2
from tests.admin.helpers import D, P, int_lit, lmap, lp_id, str_lit, wf_id
from tests.admin.test_registration import register_basics
from tests.support import wait_until


def exec_id(name):
    return identifier_pb2.WorkflowExecutionIdentifier(project=P, domain=D, name=name)


def create(stubs, lp="wf", inputs=None, name="", version="v1", **spec_fields):
    spec = execution_pb2.ExecutionSpec(launch_plan=lp_id(lp, version), **spec_fields)
    resp = stubs.executions.CreateExecution(
        es.CreateExecutionRequest(
            project=P, domain=D, name=name, spec=spec, inputs=inputs or lmap()
        )
    )
    return resp.id.name


def finish(stubs, name, phase=core_exec.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, at=100):
    ev = event_pb2.WorkflowExecutionEvent(execution_id=exec_id(name), phase=phase)
    ev.occurred_at.FromSeconds(at)
    stubs.events.CreateWorkflowEvent(
        evs.CreateWorkflowEventRequest(request_id=f"{name}-{phase}", event=ev)
    )


def test_create_get_and_handover(stubs, propeller):
    register_basics(stubs)
    name = create(stubs, inputs=lmap(x=int_lit(3)), labels=common_pb2.Labels(values={"team": "a"}))
    got = stubs.executions.GetExecution(es.GetExecutionRequest(id=exec_id(name))).execution
    assert got.closure.phase == core_exec.WORKFLOW_EXECUTION_PHASE_QUEUED
    assert got.spec.labels.values["team"] == "a"
    assert got.spec.max_parallelism == 25
    wait_until(lambda: propeller.launched_names() == [name], message="launch delivered")
    launch = propeller.launches[0]
    assert launch.options.labels["team"] == "a"
    assert launch.compiled_closure_uri.startswith("file://")
    data = stubs.executions.GetExecutionData(es.GetExecutionDataRequest(id=exec_id(name)))
    assert data.inputs.literals.literals["x"].scalar.primitive.integer == 3


def test_input_errors_are_all_reported(stubs):
    register_basics(stubs)
    spec = launch_plan_pb2.LaunchPlanSpec(
        workflow_id=wf_id("wf"), fixed_inputs=literals_pb2.LiteralMap(literals={"x": int_lit(1)})
    )
    stubs.launch_plans.CreateLaunchPlan(lps.CreateLaunchPlanRequest(id=lp_id("fixed"), spec=spec))
    with pytest.raises(grpc.RpcError) as err:
        create(stubs, inputs=lmap(x=str_lit("nope"), y=int_lit(1)))
    details = err.value.details()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'x': expected integer, received string" in details
    assert "'y' is not an input" in details
    with pytest.raises(grpc.RpcError) as err:
        create(stubs)
    assert "'x' (integer) is required" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        create(stubs, lp="fixed", inputs=lmap(x=int_lit(2)))
    assert "fixed" in err.value.details() and "cannot be overridden" in err.value.details()
    name = create(stubs, lp="fixed")
    data = stubs.executions.GetExecutionData(es.GetExecutionDataRequest(id=exec_id(name)))
    assert data.inputs.literals.literals["x"].scalar.primitive.integer == 1


def test_name_collision_and_workflow_launch(stubs):
    register_basics(stubs)
    spec = execution_pb2.ExecutionSpec(workflow=wf_id("wf"))
    stubs.executions.CreateExecution(
        es.CreateExecutionRequest(
            project=P, domain=D, name="same", spec=spec, inputs=lmap(x=int_lit(1))
        )
    )
    with pytest.raises(grpc.RpcError) as err:
        stubs.executions.CreateExecution(
            es.CreateExecutionRequest(
                project=P, domain=D, name="same", spec=spec, inputs=lmap(x=int_lit(1))
            )
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_list_filters_and_pagination_over_thousands(stubs, admin):
    register_basics(stubs)
    name = create(stubs, inputs=lmap(x=int_lit(1)), labels=common_pb2.Labels(values={"k": "v"}))
    # Bulk rows straight into the database: the point is paging, not creation speed.
    rows = [
        ExecutionRow(
            project=P,
            domain=D,
            name=f"bulk{i:05d}",
            lp_name="wf",
            lp_version="v1",
            wf_name="wf",
            wf_version="v1",
            phase=core_exec.WORKFLOW_EXECUTION_PHASE_RUNNING
            if i % 2
            else core_exec.WORKFLOW_EXECUTION_PHASE_FAILED,
            mode=1,
            admitted=True,
            created_at=1_000_000 * (i + 1),
            updated_at=0,
            last_event_at=0,
            spec=execution_pb2.ExecutionSpec().SerializeToString(),
            closure=b"",
        )
        for i in range(3000)
    ]
    with admin.ctx.db.transaction() as repos:
        repos.session.add_all(rows)
    names, token, pages = [], "", 0
    while True:
        resp = stubs.executions.ListExecutions(
            es.ListExecutionsRequest(
                project=P,
                domain=D,
                options=common_pb2.ListOptions(
                    limit=500,
                    token=token,
                    filters=[
                        common_pb2.Filter(
                            field="phase", op=common_pb2.FILTER_OPERATOR_EQ, values=["RUNNING"]
                        )
                    ],
                ),
            )
        )
        names += [e.id.name for e in resp.executions]
        pages += 1
        token = resp.next_token
        if not token:
            break
    assert len(names) == 1500 and len(set(names)) == 1500 and pages == 3
    assert names[0] == "bulk02999"  # newest first
    labelled = stubs.executions.ListExecutions(
        es.ListExecutionsRequest(
            project=P,
            domain=D,
            options=common_pb2.ListOptions(
                filters=[
                    common_pb2.Filter(
                        field="labels.k", op=common_pb2.FILTER_OPERATOR_EQ, values=["v"]
                    )
                ]
            ),
        )
    ).executions
    assert [e.id.name for e in labelled] == [name]
    ranged = stubs.executions.ListExecutions(
        es.ListExecutionsRequest(
            project=P,
            domain=D,
            options=common_pb2.ListOptions(
                filters=[
                    common_pb2.Filter(
                        field="created_at", op=common_pb2.FILTER_OPERATOR_GTE, values=["10"]
                    ),
                    common_pb2.Filter(
                        field="created_at",
                        op=common_pb2.FILTER_OPERATOR_LT,
                        values=["1970-01-01T00:00:20Z"],
                    ),
                ],
                sort_by=common_pb2.Sort(
                    key="created_at", direction=common_pb2.SORT_DIRECTION_ASCENDING
                ),
            ),
        )
    ).executions
    assert [e.id.name for e in ranged] == [f"bulk{i:05d}" for i in range(9, 19)]
    with pytest.raises(grpc.RpcError) as err:
        stubs.executions.ListExecutions(
            es.ListExecutionsRequest(
                project=P,
                domain=D,
                options=common_pb2.ListOptions(
                    filters=[
                        common_pb2.Filter(
                            field="secret", op=common_pb2.FILTER_OPERATOR_EQ, values=["1"]
                        )
                    ]
                ),
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_terminate_relaunch_recover(stubs, propeller):
    register_basics(stubs)
    name = create(stubs, inputs=lmap(x=int_lit(5)))
    stubs.executions.TerminateExecution(
        es.TerminateExecutionRequest(id=exec_id(name), cause="stop")
    )
    wait_until(
        lambda: [a.execution_id.name for a in propeller.aborts] == [name], message="abort delivered"
    )
    got = stubs.executions.GetExecution(es.GetExecutionRequest(id=exec_id(name))).execution
    assert got.closure.phase == core_exec.WORKFLOW_EXECUTION_PHASE_ABORTING
    assert got.closure.abort_metadata.cause == "stop"
    finish(stubs, name, core_exec.WORKFLOW_EXECUTION_PHASE_ABORTED)
    with pytest.raises(grpc.RpcError) as err:
        stubs.executions.TerminateExecution(es.TerminateExecutionRequest(id=exec_id(name)))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    again = stubs.executions.RelaunchExecution(
        es.RelaunchExecutionRequest(id=exec_id(name))
    ).id.name
    data = stubs.executions.GetExecutionData(es.GetExecutionDataRequest(id=exec_id(again)))
    assert data.inputs.literals.literals["x"].scalar.primitive.integer == 5
    relaunched = stubs.executions.GetExecution(es.GetExecutionRequest(id=exec_id(again))).execution
    assert relaunched.spec.metadata.mode == execution_pb2.EXECUTION_MODE_RELAUNCH

    rec = stubs.executions.RecoverExecution(es.RecoverExecutionRequest(id=exec_id(name))).id.name
    recovered = stubs.executions.GetExecution(es.GetExecutionRequest(id=exec_id(rec))).execution
    assert recovered.spec.metadata.mode == execution_pb2.EXECUTION_MODE_RECOVERED
    assert recovered.spec.metadata.reference_execution.name == name
    wait_until(lambda: rec in propeller.launched_names(), message="recovery launched")
    launch = next(r for r in propeller.launches if r.execution_id.name == rec)
    assert launch.options.reference_execution.name == name
    with pytest.raises(grpc.RpcError) as err:
        stubs.executions.RecoverExecution(es.RecoverExecutionRequest(id=exec_id(again)))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_outbox_delivers_exactly_once_after_propeller_comes_back(make_admin, propeller):
    propeller.stop()  # the port stays known: admin keeps dialing it
    admin = make_admin(propeller_address=propeller.address)
    with grpc.insecure_channel(admin.address) as ch:
        from tests.admin.conftest import Stubs

        stubs = Stubs(ch)
        register_basics(stubs)
        names = [create(stubs, inputs=lmap(x=int_lit(i))) for i in range(3)]
        assert admin.dispatcher.pending() == 3

        def all_tried():
            with admin.ctx.db.transaction(readonly=True) as repos:
                rows = repos.outbox.due(2**62 - 1, 10)
                return len(rows) == 3 and all(r.attempts >= 2 for r in rows)

        wait_until(all_tried, message="every launch tried and retried while propeller is down")
        propeller.start()
        wait_until(
            lambda: sorted(propeller.launched_names()) == sorted(names),
            timeout=15,
            message="launches delivered after propeller came back",
        )
        wait_until(lambda: admin.dispatcher.pending() == 0, message="outbox drained")
        admin.dispatcher.run_once()
        assert len(propeller.launches) == 3


def test_quota_queues_and_admits_when_a_slot_frees(make_admin, propeller):
    admin = make_admin(propeller_address=propeller.address, max_concurrent_executions=2)
    with grpc.insecure_channel(admin.address) as ch:
        from tests.admin.conftest import Stubs

        stubs = Stubs(ch)
        register_basics(stubs)
        names = [create(stubs, inputs=lmap(x=int_lit(i))) for i in range(4)]
        wait_until(lambda: len(propeller.launches) == 2, message="two launched")
        assert propeller.launched_names() == names[:2]
        third = stubs.executions.GetExecution(
            es.GetExecutionRequest(id=exec_id(names[2]))
        ).execution
        assert third.closure.phase == core_exec.WORKFLOW_EXECUTION_PHASE_QUEUED
        assert "limit" in third.closure.queued_reason
        # A queued one terminated never reaches propeller and frees nothing.
        stubs.executions.TerminateExecution(es.TerminateExecutionRequest(id=exec_id(names[3])))
        finish(stubs, names[0])
        wait_until(lambda: len(propeller.launches) == 3, message="third admitted")
        assert propeller.launched_names()[2] == names[2]
        finish(stubs, names[1])
        admin.dispatcher.run_once()
        assert len(propeller.launches) == 3
        fourth = stubs.executions.GetExecution(
            es.GetExecutionRequest(id=exec_id(names[3]))
        ).execution
        assert fourth.closure.phase == core_exec.WORKFLOW_EXECUTION_PHASE_ABORTED
