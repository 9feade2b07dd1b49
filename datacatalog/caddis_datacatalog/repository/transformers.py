"""Conversion between datacatalog protos and rows (the boundary of the repository)."""

from __future__ import annotations

import datetime as dt

from google.protobuf import duration_pb2, timestamp_pb2

from caddis_datacatalog.repository.models import DatasetRow
from caddis_datacatalog.repository.repo import ArtifactView, DatasetKey, ReservationView
from caddis_idl.datacatalog.v1 import datacatalog_pb2


def dataset_key(dataset_id: datacatalog_pb2.DatasetID) -> DatasetKey:
    """The natural key of a ``DatasetID`` (its ``uuid`` is output only and ignored)."""
    return DatasetKey(
        project=dataset_id.project,
        domain=dataset_id.domain,
        name=dataset_id.name,
        version=dataset_id.version,
    )


def dataset_id_proto(row: DatasetRow) -> datacatalog_pb2.DatasetID:
    """The ``DatasetID`` of a dataset row, uuid included."""
    return datacatalog_pb2.DatasetID(
        project=row.project,
        domain=row.domain,
        name=row.name,
        version=row.version,
        uuid=row.uuid,
    )


def dataset_proto(row: DatasetRow) -> datacatalog_pb2.Dataset:
    """A ``Dataset`` from its row."""
    return datacatalog_pb2.Dataset(
        id=dataset_id_proto(row),
        metadata=datacatalog_pb2.Metadata(key_map=row.metadata_json),
        partition_keys=row.partition_keys,
    )


def timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    """A protobuf ``Timestamp`` from an aware datetime."""
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def artifact_proto(
    view: ArtifactView, data: list[datacatalog_pb2.ArtifactData]
) -> datacatalog_pb2.Artifact:
    """An ``Artifact`` from its stored view and its (already resolved) data values."""
    artifact = datacatalog_pb2.Artifact(data=data)
    fill_artifact(view, artifact)
    return artifact


def fill_artifact(view: ArtifactView, artifact: datacatalog_pb2.Artifact) -> None:
    """Set every field of ``artifact`` but ``data`` from its stored view, in place.

    The lookup fills the response's own message this way: building a separate ``Artifact``
    and handing it to the response would copy it once more.
    """
    key = view.dataset
    dataset_id = artifact.dataset
    dataset_id.project = key.project
    dataset_id.domain = key.domain
    dataset_id.name = key.name
    dataset_id.version = key.version
    dataset_id.uuid = view.dataset_uuid
    artifact.id = view.artifact_id
    if view.metadata:
        artifact.metadata.key_map.update(view.metadata)
    else:
        artifact.metadata.SetInParent()
    for k, v in view.partitions:
        partition = artifact.partitions.add()
        partition.key = k
        partition.value = v
    for name in view.tags:
        tag = artifact.tags.add()
        tag.name = name
        tag.artifact_id = view.artifact_id
        tag.dataset.CopyFrom(dataset_id)
    artifact.created_at.FromDatetime(view.created_at)
    if view.source_execution:
        artifact.source_execution.MergeFromString(view.source_execution)


def reservation_proto(row: ReservationView) -> datacatalog_pb2.Reservation:
    """A ``Reservation`` from its stored columns."""
    heartbeat = duration_pb2.Duration()
    heartbeat.FromMilliseconds(row.heartbeat_ms)
    return datacatalog_pb2.Reservation(
        reservation_id=datacatalog_pb2.ReservationID(
            dataset_id=datacatalog_pb2.DatasetID(
                project=row.project, domain=row.domain, name=row.name, version=row.version
            ),
            tag_name=row.tag_name,
        ),
        owner_id=row.owner_id,
        heartbeat_interval=heartbeat,
        expires_at=timestamp(row.expires_at),
        metadata=datacatalog_pb2.Metadata(key_map=row.metadata_json),
    )


__all__ = [
    "artifact_proto",
    "dataset_id_proto",
    "dataset_key",
    "dataset_proto",
    "fill_artifact",
    "reservation_proto",
    "timestamp",
]
