"""admin throughput on PostgreSQL over loopback.

Measures GetExecution/s and CreateExecution/s through gRPC (admin in its own process,
clients on threads here), then lists 100,000 executions page by page and reports how the
time per page changes from the first pages to the last.

Usage:
    python benchmarks/admin_throughput.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
        [--seconds 5] [--threads 8] [--rows 100000] [--page 100]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import threading
import time
import uuid


import grpc
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def _server(db_url: str, state: str, conn) -> None:  # type: ignore[no-untyped-def]
    from caddis._serving.config import DatabaseConfig, ServerConfig
    from caddis.storage import StorageConfig
    from caddis_admin.config import AdminConfig, SchedulerConfig
    from caddis_admin.server import serve

    cfg = AdminConfig(
        server=ServerConfig(port=0, metrics_port=None, max_workers=16),
        database=DatabaseConfig(url=db_url, pool_size=16),
        state_dir=state,
        storage=StorageConfig(local_root=state + "/storage", local_fsync=False),
        metadata_prefix=f"file://{state}/blobs",
        scheduler=SchedulerConfig(enabled=False),
    )
    server = serve(cfg)
    conn.send(server.address)
    conn.recv()
    server.stop(grace=0)


def _rate(fn, seconds: float, threads: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            fn(i, counts[i])
            counts[i] += 1

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    start = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    total = sum(counts)
    return total / (time.monotonic() - start), total


def _get_client(address: str, names: list[str], seconds: float, threads: int, out) -> None:  # type: ignore[no-untyped-def]
    from caddis_idl.admin.v1 import execution_service_pb2 as es, execution_service_pb2_grpc
    from caddis_idl.core.v1 import identifier_pb2

    channel = grpc.insecure_channel(address)
    stub = execution_service_pb2_grpc.ExecutionServiceStub(channel)
    ids = [identifier_pb2.WorkflowExecutionIdentifier(project="proj", domain="development", name=n) for n in names]

    def get(i: int, n: int) -> None:
        stub.GetExecution(es.GetExecutionRequest(id=ids[(i * 7919 + n) % len(ids)]))

    out.send(_rate(get, seconds, threads)[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--page", type=int, default=100)
    ap.add_argument("--clients", type=int, default=2, help="client processes for GetExecution")
    args = ap.parse_args()

    from caddis_idl.admin.v1 import (
        common_pb2,
        execution_pb2,
        execution_service_pb2 as es,
        task_pb2,
        workflow_pb2,
    )
    from caddis_idl.core.v1 import identifier_pb2
    from tests.admin.conftest import Stubs
    from tests.admin.helpers import D, P, int_lit, lmap, lp_id, task_id, task_template, wf_id, workflow_template
    from caddis_idl.admin.v1 import task_service_pb2 as ts, workflow_service_pb2 as ws

    params = conninfo_to_dict(args.postgres)
    name = f"caddis_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(make_conninfo(**params), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    db_url = f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:{params.get('port', '5432')}/{name}"
    state = tempfile.mkdtemp(prefix="caddis-admin-bench-")
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_server, args=(db_url, state, child))
    proc.start()
    try:
        address = parent.recv()
        channel = grpc.insecure_channel(address)
        stubs = Stubs(channel)
        stubs.tasks.CreateTask(ts.CreateTaskRequest(id=task_id("t1"), spec=task_pb2.TaskSpec(template=task_template("t1"))))
        stubs.workflows.CreateWorkflow(ws.CreateWorkflowRequest(id=wf_id("wf"), spec=workflow_pb2.WorkflowSpec(template=workflow_template("wf"))))
        spec = execution_pb2.ExecutionSpec(launch_plan=lp_id("wf"))

        def create(i: int, n: int) -> None:
            stubs.executions.CreateExecution(es.CreateExecutionRequest(project=P, domain=D, spec=spec, inputs=lmap(x=int_lit(n))))

        create_rate, created = _rate(create, args.seconds, args.threads)
        names = [e.id.name for e in stubs.executions.ListExecutions(es.ListExecutionsRequest(
            project=P, domain=D, options=common_pb2.ListOptions(limit=1000))).executions]

        # Clients in their own processes, so that the Python client does not share a GIL.
        ctx = mp.get_context("spawn")
        pipes = [ctx.Pipe() for _ in range(args.clients)]
        procs = [ctx.Process(target=_get_client, args=(address, names, args.seconds, args.threads, w)) for _, w in pipes]
        t0 = time.monotonic()
        for p in procs:
            p.start()
        gets = sum(r.recv() for r, _ in pipes)
        for p in procs:
            p.join()
        # Process start-up is not part of the window; each client ran for args.seconds.
        get_rate = gets / args.seconds
        del t0

        # Bulk rows for listing, straight into PostgreSQL (creation speed is measured above).
        spec_bytes = execution_pb2.ExecutionSpec(launch_plan=lp_id("wf")).SerializeToString()
        base = int(time.time() * 1e6)
        with psycopg.connect(make_conninfo(**dict(params, dbname=name))) as c, c.cursor() as cur:
            with cur.copy("COPY executions (project, domain, name, lp_name, lp_version, wf_name, wf_version, phase, mode, admitted, created_at, updated_at, last_event_at, reference_execution, inputs_uri, user_inputs_uri, outputs_uri, closure_uri, labels, spec, closure) FROM STDIN") as cp:
                for k in range(args.rows - created):
                    cp.write_row((P, D, f"bulk{k:07d}", "wf", "v1", "wf", "v1", 1, 1, True, base - k * 1000, base, 0, "", "", "", "", "", "", spec_bytes, b""))
            cur.execute("ANALYZE executions")
        page_times: list[float] = []
        token, total = "", 0
        while True:
            t0 = time.perf_counter()
            resp = stubs.executions.ListExecutions(es.ListExecutionsRequest(
                project=P, domain=D, options=common_pb2.ListOptions(limit=args.page, token=token)))
            page_times.append(time.perf_counter() - t0)
            total += len(resp.executions)
            token = resp.next_token
            if not token:
                break
        n = len(page_times)
        first = statistics.median(page_times[: max(1, n // 10)]) * 1000
        middle = statistics.median(page_times[n // 2 - n // 20 : n // 2 + n // 20 + 1]) * 1000
        last = statistics.median(page_times[-max(1, n // 10) :]) * 1000
        print(f"CreateExecution: {create_rate:,.0f}/s ({created} in {args.seconds}s, {args.threads} threads)")
        print(f"GetExecution:    {get_rate:,.0f}/s ({gets} in {args.seconds}s, {args.clients} processes x {args.threads} threads)")
        print(f"ListExecutions:  {total:,} rows in {n} pages of {args.page}; median ms/page first 10% "
              f"{first:.2f}, middle {middle:.2f}, last 10% {last:.2f}; total {sum(page_times):.1f}s")
        channel.close()
    finally:
        parent.send("stop")
        proc.join(30)
        with psycopg.connect(make_conninfo(**params), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')



if __name__ == "__main__":
    main()
