"""signals and execution tags

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 01:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=255), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("execution_name", sa.String(length=255), nullable=False),
        sa.Column("signal_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.LargeBinary(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("set_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint(
            "project",
            "domain",
            "execution_name",
            "signal_id",
            name=op.f("uq_signals_project_domain_execution_name_signal_id"),
        ),
    )
    op.create_index(
        "ix_signals_list",
        "signals",
        ["project", "domain", "execution_name", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "execution_tags",
        sa.Column("execution_id", _BIG_ID, nullable=False),
        sa.Column("tag", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_execution_tags_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", "tag", name=op.f("pk_execution_tags")),
    )
    op.create_index(
        "ix_execution_tags_tag", "execution_tags", ["tag", "execution_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_execution_tags_tag", table_name="execution_tags")
    op.drop_table("execution_tags")
    op.drop_index("ix_signals_list", table_name="signals")
    op.drop_table("signals")
