"""SQLAlchemy models of propeller's tables.

Times are seconds since the epoch (floats): leases compare them with ``time.time()`` and the
same column type works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of propeller's tables."""


class ExecutionRow(Base):
    """One execution propeller holds.

    ``state`` is the engine state after the last persisted round (compact bytes), or empty when
    it was offloaded to ``state_uri``. ``lease_owner``/``lease_token``/``lease_expires_at`` are
    the lease: the owner replica evaluates the execution; every state write carries the token
    it was granted and is refused when another replica has taken the lease since.
    ``last_evaluated_at`` of a terminal row is when it finished: no round is saved after the
    terminal one (that write also drops the lease, so a stale owner's write is refused).
    """

    __tablename__ = "propeller_executions"
    __table_args__ = (
        sa.UniqueConstraint("project", "domain", "name", name="uq_propeller_exec_key"),
        sa.Index("ix_propeller_exec_active", "terminal", "next_eval_at"),
        sa.Index("ix_propeller_exec_owner", "lease_owner"),
        # Retention: terminal executions by the time they finished (their last round).
        sa.Index("ix_propeller_exec_finished", "terminal", "last_evaluated_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(255))
    domain: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(255))
    request: Mapped[bytes] = mapped_column(sa.LargeBinary)
    phase: Mapped[int] = mapped_column(sa.Integer, default=0)
    terminal: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    state: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    state_uri: Mapped[str | None] = mapped_column(sa.String(2048), nullable=True)
    state_version: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    error: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    node_counts: Mapped[str] = mapped_column(sa.Text, default="{}")
    abort_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    abort_cause: Mapped[str] = mapped_column(sa.Text, default="")
    failed_rounds: Mapped[int] = mapped_column(sa.Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    lease_token: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    lease_expires_at: Mapped[float] = mapped_column(sa.Float, default=0.0)
    next_eval_at: Mapped[float] = mapped_column(sa.Float, default=0.0)
    launched_at: Mapped[float] = mapped_column(sa.Float)
    last_evaluated_at: Mapped[float] = mapped_column(sa.Float, default=0.0)


class OutboxRow(Base):
    """An event waiting for delivery to admin.

    Written in the same transaction as the state change that produced it, deleted once admin
    accepted it (or refused it for good), so a restart loses none and sends none twice
    (``request_id`` makes a repeat a duplicate on admin's side anyway).
    """

    __tablename__ = "propeller_event_outbox"
    __table_args__ = (
        sa.Index("ix_propeller_outbox_due", "next_attempt_at", "id"),
        # Retention keeps an execution while any of its events waits here.
        sa.Index("ix_propeller_outbox_execution", "execution"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    execution: Mapped[str] = mapped_column(sa.String(800))
    payload: Mapped[bytes] = mapped_column(sa.LargeBinary)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(sa.Float, default=0.0)
    created_at: Mapped[float] = mapped_column(sa.Float)


__all__ = ["Base", "ExecutionRow", "OutboxRow"]
