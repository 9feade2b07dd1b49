"""Launch through gRPC and run workflows to completion with the process plugin."""

from __future__ import annotations

import itertools
from pathlib import Path

from caddis_idl.core.v1 import execution_pb2
from tests.propeller.service import workflows as w
from tests.propeller.service.conftest import WP, int_output
from tests.support import wait_until


def test_simple_workflow_completes_and_reports_events(start_propeller, make_config, admin) -> None:
    p = start_propeller(make_config(admin_endpoint=admin.address))
    response = p.launch("simple1", w.simple, {"x": 3})
    assert not response.already_launched
    state = p.wait_done("simple1")
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, state.error
    assert int_output(p.outputs("simple1")) == 12
    wait_until(
        lambda: WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED in admin.servicer.workflow_phases("simple1"),
        message="SUCCEEDED event at admin",
    )
    phases = admin.servicer.workflow_phases("simple1")
    assert phases[0] == WP.WORKFLOW_EXECUTION_PHASE_QUEUED


def test_pipeline_with_dynamic_and_map(start_propeller, make_config, markers: Path) -> None:
    p = start_propeller(make_config())
    p.launch("pipe1", w.pipeline, {"n": 5})
    state = p.wait_done("pipe1", timeout=60)
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, state.error
    assert int_output(p.outputs("pipe1")) == sum(4 * i for i in range(5))
    counts = {c.phase: c.count for c in state.node_counts}
    assert counts.get(execution_pb2.NodeExecutionPhase.NODE_EXECUTION_PHASE_SUCCEEDED, 0) >= 3


def test_launch_is_idempotent(start_propeller, make_config) -> None:
    p = start_propeller(make_config())
    assert not p.launch("idem", w.simple, {"x": 1}).already_launched
    assert p.launch("idem", w.simple, {"x": 1}).already_launched
    assert p.wait_done("idem").phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED


def test_metrics_endpoint(start_propeller, make_config) -> None:
    import urllib.request

    p = start_propeller(make_config())
    p.launch("m1", w.simple, {"x": 1})
    assert p.wait_done("m1").phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
    assert p.running.metrics_url is not None
    body = urllib.request.urlopen(p.running.metrics_url, timeout=5).read().decode()
    for series in (
        "caddis_propeller_round_seconds_count",
        "caddis_propeller_queue_depth",
        "caddis_propeller_active_executions",
        "caddis_propeller_node_transition_seconds_count",
        "caddis_propeller_task_start_seconds_count",
        'caddis_propeller_node_time_seconds_count{part="user_code"}',
        'caddis_propeller_node_time_seconds_count{part="plugin_start"}',
    ):
        assert series in body, series
    # The runtime's timings reach propeller: time spent in user code is measured, not zero.
    sums = {
        line.split()[0]: float(line.split()[1])
        for line in body.splitlines()
        if line.startswith("caddis_propeller_node_time_seconds_sum{")
    }
    assert sums['caddis_propeller_node_time_seconds_sum{part="user_code"}'] > 0, sums


def test_resource_slots_keep_the_machine_from_oversubscribing(
    start_propeller, make_config, markers: Path, tmp_path: Path
) -> None:
    from caddis_propeller.config import ProcessPluginConfig

    process = ProcessPluginConfig(
        work_dir=str(tmp_path / "attempts"), cpu=1, memory="1Gi", warm_workers=0
    )
    p = start_propeller(make_config(process=process))
    p.launch("hogs", w.hogs, {})
    state = p.wait_done("hogs", timeout=60)
    assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, state.error
    spans = sorted(tuple(map(float, f.read_text().split())) for f in markers.glob("span-*"))
    assert len(spans) == 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 0.01, f"tasks overlapped: {spans}"
