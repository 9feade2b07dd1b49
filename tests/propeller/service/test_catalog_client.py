"""propeller's DataCatalogClient against a real datacatalog: single and batch lookups."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caddis.storage import StorageConfig
from caddis_datacatalog.server import RunningDataCatalog, serve
from caddis_idl.core.v1 import literals_pb2
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
