"""GetArtifactsByTag: many cache lookups in one call, on SQLite and PostgreSQL."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from caddis.storage import StorageConfig
from caddis_datacatalog.server import RunningDataCatalog, serve
from caddis_idl.datacatalog.v1 import datacatalog_pb2 as dc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2 as svc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2_grpc
from tests.datacatalog.conftest import catalog_config
from tests.datacatalog.helpers import artifact, create_dataset_request, dataset_id, int_literal

Stub = datacatalog_service_pb2_grpc.DataCatalogServiceStub


def batch(stub: Stub, tags: list[str], ds: dc.DatasetID | None = None) -> list[svc.ArtifactLookup]:
    request = svc.GetArtifactsByTagRequest(dataset=ds or dataset_id(), tag_names=tags)
    return list(stub.GetArtifactsByTag(request, timeout=10).results)


def test_results_follow_the_request_order_with_hits_and_misses(stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(partition_keys=("region",)), timeout=10)
    stub.CreateArtifact(
        svc.CreateArtifactRequest(
            artifact=artifact("a1", value=1, tags=("h1", "h1b"), partitions={"region": "eu"})
        ),
        timeout=10,
    )
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("a2", value=2, tags=("h2",))), timeout=10
    )
    tags = ["h2", "miss", "h1", "h1b", "h2"]
    results = batch(stub, tags)
    assert [r.tag_name for r in results] == tags
    assert [r.found for r in results] == [True, False, True, True, True]
    assert not results[1].HasField("artifact")
    assert [r.artifact.id for r in results if r.found] == ["a2", "a1", "a1", "a2"]
    # Each hit is the same artifact GetArtifact returns for that tag.
    for r in results:
        if r.found:
            single = stub.GetArtifact(
                svc.GetArtifactRequest(dataset=dataset_id(), tag_name=r.tag_name), timeout=10
            ).artifact
            assert r.artifact == single
    a1 = results[2].artifact
    assert a1.data[0].value == int_literal(1)
    assert [(p.key, p.value) for p in a1.partitions] == [("region", "eu")]
    assert sorted(t.name for t in a1.tags) == ["h1", "h1b"]


def test_a_missing_dataset_misses_every_tag(stub: Stub) -> None:
    results = batch(stub, ["a", "b"], ds=dataset_id(name="never-created"))
    assert [(r.tag_name, r.found) for r in results] == [("a", False), ("b", False)]


def test_an_evicted_artifact_misses(stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(), timeout=10)
    for i in range(3):
        stub.CreateArtifact(
            svc.CreateArtifactRequest(artifact=artifact(f"a{i}", value=i, tags=(f"h{i}",))),
            timeout=10,
        )
    stub.DeleteArtifact(svc.DeleteArtifactRequest(dataset=dataset_id(), tag_name="h1"), timeout=10)
    assert [r.found for r in batch(stub, ["h0", "h1", "h2"])] == [True, False, True]


def test_offloaded_values_are_read_back(stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(), timeout=10)
    big = "x" * 5000  # over the test config's 1 KiB inline limit
    stub.CreateArtifact(
        svc.CreateArtifactRequest(artifact=artifact("a1", tags=("h",), big=big)), timeout=10
    )
    (result,) = batch(stub, ["h"])
    values = {d.name: d.value for d in result.artifact.data}
    assert values["big"].scalar.primitive.string_value == big


@pytest.mark.parametrize(
    ("tags", "field"),
    [([], "tag_names"), (["ok", ""], "tag_names[1]"), (["t"] * 1001, "tag_names")],
)
def test_bad_tag_lists_are_invalid_argument(stub: Stub, tags: list[str], field: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        batch(stub, tags)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert field in info.value.details()  # type: ignore[attr-defined]


def test_a_dataset_id_is_required(stub: Stub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.GetArtifactsByTag(svc.GetArtifactsByTagRequest(tag_names=["h"]), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "dataset" in info.value.details()  # type: ignore[attr-defined]


@pytest.fixture
def small_answers(
    db_url: str, tmp_path: Path, storage_config: StorageConfig
) -> Iterator[RunningDataCatalog]:
    # Answers stop after ~3 KiB, so a batch of 2 KiB artifacts is answered two tags at a time.
    config = catalog_config(
        db_url, tmp_path, inline_limit_bytes=16 * 1024, batch_response_bytes=3 * 1024
    )
    running = serve(config, storage=storage_config)
    try:
        yield running
    finally:
        running.stop(grace=1)


def test_a_large_answer_is_cut_after_a_prefix_and_the_rest_asked_again(
    small_answers: RunningDataCatalog,
) -> None:
    with grpc.insecure_channel(small_answers.address) as channel:
        stub = Stub(channel)
        stub.CreateDataset(create_dataset_request(), timeout=10)
        for i in range(5):
            stub.CreateArtifact(
                svc.CreateArtifactRequest(
                    artifact=artifact(f"a{i}", value=i, tags=(f"h{i}",), big="y" * 2048)
                ),
                timeout=10,
            )
        tags = [f"h{i}" for i in range(5)]
        first = batch(stub, tags)
        assert [r.tag_name for r in first] == ["h0", "h1"]
        answered = [r.artifact.id for r in first]
        while len(answered) < len(tags):
            more = batch(stub, tags[len(answered) :])
            assert more, "every answer holds at least one result"
            answered += [r.artifact.id for r in more]
        assert answered == [f"a{i}" for i in range(5)]


def test_batch_lookups_count_hits_and_misses(catalog: RunningDataCatalog, stub: Stub) -> None:
    stub.CreateDataset(create_dataset_request(), timeout=10)
    stub.CreateArtifact(svc.CreateArtifactRequest(artifact=artifact("a1", tags=("h",))), timeout=10)
    batch(stub, ["h", "m1", "h", "m2", "m3"])
    assert catalog.metrics_url is not None
    with urllib.request.urlopen(catalog.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    assert "caddis_datacatalog_cache_hits_total 2.0" in text
    assert "caddis_datacatalog_cache_misses_total 3.0" in text
