"""Caching through a real datacatalog, abort of running processes, events while admin is down."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis_datacatalog.config import DataCatalogConfig
from caddis_datacatalog.server import serve as serve_datacatalog
from caddis_idl.core.v1 import execution_pb2
from caddis_idl.propeller.v1 import propeller_service_pb2
from tests.propeller.service import workflows as w
from tests.propeller.service.conftest import WP, exec_id, int_output
from tests.support import free_port, wait_until

CS = execution_pb2.CatalogCacheStatus


@pytest.fixture
def datacatalog(tmp_path: Path, storage):  # type: ignore[no-untyped-def]
    config = DataCatalogConfig(
        server=ServerConfig(port=0, metrics_port=None, grace_period_s=0.2),
        database=DatabaseConfig(url=f"sqlite:///{tmp_path / 'catalog.db'}"),
        data_prefix=f"file://{tmp_path / 'catalog'}/",
    )
    running = serve_datacatalog(config, storage=storage)
    yield running
    running.stop(0)


def _runs(markers: Path, kind: str) -> int:
    if not markers.exists():
        return 0
    return sum(1 for f in markers.iterdir() if f.name.split("|")[3] == kind)


def _cache_statuses(admin, name: str) -> list[int]:  # type: ignore[no-untyped-def]
    with admin.servicer.lock:
        return [
            e.node_event.task_node_metadata.cache_status
            for e in admin.servicer.events
            if e.HasField("node_event")
            and e.node_event.id.execution_id.name == name
            and e.node_event.task_node_metadata.cache_status
        ]


def test_cache_miss_then_hit(start_propeller, make_config, datacatalog, admin, markers) -> None:
    p = start_propeller(
        make_config(datacatalog_endpoint=datacatalog.address, admin_endpoint=admin.address)
    )
    p.launch("c1", w.cached, {"x": 7})
    assert p.wait_done("c1").phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert int_output(p.outputs("c1")) == 49
    assert _runs(markers, "square") == 1
    p.launch("c2", w.cached, {"x": 7})
    assert p.wait_done("c2").phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert int_output(p.outputs("c2")) == 49
    assert _runs(markers, "square") == 1  # served from the cache
    wait_until(lambda: CS.CATALOG_CACHE_STATUS_HIT in _cache_statuses(admin, "c2"))
    # overwrite_cache runs it again; skip_cache too.
    p.launch("c3", w.cached, {"x": 7}, overwrite_cache=True)
    assert p.wait_done("c3").phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    p.launch("c4", w.cached, {"x": 7}, skip_cache=True)
    assert p.wait_done("c4").phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert _runs(markers, "square") == 3


def test_cache_serialize_runs_once(
    start_propeller, make_config, datacatalog, monkeypatch, markers
) -> None:
    monkeypatch.setenv("CADDIS_TEST_TASK_DELAY", "0.5")
    p = start_propeller(
        make_config(datacatalog_endpoint=datacatalog.address, reservation_heartbeat_s=1.0)
    )
    for i in range(3):
        p.launch(f"s{i}", w.cached, {"x": 5})
    for i in range(3):
        state = p.wait_done(f"s{i}", timeout=30)
        assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, state.error
        assert int_output(p.outputs(f"s{i}")) == 25
    assert _runs(markers, "square") == 1


def test_catalog_down_runs_uncached(start_propeller, make_config, admin, markers) -> None:
    p = start_propeller(
        make_config(
            datacatalog_endpoint=f"127.0.0.1:{free_port()}",
            admin_endpoint=admin.address,
            catalog_timeout_s=0.5,
        )
    )
    p.launch("down1", w.cached, {"x": 3})
    state = p.wait_done("down1")
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, state.error
    assert int_output(p.outputs("down1")) == 9
    wait_until(
        lambda: CS.CATALOG_CACHE_STATUS_LOOKUP_FAILURE in _cache_statuses(admin, "down1"),
        message="the event says the lookup failed",
    )


def test_abort_stops_running_process(start_propeller, make_config, admin, markers) -> None:
    p = start_propeller(make_config(admin_endpoint=admin.address))
    p.launch("ab1", w.sleeper, {"seconds": 60.0})
    attempts = Path(p.running.plugin.work_dir)

    def running_pid() -> int | None:
        from caddis_propeller.plugins import attempt_dir as ad

        # A fresh process's claim is the ``claimed`` file, a warm worker's is in ``lock``.
        for lock in attempts.rglob(ad.LOCK):
            pid = (ad.read_claim(lock.parent) or {}).get("pid")
            if pid:
                return int(pid)
        return None

    pid = wait_until(running_pid, message="task process started")
    p.stub.AbortExecution(
        propeller_service_pb2.AbortExecutionRequest(execution_id=exec_id("ab1"), cause="test")
    )
    assert p.wait_done("ab1").phase == WP.WORKFLOW_EXECUTION_PHASE_ABORTED

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A warm worker runs the task in-process: the abort kills that worker.
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"

    wait_until(gone, timeout=15, message="task process stopped")
    wait_until(lambda: WP.WORKFLOW_EXECUTION_PHASE_ABORTED in admin.servicer.workflow_phases("ab1"))


def test_unknown_execution_is_not_found(start_propeller, make_config) -> None:
    import grpc

    p = start_propeller(make_config())
    with pytest.raises(grpc.RpcError) as info:
        p.state("nope")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        p.stub.AbortExecution(
            propeller_service_pb2.AbortExecutionRequest(execution_id=exec_id("nope"))
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_events_wait_in_outbox_while_admin_is_down(start_propeller, make_config, admin) -> None:
    admin.servicer.available = False
    p = start_propeller(make_config(admin_endpoint=admin.address, event_retry_max_s=0.3))
    p.launch("ob1", w.simple, {"x": 2})
    assert p.wait_done("ob1").phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    waiting = p.running.database.run(lambda r: r.outbox_size(), write=False)
    assert waiting > 0
    assert admin.servicer.workflow_phases("ob1") == []
    admin.servicer.available = True
    wait_until(
        lambda: WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED in admin.servicer.workflow_phases("ob1"),
        message="events delivered once admin is back",
    )
    wait_until(lambda: p.running.database.run(lambda r: r.outbox_size(), write=False) == 0)
    time.sleep(0)  # nothing else to wait for
