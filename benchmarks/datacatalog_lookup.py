"""Cache-lookup latency and throughput of the datacatalog: GetArtifact by tag on loopback.

Starts ``caddis serve datacatalog`` as a subprocess (so client and server do not share a GIL)
on SQLite and, when reachable, PostgreSQL; fills one dataset with artifacts, each tagged; then
N client threads (one channel each) look random tags up for a fixed time.

    python benchmarks/datacatalog_lookup.py --seconds 10 --threads 2 --artifacts 2000

Goal: p50 < 2 ms and >= 1,000 lookups/s with 2 client threads.

``--map N`` adds the lookups of a cached map task's N items as propeller makes them, through
its ``DataCatalogClient``: one GetArtifact per item (``lookup``) against GetArtifactsByTag in
batches (``lookup_many``), 90 % hits, median of ``--repeats`` passes each.

``--writes N`` adds N cache writes as propeller records a result (``DataCatalogClient.put``:
one CreateArtifact carrying the tag), one thread, each with a new tag and a one-integer output.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import grpc

from caddis_idl.core.v1 import literals_pb2
from caddis_idl.datacatalog.v1 import datacatalog_pb2 as dc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2 as svc
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2_grpc

POSTGRES_ADMIN_URL = os.environ.get(
    "CADDIS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DATASET = dc.DatasetID(project="bench", domain="development", name="flyte_task-t", version="1-x")


def start_server(
    db_url: str, workdir: Path, workers: int, profile: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    env = dict(
        os.environ,
        CADDIS_DATACATALOG_SERVER_PORT="0",
        CADDIS_DATACATALOG_SERVER_METRICS_PORT="0",
        CADDIS_DATACATALOG_SERVER_MAX_WORKERS=str(workers),
        CADDIS_DATACATALOG_DATABASE_URL=db_url,
        CADDIS_DATACATALOG_DATA_PREFIX=f"file://{workdir / 'blobs'}",
        CADDIS_STORAGE_LOCAL_ROOT=str(workdir / "storage"),
        CADDIS_LOG_LEVEL="WARNING",
    )
    # With --py-spy the server runs under `py-spy record` (flame graph of the server path).
    wrapper = ["py-spy", "record", "-r", "250", "-f", "raw", "-o", profile, "--"] if profile else []
    proc = subprocess.Popen(
        [
            *wrapper,
            sys.executable,
            "-c",
            "from caddis._cli.main import main; main()",
            "serve",
            "datacatalog",
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    while line.startswith("py-spy>") or line == "\n":
        line = proc.stdout.readline().decode()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"datacatalog did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1].strip()


def fill(address: str, artifacts: int) -> list[str]:
    tags = []
    with grpc.insecure_channel(address) as channel:
        stub = datacatalog_service_pb2_grpc.DataCatalogServiceStub(channel)
        stub.CreateDataset(svc.CreateDatasetRequest(dataset=dc.Dataset(id=DATASET)))
        for i in range(artifacts):
            tag = f"flyte_cached-{uuid.uuid4().hex}"
            value = literals_pb2.Literal(
                scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=i))
            )
            stub.CreateArtifact(
                svc.CreateArtifactRequest(
                    artifact=dc.Artifact(
                        id=str(uuid.uuid4()),
                        dataset=DATASET,
                        data=[dc.ArtifactData(name="o0", value=value)],
                        tags=[dc.Tag(name=tag, dataset=DATASET)],
                    )
                )
            )
            tags.append(tag)
    return tags


def run_clients(
    address: str, tags: list[str], threads: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    misses = [0] * threads
    barrier = threading.Barrier(threads)

    def client(index: int) -> None:
        rng = random.Random(index)
        with grpc.insecure_channel(address) as channel:
            stub = datacatalog_service_pb2_grpc.DataCatalogServiceStub(channel)
            # Warm the connection up outside the measurement.
            stub.GetArtifact(svc.GetArtifactRequest(dataset=DATASET, tag_name=tags[0]))
            barrier.wait()
            end = time.perf_counter() + seconds
            mine = latencies[index]
            while (start := time.perf_counter()) < end:
                tag = rng.choice(tags) if rng.random() < 0.9 else "flyte_cached-miss"
                try:
                    stub.GetArtifact(svc.GetArtifactRequest(dataset=DATASET, tag_name=tag))
                except grpc.RpcError:
                    misses[index] += 1
                mine.append(time.perf_counter() - start)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return [x for per in latencies for x in per], sum(misses)


def cache_key(tag: str) -> Any:
    """Propeller's cache key of ``tag`` in the benchmark's dataset."""
    from caddis_propeller.engine.cache_keys import CacheKey

    return CacheKey(
        project=DATASET.project,
        domain=DATASET.domain,
        name=DATASET.name,
        version=DATASET.version,
        tag=tag,
    )


def map_lookups(address: str, tags: list[str], items: int, repeats: int) -> list[str]:
    """Time a map node's item lookups: one call per item against batched calls.

    Returns:
        Markdown table rows.
    """
    from caddis_propeller.clients.catalog import DataCatalogClient

    rng = random.Random(7)
    keys = [
        cache_key(rng.choice(tags) if rng.random() < 0.9 else f"flyte_cached-miss-{i}")
        for i in range(items)
    ]
    client = DataCatalogClient(address, timeout=60.0)
    try:
        client.lookup(keys[0])  # connect outside the measurement
        timings: dict[str, list[float]] = {"one call per item": [], "batched": []}
        for _ in range(repeats):
            start = time.perf_counter()
            single = [client.lookup(k) for k in keys]
            timings["one call per item"].append(time.perf_counter() - start)
            start = time.perf_counter()
            batched = client.lookup_many(keys)
            timings["batched"].append(time.perf_counter() - start)
            if batched != single:
                raise AssertionError("batched lookups disagree with single lookups")
    finally:
        client.close()
    base = statistics.median(timings["one call per item"])
    rows = []
    for how, runs in timings.items():
        median = statistics.median(runs)
        rows.append(
            f"| {how} | {items:,} | {median * 1000:,.0f} | {median / items * 1e6:,.1f} "
            f"| {base / median:.1f}x |"
        )
    return rows


def cache_writes(address: str, pid: int, count: int) -> str:
    """Time ``count`` cache writes (propeller's put: one CreateArtifact with the tag).

    Returns:
        A Markdown table row without the database column.
    """
    from caddis_propeller.clients.catalog import DataCatalogClient

    outputs = literals_pb2.LiteralMap()
    outputs.literals["o0"].scalar.primitive.integer = 1
    run = uuid.uuid4().hex[:8]
    keys = [cache_key(f"flyte_cached-write-{run}-{i}") for i in range(count + 20)]
    client = DataCatalogClient(address, timeout=60.0)
    try:
        for key in keys[:20]:  # connect and warm up outside the measurement
            client.put(key, outputs, overwrite=False)
        latencies = []
        cpu_before = process_cpu_seconds(pid)
        begin = time.perf_counter()
        for key in keys[20:]:
            start = time.perf_counter()
            client.put(key, outputs, overwrite=False)
            latencies.append(time.perf_counter() - start)
        elapsed = time.perf_counter() - begin
        server_cpu = process_cpu_seconds(pid) - cpu_before
    finally:
        client.close()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[max(0, int(count * 0.99) - 1)] * 1000
    return (
        f"{count:,} | {p50:.2f} | {p99:.2f} | {count / elapsed:,.0f} "
        f"| {server_cpu / count * 1000:.2f} |"
    )


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), to tell cost from contention."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_database() -> tuple[str, str] | None:
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return None
    name = f"caddis_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"postgresql: skipped ({exc})")
        return None
    params = conninfo_to_dict(POSTGRES_ADMIN_URL)
    params["dbname"] = name
    params.pop("password", None)
    user = params.get("user", "postgres")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    return f"postgresql+psycopg://{user}@{host}:{port}/{name}", name


def drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench(
    label: str, db_url: str, args: argparse.Namespace, workdir: Path
) -> tuple[list[str], list[str]]:
    profile = f"{args.py_spy}-{label}.txt" if args.py_spy else None
    proc, address = start_server(db_url, workdir, args.workers, profile)
    try:
        tags = fill(address, args.artifacts)
        cpu_before = process_cpu_seconds(proc.pid)
        latencies, misses = run_clients(address, tags, args.threads, args.seconds)
        server_cpu = process_cpu_seconds(proc.pid) - cpu_before
        map_rows = (
            [f"| {label}, {row[2:]}" for row in map_lookups(address, tags, args.map, args.repeats)]
            if args.map
            else []
        )
        write_rows = (
            [f"| {label} | {cache_writes(address, proc.pid, args.writes)}"] if args.writes else []
        )
    finally:
        # py-spy writes its profile on SIGINT (and passes it on to the server).
        proc.send_signal(signal.SIGINT if profile else signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    latencies.sort()
    n = len(latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(n * 0.99) - 1] * 1000
    rate = n / args.seconds
    cpu_ms = server_cpu / n * 1000
    print(
        f"| {label} | {args.threads} | {n} | {misses} | {p50:.2f} | {p99:.2f} | {rate:,.0f} "
        f"| {cpu_ms:.2f} |",
        flush=True,
    )
    return map_rows, write_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--artifacts", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8, help="server thread pool")
    parser.add_argument(
        "--map", type=int, default=0, metavar="N", help="also time N map-item lookups"
    )
    parser.add_argument("--repeats", type=int, default=3, help="passes of --map")
    parser.add_argument(
        "--writes", type=int, default=0, metavar="N", help="also time N cache writes (put)"
    )
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    parser.add_argument(
        "--py-spy",
        metavar="PREFIX",
        default=None,
        help="profile the server with py-spy: collapsed stacks in PREFIX-<database>.txt "
        "(the CPU column then counts py-spy, not the server)",
    )
    args = parser.parse_args()
    print(
        "| database | client threads | lookups | misses | p50 ms | p99 ms | lookups/s "
        "| server CPU ms/lookup |"
    )
    print("|---|---|---|---|---|---|---|---|")
    map_rows: list[str] = []
    write_rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.only in (None, "sqlite"):
            rows = bench("sqlite", f"sqlite:///{workdir / 'catalog.db'}", args, workdir)
            map_rows += rows[0]
            write_rows += rows[1]
        if args.only in (None, "postgresql"):
            pg = postgres_database()
            if pg is not None:
                try:
                    rows = bench("postgresql", pg[0], args, workdir)
                    map_rows += rows[0]
                    write_rows += rows[1]
                finally:
                    drop_postgres(pg[1])
    if map_rows:
        print()
        print("| database, map item lookups | items | median ms | per item us | speed-up |")
        print("|---|---|---|---|---|")
        print("\n".join(map_rows))
    if write_rows:
        print()
        print(
            "| database, cache writes (put) | writes | p50 ms | p99 ms | writes/s "
            "| server CPU ms/write |"
        )
        print("|---|---|---|---|---|---|")
        print("\n".join(write_rows))


if __name__ == "__main__":
    main()
