"""After runs through the sandbox, each service's /metrics shows its key series.

admin: requests by RPC, executions by phase; propeller: round latency, queue depth, node time
split (user code vs upload); datacatalog: cache hits and misses, reservations.
"""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Sandbox

pytestmark = pytest.mark.slow

PROGRAM = """
from caddis import task, workflow


@task(cache=True, cache_version="1", cache_serialize=True)
def square(x: int) -> int:
    return x * x


@task
def plus_one(x: int) -> int:
    return x + 1


@workflow
def wf(x: int) -> int:
    return plus_one(x=square(x=x))
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page by (name, labels)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lbl), v in samples.items() if n == name and want <= lbl)


def present(samples: Samples, name: str) -> bool:
    return any(n == name for n, _ in samples)


@pytest.fixture(scope="module")
def after_runs(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Samples]:
    """Run a workflow twice (cache miss, then hit) and scrape every service."""
    import importlib
    import sys
    import uuid

    root = tmp_path_factory.mktemp("code")
    name = f"e2e_metrics_{uuid.uuid4().hex[:8]}"
    (root / f"{name}.py").write_text(PROGRAM)
    sys.path.insert(0, str(root))
    try:
        mod = importlib.import_module(name)
        for _ in range(2):
            execution = sandbox.remote.execute(mod.wf, {"x": 7}, wait=True, timeout=120)
            assert execution.is_successful, execution.error
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(name, None)
    return {s: scrape(sandbox.metrics_url(s)) for s in ("admin", "propeller", "datacatalog")}


def test_admin_metrics(after_runs: dict[str, Samples]) -> None:
    admin = after_runs["admin"]
    assert value(admin, "caddis_grpc_requests_total", method="CreateExecution", code="OK") >= 2
    assert value(admin, "caddis_grpc_requests_total", method="CreateEvents") > 0
    assert value(admin, "caddis_admin_executions", phase="SUCCEEDED") >= 2


def test_propeller_metrics(after_runs: dict[str, Samples]) -> None:
    prop = after_runs["propeller"]
    assert value(prop, "caddis_propeller_round_seconds_count") > 0
    assert present(prop, "caddis_propeller_queue_depth")
    assert value(prop, "caddis_propeller_node_time_seconds_count", part="user_code") > 0
    assert value(prop, "caddis_propeller_node_time_seconds_count", part="output_upload") > 0
    assert value(prop, "caddis_propeller_cache_total", outcome="hit") >= 1
    assert value(prop, "caddis_propeller_cache_total", outcome="miss") >= 1


def test_datacatalog_metrics(after_runs: dict[str, Samples]) -> None:
    dc = after_runs["datacatalog"]
    assert value(dc, "caddis_datacatalog_cache_hits_total") >= 1
    assert value(dc, "caddis_datacatalog_cache_misses_total") >= 1
    # square is cache_serialize: its miss took a reservation, released after the put.
    assert value(dc, "caddis_datacatalog_reservations_granted_total") >= 1
    assert value(dc, "caddis_datacatalog_reservations_released_total") >= 1
