"""Cache statuses in the node events propeller sends: POPULATED on a first run, HIT on a rerun.

Covers task nodes and map tasks (array nodes report a summary of their items' statuses).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis_datacatalog.config import DataCatalogConfig
from caddis_datacatalog.server import serve as serve_datacatalog
from caddis_idl.core.v1 import execution_pb2
from tests.propeller.service import leftover_workflows as lw
from tests.propeller.service import workflows as w
from tests.propeller.service.conftest import WP, int_output
from tests.support import wait_until

CS = execution_pb2.CatalogCacheStatus
NP = execution_pb2.NodeExecutionPhase


@pytest.fixture
def datacatalog(tmp_path: Path, storage: Any) -> Iterator[Any]:
    config = DataCatalogConfig(
        server=ServerConfig(port=0, metrics_port=None, grace_period_s=0.2),
        database=DatabaseConfig(url=f"sqlite:///{tmp_path / 'catalog.db'}"),
        data_prefix=f"file://{tmp_path / 'catalog'}/",
    )
    running = serve_datacatalog(config, storage=storage)
    yield running
    running.stop(0)


def _succeeded_status(admin: Any, name: str, node_id: str) -> int | None:
    """The cache status of ``node_id``'s SUCCEEDED event, or None before it arrived."""
    with admin.servicer.lock:
        for e in admin.servicer.events:
            ne = e.node_event
            if (
                e.HasField("node_event")
                and ne.id.execution_id.name == name
                and ne.id.node_id == node_id
                and ne.phase == NP.NODE_EXECUTION_PHASE_SUCCEEDED
            ):
                return int(ne.task_node_metadata.cache_status)
    return None


def _runs(markers: Path, kind: str) -> int:
    if not markers.exists():
        return 0
    return sum(1 for f in markers.iterdir() if f.name.split("|")[3] == kind)


@pytest.fixture
def propeller(start_propeller: Any, make_config: Any, datacatalog: Any, admin: Any) -> Any:
    return start_propeller(
        make_config(datacatalog_endpoint=datacatalog.address, admin_endpoint=admin.address)
    )


def test_task_node_event_populated_then_hit(propeller: Any, admin: Any, markers: Path) -> None:
    for name in ("t1", "t2"):
        propeller.launch(name, w.cached, {"x": 5})
        assert propeller.wait_done(name).phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
        assert int_output(propeller.outputs(name)) == 25
    first = wait_until(lambda: _succeeded_status(admin, "t1", "n0"), message="t1 event")
    second = wait_until(lambda: _succeeded_status(admin, "t2", "n0"), message="t2 event")
    assert first == CS.CATALOG_CACHE_STATUS_POPULATED
    assert second == CS.CATALOG_CACHE_STATUS_HIT
    assert _runs(markers, "square") == 1


def test_map_node_event_summarises_item_statuses(propeller: Any, admin: Any, markers: Path) -> None:
    for name in ("m1", "m2"):
        propeller.launch(name, lw.cached_map, {"xs": [1, 2, 3]})
        assert propeller.wait_done(name).phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    first = wait_until(lambda: _succeeded_status(admin, "m1", "n0"), message="m1 event")
    second = wait_until(lambda: _succeeded_status(admin, "m2", "n0"), message="m2 event")
    assert first == CS.CATALOG_CACHE_STATUS_POPULATED
    assert second == CS.CATALOG_CACHE_STATUS_HIT
    assert _runs(markers, "triple") == 3
