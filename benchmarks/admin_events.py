"""Time admin's event intake: ``EventService.CreateEvents`` with batches shaped like propeller's.

admin is served in this process (``serve()``, as the tests do) over a fresh SQLite file or
PostgreSQL database; one launch plan is registered, then for each of ``--executions``
executions the script sends the events of a small dynamic run (workflow RUNNING, a parent
node and three child nodes with one task attempt each, then SUCCEEDED) as
``--batches`` CreateEvents calls, the way propeller's EventSender delivers a round's outbox
rows (same field shapes: producer id, output URIs, logs, phase versions, request ids).
Prints the median ms per call and per event, and admin's CPU per call (this process's
CPU time over the timed calls, the client's share included). ``--profile FILE`` writes a
cProfile of the timed calls.

    python benchmarks/admin_events.py [--executions 30] [--batches 4]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--profile /tmp/events.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _events(name: str) -> list:  # type: ignore[type-arg]
    """The events of one execution in the order propeller sends them (~28 events)."""
    from google.protobuf import timestamp_pb2

    from caddis_idl.admin.v1 import event_service_pb2 as evs
    from caddis_idl.core.v1 import execution_pb2 as ce
    from caddis_idl.core.v1 import identifier_pb2
    from caddis_idl.event.v1 import event_pb2
    from tests.admin.helpers import D, P, task_id

    ex = identifier_pb2.WorkflowExecutionIdentifier(project=P, domain=D, name=name)
    t = [time.time()]
    out: list[evs.BatchedEvent] = []

    def ts() -> timestamp_pb2.Timestamp:
        t[0] += 0.001
        stamp = timestamp_pb2.Timestamp()
        stamp.FromNanoseconds(int(t[0] * 1e9))
        return stamp

    def rid() -> str:
        return uuid.uuid4().hex

    def wf(phase: int) -> None:
        ev = event_pb2.WorkflowExecutionEvent(
            execution_id=ex, producer_id="propeller-0", phase=phase, occurred_at=ts()
        )
        if phase == ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED:
            ev.output_uri = f"file:///blobs/{name}/outputs.pb"
        out.append(evs.BatchedEvent(request_id=rid(), workflow_event=ev))

    def node(path: str, phase: int, parent: str = "", **kw: object) -> None:
        ev = event_pb2.NodeExecutionEvent(
            id=identifier_pb2.NodeExecutionIdentifier(node_id=path, execution_id=ex),
            producer_id="propeller-0",
            phase=phase,
            occurred_at=ts(),
            spec_node_id=path.rsplit("-", 1)[-1],
            node_name=path,
            retry_group="0",
            input_uri=f"file:///blobs/{name}/{path}/inputs.pb",
            **kw,  # type: ignore[arg-type]
        )
        if phase == ce.NODE_EXECUTION_PHASE_SUCCEEDED:
            ev.output_uri = f"file:///blobs/{name}/{path}/outputs.pb"
        if parent:
            ev.parent_node_metadata.node_id = parent
        out.append(evs.BatchedEvent(request_id=rid(), node_event=ev))

    def task(path: str, phase: int, version: int = 0) -> None:
        ev = event_pb2.TaskExecutionEvent(
            task_id=task_id("t1"),
            parent_node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id=path, execution_id=ex
            ),
            retry_attempt=0,
            phase=phase,
            phase_version=version,
            producer_id="propeller-0",
            occurred_at=ts(),
            task_type="python-task",
            input_uri=f"file:///blobs/{name}/{path}/inputs.pb",
            logs=[ce.TaskLog(name="stdout", uri=f"file:///logs/{name}/{path}")],
        )
        ev.metadata.generated_name = f"{name}-{path}"
        ev.metadata.plugin_identifier = "process"
        if phase == ce.TASK_EXECUTION_PHASE_SUCCEEDED:
            ev.output_uri = f"file:///blobs/{name}/{path}/outputs.pb"
        out.append(evs.BatchedEvent(request_id=rid(), task_event=ev))

    wf(ce.WORKFLOW_EXECUTION_PHASE_RUNNING)
    node("n0", ce.NODE_EXECUTION_PHASE_QUEUED, is_parent=True, is_dynamic=True)
    node("n0", ce.NODE_EXECUTION_PHASE_RUNNING, is_parent=True, is_dynamic=True)
    task("n0", ce.TASK_EXECUTION_PHASE_RUNNING)
    task("n0", ce.TASK_EXECUTION_PHASE_SUCCEEDED)
    node("n0", ce.NODE_EXECUTION_PHASE_DYNAMIC_RUNNING, is_parent=True, is_dynamic=True)
    for child in ("n0-0-dn0", "n0-0-dn1", "n0-0-dn2"):
        node(child, ce.NODE_EXECUTION_PHASE_QUEUED, parent="n0")
        node(child, ce.NODE_EXECUTION_PHASE_RUNNING, parent="n0")
        task(child, ce.TASK_EXECUTION_PHASE_QUEUED)
        task(child, ce.TASK_EXECUTION_PHASE_RUNNING)
        task(child, ce.TASK_EXECUTION_PHASE_RUNNING, version=1)
        task(child, ce.TASK_EXECUTION_PHASE_SUCCEEDED)
        node(child, ce.NODE_EXECUTION_PHASE_SUCCEEDED, parent="n0")
    node("n0", ce.NODE_EXECUTION_PHASE_SUCCEEDED, is_parent=True, is_dynamic=True)
    wf(ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDING)
    wf(ce.WORKFLOW_EXECUTION_PHASE_SUCCEEDED)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=30)
    parser.add_argument("--batches", type=int, default=4, help="CreateEvents calls per run")
    parser.add_argument("--postgres", default="", help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--profile", default="")
    args = parser.parse_args()

    import grpc

    from caddis_admin.server import serve
    from caddis_idl.admin.v1 import event_service_pb2 as evs
    from tests.admin.conftest import Stubs, admin_config
    from tests.admin.helpers import int_lit, lmap
    from tests.admin.test_executions import create
    from tests.admin.test_registration import register_basics

    with tempfile.TemporaryDirectory(prefix="caddis-bench-events-") as tmp:
        if args.postgres:
            import psycopg

            db = f"bench_events_{uuid.uuid4().hex[:8]}"
            base = args.postgres.rsplit("/", 1)[0]
            with psycopg.connect(args.postgres.replace("postgresql://", "postgresql://", 1)) as c:
                c.autocommit = True
                c.execute(f"CREATE DATABASE {db}")
            url = f"{base}/{db}"
        else:
            url = f"sqlite:///{tmp}/admin.db"
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            # The handler runs on a server thread: profile inside it.
            from caddis_admin.rpc import servicers

            handler = servicers.EventServicer.CreateEvents

            def profiled(self, request, context):  # type: ignore[no-untyped-def]
                if not profiling[0]:
                    return handler(self, request, context)
                return profiler.runcall(handler, self, request, context)

            servicers.EventServicer.CreateEvents = profiled  # type: ignore[method-assign]
        profiling = [False]
        server = serve(admin_config(url, Path(tmp)))
        try:
            with grpc.insecure_channel(server.address) as channel:
                stubs = Stubs(channel)
                register_basics(stubs)
                names = [
                    create(stubs, inputs=lmap(x=int_lit(1))) for _ in range(args.executions + 2)
                ]
                calls: list[tuple[float, int]] = []
                cpu = 0.0
                for i, name in enumerate(names):
                    events = _events(name)
                    size = -(-len(events) // args.batches)
                    for start in range(0, len(events), size):
                        request = evs.CreateEventsRequest(events=events[start : start + size])
                        c0, t0 = time.process_time(), time.perf_counter()
                        profiling[0] = i >= 2
                        response = stubs.events.CreateEvents(request)
                        took = time.perf_counter() - t0
                        bad = [
                            r for r in response.results if r.outcome != evs.EVENT_OUTCOME_ACCEPTED
                        ]
                        assert not bad, bad
                        if i >= 2:  # the first two runs warm up
                            cpu += time.process_time() - c0
                            calls.append((took, len(request.events)))
                if profiler is not None:
                    profiler.dump_stats(args.profile)
        finally:
            server.stop(grace=0)
            if args.postgres:
                with psycopg.connect(args.postgres) as c:
                    c.autocommit = True
                    c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    per_call = statistics.median(took for took, _ in calls) * 1000
    per_event = statistics.median(took / n for took, n in calls) * 1000
    events_per_call = statistics.mean(n for _, n in calls)
    print(
        f"{'postgresql' if args.postgres else 'sqlite'}: {len(calls)} CreateEvents calls of "
        f"{events_per_call:.1f} events: median {per_call:.1f} ms per call, "
        f"{per_event:.2f} ms per event; CPU {cpu / len(calls) * 1000:.1f} ms per call"
    )


if __name__ == "__main__":
    main()
