"""Fixtures for the storage tests: one contract, run against file:// and s3:// alike."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from caddis.storage import BlobStore, RetryConfig, StorageConfig, clear_store_cache, get_store
from tests.conftest import S3Endpoint

# Short backoffs keep failing tests fast; the behaviour under test is the same.
FAST_RETRY = RetryConfig(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, max_elapsed=5.0)


def s3_config(endpoint: S3Endpoint, **overrides: object) -> StorageConfig:
    values: dict[str, object] = {
        "endpoint": endpoint.endpoint,
        "access_key": endpoint.access_key,
        "secret_key": endpoint.secret_key,
        "region": endpoint.region,
        "secure": False,
        "retry": FAST_RETRY,
    }
    values.update(overrides)
    return StorageConfig(**values)  # type: ignore[arg-type]


@dataclass
class StoreCase:
    """A store and a fresh, empty prefix on it."""

    store: BlobStore
    prefix: str  # ends with "/"
    config: StorageConfig

    def uri(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)


@pytest.fixture(autouse=True)
def _fresh_store_cache() -> None:
    clear_store_cache()


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    if request.param == "file":
        config = StorageConfig(local_root=str(tmp_path / "root"), retry=FAST_RETRY)
        prefix = f"file://{tmp_path}/blobs/"
    else:
        endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
        bucket: str = request.getfixturevalue("s3_bucket")
        config = s3_config(endpoint)
        prefix = f"s3://{bucket}/{uuid.uuid4().hex[:8]}/"
    return StoreCase(get_store(prefix, config), prefix, config)
