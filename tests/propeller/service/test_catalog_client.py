"""propeller's DataCatalogClient against a real datacatalog: single and batch lookups."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from caddis.storage import StorageConfig
from caddis_datacatalog.server import RunningDataCatalog, serve
from caddis_idl.core.v1 import literals_pb2
from caddis_idl.datacatalog.v1 import (
    datacatalog_pb2,
    datacatalog_service_pb2,
    datacatalog_service_pb2_grpc,
)
from caddis_propeller.clients.catalog import CatalogUnavailableError, DataCatalogClient
from caddis_propeller.engine.cache_keys import CacheKey
from tests.datacatalog.conftest import catalog_config
from tests.support import free_port


def outputs(value: int, text: str = "") -> literals_pb2.LiteralMap:
    lm = literals_pb2.LiteralMap()
    lm.literals["o0"].scalar.primitive.integer = value
    if text:
        lm.literals["o1"].scalar.primitive.string_value = text
    return lm


def key(tag: str, name: str = "wf.square") -> CacheKey:
    return CacheKey(project="p", domain="d", name=name, version="1-sig", tag=tag)


@pytest.fixture
def datacatalog(db_url: str, tmp_path: Path) -> Iterator[RunningDataCatalog]:
    # Answers cut after ~3 KiB: a batch of 2 KiB outputs needs several calls.
    config = catalog_config(
        db_url, tmp_path, inline_limit_bytes=16 * 1024, batch_response_bytes=3 * 1024
    )
    running = serve(config, storage=StorageConfig(local_root=str(tmp_path / "storage")))
    try:
        yield running
    finally:
        running.stop(grace=1)


def test_lookup_many_answers_in_key_order_across_datasets_and_batches(
    datacatalog: RunningDataCatalog,
) -> None:
    events: list[str] = []
    client = DataCatalogClient(datacatalog.address, on_event=events.append, batch_size=2)
    try:
        for i in range(5):
            client.put(key(f"t{i}"), outputs(i, "z" * 2048), overwrite=False)
        client.put(key("t0", name="wf.other"), outputs(100), overwrite=False)
        events.clear()
        keys = [key("t3"), key("miss"), key("t0", name="wf.other"), key("t0")]
        keys += [key(f"t{i}") for i in range(5)]
        keys.append(key("t9", name="wf.never-cached"))
        got = client.lookup_many(keys)
        values = [None if g is None else g.literals["o0"].scalar.primitive.integer for g in got]
        assert values == [3, None, 100, 0, 0, 1, 2, 3, 4, None]
        assert got[0] == client.lookup(key("t3"))
        assert events.count("miss") == 2
        assert events.count("hit") == 8 + 1  # the single lookup above counts too
    finally:
        client.close()


def test_lookup_many_raises_when_the_catalog_is_unreachable() -> None:
    events: list[str] = []
    client = DataCatalogClient(f"127.0.0.1:{free_port()}", timeout=2.0, on_event=events.append)
    try:
        with pytest.raises(CatalogUnavailableError):
            client.lookup_many([key("a"), key("b")])
        assert events == ["lookup_failure"]
    finally:
        client.close()


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        DataCatalogClient("127.0.0.1:1", batch_size=0)


def test_put_creates_the_dataset_once_and_the_first_result_stands(
    datacatalog: RunningDataCatalog,
) -> None:
    client = DataCatalogClient(datacatalog.address)
    try:
        assert client.lookup(key("k", name="wf.fresh")) is None
        client.put(key("k", name="wf.fresh"), outputs(1), overwrite=False)  # creates the dataset
        client.put(key("k", name="wf.fresh"), outputs(2), overwrite=False)  # a later run
        client.put(key("k2", name="wf.fresh"), outputs(3), overwrite=False)
        assert client.lookup(key("k", name="wf.fresh")) == outputs(1)
        assert client.lookup(key("k2", name="wf.fresh")) == outputs(3)
        client.put(key("k", name="wf.fresh"), outputs(4), overwrite=True)
        assert client.lookup(key("k", name="wf.fresh")) == outputs(4)
    finally:
        client.close()


class OlderCatalog(datacatalog_service_pb2_grpc.DataCatalogServiceServicer):
    """A datacatalog from before GetArtifactsByTag: only single lookups, of fixed answers."""

    def __init__(self, answers: dict[str, int]) -> None:
        self.answers = answers
        self.single_lookups = 0

    def CreateArtifact(self, request: Any, context: grpc.ServicerContext) -> Any:
        (tag,) = request.artifact.tags
        self.answers.setdefault(tag.name, request.artifact.data[0].value.scalar.primitive.integer)
        return datacatalog_service_pb2.CreateArtifactResponse()

    def GetArtifact(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.single_lookups += 1
        if request.tag_name not in self.answers:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such tag")
        out = outputs(self.answers[request.tag_name])
        data = [datacatalog_pb2.ArtifactData(name=k, value=v) for k, v in out.literals.items()]
        return datacatalog_service_pb2.GetArtifactResponse(
            artifact=datacatalog_pb2.Artifact(id="a", data=data)
        )


def test_lookup_many_falls_back_to_single_lookups_on_an_older_datacatalog() -> None:
    older = OlderCatalog({"t1": 1, "t3": 3})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    datacatalog_service_pb2_grpc.add_DataCatalogServiceServicer_to_server(older, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    events: list[str] = []
    client = DataCatalogClient(f"127.0.0.1:{port}", on_event=events.append)
    try:
        keys = [key("t1"), key("t2"), key("t3")]
        for _ in range(2):  # the second call goes straight to single lookups
            got = client.lookup_many(keys)
            assert got == [outputs(1), None, outputs(3)]
        assert older.single_lookups == 6
        assert "lookup_failure" not in events
        assert events.count("hit") == 4 and events.count("miss") == 2
    finally:
        client.close()
        server.stop(0)


def test_put_many_records_across_datasets_and_batches_and_keeps_earlier_results(
    datacatalog: RunningDataCatalog,
) -> None:
    events: list[str] = []
    client = DataCatalogClient(datacatalog.address, on_event=events.append, batch_size=2)
    try:
        client.put(key("t0"), outputs(100), overwrite=False)  # an earlier run's result
        entries = [(key(f"t{i}"), outputs(i, "z" * 2048)) for i in range(5)]
        entries.append((key("n0", name="wf.new"), outputs(7)))  # its dataset does not exist
        events.clear()
        assert client.put_many(entries) == [True] * 6
        assert events == ["put"] * 6
        got = client.lookup_many([k for k, _ in entries])
        values = [g.literals["o0"].scalar.primitive.integer for g in got if g is not None]
        assert values == [100, 1, 2, 3, 4, 7]  # t0 kept the earlier result
    finally:
        client.close()


def test_put_many_falls_back_to_single_puts_on_an_older_datacatalog() -> None:
    older = OlderCatalog({})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    datacatalog_service_pb2_grpc.add_DataCatalogServiceServicer_to_server(older, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = DataCatalogClient(f"127.0.0.1:{port}")
    try:
        assert client.put_many([(key("a"), outputs(1)), (key("b"), outputs(2))]) == [True, True]
        assert older.answers == {"a": 1, "b": 2}
    finally:
        client.close()
        server.stop(0)
