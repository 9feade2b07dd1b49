"""Queries over propeller's tables, one :class:`Repository` per transaction.

Lease protocol (several replicas share one database):

- :meth:`Repository.claim` takes executions whose lease is free or expired, bumping
  ``lease_token`` each time (the fencing token).
- The owner renews its leases (:meth:`Repository.renew`) well within ``lease_ttl``; a replica
  that dies stops renewing and another claims its executions after the TTL.
- Every write of engine state (:meth:`Repository.save_round`) is conditional on
  ``(lease_owner, lease_token)``: a replica that lost its lease (paused, partitioned) gets
  :class:`StaleLeaseError` instead of overwriting the new owner's progress.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from caddis_propeller.repository.models import ExecutionRow, OutboxRow


class StaleLeaseError(Exception):
    """A write was refused: the execution's lease belongs to someone else now."""


@dataclass(frozen=True, slots=True)
class ExecutionKey:
    """Project, domain and name of an execution."""

    project: str
    domain: str
    name: str

    def __str__(self) -> str:
        return f"{self.project}/{self.domain}/{self.name}"


@dataclass(frozen=True, slots=True)
class Lease:
    """A granted lease: write engine state with this owner and token."""

    execution_id: int
    owner: str
    token: int


@dataclass(slots=True)
class RoundWrite:
    """What one persisted engine round changes on the execution row."""

    phase: int
    terminal: bool
    state: bytes | None
    state_uri: str | None
    error: bytes | None
    node_counts: dict[int, int]
    next_eval_at: float
    evaluated_at: float
    failed_rounds: int = 0


@dataclass(frozen=True, slots=True)
class ExpiredExecution:
    """A terminal execution past retention whose events have all left the outbox."""

    id: int
    key: ExecutionKey
    state_uri: str | None


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An outbox entry due for delivery."""

    id: int
    request_id: str
    payload: bytes
    attempts: int


class Repository:
    """Queries of one transaction.

    Args:
        session: The open session (the caller commits).
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    # ---------------------------------------------------------------- executions
    def find(self, key: ExecutionKey) -> ExecutionRow | None:
        """The execution with ``key``, or None."""
        stmt = sa.select(ExecutionRow).where(
            ExecutionRow.project == key.project,
            ExecutionRow.domain == key.domain,
            ExecutionRow.name == key.name,
        )
        return self.session.execute(stmt).scalar_one_or_none()

    def get(self, execution_id: int) -> ExecutionRow | None:
        """The execution with database id ``execution_id``, or None."""
        return self.session.get(ExecutionRow, execution_id)

    def insert(self, key: ExecutionKey, request: bytes, now: float) -> ExecutionRow:
        """Insert a new execution (raises IntegrityError if the key exists)."""
        row = ExecutionRow(
            project=key.project,
            domain=key.domain,
            name=key.name,
            request=request,
            phase=0,
            terminal=False,
            state=None,
            state_uri=None,
            state_version=0,
            error=None,
            node_counts="{}",
            abort_requested=False,
            abort_cause="",
            failed_rounds=0,
            lease_owner=None,
            lease_token=0,
            lease_expires_at=0.0,
            next_eval_at=0.0,
            launched_at=now,
            last_evaluated_at=0.0,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def request_abort(self, key: ExecutionKey, cause: str) -> ExecutionRow | None:
        """Mark an execution for abort and make it due now; None when unknown."""
        row = self.find(key)
        if row is None:
            return None
        if not row.terminal and not row.abort_requested:
            row.abort_requested = True
            row.abort_cause = cause
            row.next_eval_at = 0.0
        return row

    def claim(self, owner: str, now: float, ttl: float, limit: int) -> list[Lease]:
        """Take leases on up to ``limit`` active executions that are free or expired.

        Also returns (with a renewed expiry and the same token) active executions that
        ``owner`` already holds, so that a restarted replica with a stable id picks up its own.
        """
        stmt = (
            sa.select(ExecutionRow.id, ExecutionRow.lease_owner, ExecutionRow.lease_token)
            .where(
                ExecutionRow.terminal.is_(False),
                sa.or_(
                    ExecutionRow.lease_owner.is_(None),
                    ExecutionRow.lease_expires_at < now,
                    ExecutionRow.lease_owner == owner,
                ),
            )
            .order_by(ExecutionRow.next_eval_at, ExecutionRow.id)
            .limit(limit)
        )
        leases: list[Lease] = []
        for exec_id, current_owner, token in self.session.execute(stmt).all():
            new_token = token if current_owner == owner else token + 1
            result = self.session.execute(
                sa.update(ExecutionRow)
                .where(
                    ExecutionRow.id == exec_id,
                    ExecutionRow.lease_token == token,
                    sa.or_(
                        ExecutionRow.lease_owner.is_(None),
                        ExecutionRow.lease_expires_at < now,
                        ExecutionRow.lease_owner == owner,
                    ),
                )
                .values(lease_owner=owner, lease_token=new_token, lease_expires_at=now + ttl)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                leases.append(Lease(exec_id, owner, new_token))
        return leases

    def claim_one(self, execution_id: int, owner: str, now: float, ttl: float) -> Lease | None:
        """Take the lease on one execution if it is free or expired (just launched)."""
        row = self.session.get(ExecutionRow, execution_id)
        if row is None or row.terminal:
            return None
        if row.lease_owner not in (None, owner) and row.lease_expires_at >= now:
            return None
        token = row.lease_token if row.lease_owner == owner else row.lease_token + 1
        result = self.session.execute(
            sa.update(ExecutionRow)
            .where(ExecutionRow.id == execution_id, ExecutionRow.lease_token == row.lease_token)
            .values(lease_owner=owner, lease_token=token, lease_expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return Lease(execution_id, owner, token)

    def abort_requests(self, owner: str) -> list[tuple[int, str]]:
        """Active executions held by ``owner`` with a pending abort request."""
        stmt = sa.select(ExecutionRow.id, ExecutionRow.abort_cause).where(
            ExecutionRow.lease_owner == owner,
            ExecutionRow.terminal.is_(False),
            ExecutionRow.abort_requested.is_(True),
        )
        return [(int(i), str(c)) for i, c in self.session.execute(stmt).all()]

    def abort_cause_of(self, execution_id: int) -> str | None:
        """The abort cause when an abort was requested, else None."""
        stmt = sa.select(ExecutionRow.abort_requested, ExecutionRow.abort_cause).where(
            ExecutionRow.id == execution_id
        )
        row = self.session.execute(stmt).one_or_none()
        if row is None or not row[0]:
            return None
        return str(row[1] or "aborted")

    def set_failed_rounds(self, lease: Lease, failed_rounds: int) -> None:
        """Record the count of consecutive failed rounds (fenced)."""
        result = self.session.execute(
            sa.update(ExecutionRow)
            .where(
                ExecutionRow.id == lease.execution_id,
                ExecutionRow.lease_owner == lease.owner,
                ExecutionRow.lease_token == lease.token,
            )
            .values(failed_rounds=failed_rounds)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleLeaseError(f"lease on execution {lease.execution_id} was lost")

    def renew(self, owner: str, now: float, ttl: float) -> int:
        """Extend every unexpired lease ``owner`` holds; returns how many."""
        result = self.session.execute(
            sa.update(ExecutionRow)
            .where(
                ExecutionRow.lease_owner == owner,
                ExecutionRow.terminal.is_(False),
                ExecutionRow.lease_expires_at >= now,
            )
            .values(lease_expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def release(self, owner: str) -> None:
        """Give up every lease ``owner`` holds (clean shutdown: others take over at once)."""
        self.session.execute(
            sa.update(ExecutionRow)
            .where(ExecutionRow.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=0.0)
            .execution_options(synchronize_session=False)
        )

    def check_lease(self, lease: Lease) -> ExecutionRow:
        """The leased row, or :class:`StaleLeaseError` when the lease is no longer ours."""
        row = self.session.get(ExecutionRow, lease.execution_id)
        if row is None or row.lease_owner != lease.owner or row.lease_token != lease.token:
            raise StaleLeaseError(f"lease on execution {lease.execution_id} was lost")
        return row

    def save_round(self, lease: Lease, write: RoundWrite) -> None:
        """Persist a round's result, fenced by ``lease``.

        Raises:
            StaleLeaseError: The lease was taken over; nothing was written.
        """
        values: dict[str, object] = {
            "phase": write.phase,
            "terminal": write.terminal,
            "state": write.state,
            "state_uri": write.state_uri,
            "error": write.error,
            "node_counts": json.dumps({str(k): v for k, v in write.node_counts.items()}),
            "next_eval_at": write.next_eval_at,
            "last_evaluated_at": write.evaluated_at,
            "failed_rounds": write.failed_rounds,
            "state_version": ExecutionRow.state_version + 1,
        }
        if write.terminal:
            values["lease_owner"] = None
        result = self.session.execute(
            sa.update(ExecutionRow)
            .where(
                ExecutionRow.id == lease.execution_id,
                ExecutionRow.lease_owner == lease.owner,
                ExecutionRow.lease_token == lease.token,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleLeaseError(f"lease on execution {lease.execution_id} was lost")

    def count_active(self) -> int:
        """Executions not yet terminal."""
        stmt = (
            sa.select(sa.func.count())
            .select_from(ExecutionRow)
            .where(ExecutionRow.terminal.is_(False))
        )
        return int(self.session.execute(stmt).scalar_one())

    # ---------------------------------------------------------------- retention
    def _removable(self, finished_before: float) -> list[sa.ColumnElement[bool]]:
        """Conditions of a removable row: terminal, finished before, no event waiting."""
        key = ExecutionRow.project + "/" + ExecutionRow.domain + "/" + ExecutionRow.name
        waiting = sa.select(OutboxRow.id).where(OutboxRow.execution == key).exists()
        return [
            ExecutionRow.terminal.is_(True),
            ExecutionRow.last_evaluated_at < finished_before,
            ~waiting,
        ]

    def expired(self, finished_before: float, limit: int) -> list[ExpiredExecution]:
        """Up to ``limit`` terminal executions that finished before ``finished_before``.

        An execution with an event still in the outbox is not returned: it stays until admin
        has every event of it.
        """
        stmt = (
            sa.select(
                ExecutionRow.id,
                ExecutionRow.project,
                ExecutionRow.domain,
                ExecutionRow.name,
                ExecutionRow.state_uri,
            )
            .where(*self._removable(finished_before))
            .order_by(ExecutionRow.last_evaluated_at, ExecutionRow.id)
            .limit(limit)
        )
        return [
            ExpiredExecution(int(i), ExecutionKey(p, d, n), uri)
            for i, p, d, n, uri in self.session.execute(stmt).all()
        ]

    def delete_expired(self, ids: Sequence[int], finished_before: float) -> int:
        """Delete those of ``ids`` that are still removable; returns how many were deleted.

        The conditions are checked again in the DELETE itself, so an id that another janitor
        already deleted, or that got an outbox entry meanwhile, is simply not counted.
        """
        if not ids:
            return 0
        result = self.session.execute(
            sa.delete(ExecutionRow)
            .where(ExecutionRow.id.in_(list(ids)), *self._removable(finished_before))
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def existing(self, keys: Iterable[ExecutionKey]) -> set[ExecutionKey]:
        """Those of ``keys`` that have an execution row (terminal or not)."""
        wanted = set(keys)
        if not wanted:
            return set()
        stmt = sa.select(ExecutionRow.project, ExecutionRow.domain, ExecutionRow.name).where(
            ExecutionRow.name.in_(sorted({k.name for k in wanted}))
        )
        found = {ExecutionKey(p, d, n) for p, d, n in self.session.execute(stmt).all()}
        return found & wanted

    # ---------------------------------------------------------------- outbox
    def append_events(self, execution: str, events: Iterable[tuple[str, bytes]], now: float) -> int:
        """Queue events (``(request_id, payload)``); a repeated request_id is ignored."""
        rows = [
            {
                "request_id": request_id,
                "execution": execution,
                "payload": payload,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for request_id, payload in events
        ]
        if not rows:
            return 0
        dialect = self.session.get_bind().dialect.name
        table = sa.Table(OutboxRow.__tablename__, OutboxRow.metadata)
        stmt: sa.Insert
        if dialect == "postgresql":
            stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=["request_id"])
        elif dialect == "sqlite":
            stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["request_id"])
        else:  # pragma: no cover - only the two supported databases
            stmt = sa.insert(table)
        self.session.execute(stmt, rows)
        return len(rows)

    def due_events(self, now: float, limit: int) -> list[PendingEvent]:
        """Outbox entries due for a delivery attempt, oldest first."""
        stmt = (
            sa.select(OutboxRow.id, OutboxRow.request_id, OutboxRow.payload, OutboxRow.attempts)
            .where(OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        return [PendingEvent(*row) for row in self.session.execute(stmt).all()]

    def delete_events(self, ids: Sequence[int]) -> None:
        """Remove delivered (or finally refused) entries."""
        if ids:
            self.session.execute(sa.delete(OutboxRow).where(OutboxRow.id.in_(list(ids))))

    def defer_events(self, ids: Sequence[int], next_attempt_at: float) -> None:
        """Push entries back after a failed delivery."""
        if ids:
            self.session.execute(
                sa.update(OutboxRow)
                .where(OutboxRow.id.in_(list(ids)))
                .values(attempts=OutboxRow.attempts + 1, next_attempt_at=next_attempt_at)
                .execution_options(synchronize_session=False)
            )

    def outbox_size(self) -> int:
        """Entries waiting for delivery."""
        stmt = sa.select(sa.func.count()).select_from(OutboxRow)
        return int(self.session.execute(stmt).scalar_one())


__all__ = [
    "ExecutionKey",
    "ExpiredExecution",
    "Lease",
    "PendingEvent",
    "Repository",
    "RoundWrite",
    "StaleLeaseError",
]
