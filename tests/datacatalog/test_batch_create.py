"""CreateArtifacts: many cache writes in one call, each succeeding or failing on its own."""

from __future__ import annotations

import grpc
import pytest

from caddis_idl.datacatalog.v1 import datacatalog_pb2 as dc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2 as svc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2_grpc
from tests.datacatalog.helpers import artifact, create_dataset_request, dataset_id, int_literal

Stub = datacatalog_service_pb2_grpc.DataCatalogServiceStub
CS = svc.CreationStatus


def create(stub: Stub, artifacts: list[dc.Artifact]) -> list[tuple[str, int]]:
    response = stub.CreateArtifacts(svc.CreateArtifactsRequest(artifacts=artifacts), timeout=10)
    return [(r.artifact_id, r.status) for r in response.results]


def tag_of(stub: Stub, tag: str, ds: dc.DatasetID | None = None) -> str | None:
    request = svc.GetArtifactsByTagRequest(dataset=ds or dataset_id(), tag_names=[tag])
    (result,) = stub.GetArtifactsByTag(request, timeout=10).results
    return result.artifact.id if result.found else None


def test_each_artifact_succeeds_or_fails_on_its_own(stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(partition_keys=("region",)), timeout=10)
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("old", value=0, tags=("taken",))), timeout=10
    )
    batch = [
        artifact("a1", value=1, tags=("t1",)),
        artifact("a2", value=2, tags=("t2", "taken")),  # one of its tags is taken
        artifact("a3", value=3, tags=("t3",), ds=dataset_id(name="missing")),
        artifact("a4", value=4, tags=("t4",), partitions={"colour": "red"}),  # undeclared
        artifact("old", value=0, tags=("taken", "t5")),  # identical: adds its missing tag
        artifact("a6", value=6, tags=("t6",), partitions={"region": "eu"}),
    ]
    assert create(stub, batch) == [
        ("a1", CS.CREATION_STATUS_CREATED),
        ("a2", CS.CREATION_STATUS_ALREADY_EXISTS),
        ("a3", CS.CREATION_STATUS_NOT_FOUND),
        ("a4", CS.CREATION_STATUS_INVALID_ARGUMENT),
        ("old", CS.CREATION_STATUS_CREATED),
        ("a6", CS.CREATION_STATUS_CREATED),
    ]
    assert [tag_of(stub, t) for t in ("t1", "t2", "taken", "t4", "t5", "t6")] == [
        "a1",
        None,  # a2 was rolled back whole: its free tag was not written either
        "old",
        None,
        "old",
        "a6",
    ]
    listed = stub.ListArtifacts(svc.ListArtifactsRequest(dataset=dataset_id()), timeout=10)
    assert sorted(a.id for a in listed.artifacts) == ["a1", "a6", "old"]
    got = stub.GetArtifact(svc.GetArtifactRequest(dataset=dataset_id(), tag_name="t1"), timeout=10)
    assert got.artifact.data[0].value == int_literal(1)


def test_results_say_why(stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(), timeout=10)
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("x", tags=("taken",))), timeout=10
    )
    response = stub.CreateArtifacts(
        svc.CreateArtifactsRequest(artifacts=[artifact("y", tags=("taken",))]), timeout=10
    )
    (result,) = response.results
    assert result.status == CS.CREATION_STATUS_ALREADY_EXISTS
    assert "taken" in result.message and "'x'" in result.message


def test_a_repeated_batch_is_harmless(stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(), timeout=10)
    batch = [artifact(f"a{i}", value=i, tags=(f"t{i}",)) for i in range(20)]
    first = create(stub, batch)
    assert (
        create(stub, batch) == first == [(f"a{i}", CS.CREATION_STATUS_CREATED) for i in range(20)]
    )
    assert [tag_of(stub, f"t{i}") for i in range(20)] == [f"a{i}" for i in range(20)]


@pytest.mark.parametrize(
    ("artifacts", "field"),
    [
        ([], "artifacts"),
        ([artifact("ok"), artifact("")], "artifacts[1].id"),
        ([dc.Artifact(id="no-dataset")], "artifacts[0].dataset"),
        ([artifact(f"a{i}") for i in range(1001)], "artifacts"),
    ],
)
def test_malformed_batches_are_invalid_argument(
    stub: Stub, artifacts: list[dc.Artifact], field: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        create(stub, artifacts)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert field in info.value.details()  # type: ignore[attr-defined]
