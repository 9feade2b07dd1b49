"""Initial propeller schema: executions (engine state, leases) and the event outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "propeller_executions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("request", sa.LargeBinary, nullable=False),
        sa.Column("phase", sa.Integer, nullable=False),
        sa.Column("terminal", sa.Boolean, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=True),
        sa.Column("state_uri", sa.String(2048), nullable=True),
        sa.Column("state_version", sa.BigInteger, nullable=False),
        sa.Column("error", sa.LargeBinary, nullable=True),
        sa.Column("node_counts", sa.Text, nullable=False),
        sa.Column("abort_requested", sa.Boolean, nullable=False),
        sa.Column("abort_cause", sa.Text, nullable=False),
        sa.Column("failed_rounds", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_token", sa.BigInteger, nullable=False),
        sa.Column("lease_expires_at", sa.Float, nullable=False),
        sa.Column("next_eval_at", sa.Float, nullable=False),
        sa.Column("launched_at", sa.Float, nullable=False),
        sa.Column("last_evaluated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("project", "domain", "name", name="uq_propeller_exec_key"),
    )
    op.create_index(
        "ix_propeller_exec_active", "propeller_executions", ["terminal", "next_eval_at"]
    )
    op.create_index("ix_propeller_exec_owner", "propeller_executions", ["lease_owner"])
    op.create_table(
        "propeller_event_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(255), nullable=False, unique=True),
        sa.Column("execution", sa.String(800), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_propeller_outbox_due", "propeller_event_outbox", ["next_attempt_at", "id"]
    )


def downgrade() -> None:
    op.drop_table("propeller_event_outbox")
    op.drop_table("propeller_executions")
