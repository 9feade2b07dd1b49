"""The DataCatalogService over gRPC on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import urllib.request
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from caddis_datacatalog.server import RunningDataCatalog
from caddis_idl.datacatalog.v1 import datacatalog_pb2 as dc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2 as svc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2_grpc
from tests.datacatalog.helpers import artifact, create_dataset_request, dataset_id, int_literal
from tests.support import wait_until

Stub = datacatalog_service_pb2_grpc.DataCatalogServiceStub


def rpc_error(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    return info.value


def code_of(call: Any, request: Any) -> grpc.StatusCode:
    return rpc_error(call, request).code()  # type: ignore[attr-defined,no-any-return]


def test_dataset_create_get_and_duplicate(stub: Stub) -> None:
    created = stub.CreateDataset(create_dataset_request(partition_keys=("region",)), timeout=10)
    assert created.dataset.id.uuid
    got = stub.GetDataset(svc.GetDatasetRequest(dataset=dataset_id()), timeout=10)
    assert got.dataset == created.dataset
    assert got.dataset.metadata.key_map == {"owner": "tests"}
    assert list(got.dataset.partition_keys) == ["region"]
    assert code_of(stub.CreateDataset, create_dataset_request()) == grpc.StatusCode.ALREADY_EXISTS
    missing = svc.GetDatasetRequest(dataset=dataset_id(name="nope"))
    err = rpc_error(stub.GetDataset, missing)
    assert err.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert "p/development/nope@1-abc" in err.details()  # type: ignore[attr-defined]


def test_artifact_by_id_and_tag(stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(), timeout=10)
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("a1", value=7, tags=("h1", "h2"))), timeout=10
    )
    by_tag = stub.GetArtifact(
        svc.GetArtifactRequest(dataset=dataset_id(), tag_name="h1"), timeout=10
    ).artifact
    by_id = stub.GetArtifact(
        svc.GetArtifactRequest(dataset=dataset_id(), artifact_id="a1"), timeout=10
    ).artifact
    assert by_tag == by_id
    assert by_tag.id == "a1"
    assert by_tag.data[0].value == int_literal(7)
    assert sorted(t.name for t in by_tag.tags) == ["h1", "h2"]
    assert by_tag.dataset.uuid
    assert by_tag.created_at.seconds > 0
    miss = svc.GetArtifactRequest(dataset=dataset_id(), tag_name="nope")
    assert code_of(stub.GetArtifact, miss) == grpc.StatusCode.NOT_FOUND


def test_create_artifact_is_idempotent_and_conflicts_fail(stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(), timeout=10)
    request = svc.CreateArtifactRequest(artifact=artifact("a1", value=1, tags=("h1",)))
    stub.CreateArtifact(request, timeout=10)
    stub.CreateArtifact(request, timeout=10)  # identical: succeeds
    # Identical again with one more tag: the tag is added.
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("a1", value=1, tags=("h1", "h9"))), timeout=10
    )
    got = stub.GetArtifact(svc.GetArtifactRequest(dataset=dataset_id(), tag_name="h9"), timeout=10)
    assert got.artifact.id == "a1"
    different = svc.CreateArtifactRequest(artifact=artifact("a1", value=2))
    err = rpc_error(stub.CreateArtifact, different)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS  # type: ignore[attr-defined]
    assert "different content" in err.details()  # type: ignore[attr-defined]
    # A new artifact may not steal an existing tag; nothing is written then.
    steal = svc.CreateArtifactRequest(artifact=artifact("a2", value=3, tags=("h1",)))
    assert code_of(stub.CreateArtifact, steal) == grpc.StatusCode.ALREADY_EXISTS
    missing = svc.GetArtifactRequest(dataset=dataset_id(), artifact_id="a2")
    assert code_of(stub.GetArtifact, missing) == grpc.StatusCode.NOT_FOUND
    # The original artifact is unchanged.
    got = stub.GetArtifact(svc.GetArtifactRequest(dataset=dataset_id(), tag_name="h1"), timeout=10)
    assert got.artifact.data[0].value == int_literal(1)


def test_artifact_in_missing_dataset_and_undeclared_partition(stub: Stub) -> None:
    orphan = svc.CreateArtifactRequest(artifact=artifact("a1", ds=dataset_id(name="nope")))
    assert code_of(stub.CreateArtifact, orphan) == grpc.StatusCode.NOT_FOUND
    stub.CreateDataset(create_dataset_request(partition_keys=("region",)), timeout=10)
    bad = svc.CreateArtifactRequest(artifact=artifact("a1", partitions={"color": "red"}))
    err = rpc_error(stub.CreateArtifact, bad)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "artifact.partitions[0].key" in err.details()  # type: ignore[attr-defined]


def test_add_tag_and_update_artifact(stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(), timeout=10)
    stub.CreateArtifact(svc.CreateArtifactRequest(artifact=artifact("a1", value=1)), timeout=10)
    stub.CreateArtifact(svc.CreateArtifactRequest(artifact=artifact("a2", value=2)), timeout=10)
    tag = dc.Tag(name="latest", artifact_id="a1", dataset=dataset_id())
    stub.AddTag(svc.AddTagRequest(tag=tag), timeout=10)
    stub.AddTag(svc.AddTagRequest(tag=tag), timeout=10)  # same target: fine
    moved = dc.Tag(name="latest", artifact_id="a2", dataset=dataset_id())
    assert code_of(stub.AddTag, svc.AddTagRequest(tag=moved)) == grpc.StatusCode.ALREADY_EXISTS
    ghost = dc.Tag(name="x", artifact_id="ghost", dataset=dataset_id())
    assert code_of(stub.AddTag, svc.AddTagRequest(tag=ghost)) == grpc.StatusCode.NOT_FOUND

    updated = stub.UpdateArtifact(
        svc.UpdateArtifactRequest(
            dataset=dataset_id(),
            tag_name="latest",
            data=[dc.ArtifactData(name="o0", value=int_literal(42))],
            metadata=dc.Metadata(key_map={"overwritten": "yes"}),
        ),
        timeout=10,
    )
    assert updated.artifact_id == "a1"
    got = stub.GetArtifact(
        svc.GetArtifactRequest(dataset=dataset_id(), artifact_id="a1"), timeout=10
    ).artifact
    assert got.data[0].value == int_literal(42)
    assert got.metadata.key_map == {"overwritten": "yes"}


def test_add_tag_repoint_moves_the_cache_key_to_the_new_artifact(stub: Stub) -> None:
    # The cache-overwrite flow: results of a new run are recorded as a new artifact and the
    # cache key (tag) is moved to it.
    stub.CreateDataset(create_dataset_request(), timeout=10)
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("old", value=1, tags=("h", "keep"))),
        timeout=10,
    )
    stub.CreateArtifact(svc.CreateArtifactRequest(artifact=artifact("new", value=2)), timeout=10)
    moved = dc.Tag(name="h", artifact_id="new", dataset=dataset_id())
    assert code_of(stub.AddTag, svc.AddTagRequest(tag=moved)) == grpc.StatusCode.ALREADY_EXISTS

    stub.AddTag(svc.AddTagRequest(tag=moved, repoint=True), timeout=10)
    hit = stub.GetArtifact(
        svc.GetArtifactRequest(dataset=dataset_id(), tag_name="h"), timeout=10
    ).artifact
    assert hit.id == "new"
    assert hit.data[0].value == int_literal(2)
    assert [t.name for t in hit.tags] == ["h"]
    old = stub.GetArtifact(
        svc.GetArtifactRequest(dataset=dataset_id(), artifact_id="old"), timeout=10
    ).artifact
    assert [t.name for t in old.tags] == ["keep"]

    # Repeating the repoint, or repointing to where the tag already points, is harmless; a
    # repoint of a tag that does not exist yet simply creates it.
    stub.AddTag(svc.AddTagRequest(tag=moved, repoint=True), timeout=10)
    fresh = dc.Tag(name="brand-new", artifact_id="old", dataset=dataset_id())
    stub.AddTag(svc.AddTagRequest(tag=fresh, repoint=True), timeout=10)
    got = stub.GetArtifact(
        svc.GetArtifactRequest(dataset=dataset_id(), tag_name="brand-new"), timeout=10
    ).artifact
    assert got.id == "old"

    # Repointing at an artifact that does not exist fails and leaves the tag where it was.
    ghost = dc.Tag(name="h", artifact_id="ghost", dataset=dataset_id())
    assert (
        code_of(stub.AddTag, svc.AddTagRequest(tag=ghost, repoint=True))
        == grpc.StatusCode.NOT_FOUND
    )
    again = stub.GetArtifact(
        svc.GetArtifactRequest(dataset=dataset_id(), tag_name="h"), timeout=10
    ).artifact
    assert again.id == "new"
    # Deleting the old artifact no longer takes the moved tag with it.
    stub.DeleteArtifact(svc.DeleteArtifactRequest(dataset=dataset_id(), artifact_id="old"))
    assert (
        stub.GetArtifact(
            svc.GetArtifactRequest(dataset=dataset_id(), tag_name="h"), timeout=10
        ).artifact.id
        == "new"
    )


def _list_all(stub: Stub, page_size: int, ascending: bool) -> list[str]:
    ids: list[str] = []
    token = ""
    order = dc.SORT_ORDER_ASCENDING if ascending else dc.SORT_ORDER_DESCENDING
    while True:
        resp = stub.ListArtifacts(
            svc.ListArtifactsRequest(
                dataset=dataset_id(),
                pagination=dc.PaginationOptions(limit=page_size, token=token, sort_order=order),
            ),
            timeout=10,
        )
        assert len(resp.artifacts) <= page_size
        ids.extend(a.id for a in resp.artifacts)
        if not resp.next_token:
            return ids
        token = resp.next_token


def test_list_artifacts_pagination_and_filters(stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(partition_keys=("region",)), timeout=10)
    names = [f"a{i:02d}" for i in range(23)]
    for i, name in enumerate(names):
        stub.CreateArtifact(
            svc.CreateArtifactRequest(
                artifact=artifact(
                    name,
                    value=i,
                    tags=(f"t{i}",),
                    partitions={"region": "eu" if i % 2 else "us"},
                )
            ),
            timeout=10,
        )
    assert _list_all(stub, 5, ascending=True) == names
    assert _list_all(stub, 7, ascending=False) == names[::-1]
    assert _list_all(stub, 23, ascending=True) == names  # exact fit: no empty extra page

    def filtered(*filters: dc.ArtifactFilter) -> list[str]:
        resp = stub.ListArtifacts(
            svc.ListArtifactsRequest(
                dataset=dataset_id(),
                filters=list(filters),
                pagination=dc.PaginationOptions(sort_order=dc.SORT_ORDER_ASCENDING),
            ),
            timeout=10,
        )
        return [a.id for a in resp.artifacts]

    eu = dc.ArtifactFilter(partition=dc.Partition(key="region", value="eu"))
    assert filtered(eu) == names[1::2]
    assert filtered(dc.ArtifactFilter(tag_name="t4")) == ["a04"]
    assert filtered(eu, dc.ArtifactFilter(tag_name="t4")) == []
    assert filtered(dc.ArtifactFilter(artifact_id="a07")) == ["a07"]

    bad_token = svc.ListArtifactsRequest(
        dataset=dataset_id(), pagination=dc.PaginationOptions(token="not-a-token!")
    )
    err = rpc_error(stub.ListArtifacts, bad_token)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "pagination.token" in err.details()  # type: ignore[attr-defined]


def test_list_datasets_with_filters_and_pages(stub: Stub) -> None:
    for i in range(5):
        stub.CreateDataset(create_dataset_request(dataset_id(name=f"n{i}")), timeout=10)
    stub.CreateDataset(create_dataset_request(dataset_id(name="n0", version="2")), timeout=10)
    seen: list[str] = []
    token = ""
    while True:
        resp = stub.ListDatasets(
            svc.ListDatasetsRequest(
                filters=[dc.DatasetFilter(project="p")],
                pagination=dc.PaginationOptions(limit=2, token=token),
            ),
            timeout=10,
        )
        seen.extend(f"{d.id.name}@{d.id.version}" for d in resp.datasets)
        token = resp.next_token
        if not token:
            break
    assert seen == ["n0@2", "n4@1-abc", "n3@1-abc", "n2@1-abc", "n1@1-abc", "n0@1-abc"]
    only = stub.ListDatasets(
        svc.ListDatasetsRequest(
            filters=[dc.DatasetFilter(name="n0"), dc.DatasetFilter(version="2")]
        ),
        timeout=10,
    )
    assert [d.id.version for d in only.datasets] == ["2"]


def test_eviction(stub: Stub) -> None:
    other = dataset_id(name="other")
    stub.CreateDataset(create_dataset_request(), timeout=10)
    stub.CreateDataset(create_dataset_request(other), timeout=10)
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("a1", tags=("h1", "h2"))), timeout=10
    )
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("a2", tags=("h3",))), timeout=10
    )
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("b1", ds=other, tags=("x",))), timeout=10
    )

    # Delete one artifact by tag: its other tag goes with it.
    stub.DeleteArtifact(svc.DeleteArtifactRequest(dataset=dataset_id(), tag_name="h1"), timeout=10)
    for tag in ("h1", "h2"):
        lookup = svc.GetArtifactRequest(dataset=dataset_id(), tag_name=tag)
        assert code_of(stub.GetArtifact, lookup) == grpc.StatusCode.NOT_FOUND
    again = svc.DeleteArtifactRequest(dataset=dataset_id(), artifact_id="a1")
    assert code_of(stub.DeleteArtifact, again) == grpc.StatusCode.NOT_FOUND

    # Evict everything older than now in one project: a2 and b1.
    now = timestamp_pb2.Timestamp()
    now.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    past = timestamp_pb2.Timestamp()
    past.FromDatetime(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    none = stub.EvictArtifacts(svc.EvictArtifactsRequest(created_before=past), timeout=10)
    assert (none.evicted_artifacts, none.evicted_tags) == (0, 0)
    evicted = stub.EvictArtifacts(
        svc.EvictArtifactsRequest(created_before=now, dataset=dataset_id()), timeout=10
    )
    assert (evicted.evicted_artifacts, evicted.evicted_tags) == (1, 1)
    evicted = stub.EvictArtifacts(
        svc.EvictArtifactsRequest(created_before=now, project="p"), timeout=10
    )
    assert (evicted.evicted_artifacts, evicted.evicted_tags) == (1, 1)

    # Evict a dataset.
    stub.CreateArtifact(svc.CreateArtifactRequest(artifact=artifact("b2", ds=other)), timeout=10)
    stub.DeleteDataset(svc.DeleteDatasetRequest(dataset=other), timeout=10)
    assert (
        code_of(stub.GetDataset, svc.GetDatasetRequest(dataset=other)) == grpc.StatusCode.NOT_FOUND
    )
    assert code_of(stub.DeleteDataset, svc.DeleteDatasetRequest(dataset=other)) == (
        grpc.StatusCode.NOT_FOUND
    )
    # The dataset can be created afresh and is empty.
    stub.CreateDataset(create_dataset_request(other), timeout=10)
    listed = stub.ListArtifacts(svc.ListArtifactsRequest(dataset=other), timeout=10)
    assert list(listed.artifacts) == []


MALFORMED: list[tuple[str, Any, str]] = [
    ("CreateDataset", svc.CreateDatasetRequest(), "dataset"),
    (
        "CreateDataset",
        svc.CreateDatasetRequest(dataset=dc.Dataset(id=dc.DatasetID(project="p", domain="d"))),
        "dataset.id.name",
    ),
    ("GetDataset", svc.GetDatasetRequest(), "dataset"),
    ("GetArtifact", svc.GetArtifactRequest(dataset=dataset_id()), "query_handle"),
    ("GetArtifact", svc.GetArtifactRequest(dataset=dataset_id(), tag_name=""), "tag_name"),
    ("CreateArtifact", svc.CreateArtifactRequest(artifact=dc.Artifact(id="x")), "artifact.dataset"),
    (
        "CreateArtifact",
        svc.CreateArtifactRequest(
            artifact=dc.Artifact(id="x", dataset=dataset_id(), data=[dc.ArtifactData(name="o")])
        ),
        "artifact.data[0].value",
    ),
    ("AddTag", svc.AddTagRequest(tag=dc.Tag(name="t", dataset=dataset_id())), "tag.artifact_id"),
    (
        "GetOrExtendReservation",
        svc.GetOrExtendReservationRequest(
            reservation_id=dc.ReservationID(dataset_id=dataset_id(), tag_name="t")
        ),
        "owner_id",
    ),
    ("ReleaseReservation", svc.ReleaseReservationRequest(owner_id="o"), "reservation_id"),
    ("EvictArtifacts", svc.EvictArtifactsRequest(), "created_before"),
    (
        "ListArtifacts",
        svc.ListArtifactsRequest(dataset=dataset_id(), filters=[dc.ArtifactFilter()]),
        "filters[0]",
    ),
    (
        "ListDatasets",
        svc.ListDatasetsRequest(pagination=dc.PaginationOptions(sort_order=99)),  # type: ignore[arg-type]
        "pagination.sort_order",
    ),
]


def test_eviction_by_age_removes_offloaded_blobs(catalog: RunningDataCatalog, stub: Stub) -> None:
    # The test server offloads values above 1 KiB to the blob store.
    prefix = catalog.config.data_prefix
    stub.CreateDataset(create_dataset_request(), timeout=10)
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("old", big="o" * 5000, tags=("h-old",))),
        timeout=10,
    )
    old_blobs = set(catalog.store.list(prefix))
    assert len(old_blobs) == 1
    cutoff = timestamp_pb2.Timestamp()
    cutoff.FromDatetime(dt.datetime.now(dt.UTC))
    wait_until(lambda: dt.datetime.now(dt.UTC) > cutoff.ToDatetime(tzinfo=dt.UTC))
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("new", big="n" * 5000, tags=("h-new",))),
        timeout=10,
    )
    new_blobs = set(catalog.store.list(prefix)) - old_blobs
    assert len(new_blobs) == 1

    evicted = stub.EvictArtifacts(svc.EvictArtifactsRequest(created_before=cutoff), timeout=10)
    assert (evicted.evicted_artifacts, evicted.evicted_tags) == (1, 1)
    # Blobs are deleted after the commit, within the RPC.
    assert set(catalog.store.list(prefix)) == new_blobs
    lookup = svc.GetArtifactRequest(dataset=dataset_id(), tag_name="h-old")
    assert code_of(stub.GetArtifact, lookup) == grpc.StatusCode.NOT_FOUND
    kept = stub.GetArtifact(
        svc.GetArtifactRequest(dataset=dataset_id(), tag_name="h-new"), timeout=10
    ).artifact
    assert {d.name: d.value.scalar.primitive.string_value for d in kept.data}["big"] == "n" * 5000

    # Evicting the whole dataset takes the remaining blob too.
    stub.DeleteDataset(svc.DeleteDatasetRequest(dataset=dataset_id()), timeout=10)
    assert list(catalog.store.list(prefix)) == []


@pytest.mark.parametrize(("method", "request_", "field"), MALFORMED)
def test_malformed_requests_are_invalid_argument(
    stub: Stub, method: str, request_: Any, field: str
) -> None:
    err = rpc_error(getattr(stub, method), request_)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()  # type: ignore[attr-defined]
    assert field in err.details()  # type: ignore[attr-defined]


def test_garbage_bytes_are_invalid_argument_and_server_keeps_serving(
    channel: grpc.Channel, stub: Stub
) -> None:
    raw = channel.unary_unary("/caddis_idl.datacatalog.v1.DataCatalogService/CreateDataset")
    for garbage in (b"\xff\xff\xff\xff", b"\x0a\xff\x01", b"\x12" + b"\x80" * 12):
        err = rpc_error(raw, garbage)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    stub.CreateDataset(create_dataset_request(), timeout=10)
    assert stub.GetDataset(svc.GetDatasetRequest(dataset=dataset_id()), timeout=10).dataset.id.uuid


def test_metrics_endpoint(catalog: RunningDataCatalog, stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(), timeout=10)
    stub.CreateArtifact(svc.CreateArtifactRequest(artifact=artifact("a1", tags=("h",))), timeout=10)
    stub.GetArtifact(svc.GetArtifactRequest(dataset=dataset_id(), tag_name="h"), timeout=10)
    miss = svc.GetArtifactRequest(dataset=dataset_id(), tag_name="nope")
    code_of(stub.GetArtifact, miss)
    rid = dc.ReservationID(dataset_id=dataset_id(), tag_name="h2")
    stub.GetOrExtendReservation(
        svc.GetOrExtendReservationRequest(reservation_id=rid, owner_id="a"), timeout=10
    )
    stub.GetOrExtendReservation(
        svc.GetOrExtendReservationRequest(reservation_id=rid, owner_id="b"), timeout=10
    )
    assert catalog.metrics_url is not None
    with urllib.request.urlopen(catalog.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    svc_ = "caddis_idl.datacatalog.v1.DataCatalogService"
    for line in (
        f'caddis_grpc_requests_total{{code="OK",method="GetArtifact",service="{svc_}"}} 1.0',
        f'caddis_grpc_requests_total{{code="NOT_FOUND",method="GetArtifact",service="{svc_}"}} 1.0',
        "caddis_datacatalog_cache_hits_total 1.0",
        "caddis_datacatalog_cache_misses_total 1.0",
        "caddis_datacatalog_reservations_granted_total 1.0",
        "caddis_datacatalog_reservations_contended_total 1.0",
    ):
        assert line in text, line
    assert 'caddis_grpc_request_duration_seconds_bucket{le="0.005",method="GetArtifact"' in text
