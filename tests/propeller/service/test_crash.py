"""kill -9 of propeller at random moments: every execution still finishes correctly, and no
task attempt's user code runs twice (counted by the marker files the tasks write)."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from caddis.storage import StorageConfig
from caddis_idl.core.v1 import literals_pb2
from caddis_idl.propeller.v1 import propeller_service_pb2, propeller_service_pb2_grpc
from tests.propeller.service import workflows as w
from tests.propeller.service.conftest import (
    ROOT,
    WP,
    compile_closure,
    exec_id,
    int_output,
    to_literals,
)
from tests.support import free_port, port_open, wait_until

pytestmark = pytest.mark.slow


class PropellerProcess:
    """Propeller as a subprocess on a fixed port, so it can be SIGKILLed and restarted."""

    def __init__(self, tmp: Path, env: dict[str, str], replica: str, port: int) -> None:
        self.tmp = tmp
        self.port = port
        self.env = dict(env)
        self.env.update(
            CADDIS_PROPELLER_SERVER_PORT=str(port),
            CADDIS_PROPELLER_SERVER_METRICS_PORT="0",
            CADDIS_PROPELLER_REPLICA_ID=replica,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"propeller-{replica}.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from caddis_propeller.server import main; main()"],
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=ROOT,
            )
        wait_until(lambda: port_open(self.port), timeout=30, message="propeller up")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _env(tmp: Path, admin_address: str, db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CADDIS_STORAGE_LOCAL_ROOT=str(tmp / "blobs"),
        CADDIS_STORAGE_LOCAL_FSYNC="false",
        CADDIS_PROPELLER_DATABASE_URL=db_url,
        CADDIS_PROPELLER_ADMIN_ENDPOINT=admin_address,
        CADDIS_PROPELLER_PROCESS_WORK_DIR=str(tmp / "attempts"),
        CADDIS_PROPELLER_PROCESS_CPU="4",
        CADDIS_PROPELLER_PROCESS_MEMORY="8Gi",
        CADDIS_PROPELLER_PROCESS_WARM_WORKERS="2",
        CADDIS_PROPELLER_POLL_INTERVAL_S="0.02",
        CADDIS_PROPELLER_RESYNC_INTERVAL_S="0.3",
        CADDIS_PROPELLER_LEASE_TTL_S="1.5",
        CADDIS_TEST_TASK_DELAY="0.03",
        CADDIS_LOG_LEVEL="WARNING",
    )
    return env


def _launch(stub, store_root: Path, name: str, n: int) -> None:  # type: ignore[no-untyped-def]
    from caddis.storage import get_store

    cfg = StorageConfig(local_root=str(store_root), local_fsync=False)
    uri = f"{cfg.resolved_metadata_prefix()}launch/{name}/inputs.pb"
    get_store(uri, cfg).write_proto(uri, to_literals(w.pipeline, {"n": n}))
    request = propeller_service_pb2.LaunchExecutionRequest(
        execution_id=exec_id(name), compiled_closure=compile_closure(w.pipeline), inputs_uri=uri
    )
    # Launch is retried by admin until acknowledged; so do we (the server may be restarting).
    wait_until(lambda: stub.LaunchExecution(request, timeout=5), timeout=30, message="launch")


def _state(stub, name: str):  # type: ignore[no-untyped-def]
    return stub.GetExecutionState(
        propeller_service_pb2.GetExecutionStateRequest(execution_id=exec_id(name)), timeout=5
    )


def _check_markers(markers: Path) -> None:
    runs = collections.Counter()
    for f in markers.iterdir():
        execution, node, attempt, kind, _ = f.name.split("|")
        runs[(execution, node, attempt, kind)] += 1
    twice = {k: v for k, v in runs.items() if v > 1}
    assert not twice, f"attempts whose user code ran more than once: {twice}"


def _outputs(store_root: Path, name: str) -> literals_pb2.LiteralMap:
    from caddis.storage import get_store

    cfg = StorageConfig(local_root=str(store_root), local_fsync=False)
    uri = f"{cfg.resolved_metadata_prefix()}p/d/{name}/outputs.pb"
    return get_store(uri, cfg).read_proto(uri, literals_pb2.LiteralMap)


def test_sigkill_at_random_moments(tmp_path: Path, admin, markers: Path, sqlite_url: str) -> None:
    rng = random.Random(int(os.environ.get("CADDIS_CRASH_SEED", "0")) or None)
    port = free_port()
    prop = PropellerProcess(tmp_path, _env(tmp_path, admin.address, sqlite_url), "crashy", port)
    prop.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = propeller_service_pb2_grpc.PropellerServiceStub(channel)
    names = [f"crash{i}" for i in range(4)]
    sizes = {name: 3 + i for i, name in enumerate(names)}
    try:
        for name in names:
            _launch(stub, tmp_path / "blobs", name, sizes[name])
        for _ in range(5):
            time.sleep(rng.uniform(0.05, 0.6))  # a random moment, by design
            prop.kill()
            prop.start()
        terminal = {WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, WP.WORKFLOW_EXECUTION_PHASE_FAILED}
        for name in names:
            state = wait_until(
                lambda name=name: (s := _state(stub, name)).phase in terminal and s,
                timeout=60,
                message=f"{name} done",
            )
            assert state.phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED, (name, state.error)
            n = sizes[name]
            assert int_output(_outputs(tmp_path / "blobs", name)) == sum(4 * i for i in range(n))
        _check_markers(markers)
        # The outbox survived the kills: admin got every execution's final event.
        for name in names:
            wait_until(
                lambda name=name: (
                    WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED in admin.servicer.workflow_phases(name)
                ),
                timeout=20,
                message=f"{name} SUCCEEDED event",
            )
    finally:
        channel.close()
        prop.stop()


def test_two_replicas_one_killed(tmp_path: Path, admin, markers: Path, db_url: str) -> None:
    env = _env(tmp_path, admin.address, db_url)
    env["CADDIS_TEST_TASK_DELAY"] = "0.1"
    a = PropellerProcess(tmp_path, env, "replica-a", free_port())
    b = PropellerProcess(tmp_path, env, "replica-b", free_port())
    a.start()
    b.start()
    ch_a = grpc.insecure_channel(f"127.0.0.1:{a.port}")
    ch_b = grpc.insecure_channel(f"127.0.0.1:{b.port}")
    stub_a = propeller_service_pb2_grpc.PropellerServiceStub(ch_a)
    stub_b = propeller_service_pb2_grpc.PropellerServiceStub(ch_b)
    names = [f"rep{i}" for i in range(4)]
    try:
        for i, name in enumerate(names):
            _launch(stub_a if i % 2 == 0 else stub_b, tmp_path / "blobs", name, 4)
        time.sleep(0.4)  # let both replicas get going, then one dies
        a.kill()
        for name in names:
            wait_until(
                lambda name=name: (
                    (s := _state(stub_b, name)).phase == WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED and s
                ),
                timeout=60,
                message=f"{name} done on the surviving replica",
            )
            assert int_output(_outputs(tmp_path / "blobs", name)) == sum(4 * i for i in range(4))
        _check_markers(markers)
    finally:
        ch_a.close()
        ch_b.close()
        a.stop()
        b.stop()
