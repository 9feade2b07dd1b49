"""End-to-end propeller benchmarks: a real propeller (SQLite, file:// blobs, process plugin
with warm workers) serving gRPC, a recording EventService as admin, tasks as OS processes.

    python benchmarks/propeller_e2e.py [--launches 20] [--map-items 10000] [--fan-out 1000]

Measures:
- submit -> first task start: LaunchExecution call to the task attempt's claim (the moment a
  worker or process takes the attempt), p50/p90 over ``--launches`` one-task workflows;
- count_characters end to end: LaunchExecution to SUCCEEDED seen through GetExecutionState;
- per-node overhead: a 50-node chain of no-op tasks, (wall time) / nodes, with state
  persisted after every round and events sent to admin (task process time included: this is
  everything propeller adds per node on the warm path);
- engine+persist overhead per node with an instant in-process runner (no processes at all);
- a map task over ``--map-items`` trivial items; a dynamic fan-out of ``--fan-out`` tasks;
- ``--only cached-map``: a map task of cached items with a datacatalog (``caddis serve
  datacatalog`` on SQLite, its own process): the first run fills the cache, the rerun is all
  hits (item lookups only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
# Task processes write to a throw-away store: no fsync per object (see the storage section).
os.environ.setdefault("CADDIS_STORAGE_LOCAL_FSYNC", "false")

import grpc  # noqa: E402

from caddis._serving.config import DatabaseConfig, ServerConfig  # noqa: E402
from caddis.storage import StorageConfig  # noqa: E402
from caddis_idl.admin.v1 import event_service_pb2, event_service_pb2_grpc  # noqa: E402
from caddis_idl.core.v1 import execution_pb2, identifier_pb2, literals_pb2  # noqa: E402
from caddis_idl.propeller.v1 import propeller_service_pb2, propeller_service_pb2_grpc  # noqa: E402
from caddis_propeller.config import ProcessPluginConfig, PropellerConfig  # noqa: E402
from caddis_propeller.server import serve  # noqa: E402
from tests.propeller.service import workflows as w  # noqa: E402
from tests.propeller.service.conftest import compile_closure, to_literals  # noqa: E402

WP = execution_pb2.WorkflowExecutionPhase
TERMINAL = {
    WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED,
    WP.WORKFLOW_EXECUTION_PHASE_FAILED,
    WP.WORKFLOW_EXECUTION_PHASE_ABORTED,
}


class Admin(event_service_pb2_grpc.EventServiceServicer):
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def CreateEvents(self, request: Any, context: Any) -> Any:
        with self.lock:
            self.count += len(request.events)
        ok = event_service_pb2.EventOutcome.EVENT_OUTCOME_ACCEPTED
        return event_service_pb2.CreateEventsResponse(
            results=[
                event_service_pb2.EventResult(request_id=e.request_id, outcome=ok)
                for e in request.events
            ]
        )


class Bench:
    def __init__(self, tmp: Path, warm: int, datacatalog_endpoint: str = "") -> None:
        self.admin = Admin()
        self.admin_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        event_service_pb2_grpc.add_EventServiceServicer_to_server(self.admin, self.admin_server)
        admin_port = self.admin_server.add_insecure_port("127.0.0.1:0")
        self.admin_server.start()
        self.storage = StorageConfig(local_root=str(tmp / "blobs"), local_fsync=False)
        config = PropellerConfig(
            server=ServerConfig(port=0, metrics_port=0),
            database=DatabaseConfig(url=f"sqlite:///{tmp / 'propeller.db'}"),
            admin_endpoint=f"127.0.0.1:{admin_port}",
            datacatalog_endpoint=datacatalog_endpoint,
            poll_interval_s=0.01,
            resync_interval_s=1.0,
            process=ProcessPluginConfig(
                work_dir=str(tmp / "attempts"), warm_workers=warm, warm_batch=256
            ),
        )
        self.running = serve(config, storage=self.storage)
        self.channel = grpc.insecure_channel(self.running.address)
        self.stub = propeller_service_pb2_grpc.PropellerServiceStub(self.channel)
        self._closures: dict[str, Any] = {}
        # Let the warm workers finish importing before measuring.
        time.sleep(2.0)

    def launch(self, name: str, wf: Any, inputs: dict[str, Any]) -> float:
        key = wf.name
        if key not in self._closures:
            self._closures[key] = compile_closure(wf)
        uri = f"{self.storage.resolved_metadata_prefix()}launch/{name}/inputs.pb"
        self.running.store.write_proto(uri, to_literals(wf, inputs))
        request = propeller_service_pb2.LaunchExecutionRequest(
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                project="p", domain="d", name=name
            ),
            compiled_closure=self._closures[key],
            inputs_uri=uri,
        )
        began = time.time()
        self.stub.LaunchExecution(request)
        return began

    def wait(self, name: str, timeout: float = 600, poll: float = 0.002) -> float:
        request = propeller_service_pb2.GetExecutionStateRequest(
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                project="p", domain="d", name=name
            )
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.stub.GetExecutionState(request)
            if state.phase in TERMINAL:
                if state.phase != WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED:
                    raise RuntimeError(f"{name} ended {state.phase}: {state.error}")
                return time.time()
            time.sleep(poll)
        raise TimeoutError(name)

    def first_claim(self, since: float) -> float | None:
        attempts = Path(self.running.plugin.work_dir)
        # A fresh process's claim is the ``claimed`` file; a warm worker claims in ``lock``.
        claims = [*attempts.rglob("claimed"), *attempts.rglob("lock")]
        times = [p.stat().st_mtime for p in claims]
        times = [t for t in times if t >= since]
        return min(times) if times else None

    def worker_cpu_s(self) -> float:
        """CPU seconds (user + system) the live warm workers used so far."""
        pool = self.running.plugin.pool
        total = 0.0
        for pid in pool.worker_pids() if pool is not None else []:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def close(self) -> None:
        self.channel.close()
        self.running.stop(0)
        self.admin_server.stop(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--launches", type=int, default=20)
    parser.add_argument("--map-items", type=int, default=10_000)
    parser.add_argument("--fan-out", type=int, default=1000)
    parser.add_argument("--warm", type=int, default=2)
    parser.add_argument(
        "--only",
        choices=["all", "map", "cached-map"],
        default="all",
        help="map: only the map task (and propeller's peak RSS), for quick re-measuring; "
        "cached-map: a cached map task, filled then rerun from the cache",
    )
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only == "cached-map":
            return print_results(cached_map(Path(tmp), args.warm, args.map_items))
        bench = Bench(Path(tmp), args.warm)
        try:
            if args.only == "map":
                cpu0, workers0 = process_cpu_s(), bench.worker_cpu_s()
                began = bench.launch("map", w.map_noop, {"xs": list(range(args.map_items))})
                results[f"map_{args.map_items}_s"] = bench.wait("map", poll=0.05) - began
                # CPU per item is the load-independent number on a shared machine.
                n = args.map_items
                results["propeller_cpu_ms_per_item"] = 1000 * (process_cpu_s() - cpu0) / n
                results["workers_cpu_ms_per_item"] = 1000 * (bench.worker_cpu_s() - workers0) / n
                results["propeller_peak_rss_mb"] = peak_rss_mb()
                return print_results(results)
            # 1. submit -> first task start
            starts = []
            for i in range(args.launches):
                name = f"start{i}"
                began = bench.launch(name, w.counting, {"text": "hello"})
                bench.wait(name)
                claim = bench.first_claim(began)
                if claim is not None:
                    starts.append(claim - began)
            starts.sort()
            results["submit_to_first_task_start_p50_ms"] = 1000 * statistics.median(starts)
            results["submit_to_first_task_start_p90_ms"] = 1000 * starts[int(0.9 * len(starts))]
            # 2. count_characters end to end
            e2e = []
            for i in range(args.launches):
                name = f"count{i}"
                began = bench.launch(name, w.counting, {"text": "the quick brown fox"})
                e2e.append(bench.wait(name) - began)
            results["count_characters_e2e_p50_ms"] = 1000 * statistics.median(e2e)
            # 3. per-node overhead over a 50-node chain
            began = bench.launch("chain", w.chain50, {"x": 1})
            results["chain50_per_node_ms"] = 1000 * (bench.wait("chain") - began) / 50
            # 4. map over N trivial items
            began = bench.launch("map", w.map_noop, {"xs": list(range(args.map_items))})
            results[f"map_{args.map_items}_s"] = bench.wait("map", poll=0.05) - began
            # 5. dynamic fan-out
            began = bench.launch("fan", w.fan, {"n": args.fan_out})
            results[f"dynamic_fan_out_{args.fan_out}_s"] = bench.wait("fan", poll=0.05) - began
            results["events_sent"] = bench.admin.count
        finally:
            bench.close()
        results["engine_persist_per_node_ms"] = instant_runner_overhead(Path(tmp))
    results["propeller_peak_rss_mb"] = peak_rss_mb()
    print_results(results)


def cached_map(tmp: Path, warm: int, items: int) -> dict[str, Any]:
    """Fill a cached map task's cache, then rerun it: the rerun is all item lookups."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from datacatalog_lookup import process_cpu_seconds, start_server  # type: ignore[import-not-found]

    # Its own process, as deployed: sharing propeller's GIL would make both slower and the
    # numbers erratic (futex hand-offs between their threads dominated a profile).
    catalog, address = start_server(f"sqlite:///{tmp / 'catalog.db'}", tmp, workers=8)
    bench = Bench(tmp, warm, datacatalog_endpoint=address)
    results: dict[str, Any] = {}
    try:
        xs = {"xs": list(range(items))}
        began = bench.launch("fill", w.map_cached, xs)
        results[f"cached_map_{items}_fill_s"] = bench.wait("fill", poll=0.05) - began
        # The fill's events may still be on their way to admin; measured alongside the
        # rerun they would double its CPU and time.
        quiet_until(lambda: bench.admin.count)
        cpu0, catalog_cpu0 = process_cpu_s(), process_cpu_seconds(catalog.pid)
        began = bench.launch("rerun", w.map_cached, xs)
        rerun = bench.wait("rerun", poll=0.01) - began
        results[f"cached_map_{items}_rerun_s"] = rerun
        results["rerun_ms_per_item"] = 1000 * rerun / items
        results["rerun_propeller_cpu_ms_per_item"] = 1000 * (process_cpu_s() - cpu0) / items
        catalog_cpu = process_cpu_seconds(catalog.pid) - catalog_cpu0
        results["rerun_datacatalog_cpu_ms_per_item"] = 1000 * catalog_cpu / items
    finally:
        bench.close()
        catalog.terminate()
        catalog.wait(timeout=30)
    return results


def quiet_until(count: Any, settle: float = 0.5, timeout: float = 120.0) -> None:
    """Wait until ``count()`` has not changed for ``settle`` seconds (or ``timeout``)."""
    deadline = time.time() + timeout
    last, since = count(), time.time()
    while time.time() < deadline:
        time.sleep(0.05)
        now = count()
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= settle:
            return


def print_results(results: dict[str, Any]) -> None:
    """Print the results as JSON, floats rounded."""
    print(
        json.dumps(
            {k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}, indent=2
        )
    )


def process_cpu_s() -> float:
    """CPU seconds of this process: propeller and the benchmark's own polling client."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process (propeller runs in-process), in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def instant_runner_overhead(tmp: Path, nodes: int = 50, runs: int = 20) -> float:
    """Controller + engine + persisted state + outbox per node, tasks answered in-process."""
    from caddis.storage import get_store
    from caddis_propeller.datastore import BlobDataStore
    from caddis_propeller.engine.interfaces import Succeeded, TaskAttempt
    from caddis_propeller.manager.controller import Controller
    from caddis_propeller.manager.metrics import PropellerMetrics
    from caddis_propeller.repository.database import Database

    class Instant:
        def start(self, attempt: TaskAttempt) -> Any:
            return Succeeded(
                outputs=literals_pb2.LiteralMap(literals={"o0": attempt.inputs.literals["x"]})
            )

        def check(self, attempt: TaskAttempt, handle: str) -> Any:
            return Succeeded()

        def abort(self, attempt: TaskAttempt, handle: str, reason: str) -> None:
            return None

    storage = StorageConfig(local_root=str(tmp / "instant"), local_fsync=False)
    prefix = storage.resolved_metadata_prefix()
    store = get_store(prefix, storage)
    db = Database(f"sqlite:///{tmp / 'instant.db'}")
    db.migrate()
    config = PropellerConfig(workers=1, replica_id="bench", poll_interval_s=0.001)
    ctl = Controller(
        config,
        database=db,
        store=store,
        data=BlobDataStore(store),
        runner=Instant(),
        catalog=None,
        metrics=PropellerMetrics(),
        metadata_prefix=prefix,
    )
    ctl.start()
    closure = compile_closure(w.chain50)
    inputs_uri = prefix + "instant-inputs.pb"
    store.write_proto(inputs_uri, to_literals(w.chain50, {"x": 1}))
    took = []
    for i in range(runs):
        request = propeller_service_pb2.LaunchExecutionRequest(
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                project="p", domain="d", name=f"i{i}"
            ),
            compiled_closure=closure,
            inputs_uri=inputs_uri,
        )
        began = time.perf_counter()
        ctl.launch(request)
        while ctl.get_state(request.execution_id).phase not in TERMINAL:
            time.sleep(0.0005)
        took.append(time.perf_counter() - began)
    ctl.stop()
    db.dispose()
    return 1000 * statistics.median(took) / nodes


if __name__ == "__main__":
    main()
