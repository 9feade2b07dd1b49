"""admin throughput on PostgreSQL over loopback.

Measures CreateExecution/s and GetExecution/s through gRPC with admin in its own process
and clients in others, the server's CPU time per request (less sensitive to a busy machine
than the rates), then lists ``--rows`` executions page by page and reports how the time per
page changes from the first pages to the last. Each run uses a fresh database and server;
with ``--runs N`` it prints every run and the medians.

Usage:
    PYTHONPATH=. python benchmarks/admin_throughput.py [--runs 3] [--seconds 5]
        [--threads 8] [--clients 2] [--rows 100000] [--page 100]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import grpc
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

COPY_COLUMNS = (
    "project, domain, name, lp_name, lp_version, wf_name, wf_version, phase, mode, admitted, "
    "created_at, updated_at, last_event_at, reference_execution, inputs_uri, user_inputs_uri, "
    "outputs_uri, closure_uri, labels, spec, closure"
)


def _server(db_url: str, state: str, conn: Connection) -> None:
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
    # "cpu" asks for this process's CPU seconds so far (all threads); anything else stops.
    while conn.recv() == "cpu":
        conn.send(time.process_time())
    server.stop(grace=0)


def _rate(fn: Callable[[int, int], None], seconds: float, threads: int) -> tuple[float, int]:
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


def _get_client(address: str, names: list[str], seconds: float, threads: int, out: Any) -> None:
    from caddis_idl.admin.v1 import execution_service_pb2 as es
    from caddis_idl.admin.v1 import execution_service_pb2_grpc
    from caddis_idl.core.v1 import identifier_pb2

    channel = grpc.insecure_channel(address)
    stub = execution_service_pb2_grpc.ExecutionServiceStub(channel)
    requests = [
        es.GetExecutionRequest(
            id=identifier_pb2.WorkflowExecutionIdentifier(
                project="proj", domain="development", name=n
            )
        )
        for n in names
    ]

    def get(i: int, n: int) -> None:
        stub.GetExecution(requests[(i * 7919 + n) % len(requests)])

    out.send(_rate(get, seconds, threads)[1])


@dataclass
class Run:
    """One run's numbers."""

    create_rate: float
    create_cpu_ms: float
    get_rate: float
    get_cpu_ms: float
    page_ms: tuple[float, float, float]
    rows: int
    pages: int


def _one_run(args: argparse.Namespace) -> Run:
    from caddis_idl.admin.v1 import common_pb2, execution_pb2, task_pb2, workflow_pb2
    from caddis_idl.admin.v1 import execution_service_pb2 as es
    from caddis_idl.admin.v1 import task_service_pb2 as ts
    from caddis_idl.admin.v1 import workflow_service_pb2 as ws
    from tests.admin.conftest import Stubs
    from tests.admin.helpers import (
        D,
        P,
        int_lit,
        lmap,
        lp_id,
        task_id,
        task_template,
        wf_id,
        workflow_template,
    )

    params = conninfo_to_dict(args.postgres)
    name = f"caddis_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(make_conninfo(**params), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    user, host = params.get("user", "postgres"), params.get("host", "127.0.0.1")
    db_url = f"postgresql+psycopg://{user}@{host}:{params.get('port', '5432')}/{name}"
    state = tempfile.mkdtemp(prefix="caddis-admin-bench-")
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_server, args=(db_url, state, child))
    proc.start()

    def server_cpu() -> float:
        parent.send("cpu")
        return float(parent.recv())

    try:
        address = parent.recv()
        channel = grpc.insecure_channel(address)
        stubs = Stubs(channel)
        stubs.tasks.CreateTask(
            ts.CreateTaskRequest(
                id=task_id("t1"), spec=task_pb2.TaskSpec(template=task_template("t1"))
            )
        )
        stubs.workflows.CreateWorkflow(
            ws.CreateWorkflowRequest(
                id=wf_id("wf"), spec=workflow_pb2.WorkflowSpec(template=workflow_template("wf"))
            )
        )
        spec = execution_pb2.ExecutionSpec(launch_plan=lp_id("wf"))

        def create(i: int, n: int) -> None:
            stubs.executions.CreateExecution(
                es.CreateExecutionRequest(project=P, domain=D, spec=spec, inputs=lmap(x=int_lit(n)))
            )

        cpu0 = server_cpu()
        create_rate, created = _rate(create, args.seconds, args.threads)
        create_cpu_ms = (server_cpu() - cpu0) / max(created, 1) * 1000
        listed = stubs.executions.ListExecutions(
            es.ListExecutionsRequest(
                project=P, domain=D, options=common_pb2.ListOptions(limit=1000)
            )
        )
        names = [e.id.name for e in listed.executions]

        # Clients in their own processes, so that the Python client does not share a GIL.
        pipes = [ctx.Pipe() for _ in range(args.clients)]
        procs = [
            ctx.Process(target=_get_client, args=(address, names, args.seconds, args.threads, w))
            for _, w in pipes
        ]
        for p in procs:
            p.start()
        # Client start-up (imports) falls inside the CPU window but costs the server nothing.
        cpu0 = server_cpu()
        gets = sum(r.recv() for r, _ in pipes)
        get_cpu_ms = (server_cpu() - cpu0) / max(gets, 1) * 1000
        for p in procs:
            p.join()
        # Each client ran for args.seconds.
        get_rate = gets / args.seconds

        # Bulk rows for listing, straight into PostgreSQL (creation speed is measured above).
        spec_bytes = spec.SerializeToString()
        base = int(time.time() * 1e6)
        with (
            psycopg.connect(make_conninfo(**dict(params, dbname=name))) as c,
            c.cursor() as cur,
        ):
            with cur.copy(f"COPY executions ({COPY_COLUMNS}) FROM STDIN") as cp:
                names_and_refs = (P, D, "", "wf", "v1", "wf", "v1", 1, 1, True)
                uris = ("", "", "", "", "", "")
                for k in range(max(0, args.rows - created)):
                    ident = (*names_and_refs[:2], f"bulk{k:07d}", *names_and_refs[3:])
                    cp.write_row((*ident, base - k * 1000, base, 0, *uris, spec_bytes, b""))
            cur.execute("ANALYZE executions")
        page_times: list[float] = []
        token, total = "", 0
        while True:
            t0 = time.perf_counter()
            resp = stubs.executions.ListExecutions(
                es.ListExecutionsRequest(
                    project=P,
                    domain=D,
                    options=common_pb2.ListOptions(limit=args.page, token=token),
                )
            )
            page_times.append(time.perf_counter() - t0)
            total += len(resp.executions)
            token = resp.next_token
            if not token:
                break
        n = len(page_times)
        tenth = max(1, n // 10)
        first = statistics.median(page_times[:tenth]) * 1000
        middle = statistics.median(page_times[n // 2 - n // 20 : n // 2 + n // 20 + 1]) * 1000
        last = statistics.median(page_times[-tenth:]) * 1000
        channel.close()
        return Run(
            create_rate, create_cpu_ms, get_rate, get_cpu_ms, (first, middle, last), total, n
        )
    finally:
        parent.send("stop")
        proc.join(30)
        with psycopg.connect(make_conninfo(**params), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


def main() -> None:
    """Run the benchmark and print each run and the medians."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--page", type=int, default=100)
    ap.add_argument("--clients", type=int, default=2, help="client processes for GetExecution")
    args = ap.parse_args()

    runs = []
    for i in range(args.runs):
        before = _load()
        r = _one_run(args)
        runs.append(r)
        print(
            f"run {i + 1} ({before} -> {_load()}): "
            f"CreateExecution {r.create_rate:,.0f}/s ({r.create_cpu_ms:.2f} ms server CPU each), "
            f"GetExecution {r.get_rate:,.0f}/s ({r.get_cpu_ms:.3f} ms server CPU each), "
            f"ListExecutions ms/page {r.page_ms[0]:.2f} / {r.page_ms[1]:.2f} / {r.page_ms[2]:.2f}",
            flush=True,
        )

    def med(f: Callable[[Run], float]) -> float:
        return statistics.median(f(r) for r in runs)

    print(f"medians of {len(runs)} run(s):")
    print(
        f"  CreateExecution: {med(lambda r: r.create_rate):,.0f}/s "
        f"({args.threads} threads), server CPU {med(lambda r: r.create_cpu_ms):.2f} ms each"
    )
    print(
        f"  GetExecution:    {med(lambda r: r.get_rate):,.0f}/s ({args.clients} processes x "
        f"{args.threads} threads), server CPU {med(lambda r: r.get_cpu_ms):.3f} ms each"
    )
    print(
        f"  ListExecutions:  {runs[-1].rows:,} rows in {runs[-1].pages} pages of {args.page}; "
        f"median ms/page first 10% {med(lambda r: r.page_ms[0]):.2f}, middle "
        f"{med(lambda r: r.page_ms[1]):.2f}, last 10% {med(lambda r: r.page_ms[2]):.2f}"
    )


if __name__ == "__main__":
    main()
