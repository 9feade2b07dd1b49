"""Reservations under concurrency: 20 clients race, exactly one holds it at a time."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2

from caddis.storage import StorageConfig
from caddis_datacatalog.server import RunningDataCatalog, serve
from caddis_idl.datacatalog.v1 import datacatalog_pb2 as dc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2 as svc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2_grpc
from tests.datacatalog.conftest import catalog_config
from tests.datacatalog.helpers import dataset_id
from tests.support import wait_until

CLIENTS = 20
RID = dc.ReservationID(dataset_id=dataset_id(), tag_name="flyte_cached-abc")


@pytest.fixture
def short_lease_catalog(
    db_url: str, tmp_path: Path, storage_config: StorageConfig
) -> Iterator[RunningDataCatalog]:
    # Leases of 2 x 1 s: short enough to watch one lapse, long enough that a race of 20
    # clients on a loaded 2-core machine ends well before the winner's lease does (with
    # 2 x 0.25 s a slow race saw a legitimate takeover mid-race).
    config = catalog_config(
        db_url, tmp_path, max_heartbeat_interval_s=1.0, heartbeat_grace_multiplier=2.0
    )
    running = serve(config, storage=storage_config)
    try:
        yield running
    finally:
        running.stop(grace=1)


def _reserve(
    stub: datacatalog_service_pb2_grpc.DataCatalogServiceStub, owner: str
) -> dc.Reservation:
    heartbeat = duration_pb2.Duration(seconds=10)  # asks for more than the cap on purpose
    return stub.GetOrExtendReservation(
        svc.GetOrExtendReservationRequest(
            reservation_id=RID, owner_id=owner, heartbeat_interval=heartbeat
        ),
        timeout=30,
    ).reservation


def _race(address: str, owners: list[str]) -> dict[str, str]:
    """Every owner asks at once (one channel each); returns owner -> holder it was told."""
    barrier = threading.Barrier(len(owners))
    seen: dict[str, str] = {}
    errors: list[BaseException] = []

    def client(owner: str) -> None:
        try:
            with grpc.insecure_channel(address) as channel:
                stub = datacatalog_service_pb2_grpc.DataCatalogServiceStub(channel)
                grpc.channel_ready_future(channel).result(timeout=10)
                barrier.wait(timeout=30)
                seen[owner] = _reserve(stub, owner).owner_id
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return seen


def _single_winner(seen: dict[str, str]) -> str:
    holders = set(seen.values())
    assert len(holders) == 1, f"clients saw different holders: {holders}"
    (holder,) = holders
    assert holder in seen
    return holder


def test_twenty_clients_one_holder_until_release_then_exactly_one_other(
    catalog: RunningDataCatalog, stub: datacatalog_service_pb2_grpc.DataCatalogServiceStub
) -> None:
    owners = [f"owner-{i}" for i in range(CLIENTS)]
    first = _single_winner(_race(catalog.address, owners))

    # While held, everyone (again, concurrently) is told the same holder; the holder extends.
    before = _reserve(stub, first).expires_at.ToDatetime()
    assert _single_winner(_race(catalog.address, owners)) == first
    assert _reserve(stub, first).expires_at.ToDatetime() >= before

    # A non-owner's release is a no-op.
    other = next(o for o in owners if o != first)
    stub.ReleaseReservation(svc.ReleaseReservationRequest(reservation_id=RID, owner_id=other))
    assert _reserve(stub, other).owner_id == first

    stub.ReleaseReservation(svc.ReleaseReservationRequest(reservation_id=RID, owner_id=first))
    rest = [o for o in owners if o != first]
    second = _single_winner(_race(catalog.address, rest))
    assert second != first


def test_expired_reservation_is_taken_over_by_exactly_one(
    short_lease_catalog: RunningDataCatalog,
) -> None:
    owners = [f"owner-{i}" for i in range(CLIENTS)]
    address = short_lease_catalog.address
    first = _single_winner(_race(address, owners))
    with grpc.insecure_channel(address) as channel:
        stub = datacatalog_service_pb2_grpc.DataCatalogServiceStub(channel)
        lease = _reserve(stub, first)
        # The requested 10 s heartbeat was capped at the configured 1 s.
        assert lease.heartbeat_interval.ToMilliseconds() == 1000
        expires = lease.expires_at.ToDatetime(tzinfo=dt.UTC)
    # The holder stops heartbeating; once its lease lapsed, exactly one waiter takes it over.
    wait_until(lambda: dt.datetime.now(dt.UTC) > expires, timeout=10, message="lease lapsed")
    rest = [o for o in owners if o != first]
    second = _single_winner(_race(address, rest))
    assert second != first
