"""Retention: terminal executions older than ``retention_s`` go, with what propeller kept of them.

Repository and janitor tests run on SQLite and PostgreSQL with a clock the test moves; the
service tests run real workflows and then move the janitor's clock (or use a tiny retention).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from caddis.storage import BlobStore, StorageConfig, get_store
from caddis_idl.propeller.v1 import propeller_service_pb2
from caddis_propeller.config import ProcessPluginConfig, PropellerConfig
from caddis_propeller.manager.metrics import PropellerMetrics
from caddis_propeller.manager.retention import RetentionJanitor
from caddis_propeller.plugins import attempt_dir as ad
from caddis_propeller.repository.database import Database
from caddis_propeller.repository.repo import ExecutionKey, RoundWrite
from tests.propeller.service import workflows as w
from tests.propeller.service.conftest import WP, exec_id, int_output
from tests.support import wait_until

DAY = 24 * 3600.0
NOW = 1_000 * DAY  # the tests' "now", far from the epoch


@pytest.fixture
def database(db_url: str):  # type: ignore[no-untyped-def]
    db = Database(db_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def storage_config(tmp_path: Path) -> StorageConfig:
    return StorageConfig(local_root=str(tmp_path / "blobs"), local_fsync=False)


@pytest.fixture
def store(storage_config: StorageConfig) -> BlobStore:
    return get_store(storage_config.resolved_metadata_prefix(), storage_config)


def _metadata(store: BlobStore) -> str:
    prefix: str = store.config.resolved_metadata_prefix()  # type: ignore[attr-defined]
    return prefix.rstrip("/") + "/"


def _prefix(store: BlobStore, name: str) -> str:
    return f"{_metadata(store)}p/d/{name}"


def _add(
    database: Database,
    name: str,
    *,
    finished_at: float | None,
    state_uri: str | None = None,
    events: int = 0,
    last_round: float = NOW,
) -> int:
    """An execution row: terminal at ``finished_at``, or running when that is None."""
    key = ExecutionKey("p", "d", name)
    exec_id_ = database.run(lambda r: r.insert(key, b"req", 0.0).id)
    lease = database.run(lambda r: r.claim_one(exec_id_, "owner", 0.0, 10.0))
    assert lease is not None
    write = RoundWrite(
        phase=4 if finished_at is not None else 2,
        terminal=finished_at is not None,
        state=None if state_uri else b"state",
        state_uri=state_uri,
        error=None,
        node_counts={},
        next_eval_at=0.0,
        evaluated_at=finished_at if finished_at is not None else last_round,
    )

    def work(r):  # type: ignore[no-untyped-def]
        r.save_round(lease, write)
        if events:
            r.append_events(str(key), [(f"{name}-{i}", b"e") for i in range(events)], NOW)

    database.run(work)
    return exec_id_


def _names(database: Database) -> set[str]:
    def work(r):  # type: ignore[no-untyped-def]
        return {
            n
            for n in ("old", "recent", "running", "pending", *[f"b{i}" for i in range(20)])
            if r.find(ExecutionKey("p", "d", n)) is not None
        }

    return database.run(work, write=False)


def _janitor(
    database: Database,
    store: BlobStore,
    *,
    retention_s: float = DAY,
    batch: int = 500,
    clock: float = NOW,
    sweep=None,  # type: ignore[no-untyped-def]
) -> RetentionJanitor:
    config = PropellerConfig(retention_s=retention_s, retention_batch=batch)
    return RetentionJanitor(
        config,
        database=database,
        store=store,
        metadata_prefix=_metadata(store),
        metrics=PropellerMetrics(),
        sweep_dirs=sweep,
        clock=lambda: clock,
    )


def test_old_terminal_executions_go_recent_and_running_stay(
    database: Database, store: BlobStore
) -> None:
    state_uri = f"{_prefix(store, 'old')}/propeller/state-7.bin"
    store.put_bytes(state_uri, b"offloaded state")
    store.put_bytes(f"{_prefix(store, 'old')}/propeller/state-6.bin", b"an older version")
    store.put_bytes(f"{_prefix(store, 'old')}/propeller/closure.pb", b"closure")
    outputs = f"{_prefix(store, 'old')}/outputs.pb"
    store.put_bytes(outputs, b"admin's data")
    _add(database, "old", finished_at=NOW - 2 * DAY, state_uri=state_uri)
    _add(database, "recent", finished_at=NOW - 0.5 * DAY)
    _add(database, "running", finished_at=None)
    # A running execution whose last round was long ago is still not touched.
    _add(database, "b0", finished_at=None, last_round=1.0)

    result = _janitor(database, store).run_once()

    assert result.executions == 1
    assert _names(database) == {"recent", "running", "b0"}
    assert list(store.list(f"{_prefix(store, 'old')}/propeller/")) == []
    assert store.get_bytes(outputs) == b"admin's data"  # outputs belong to admin: kept
    # A second run (or another replica's) finds nothing more and does not fail.
    assert _janitor(database, store).run_once().executions == 0


def test_an_execution_with_undelivered_events_stays_until_they_are_delivered(
    database: Database, store: BlobStore
) -> None:
    _add(database, "pending", finished_at=NOW - 2 * DAY, events=2)
    assert _janitor(database, store).run_once().executions == 0
    assert _names(database) == {"pending"}

    # One of the two delivered: still kept.
    due = database.run(lambda r: r.due_events(NOW, 10), write=False)
    database.run(lambda r: r.delete_events([due[0].id]))
    assert _janitor(database, store).run_once().executions == 0
    assert _names(database) == {"pending"}

    database.run(lambda r: r.delete_events([due[1].id]))
    assert _janitor(database, store).run_once().executions == 1
    assert _names(database) == set()


def test_removal_runs_in_batches_over_a_larger_backlog(
    database: Database, store: BlobStore
) -> None:
    for i in range(11):
        _add(database, f"b{i}", finished_at=NOW - 2 * DAY - i)
    _add(database, "recent", finished_at=NOW - 10.0)
    janitor = _janitor(database, store, batch=4)
    calls: list[int] = []
    original = database.run

    def counting_run(work, *, write=True):  # type: ignore[no-untyped-def]
        if write:
            calls.append(1)
        return original(work, write=write)

    database.run = counting_run  # type: ignore[method-assign]
    try:
        assert janitor.run_once().executions == 11
    finally:
        database.run = original  # type: ignore[method-assign]
    assert len(calls) == 3  # 4 + 4 + 3 rows, one short transaction each
    assert _names(database) == {"recent"}


def test_two_janitors_at_once_remove_each_row_once(database: Database, store: BlobStore) -> None:
    for i in range(20):
        _add(database, f"b{i}", finished_at=NOW - 2 * DAY)
    janitors = [_janitor(database, store, batch=3) for _ in range(2)]
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(j: RetentionJanitor) -> None:
        try:
            barrier.wait()
            results.append(j.run_once().executions)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(j,)) for j in janitors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    # Each row counted by exactly one janitor; whatever one left (it stops when it sees the
    # other one deleting), a further run removes.
    leftover = _janitor(database, store).run_once().executions
    assert sum(results) + leftover == 20
    assert _names(database) == set()


def test_retention_off_keeps_everything(database: Database, store: BlobStore) -> None:
    _add(database, "old", finished_at=1.0)
    for off in (0.0, -1.0):
        janitor = _janitor(database, store, retention_s=off)
        assert not janitor.enabled
        assert janitor.run_once().executions == 0
    assert _names(database) == {"old"}


# ------------------------------------------------------------------ attempt directories
def _attempt(work_dir: Path, execution: str, node: str, *, claim: bool = True) -> Path:
    directory = ad.attempt_dir(work_dir, execution, node, 0)
    fd = ad.try_lock(directory)
    assert fd is not None
    if claim:
        ad.write_claim(directory, {"pid": None, "mode": "process", "exec": execution})
    (directory / ad.STDERR).write_text("log")
    ad.release(fd)
    return directory


def _age(directory: Path, when: float) -> None:
    for entry in directory.iterdir():
        os.utime(entry, (when, when))
    os.utime(directory, (when, when))


def test_sweep_removes_only_old_unlocked_dirs_of_executions_that_are_gone(tmp_path: Path) -> None:
    work = tmp_path / "attempts"
    old = time.time() - 2 * DAY
    gone = _attempt(work, "p/d/gone", "n0")
    kept = _attempt(work, "p/d/kept", "n0")
    recent = _attempt(work, "p/d/gone", "n1")
    legacy = _attempt(work, "p/d/gone", "n2", claim=False)
    legacy.joinpath(ad.CLAIMED).write_text(json.dumps({"pid": None, "mode": "process"}))
    locked = _attempt(work, "p/d/gone", "n3")
    for d in (gone, kept, legacy, locked):
        _age(d, old)
    scratch = work / "warm-scratch.out"  # a warm worker's scratch file in work_dir: untouched
    scratch.write_text("x")
    fd = ad.try_lock(locked)  # a running attempt holds its lock
    assert fd is not None
    try:
        asked: list[set[str]] = []

        def existing(keys: set[str]) -> set[str]:
            asked.append(keys)
            return keys & {"p/d/kept"}

        removed = ad.sweep(work, time.time() - DAY, existing)
    finally:
        ad.release(fd)
    assert removed == 1
    assert not gone.exists()
    assert kept.exists() and recent.exists() and legacy.exists() and locked.exists()
    assert scratch.exists()
    assert set().union(*asked) == {"p/d/gone", "p/d/kept"}


# ------------------------------------------------------------------ the service
def _attempt_dirs(work_dir: Path) -> list[Path]:
    return [d for d in work_dir.glob("??/*") if d.is_dir()]


def _claims(work_dir: Path) -> set[str]:
    return {str((ad.read_claim(d) or {}).get("exec")) for d in _attempt_dirs(work_dir)}


@pytest.mark.parametrize("warm_workers", [0, 2])
def test_service_removes_a_finished_execution_and_its_attempt_dirs(
    start_propeller, make_config, admin, db_url: str, tmp_path: Path, warm_workers: int
) -> None:
    work_dir = tmp_path / "attempts"
    config = make_config(
        db_url=db_url,
        admin_endpoint=admin.address,
        retention_s=3600.0,
        retention_interval_s=3600.0,  # runs once at start; the test drives further runs
        process=ProcessPluginConfig(
            work_dir=str(work_dir), cpu=4, memory="8Gi", warm_workers=warm_workers
        ),
    )
    p = start_propeller(config)
    p.launch("done1", w.simple, {"x": 3})
    p.wait_done("done1")
    p.launch("slow1", w.sleeper, {"seconds": 60.0})
    wait_until(lambda: "p/d/slow1" in _claims(work_dir), timeout=30, message="slow1 runs")
    assert "p/d/done1" in _claims(work_dir)  # claims name their execution

    janitor = p.running.retention
    assert janitor is not None
    # Within the retention nothing goes.
    assert janitor.run_once().executions == 0
    p.state("done1")
    # Once admin has every event of done1, two hours later it goes with its attempt dirs;
    # the running one stays (its dirs are locked by its process, its row is not terminal).
    wait_until(
        lambda: p.running.database.run(lambda r: r.outbox_size(), write=False) == 0,
        message="events delivered",
    )
    finished_dirs = [d for d in _attempt_dirs(work_dir) if "done1" in json.dumps(ad.read_claim(d))]
    janitor.clock = lambda: time.time() + 7200
    result = janitor.run_once()
    assert result.executions == 1
    assert result.attempt_dirs == len(finished_dirs) >= 1
    with pytest.raises(grpc.RpcError) as err:
        p.state("done1")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert p.state("slow1").phase == WP.WORKFLOW_EXECUTION_PHASE_RUNNING
    assert "p/d/slow1" in _claims(work_dir)
    assert "p/d/done1" not in _claims(work_dir)
    # Outputs of the removed execution stay in the blob store (admin's data).
    assert int_output(p.outputs("done1")) == 12
    metrics = _scrape(p.running.metrics_url)
    assert 'caddis_propeller_retention_removed_total{what="executions"} 1.0' in metrics
    assert "caddis_propeller_retention_last_success_timestamp_seconds" in metrics
    p.stub.AbortExecution(
        propeller_service_pb2.AbortExecutionRequest(execution_id=exec_id("slow1"), cause="t")
    )


def test_service_janitor_runs_on_its_interval(start_propeller, make_config, admin) -> None:
    config = make_config(admin_endpoint=admin.address, retention_s=0.001, retention_interval_s=0.05)
    p = start_propeller(config)
    p.launch("quick", w.simple, {"x": 1})

    def gone() -> bool:
        try:
            p.state("quick")
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.NOT_FOUND
        return False

    wait_until(gone, timeout=30, message="quick removed by the periodic janitor")
    # Removed only after admin had every event of it, the terminal one included.
    assert admin.servicer.workflow_phases("quick")[-1] == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED


def _scrape(url: str | None) -> str:
    assert url is not None
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_retention_settings_come_from_the_environment() -> None:
    config = PropellerConfig.load(
        env={
            "CADDIS_PROPELLER_RETENTION_S": "86400",
            "CADDIS_PROPELLER_RETENTION_INTERVAL_S": "60",
            "CADDIS_PROPELLER_RETENTION_BATCH": "50",
        }
    )
    assert (config.retention_s, config.retention_interval_s, config.retention_batch) == (
        86400.0,
        60.0,
        50,
    )
    defaults = PropellerConfig.load(env={})
    assert defaults.retention_s == 7 * DAY and defaults.retention_interval_s == 300.0
