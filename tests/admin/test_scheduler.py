"""Schedules: exactly one execution per scheduled time, across restarts and replicas."""

from __future__ import annotations

import grpc
import pytest

from caddis_admin.config import SchedulerConfig
from caddis_idl.admin.v1 import (
    execution_service_pb2 as es,
)
from caddis_idl.admin.v1 import (
    launch_plan_pb2,
    schedule_pb2,
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
from tests.admin.conftest import Stubs
from tests.admin.helpers import (
    DATETIME,
    D,
    ManualClock,
    P,
    lp_id,
    task_id,
    task_template,
    wf_id,
    workflow_template,
)
from tests.support import wait_until

T0 = 1_699_999_980.0  # a whole minute


def register_scheduled(stubs, cron="* * * * *", policy=schedule_pb2.CATCH_UP_POLICY_ALL):
    stubs.tasks.CreateTask(
        ts.CreateTaskRequest(
            id=task_id("t1"), spec=task_pb2.TaskSpec(template=task_template("t1", x=DATETIME))
        )
    )
    stubs.workflows.CreateWorkflow(
        ws.CreateWorkflowRequest(
            id=wf_id("wf"),
            spec=workflow_pb2.WorkflowSpec(template=workflow_template("wf", x=DATETIME)),
        )
    )
    spec = launch_plan_pb2.LaunchPlanSpec(
        workflow_id=wf_id("wf"),
        schedule=schedule_pb2.Schedule(
            cron_schedule=schedule_pb2.CronSchedule(expression=cron),
            kickoff_time_input_arg="x",
            catch_up_policy=policy,
        ),
    )
    stubs.launch_plans.CreateLaunchPlan(lps.CreateLaunchPlanRequest(id=lp_id("nightly"), spec=spec))
    stubs.launch_plans.UpdateLaunchPlan(
        lps.UpdateLaunchPlanRequest(
            id=lp_id("nightly"), state=launch_plan_pb2.LAUNCH_PLAN_STATE_ACTIVE
        )
    )


def scheduled(admin):
    with admin.ctx.db.transaction(readonly=True) as repos:
        return [r.scheduled_at // 1_000_000 for r in repos.schedules.runs(P, D, "nightly")]


def scheduled_executions(stubs):
    from caddis_idl.admin.v1 import common_pb2

    items = stubs.executions.ListExecutions(
        es.ListExecutionsRequest(project=P, domain=D, options=common_pb2.ListOptions(limit=1000))
    ).executions
    return sorted(e.spec.metadata.scheduled_at.seconds for e in items)


SCHED = SchedulerConfig(enabled=True, poll_interval_s=0.02, lease_ttl_s=1.0)


def test_restart_mid_schedule_neither_duplicates_nor_misses(make_admin, propeller):
    clock = ManualClock(T0 + 1)
    a = make_admin(clock=clock, propeller_address=propeller.address, scheduler=SCHED)
    with grpc.insecure_channel(a.address) as ch:
        register_scheduled(Stubs(ch))
    clock.advance(180)  # minutes T0+60, +120, +180 are due
    wait_until(lambda: len(scheduled(a)) == 3, message="three runs")
    a.stop()
    clock.advance(120)  # down while +240 and +300 pass
    b = make_admin(clock=clock, propeller_address=propeller.address, scheduler=SCHED)
    wait_until(lambda: len(scheduled(b)) == 5, message="caught up after restart")
    b.scheduler.run_once()
    with grpc.insecure_channel(b.address) as ch:
        got = scheduled_executions(Stubs(ch))
        first = Stubs(ch).executions.GetExecution(
            es.GetExecutionRequest(
                id=dict_id(next(r for r in runs(b) if r.scheduled_at == int(T0 + 60) * 1_000_000))
            )
        )
    expected = [int(T0) + 60 * k for k in range(1, 6)]
    assert scheduled(b) == expected and got == expected
    data_inputs = first.execution.spec.metadata.scheduled_at.seconds
    assert data_inputs == int(T0) + 60
    wait_until(lambda: len(propeller.launches) == 5, message="five launched")
    kickoffs = sorted(r.inputs_uri for r in propeller.launches)
    assert len(set(kickoffs)) == 5


def runs(admin):
    with admin.ctx.db.transaction(readonly=True) as repos:
        return repos.schedules.runs(P, D, "nightly")


def dict_id(run):
    from caddis_idl.core.v1 import identifier_pb2

    return identifier_pb2.WorkflowExecutionIdentifier(project=P, domain=D, name=run.execution_name)


def test_catch_up_latest_runs_only_the_newest_missed_time(make_admin, propeller):
    clock = ManualClock(T0 + 1)
    a = make_admin(clock=clock, propeller_address=propeller.address)
    with grpc.insecure_channel(a.address) as ch:
        register_scheduled(Stubs(ch), policy=schedule_pb2.CATCH_UP_POLICY_LATEST)
    clock.advance(600)
    from caddis_admin.manager.scheduler import Scheduler

    assert Scheduler(a.ctx, a.executions).run_once() == 1
    assert scheduled(a) == [int(T0) + 600]


@pytest.mark.postgres
def test_two_replicas_on_one_postgres_never_double_schedule(postgres_url, tmp_path, propeller):
    from caddis_admin.server import serve
    from tests.admin.conftest import admin_config

    clock = ManualClock(T0 + 1)
    replicas = [
        serve(
            admin_config(
                postgres_url,
                tmp_path,
                propeller_address=propeller.address,
                scheduler=SCHED,
                replica_id=f"r{i}",
            ),
            clock=clock,
        )
        for i in range(2)
    ]
    try:
        with grpc.insecure_channel(replicas[0].address) as ch:
            register_scheduled(Stubs(ch))
        for step in range(10):
            clock.advance(60)
            wait_until(lambda s=step: len(scheduled(replicas[0])) == s + 1, message=f"run {step}")
            if step == 4:
                replicas[0].scheduler.stop()  # the lease moves to the other replica
        # Both replicas also race a round by hand: the constraints keep one run per time.
        for r in replicas:
            from caddis_admin.manager.scheduler import Scheduler

            Scheduler(r.ctx, r.executions).run_once()
        assert scheduled(replicas[1]) == [int(T0) + 60 * k for k in range(1, 11)]
        wait_until(lambda: len(propeller.launches) == 10, message="ten launched")
        assert len(set(propeller.launched_names())) == 10
    finally:
        for r in replicas:
            r.stop(grace=0)
