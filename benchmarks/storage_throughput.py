"""Blob store throughput and small-object latency, file:// and s3:// (moto_server on loopback).

    python benchmarks/storage_throughput.py [--size-mib 64] [--small 300]

Reports MiB/s for a streamed put/get of one large object (multipart on S3) with the tracemalloc
peak of each, and operations/s for small (1 KiB, outputs.pb-sized) put+get pairs. moto keeps
objects in memory and is much slower than MinIO or S3: the s3 numbers measure our client path
against a slow server, not S3.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from caddis.storage import BlobStore, StorageConfig, get_store
from tests.conftest import S3Endpoint, _moto_server_command
from tests.support import free_port, port_open, stop_process, wait_until

MIB = 1024 * 1024


class Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size
        self.block = hashlib.sha256(b"x").digest() * (MIB // 32)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), self.left, MIB)
        buffer[:n] = self.block[:n]
        self.left -= n
        return n


def large(store: BlobStore, uri: str, size: int) -> tuple[float, float, int, int]:
    tracemalloc.start()
    t0 = time.perf_counter()
    store.put_stream(uri, io.BufferedReader(Zeros(size), MIB))
    t1 = time.perf_counter()
    _, up_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    with store.get_stream(uri) as f:
        while f.read(MIB):
            pass
    t2 = time.perf_counter()
    _, down_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mib = size / MIB
    return mib / (t1 - t0), mib / (t2 - t1), up_peak, down_peak


def small(store: BlobStore, prefix: str, n: int) -> float:
    data = os.urandom(1024)
    t0 = time.perf_counter()
    for i in range(n):
        uri = f"{prefix}o{i}/outputs.pb"
        store.put_bytes(uri, data)
        store.get_bytes(uri)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--small", type=int, default=300)
    args = parser.parse_args()
    size = args.size_mib * MIB
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fsync in (True, False):
            store = get_store(tmp, StorageConfig(local_fsync=fsync))
            up, down, up_peak, down_peak = large(store, f"file://{tmp}/big-{fsync}", size)
            ops = small(store, f"file://{tmp}/small-{fsync}/", args.small)
            rows.append((f"file (fsync={fsync})", up, down, up_peak, down_peak, ops))
    port = free_port()
    proc = subprocess.Popen(
        _moto_server_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: port_open(port), timeout=30, message="moto_server")
        endpoint = S3Endpoint("127.0.0.1", port)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        endpoint.client().make_bucket(bucket)
        for parallel in (1, 2):
            config = StorageConfig(
                endpoint=endpoint.endpoint,
                access_key="testing",
                secret_key="testing",
                region="us-east-1",
                secure=False,
                part_size=8 * MIB,
                parallel_uploads=parallel,
            )
            store = get_store(f"s3://{bucket}", config)
            up, down, up_peak, down_peak = large(store, f"s3://{bucket}/big-{parallel}", size)
            ops = small(store, f"s3://{bucket}/small-{parallel}/", args.small)
            rows.append(
                (f"s3/moto (8 MiB parts, {parallel} parallel)", up, down, up_peak, down_peak, ops)
            )
    finally:
        stop_process(proc)
    print(f"large object: {args.size_mib} MiB streamed; small: {args.small} x 1 KiB put+get")
    print("| store | put MiB/s | get MiB/s | put peak MiB | get peak MiB | small put+get /s |")
    print("|---|---|---|---|---|---|")
    for name, up, down, up_peak, down_peak, ops in rows:
        print(
            f"| {name} | {up:.0f} | {down:.0f} | {up_peak / MIB:.1f} | {down_peak / MIB:.1f} "
            f"| {ops:.0f} |"
        )


if __name__ == "__main__":
    main()
