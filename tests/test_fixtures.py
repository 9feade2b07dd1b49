"""The shared fixtures themselves work: the suite's other tests rely on them."""

from __future__ import annotations

import io

import pytest

from tests.conftest import S3Endpoint
from tests.support import DeadlineExceeded, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = iter([0, None, 7])
    assert wait_until(lambda: next(calls), timeout=5) == 7


def test_wait_until_fails_at_the_deadline_naming_the_condition() -> None:
    with pytest.raises(DeadlineExceeded, match="never true"):
        wait_until(lambda: False, timeout=0.05, message="never true")


@pytest.mark.postgres
def test_postgres_database_is_fresh_and_usable(postgres_url: str) -> None:
    import psycopg

    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema='public'"
        ).fetchone()
    assert tables == (0,)


@pytest.mark.s3
def test_s3_bucket_round_trip_through_minio(s3_endpoint: S3Endpoint, s3_bucket: str) -> None:
    client = s3_endpoint.client()
    client.put_object(s3_bucket, "a/b.txt", io.BytesIO(b"hello"), length=5)
    response = client.get_object(s3_bucket, "a/b.txt")
    try:
        assert response.read() == b"hello"
    finally:
        response.close()
        response.release_conn()
