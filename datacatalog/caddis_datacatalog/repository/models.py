"""SQLAlchemy 2.0 models of the datacatalog tables.

The schema is created by the Alembic migrations in ``migrations/``, never by ``create_all``;
these classes must match them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes stored as naive UTC (SQLite keeps no zone)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """Convert to naive UTC on the way in."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """Attach UTC on the way out."""
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the datacatalog models."""


class DatasetRow(Base):
    """A dataset: (project, domain, name, version), its metadata and partition keys."""

    __tablename__ = "datasets"
    __table_args__ = (
        sa.UniqueConstraint("project", "domain", "name", "version", name="uq_datasets_key"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    project: Mapped[str] = mapped_column(sa.String(255))
    domain: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(255))
    version: Mapped[str] = mapped_column(sa.String(255))
    metadata_json: Mapped[dict[str, str]] = mapped_column("metadata", sa.JSON)
    partition_keys: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ArtifactRow(Base):
    """An artifact of a dataset; its values are :class:`ArtifactDataRow`."""

    __tablename__ = "artifacts"
    __table_args__ = (
        sa.UniqueConstraint("dataset_id", "artifact_id", name="uq_artifacts_dataset_artifact"),
        sa.Index("ix_artifacts_dataset_created", "dataset_id", "created_at", "id"),
        sa.Index("ix_artifacts_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id", ondelete="CASCADE"))
    artifact_id: Mapped[str] = mapped_column(sa.String(255))
    metadata_json: Mapped[dict[str, str]] = mapped_column("metadata", sa.JSON)
    # core.v1.TaskExecutionIdentifier, serialized; empty when not given.
    source_execution: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # sha256 over data, metadata, partitions and source: equal digests mean an identical
    # artifact, which makes a repeated CreateArtifact idempotent without reading blobs.
    content_digest: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    dataset: Mapped[DatasetRow] = relationship(lazy="joined", innerjoin=True)
    data: Mapped[list[ArtifactDataRow]] = relationship(
        order_by="ArtifactDataRow.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )
    partitions: Mapped[list[PartitionRow]] = relationship(
        order_by="PartitionRow.key",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )
    tags: Mapped[list[TagRow]] = relationship(
        order_by="TagRow.name",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        back_populates="artifact",
    )


class ArtifactDataRow(Base):
    """One named value of an artifact: inline bytes when small, else a blob location."""

    __tablename__ = "artifact_data"

    artifact_pk: Mapped[int] = mapped_column(
        sa.ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    # Serialized core.v1.Literal when it fits the inline limit; otherwise NULL and `location`
    # holds the blob URI.
    inline_value: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    location: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)


class PartitionRow(Base):
    """A partition label of an artifact."""

    __tablename__ = "partitions"
    __table_args__ = (sa.Index("ix_partitions_key_value", "key", "value"),)

    artifact_pk: Mapped[int] = mapped_column(
        sa.ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(1024))


class TagRow(Base):
    """A tag: a name, unique in its dataset, pointing at one artifact."""

    __tablename__ = "tags"
    __table_args__ = (sa.Index("ix_tags_artifact", "artifact_pk"),)

    dataset_id: Mapped[int] = mapped_column(
        sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    artifact_pk: Mapped[int] = mapped_column(sa.ForeignKey("artifacts.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    artifact: Mapped[ArtifactRow] = relationship(back_populates="tags")


class ReservationRow(Base):
    """A lease on computing one tag of one dataset.

    Keyed by the dataset's natural key, not its row id: a reservation may be taken before
    the dataset exists (the first run of a task creates it afterwards).
    """

    __tablename__ = "reservations"

    project: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    domain: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    tag_name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    owner_id: Mapped[str] = mapped_column(sa.String(255))
    heartbeat_ms: Mapped[int] = mapped_column(sa.BigInteger)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    metadata_json: Mapped[dict[str, str]] = mapped_column("metadata", sa.JSON)


__all__ = [
    "ArtifactDataRow",
    "ArtifactRow",
    "Base",
    "DatasetRow",
    "PartitionRow",
    "ReservationRow",
    "TagRow",
    "UTCDateTime",
]
