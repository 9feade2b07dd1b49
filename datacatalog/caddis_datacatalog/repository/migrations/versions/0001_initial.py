"""Initial datacatalog schema: datasets, artifacts, artifact data, partitions, tags, reservations.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
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
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("partition_keys", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("project", "domain", "name", "version", name="uq_datasets_key"),
    )
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_id",
            sa.Integer,
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("artifact_id", sa.String(255), nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("source_execution", sa.LargeBinary, nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("dataset_id", "artifact_id", name="uq_artifacts_dataset_artifact"),
    )
    op.create_index("ix_artifacts_dataset_created", "artifacts", ["dataset_id", "created_at", "id"])
    op.create_index("ix_artifacts_created", "artifacts", ["created_at"])
    op.create_table(
        "artifact_data",
        sa.Column(
            "artifact_pk",
            sa.Integer,
            sa.ForeignKey("artifacts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("inline_value", sa.LargeBinary, nullable=True),
        sa.Column("location", sa.Text, nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "partitions",
        sa.Column(
            "artifact_pk",
            sa.Integer,
            sa.ForeignKey("artifacts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(1024), nullable=False),
    )
    op.create_index("ix_partitions_key_value", "partitions", ["key", "value"])
    op.create_table(
        "tags",
        sa.Column(
            "dataset_id",
            sa.Integer,
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column(
            "artifact_pk",
            sa.Integer,
            sa.ForeignKey("artifacts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_tags_artifact", "tags", ["artifact_pk"])
    op.create_table(
        "reservations",
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column("domain", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(255), primary_key=True),
        sa.Column("tag_name", sa.String(255), primary_key=True),
        sa.Column("owner_id", sa.String(255), nullable=False),
        sa.Column("heartbeat_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reservations")
    op.drop_index("ix_tags_artifact", table_name="tags")
    op.drop_table("tags")
    op.drop_index("ix_partitions_key_value", table_name="partitions")
    op.drop_table("partitions")
    op.drop_table("artifact_data")
    op.drop_index("ix_artifacts_created", table_name="artifacts")
    op.drop_index("ix_artifacts_dataset_created", table_name="artifacts")
    op.drop_table("artifacts")
    op.drop_table("datasets")
