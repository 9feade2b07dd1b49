"""Builders for datacatalog requests used across the datacatalog tests."""

from __future__ import annotations

from caddis_idl.core.v1 import literals_pb2
from caddis_idl.datacatalog.v1 import datacatalog_pb2 as dc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2 as svc


def dataset_id(name: str = "flyte_task-t", version: str = "1-abc") -> dc.DatasetID:
    return dc.DatasetID(project="p", domain="development", name=name, version=version)


def int_literal(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


def str_literal(value: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value))
    )


def artifact(
    artifact_id: str,
    *,
    ds: dc.DatasetID | None = None,
    value: int = 1,
    tags: tuple[str, ...] = (),
    partitions: dict[str, str] | None = None,
    big: str | None = None,
) -> dc.Artifact:
    ds = ds or dataset_id()
    data = [dc.ArtifactData(name="o0", value=int_literal(value))]
    if big is not None:
        data.append(dc.ArtifactData(name="big", value=str_literal(big)))
    return dc.Artifact(
        id=artifact_id,
        dataset=ds,
        data=data,
        metadata=dc.Metadata(key_map={"who": "test"}),
        partitions=[dc.Partition(key=k, value=v) for k, v in (partitions or {}).items()],
        tags=[dc.Tag(name=t, dataset=ds) for t in tags],
    )


def create_dataset_request(
    ds: dc.DatasetID | None = None, partition_keys: tuple[str, ...] = ()
) -> svc.CreateDatasetRequest:
    return svc.CreateDatasetRequest(
        dataset=dc.Dataset(
            id=ds or dataset_id(),
            metadata=dc.Metadata(key_map={"owner": "tests"}),
            partition_keys=list(partition_keys),
        )
    )
