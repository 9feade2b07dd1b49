"""Leases and fencing on SQLite and PostgreSQL; the outbox ignores repeated request ids."""

from __future__ import annotations

import pytest

from caddis_propeller.repository.database import Database
from caddis_propeller.repository.repo import ExecutionKey, RoundWrite, StaleLeaseError


def _write(phase: int = 2) -> RoundWrite:
    return RoundWrite(
        phase=phase,
        terminal=False,
        state=b"s",
        state_uri=None,
        error=None,
        node_counts={},
        next_eval_at=0.0,
        evaluated_at=1.0,
    )


@pytest.fixture
def database(db_url: str):  # type: ignore[no-untyped-def]
    db = Database(db_url)
    db.migrate()
    yield db
    db.dispose()


def test_takeover_fences_the_old_owner(database: Database) -> None:
    key = ExecutionKey("p", "d", "e1")
    exec_id = database.run(lambda r: r.insert(key, b"req", 0.0).id)
    a = database.run(lambda r: r.claim("a", 100.0, 10.0, 10))
    assert [lease.execution_id for lease in a] == [exec_id]
    # b cannot take a live lease...
    assert database.run(lambda r: r.claim("b", 105.0, 10.0, 10)) == []
    database.run(lambda r: r.save_round(a[0], _write()))
    # ...but takes it once it expired (a stopped renewing), with a new fencing token.
    b = database.run(lambda r: r.claim("b", 111.0, 10.0, 10))
    assert b and b[0].token > a[0].token
    with pytest.raises(StaleLeaseError):
        database.run(lambda r: r.save_round(a[0], _write(3)))
    database.run(lambda r: r.save_round(b[0], _write(4)))
    row = database.run(lambda r: r.find(key), write=False)
    assert row is not None and row.phase == 4 and row.lease_owner == "b"


def test_renew_keeps_the_lease(database: Database) -> None:
    key = ExecutionKey("p", "d", "e2")
    database.run(lambda r: r.insert(key, b"req", 0.0))
    (lease,) = database.run(lambda r: r.claim("a", 100.0, 10.0, 10))
    assert database.run(lambda r: r.renew("a", 108.0, 10.0)) == 1
    assert database.run(lambda r: r.claim("b", 112.0, 10.0, 10)) == []
    database.run(lambda r: r.save_round(lease, _write()))


def test_outbox_ignores_repeated_request_ids(database: Database) -> None:
    database.run(lambda r: r.append_events("p/d/e", [("r1", b"x"), ("r2", b"y")], 1.0))
    database.run(lambda r: r.append_events("p/d/e", [("r1", b"x"), ("r3", b"z")], 2.0))
    due = database.run(lambda r: r.due_events(5.0, 10), write=False)
    assert [e.request_id for e in due] == ["r1", "r2", "r3"]
    database.run(lambda r: r.delete_events([due[0].id]))
    database.run(lambda r: r.defer_events([due[1].id], 100.0))
    assert [e.request_id for e in database.run(lambda r: r.due_events(5.0, 10))] == ["r3"]
