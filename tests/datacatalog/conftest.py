"""A datacatalog served on 127.0.0.1:0 over the test database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis.storage import StorageConfig
from caddis_datacatalog.config import DataCatalogConfig
from caddis_datacatalog.server import RunningDataCatalog, serve
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2_grpc


def catalog_config(db_url: str, tmp_path: Path, **overrides: object) -> DataCatalogConfig:
    values: dict[str, object] = {
        "server": ServerConfig(port=0, metrics_port=0, max_workers=32),
        "database": DatabaseConfig(url=db_url, pool_size=20),
        "data_prefix": f"file://{tmp_path / 'blobs'}",
        "inline_limit_bytes": 1024,
    }
    values.update(overrides)
    return DataCatalogConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def storage_config(tmp_path: Path) -> StorageConfig:
    return StorageConfig(local_root=str(tmp_path / "storage"))


@pytest.fixture
def catalog(
    db_url: str, tmp_path: Path, storage_config: StorageConfig
) -> Iterator[RunningDataCatalog]:
    running = serve(catalog_config(db_url, tmp_path), storage=storage_config)
    try:
        yield running
    finally:
        running.stop(grace=1)


@pytest.fixture
def channel(catalog: RunningDataCatalog) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(catalog.address) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.Channel) -> datacatalog_service_pb2_grpc.DataCatalogServiceStub:
    return datacatalog_service_pb2_grpc.DataCatalogServiceStub(channel)
