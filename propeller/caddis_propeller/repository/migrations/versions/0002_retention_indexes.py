"""Indexes of the retention janitor: finished executions by time, outbox entries by execution.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_propeller_exec_finished", "propeller_executions", ["terminal", "last_evaluated_at"]
    )
    op.create_index("ix_propeller_outbox_execution", "propeller_event_outbox", ["execution"])


def downgrade() -> None:
    op.drop_index("ix_propeller_outbox_execution", table_name="propeller_event_outbox")
    op.drop_index("ix_propeller_exec_finished", table_name="propeller_executions")
