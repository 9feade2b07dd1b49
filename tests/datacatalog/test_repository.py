"""The manager over the repository, without gRPC: migrations, offloading, reservation clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from caddis._serving.errors import AlreadyExistsError, NotFoundError
from caddis.storage import StorageConfig, get_store
from caddis_datacatalog.manager.catalog import (
    ArtifactHandle,
    CatalogManager,
    CatalogSettings,
    PageRequest,
)
from caddis_datacatalog.repository.database import Database
from tests.datacatalog.helpers import artifact, create_dataset_request, dataset_id, str_literal


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    database.migrate()  # idempotent: already at head
    try:
        yield database
    finally:
        database.dispose()


def _manager(prefix: str, storage: StorageConfig, clock: Clock) -> CatalogManager:
    settings = CatalogSettings(
        data_prefix=prefix,
        inline_limit_bytes=64,
        max_heartbeat_interval=dt.timedelta(seconds=10),
        heartbeat_grace_multiplier=3,
    )
    return CatalogManager(settings, get_store(prefix, storage), clock=clock)


def test_offloaded_values_round_trip_and_are_deleted_with_the_artifact(
    database: Database, tmp_path: Path
) -> None:
    storage = StorageConfig(local_root=str(tmp_path))
    prefix = f"file://{tmp_path / 'blobs'}"
    manager = _manager(prefix, storage, Clock())
    store = get_store(prefix, storage)
    big = "x" * 10_000
    database.run(lambda r: manager.create_dataset(r, create_dataset_request().dataset))
    database.run(lambda r: manager.create_artifact(r, artifact("a1", big=big, tags=("h",))))
    blobs = list(store.list(prefix))
    assert len(blobs) == 1 and blobs[0].endswith(".pb")
    got = database.run(
        lambda r: manager.get_artifact(r, dataset_id(), ArtifactHandle(tag_name="h")), write=False
    )
    assert {d.name: d.value for d in got.data}["big"] == str_literal(big)
    # Identical re-create is idempotent and does not duplicate the blob.
    database.run(lambda r: manager.create_artifact(r, artifact("a1", big=big, tags=("h",))))
    assert list(store.list(prefix)) == blobs
    # A conflicting create never overwrites the existing artifact's blob.
    with pytest.raises(AlreadyExistsError):
        database.run(lambda r: manager.create_artifact(r, artifact("a1", big=big + "y")))
    got = database.run(
        lambda r: manager.get_artifact(r, dataset_id(), ArtifactHandle(artifact_id="a1")),
        write=False,
    )
    assert {d.name: d.value for d in got.data}["big"] == str_literal(big)
    database.run(lambda r: manager.delete_artifact(r, dataset_id(), ArtifactHandle(tag_name="h")))
    assert blobs[0] not in set(store.list(prefix))


def test_reservation_lifecycle_with_a_clock(database: Database, tmp_path: Path) -> None:
    clock = Clock()
    manager = _manager(f"file://{tmp_path}", StorageConfig(local_root=str(tmp_path)), clock)
    rid = create_dataset_request().dataset.id
    from caddis_idl.datacatalog.v1 import datacatalog_pb2 as dc

    reservation_id = dc.ReservationID(dataset_id=rid, tag_name="t")

    def reserve(owner: str, heartbeat: float = 5) -> dc.Reservation:
        return database.run(
            lambda r: manager.get_or_extend_reservation(
                r, reservation_id, owner, dt.timedelta(seconds=heartbeat)
            )
        )

    granted = reserve("a")
    assert granted.owner_id == "a"
    assert granted.expires_at.ToDatetime(tzinfo=dt.UTC) == clock.now + dt.timedelta(seconds=15)
    clock.now += dt.timedelta(seconds=14)
    assert reserve("b").owner_id == "a"  # still live: b is told who holds it
    assert reserve("a").owner_id == "a"  # a extends: now + 15 s again
    clock.now += dt.timedelta(seconds=14)
    assert reserve("b").owner_id == "a"
    clock.now += dt.timedelta(seconds=2)  # a missed its heartbeats: lapsed
    assert reserve("b").owner_id == "b"
    assert reserve("a").owner_id == "b"
    # Heartbeat capped at 10 s; zero means "the cap".
    assert reserve("b", heartbeat=60).heartbeat_interval.seconds == 10
    assert reserve("b", heartbeat=0).heartbeat_interval.seconds == 10
    assert not database.run(lambda r: manager.release_reservation(r, reservation_id, "a"))
    assert database.run(lambda r: manager.release_reservation(r, reservation_id, "b"))
    assert reserve("a").owner_id == "a"


def test_missing_dataset_is_not_found(database: Database, tmp_path: Path) -> None:
    manager = _manager(f"file://{tmp_path}", StorageConfig(local_root=str(tmp_path)), Clock())
    with pytest.raises(NotFoundError, match="p/development/flyte_task-t@1-abc"):
        database.run(lambda r: manager.get_dataset(r, dataset_id()), write=False)


@pytest.mark.s3
def test_offloaded_values_through_s3(
    sqlite_url: str, tmp_path: Path, s3_endpoint: object, s3_bucket: str
) -> None:
    from tests.conftest import S3Endpoint

    assert isinstance(s3_endpoint, S3Endpoint)
    storage = StorageConfig(
        endpoint=s3_endpoint.endpoint,
        access_key=s3_endpoint.access_key,
        secret_key=s3_endpoint.secret_key,
        region=s3_endpoint.region,
        secure=False,
    )
    prefix = f"s3://{s3_bucket}/datacatalog"
    database = Database(sqlite_url)
    database.migrate()
    try:
        manager = _manager(prefix, storage, Clock())
        big = "s3" * 5_000
        database.run(lambda r: manager.create_dataset(r, create_dataset_request().dataset))
        database.run(lambda r: manager.create_artifact(r, artifact("a1", big=big, tags=("h",))))
        client = s3_endpoint.client()
        keys = [o.object_name for o in client.list_objects(s3_bucket, recursive=True)]
        assert len(keys) == 1 and keys[0].startswith("datacatalog/p/development/")
        got = database.run(
            lambda r: manager.get_artifact(r, dataset_id(), ArtifactHandle(tag_name="h")),
            write=False,
        )
        assert {d.name: d.value for d in got.data}["big"] == str_literal(big)
        database.run(lambda r: manager.delete_dataset(r, dataset_id()))
        assert list(client.list_objects(s3_bucket, recursive=True)) == []
    finally:
        database.dispose()


def test_single_statement_lookup_matches_the_orm_and_tells_misses_apart(
    database: Database, tmp_path: Path
) -> None:
    manager = _manager(f"file://{tmp_path}", StorageConfig(local_root=str(tmp_path)), Clock())
    request = create_dataset_request(partition_keys=("region", "day"))
    database.run(lambda r: manager.create_dataset(r, request.dataset))
    stored = artifact(
        "a1",
        big="y" * 500,  # above the 64-byte inline limit: offloaded
        tags=("t2", "t1", "t3"),
        partitions={"region": "eu", "day": "mon"},
    )
    stored.source_execution.node_execution_id.node_id = "n0"
    database.run(lambda r: manager.create_artifact(r, stored))

    got = database.run(
        lambda r: manager.get_artifact(r, dataset_id(), ArtifactHandle(tag_name="t3")), write=False
    )
    listed = database.run(
        lambda r: manager.list_artifacts(
            r, dataset_id(), [], PageRequest(limit=10, token="", ascending=True)
        ),
        write=False,
    )[0]
    # The lookup reads the same artifact as the ORM path, field for field.
    assert got == listed[0]
    assert [d.name for d in got.data] == ["o0", "big"]
    assert [t.name for t in got.tags] == ["t1", "t2", "t3"]
    assert [(p.key, p.value) for p in got.partitions] == [("day", "mon"), ("region", "eu")]
    assert got.source_execution.node_execution_id.node_id == "n0"
    assert got.metadata.key_map == {"who": "test"}
    assert got.created_at.ToDatetime(tzinfo=dt.UTC) == Clock().now

    with pytest.raises(NotFoundError, match="tag 'nope' does not exist in dataset"):
        database.run(
            lambda r: manager.get_artifact(r, dataset_id(), ArtifactHandle(tag_name="nope")),
            write=False,
        )
    with pytest.raises(NotFoundError, match="dataset p/development/other@1-abc does not exist"):
        database.run(
            lambda r: manager.get_artifact(
                r, dataset_id(name="other"), ArtifactHandle(artifact_id="a1")
            ),
            write=False,
        )


def test_lookup_survives_the_database_dropping_its_connections(
    database: Database, tmp_path: Path
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("only PostgreSQL connections can be killed from outside")
    manager = _manager(f"file://{tmp_path}", StorageConfig(local_root=str(tmp_path)), Clock())
    database.run(lambda r: manager.create_dataset(r, create_dataset_request().dataset))
    database.run(lambda r: manager.create_artifact(r, artifact("a1", tags=("h",))))

    def lookup() -> str:
        handle = ArtifactHandle(tag_name="h")
        got = database.run(lambda r: manager.get_artifact(r, dataset_id(), handle), write=False)
        return got.id

    assert lookup() == "a1"  # leaves a pooled connection behind
    # From a connection outside the pool (the pool would hand back the one to be killed).
    killer = database.engine.pool._creator()  # type: ignore[attr-defined]
    try:
        killed = killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        killer.commit()
    finally:
        killer.close()
    assert killed
    invalidated: list[object] = []
    # The lookup runs on the autocommit pool of single-statement reads.
    sa.event.listen(database.read_engine, "invalidate", lambda *args: invalidated.append(args))
    # The dead pooled connection is invalidated and the read retried on a fresh one.
    assert lookup() == "a1"
    assert invalidated
    assert lookup() == "a1"
