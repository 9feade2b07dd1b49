"""SQLAlchemy models of admin's tables.

Protos are stored as serialized bytes; only what is filtered, sorted, joined or constrained
on is a real column. Times are integer microseconds since the Unix epoch (UTC): that compares
exactly and identically on SQLite and PostgreSQL, which keyset pagination relies on.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so that migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ProjectRow(Base):
    """A project; domains are configuration, not rows."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[int] = mapped_column(Integer, default=0)
    labels: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    created_at: Mapped[int] = mapped_column(BigInteger)


class _EntityMixin:
    """Columns shared by the immutable, versioned entities."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[int] = mapped_column(BigInteger)


class TaskRow(_EntityMixin, Base):
    """A registered task: its template, serialized."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("project", "domain", "name", "version"),
        Index("ix_tasks_list", "project", "domain", "name", "created_at", "id"),
    )

    task_type: Mapped[str] = mapped_column(String(255), default="")
    spec: Mapped[bytes] = mapped_column(LargeBinary)


class WorkflowRow(_EntityMixin, Base):
    """A registered workflow; its compiled closure lives in the blob store."""

    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("project", "domain", "name", "version"),
        Index("ix_workflows_list", "project", "domain", "name", "created_at", "id"),
    )

    spec: Mapped[bytes] = mapped_column(LargeBinary)
    interface: Mapped[bytes] = mapped_column(LargeBinary)
    closure_uri: Mapped[str] = mapped_column(Text)


class LaunchPlanRow(_EntityMixin, Base):
    """A registered launch plan; ``state`` is its only mutable part."""

    __tablename__ = "launch_plans"
    __table_args__ = (
        UniqueConstraint("project", "domain", "name", "version"),
        Index("ix_launch_plans_list", "project", "domain", "name", "created_at", "id"),
        Index("ix_launch_plans_active", "state", "schedule_type"),
    )

    workflow_name: Mapped[str] = mapped_column(String(255))
    workflow_version: Mapped[str] = mapped_column(String(255))
    state: Mapped[int] = mapped_column(Integer, default=0)
    schedule_type: Mapped[str] = mapped_column(String(16), default="")
    spec: Mapped[bytes] = mapped_column(LargeBinary)
    closure: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class CodeBundleRow(Base):
    """A content-addressed code bundle handed out for upload."""

    __tablename__ = "code_bundles"
    __table_args__ = (UniqueConstraint("project", "domain", "digest"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(128))
    uri: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class ExecutionRow(Base):
    """A workflow execution."""

    __tablename__ = "executions"
    __table_args__ = (
        UniqueConstraint("project", "domain", "name"),
        Index("ix_executions_list", "project", "domain", "created_at", "id"),
        Index("ix_executions_phase", "project", "domain", "phase", "created_at", "id"),
        Index("ix_executions_lp", "project", "domain", "lp_name", "created_at", "id"),
        Index("ix_executions_wf", "project", "domain", "wf_name", "created_at", "id"),
        Index("ix_executions_queued", "project", "domain", "admitted", "phase"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    lp_name: Mapped[str] = mapped_column(String(255), default="")
    lp_version: Mapped[str] = mapped_column(String(255), default="")
    wf_name: Mapped[str] = mapped_column(String(255))
    wf_version: Mapped[str] = mapped_column(String(255))
    phase: Mapped[int] = mapped_column(Integer)
    mode: Mapped[int] = mapped_column(Integer, default=0)
    # False while the execution waits for a free slot of its project+domain quota.
    admitted: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ended_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Highest event time applied, so that a late event never rolls the phase back.
    last_event_at: Mapped[int] = mapped_column(BigInteger, default=0)
    scheduled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reference_execution: Mapped[str] = mapped_column(String(255), default="")
    inputs_uri: Mapped[str] = mapped_column(Text, default="")
    user_inputs_uri: Mapped[str] = mapped_column(Text, default="")
    outputs_uri: Mapped[str] = mapped_column(Text, default="")
    closure_uri: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[bytes] = mapped_column(LargeBinary)
    # Error, abort cause and other closure details that are never filtered on.
    closure: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


class ExecutionLabelRow(Base):
    """One label of an execution, a row each so that label filters use an index."""

    __tablename__ = "execution_labels"
    __table_args__ = (Index("ix_execution_labels_kv", "key", "value", "execution_id"),)

    execution_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class ExecutionTagRow(Base):
    """One tag of an execution, a row each so that tag filters use an index."""

    __tablename__ = "execution_tags"
    __table_args__ = (Index("ix_execution_tags_tag", "tag", "execution_id"),)

    execution_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


class SignalRow(Base):
    """A signal a gate node waits for: its declared type and, once set, its value.

    Keyed by the execution's identifier rather than a foreign key: propeller may ask for a
    signal of an execution before (or without) admin knowing it, as Flyte allows.
    """

    __tablename__ = "signals"
    __table_args__ = (
        UniqueConstraint("project", "domain", "execution_name", "signal_id"),
        Index("ix_signals_list", "project", "domain", "execution_name", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255))
    execution_name: Mapped[str] = mapped_column(String(255))
    signal_id: Mapped[str] = mapped_column(String(255))
    # Serialized LiteralType / Literal; value is NULL until someone sets it.
    type: Mapped[bytes] = mapped_column(LargeBinary)
    value: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    principal: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    set_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class NodeExecutionRow(Base):
    """A node execution, built from node events."""

    __tablename__ = "node_executions"
    __table_args__ = (
        UniqueConstraint("execution_id", "node_id"),
        Index("ix_node_executions_list", "execution_id", "parent_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    execution_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("executions.id", ondelete="CASCADE")
    )
    node_id: Mapped[str] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("node_executions.id", ondelete="CASCADE"), nullable=True
    )
    phase: Mapped[int] = mapped_column(Integer)
    cache_status: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ended_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_event_at: Mapped[int] = mapped_column(BigInteger, default=0)
    # Serialized NodeExecution (metadata + closure) as last assembled from events.
    body: Mapped[bytes] = mapped_column(LargeBinary)


class TaskExecutionRow(Base):
    """One attempt of a task in a node execution, built from task events."""

    __tablename__ = "task_executions"
    __table_args__ = (
        UniqueConstraint(
            "node_execution_id",
            "task_project",
            "task_domain",
            "task_name",
            "task_version",
            "retry_attempt",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_execution_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("node_executions.id", ondelete="CASCADE")
    )
    task_project: Mapped[str] = mapped_column(String(255))
    task_domain: Mapped[str] = mapped_column(String(255))
    task_name: Mapped[str] = mapped_column(String(255))
    task_version: Mapped[str] = mapped_column(String(255))
    retry_attempt: Mapped[int] = mapped_column(Integer)
    phase: Mapped[int] = mapped_column(Integer)
    phase_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ended_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_event_at: Mapped[int] = mapped_column(BigInteger, default=0)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class EventRecordRow(Base):
    """An event already applied: the dedupe key of events that propeller may send twice."""

    __tablename__ = "event_records"
    __table_args__ = (
        UniqueConstraint("entity", "phase", "phase_version", "attempt"),
        UniqueConstraint("request_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(1024))
    phase: Mapped[int] = mapped_column(Integer)
    phase_version: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    # NULL when the sender gave none; NULLs never collide in a unique constraint.
    request_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class OutboxRow(Base):
    """A message for propeller written in the same transaction as the change it announces."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "next_attempt_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    execution_id: Mapped[int] = mapped_column(BigId)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")


class ScheduleRunRow(Base):
    """One scheduled time of a launch plan: the unique key that forbids a second run."""

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("project", "domain", "lp_name", "scheduled_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255))
    lp_name: Mapped[str] = mapped_column(String(255))
    scheduled_at: Mapped[int] = mapped_column(BigInteger)
    execution_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)


class ScheduleStateRow(Base):
    """Where a schedule stands: the last scheduled time handled, per launch plan name."""

    __tablename__ = "schedule_state"

    project: Mapped[str] = mapped_column(String(255), primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    lp_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    lp_version: Mapped[str] = mapped_column(String(255))
    # The schedule's origin: activation time; runs before it are never created.
    since: Mapped[int] = mapped_column(BigInteger)
    last_scheduled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class LeaseRow(Base):
    """A named lease: which replica runs a singleton loop (the scheduler) until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[int] = mapped_column(BigInteger)
