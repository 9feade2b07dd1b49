"""``caddis serve datacatalog`` as a subprocess: prints its addresses, answers health checks."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support import stop_process

# The `caddis` console script, run with this interpreter whether or not it is on PATH.
CADDIS = "from caddis._cli.main import main; main()"


def test_serve_datacatalog_prints_address_and_is_healthy(tmp_path: Path) -> None:
    config = tmp_path / "caddis.yaml"
    config.write_text(
        "datacatalog:\n"
        "  server: {host: 127.0.0.1, port: 0, metrics_port: 0}\n"
        f"  database: {{url: 'sqlite:///{tmp_path / 'catalog.db'}'}}\n"
        "storage:\n"
        f"  local_root: {tmp_path / 'storage'}\n"
    )
    env = dict(os.environ, CADDIS_DATACATALOG_SERVER_MAX_WORKERS="4")
    proc = subprocess.Popen(
        [sys.executable, "-c", CADDIS, "serve", "datacatalog", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw.decode())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=60)
        match = re.fullmatch(r"datacatalog listening on (127\.0\.0\.1:(\d+))\n", first)
        assert match, first
        assert int(match.group(2)) > 0
        metrics = lines.get(timeout=10)
        assert re.fullmatch(r"datacatalog metrics on http://127\.0\.0\.1:\d+/metrics\n", metrics)
        with grpc.insecure_channel(match.group(1)) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            resp = health.Check(
                health_pb2.HealthCheckRequest(
                    service="caddis_idl.datacatalog.v1.DataCatalogService"
                ),
                timeout=10,
            )
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        proc.terminate()
        assert proc.wait(timeout=15) == 0
    finally:
        stop_process(proc)  # type: ignore[arg-type]
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
