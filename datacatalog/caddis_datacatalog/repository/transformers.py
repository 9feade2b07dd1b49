"""Conversion between datacatalog protos and rows (the boundary of the repository)."""

from __future__ import annotations

import datetime as dt

from google.protobuf import duration_pb2, timestamp_pb2

from caddis_datacatalog.repository.models import DatasetRow, ReservationRow
from caddis_datacatalog.repository.repo import ArtifactView, DatasetKey
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
    key = view.dataset
    dataset_id = datacatalog_pb2.DatasetID(
        project=key.project,
        domain=key.domain,
        name=key.name,
        version=key.version,
        uuid=view.dataset_uuid,
    )
    artifact = datacatalog_pb2.Artifact(
        id=view.artifact_id,
        dataset=dataset_id,
        data=data,
        metadata=datacatalog_pb2.Metadata(key_map=view.metadata),
        partitions=[datacatalog_pb2.Partition(key=k, value=v) for k, v in view.partitions],
        tags=[
            datacatalog_pb2.Tag(name=name, artifact_id=view.artifact_id, dataset=dataset_id)
            for name in view.tags
        ],
        created_at=timestamp(view.created_at),
    )
    if view.source_execution:
        artifact.source_execution.ParseFromString(view.source_execution)
    return artifact


def reservation_proto(row: ReservationRow) -> datacatalog_pb2.Reservation:
    """A ``Reservation`` from its row."""
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
    "reservation_proto",
    "timestamp",
]
