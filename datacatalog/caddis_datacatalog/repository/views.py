"""Plain views of stored rows that the manager reads without the ORM."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from caddis_datacatalog.repository.models import ArtifactRow


@dataclass(frozen=True)
class DatasetKey:
    """The natural key of a dataset."""

    project: str
    domain: str
    name: str
    version: str


@dataclass(frozen=True)
class DataView:
    """One value of an artifact as stored: inline bytes or a blob location."""

    name: str
    inline_value: bytes | None
    location: str | None


@dataclass(frozen=True)
class DatasetRef:
    """What writing an artifact needs of its dataset: the row id and the partition keys."""

    id: int
    partition_keys: list[str]


@dataclass(frozen=True)
class DataRecord:
    """One value of an artifact to store: inline bytes, or the blob it was offloaded to."""

    name: str
    position: int
    inline_value: bytes | None
    location: str | None
    size_bytes: int


@dataclass(frozen=True)
class ArtifactState:
    """What replacing an artifact's values needs of it (its content digest's other inputs)."""

    pk: int
    artifact_id: str
    metadata: dict[str, str]
    source_execution: bytes
    partitions: list[tuple[str, str]]


@dataclass(frozen=True)
class TagOwner:
    """The artifact a tag points at: its row id and its artifact id."""

    artifact_pk: int
    artifact_id: str


@dataclass(frozen=True)
class ReservationView:
    """A reservation as stored (the columns of :class:`ReservationRow`)."""

    project: str
    domain: str
    name: str
    version: str
    tag_name: str
    owner_id: str
    heartbeat_ms: int
    expires_at: dt.datetime
    metadata_json: dict[str, str]


@dataclass(frozen=True)
class ArtifactView:
    """An artifact read with plain queries (the lookup hot path skips the ORM).

    Attributes mirror the columns of :class:`ArtifactRow` and its dataset, data, partitions and
    tags.
    """

    artifact_id: str
    dataset: DatasetKey
    dataset_uuid: str
    metadata: dict[str, str]
    source_execution: bytes
    created_at: dt.datetime
    data: list[DataView]
    partitions: list[tuple[str, str]]
    tags: list[str]

    @classmethod
    def of(cls, row: ArtifactRow) -> ArtifactView:
        """The view of an ORM row (with its relationships loaded)."""
        ds = row.dataset
        return cls(
            artifact_id=row.artifact_id,
            dataset=DatasetKey(ds.project, ds.domain, ds.name, ds.version),
            dataset_uuid=ds.uuid,
            metadata=row.metadata_json,
            source_execution=row.source_execution,
            created_at=row.created_at,
            data=[DataView(d.name, d.inline_value, d.location) for d in row.data],
            partitions=[(p.key, p.value) for p in row.partitions],
            tags=[t.name for t in row.tags],
        )


__all__ = [
    "ArtifactView",
    "DataRecord",
    "DataView",
    "DatasetKey",
    "DatasetRef",
    "ReservationView",
    "TagOwner",
]
