"""The scheduler: creates exactly one execution per scheduled time of active launch plans.

Exactly once, across restarts and replicas, comes from three things: a lease row so that one
replica schedules at a time, deterministic execution names per (launch plan, scheduled time)
so that a repeated creation is a no-op, and the unique (launch plan, scheduled time) run
record. Times missed while no scheduler ran are caught up by the schedule's policy.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from croniter import croniter

from caddis_admin.manager.context import AdminContext, to_datetime
from caddis_admin.manager.executions import ExecutionManager, LaunchRequest, kickoff_literal
from caddis_admin.repository.models import ScheduleRunRow, ScheduleStateRow
from caddis_admin.repository.store import Repos
from caddis_idl.admin.v1 import execution_pb2, launch_plan_pb2, schedule_pb2
from caddis_idl.core.v1 import identifier_pb2, literals_pb2

_log = logging.getLogger(__name__)
LEASE = "scheduler"
_UNIT_SECONDS = {
    schedule_pb2.FIXED_RATE_UNIT_MINUTE: 60,
    schedule_pb2.FIXED_RATE_UNIT_HOUR: 3600,
    schedule_pb2.FIXED_RATE_UNIT_DAY: 86400,
}
_POLICIES = {
    schedule_pb2.CATCH_UP_POLICY_ALL: "all",
    schedule_pb2.CATCH_UP_POLICY_LATEST: "latest",
    schedule_pb2.CATCH_UP_POLICY_NONE: "none",
}


def scheduled_execution_name(project: str, domain: str, lp_name: str, at_us: int) -> str:
    """The deterministic execution name of one scheduled time of a launch plan."""
    h = hashlib.sha256(f"{project}/{domain}/{lp_name}/{at_us}".encode()).hexdigest()
    return "s" + h[:19]


def due_times(
    schedule: schedule_pb2.Schedule, after_us: int, until_us: int, limit: int
) -> list[int]:
    """Scheduled times t with ``after_us < t <= until_us``, oldest first, at most ``limit``."""
    out: list[int] = []
    kind = schedule.WhichOneof("schedule_expression")
    if kind == "rate":
        period = schedule.rate.value * _UNIT_SECONDS.get(schedule.rate.unit, 60) * 1_000_000
        # Rate schedules tick from the epoch so that every replica agrees on the times.
        t = (after_us // period + 1) * period
        while t <= until_us and len(out) < limit:
            out.append(t)
            t += period
        return out
    if kind == "cron_schedule":
        tz = ZoneInfo(schedule.cron_schedule.timezone or "UTC")
        start = datetime.fromtimestamp(after_us / 1_000_000, tz=tz)
        it = croniter(schedule.cron_schedule.expression, start)
        while len(out) < limit:
            nxt: datetime = it.get_next(datetime)
            t = int(nxt.timestamp() * 1_000_000)
            if t <= after_us:
                continue
            if t > until_us:
                break
            out.append(t)
    return out


class Scheduler:
    """A background thread running due schedules (one replica at a time, by lease).

    Args:
        ctx: The shared admin context (its clock decides what is due).
        executions: Creates the executions.
    """

    def __init__(self, ctx: AdminContext, executions: ExecutionManager) -> None:
        self.ctx = ctx
        self.executions = executions
        self.holder = ctx.config.resolved_replica_id()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._loop, name="admin-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run a round now (tests call this after moving the clock)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and give the lease up so another replica takes over at once."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.ctx.db.run(lambda r: r.schedules.release_lease(LEASE, self.holder))
        except Exception:
            _log.exception("could not release the scheduler lease")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # keep scheduling after a transient failure
                _log.exception("scheduler round failed")
            self._wake.wait(self.ctx.config.scheduler.poll_interval_s)

    def run_once(self) -> int:
        """One round: take the lease, create every due execution. Returns how many."""
        cfg = self.ctx.config.scheduler
        now = self.ctx.now_us()
        ttl = int(cfg.lease_ttl_s * 1_000_000)
        if not self.ctx.db.run(
            lambda r: r.schedules.acquire_lease(LEASE, self.holder, now, now + ttl)
        ):
            return 0
        with self.ctx.db.transaction(readonly=True) as repos:
            plans = [
                (lp, repos.schedules.state(lp.project, lp.domain, lp.name))
                for lp in repos.launch_plans.active_scheduled()
            ]
        created = 0
        lag = 0.0
        for lp, state in plans:
            if state is None:
                continue
            spec = launch_plan_pb2.LaunchPlanSpec.FromString(lp.spec)
            after = state.since if state.last_scheduled_at is None else state.last_scheduled_at
            times = due_times(spec.schedule, after, now, cfg.max_catch_up)
            if not times:
                continue
            lag = max(lag, (now - times[0]) / 1_000_000)
            policy = _POLICIES.get(spec.schedule.catch_up_policy, cfg.catch_up_policy)
            grace = int(max(cfg.poll_interval_s * 2, 1.0) * 1_000_000)
            if policy == "latest":
                run = times[-1:]
            elif policy == "none":
                run = [t for t in times if t >= now - grace][-1:]
            else:
                run = times
            for t in run:
                self._launch(lp.project, lp.domain, lp.name, lp.version, spec, t)
                created += 1
            last = times[-1]
            self.ctx.db.run(partial(_advance, state=state, last=last))
        self.ctx.hooks.scheduler_lag(lag)
        return created

    def _launch(
        self,
        project: str,
        domain: str,
        lp_name: str,
        lp_version: str,
        spec: launch_plan_pb2.LaunchPlanSpec,
        at_us: int,
    ) -> None:
        name = scheduled_execution_name(project, domain, lp_name, at_us)
        inputs = literals_pb2.LiteralMap()
        arg = spec.schedule.kickoff_time_input_arg
        if arg:
            inputs.literals[arg].CopyFrom(kickoff_literal(at_us))
        exec_spec = execution_pb2.ExecutionSpec(
            launch_plan=identifier_pb2.Identifier(
                resource_type=identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN,
                project=project,
                domain=domain,
                name=lp_name,
                version=lp_version,
            ),
            metadata=execution_pb2.ExecutionMetadata(
                mode=execution_pb2.EXECUTION_MODE_SCHEDULED, principal="scheduler"
            ),
        )
        self.executions.create(
            LaunchRequest(project, domain, name, exec_spec, inputs, scheduled_at=at_us),
            idempotent=True,
        )
        now = self.ctx.now_us()
        self.ctx.db.run(
            lambda r: r.schedules.add_run(
                ScheduleRunRow(
                    project=project,
                    domain=domain,
                    lp_name=lp_name,
                    scheduled_at=at_us,
                    execution_name=name,
                    created_at=now,
                )
            )
        )
        _log.info(
            "scheduled %s/%s/%s for %s as %s", project, domain, lp_name, to_datetime(at_us), name
        )


def _advance(repos: Repos, *, state: ScheduleStateRow, last: int) -> None:
    current = repos.schedules.state(state.project, state.domain, state.lp_name)
    if current is None:  # deactivated meanwhile
        return
    if current.last_scheduled_at is None or current.last_scheduled_at < last:
        current.last_scheduled_at = last
        repos.flush()
