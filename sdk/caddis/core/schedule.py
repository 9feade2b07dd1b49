"""Launch plan schedules: ``CronSchedule`` and ``FixedRate``."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from caddis.core.errors import CompilationError
from caddis_idl.admin.v1 import schedule_pb2

__all__ = ["CronSchedule", "FixedRate"]

_ALIASES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


@dataclass(frozen=True)
class CronSchedule:
    """Run on a cron schedule (five fields, or an alias such as ``@hourly``).

    Attributes:
        schedule: The cron expression, e.g. ``"0 6 * * MON-FRI"``.
        kickoff_time_input_arg: Workflow input (a ``datetime``) that receives the scheduled
            time of each run.
        timezone: IANA timezone the expression is read in (default UTC).
    """

    schedule: str
    kickoff_time_input_arg: str | None = None
    timezone: str = ""

    def __post_init__(self) -> None:
        expr = self.schedule.strip() if isinstance(self.schedule, str) else ""
        if not expr:
            raise CompilationError(f"CronSchedule needs a cron expression, got {self.schedule!r}")
        if expr in _ALIASES:
            return
        fields = expr.split()
        if len(fields) != 5:
            raise CompilationError(
                f"CronSchedule {expr!r} has {len(fields)} fields; use the five fields "
                f"'minute hour day-of-month month day-of-week' or an alias like '@hourly'"
            )
        from croniter import croniter  # deferred: only schedules pay for it

        if not croniter.is_valid(expr):
            raise CompilationError(f"CronSchedule {expr!r} is not a valid cron expression")

    def to_idl(self) -> schedule_pb2.Schedule:
        """The admin ``Schedule``."""
        return schedule_pb2.Schedule(
            cron_schedule=schedule_pb2.CronSchedule(
                expression=self.schedule.strip(), timezone=self.timezone
            ),
            kickoff_time_input_arg=self.kickoff_time_input_arg or "",
        )


@dataclass(frozen=True)
class FixedRate:
    """Run every ``duration`` (a whole number of minutes).

    Attributes:
        duration: Time between runs.
        kickoff_time_input_arg: Workflow input (a ``datetime``) that receives the scheduled
            time of each run.
    """

    duration: datetime.timedelta
    kickoff_time_input_arg: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.duration, datetime.timedelta):
            raise CompilationError(f"FixedRate needs a timedelta, got {self.duration!r}")
        seconds = self.duration.total_seconds()
        if seconds < 60 or seconds % 60:
            raise CompilationError(
                f"FixedRate duration must be a positive whole number of minutes, got "
                f"{self.duration}"
            )

    def to_idl(self) -> schedule_pb2.Schedule:
        """The admin ``Schedule`` (in the largest unit that divides the duration)."""
        minutes = int(self.duration.total_seconds() // 60)
        if minutes % (24 * 60) == 0:
            value, unit = minutes // (24 * 60), schedule_pb2.FIXED_RATE_UNIT_DAY
        elif minutes % 60 == 0:
            value, unit = minutes // 60, schedule_pb2.FIXED_RATE_UNIT_HOUR
        else:
            value, unit = minutes, schedule_pb2.FIXED_RATE_UNIT_MINUTE
        return schedule_pb2.Schedule(
            rate=schedule_pb2.FixedRate(value=value, unit=unit),
            kickoff_time_input_arg=self.kickoff_time_input_arg or "",
        )
