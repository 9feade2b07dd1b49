"""Fixtures shared by every test: databases, an S3 endpoint, ports and deadlines.

- ``sqlite_url``: a fresh SQLite database file per test.
- ``postgres_url``: a fresh PostgreSQL database per test, created on the server at
  ``CADDIS_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``) and dropped
  afterwards. Where the server is unreachable the test skips with the reason, except under CI
  (``CI=true``), where that is a failure.
- ``db_url``: parametrized over both, for repository and service tests that must pass on each.
- ``s3_endpoint`` / ``s3_bucket``: ``moto_server`` on a free loopback port, reached only through
  the ``minio`` client; a new bucket per test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port, in_ci, port_open, stop_process, wait_until

POSTGRES_ADMIN_URL = os.environ.get(
    "CADDIS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL for a new, empty SQLite database file."""
    return f"sqlite:///{tmp_path / 'caddis.db'}"


def _postgres_connect(dbname: str | None = None):  # type: ignore[no-untyped-def]
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(POSTGRES_ADMIN_URL)
    if dbname is not None:
        params["dbname"] = dbname
    return psycopg.connect(make_conninfo(**params), autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """Skip (or fail under CI) when the PostgreSQL server cannot be reached."""
    try:
        _postgres_connect().close()
    except Exception as exc:  # any failure means "not reachable"
        reason = f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable: {exc}"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_available: None) -> Iterator[str]:
    """A SQLAlchemy URL (psycopg 3 driver) for a new, empty PostgreSQL database."""
    from psycopg.conninfo import conninfo_to_dict

    name = f"caddis_test_{uuid.uuid4().hex[:12]}"
    with _postgres_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(POSTGRES_ADMIN_URL)
    user = params.get("user", "postgres")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    try:
        yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    finally:
        with _postgres_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@dataclass(frozen=True)
class S3Endpoint:
    """Where the test S3 server listens, and the credentials it accepts."""

    host: str
    port: int
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"

    @property
    def endpoint(self) -> str:
        """``host:port``, as the minio client takes it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def client(self):  # type: ignore[no-untyped-def]
        """A minio client for this endpoint."""
        from minio import Minio

        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            secure=False,
        )


def _moto_server_command(port: int) -> list[str]:
    exe = shutil.which("moto_server")
    if exe:
        return [exe, "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """A ``moto_server`` process on a free loopback port, for the whole test session."""
    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    proc = subprocess.Popen(
        _moto_server_command(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_until(lambda: port_open(port), timeout=30, message=f"moto_server on port {port}")
        yield S3Endpoint("127.0.0.1", port)
    finally:
        stop_process(proc)


@pytest.fixture
def s3_bucket(s3_endpoint: S3Endpoint) -> str:
    """A new, empty bucket on the test S3 endpoint."""
    name = f"caddis-test-{uuid.uuid4().hex[:12]}"
    s3_endpoint.client().make_bucket(name)
    return name
