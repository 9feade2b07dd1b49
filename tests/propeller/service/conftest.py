"""Fixtures of the propeller service tests: in-process propeller, a recording admin."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis.storage import StorageConfig
from caddis_idl.admin.v1 import event_service_pb2, event_service_pb2_grpc
from caddis_idl.core.v1 import execution_pb2, identifier_pb2, literals_pb2
from caddis_idl.propeller.v1 import propeller_service_pb2, propeller_service_pb2_grpc
from caddis_propeller.config import ProcessPluginConfig, PropellerConfig
from caddis_propeller.server import RunningPropeller, serve
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[3]
WP = execution_pb2.WorkflowExecutionPhase


class RecordingAdmin(event_service_pb2_grpc.EventServiceServicer):
    """A small EventService that records what it accepts (dedup by request id)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.request_ids: set[str] = set()
        self.events: list[event_service_pb2.BatchedEvent] = []
        self.duplicates = 0
        self.available = True

    def CreateEvents(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not self.available:
            context.abort(grpc.StatusCode.UNAVAILABLE, "admin is down (test)")
        results = []
        outcomes = event_service_pb2.EventOutcome
        with self.lock:
            for e in request.events:
                if e.request_id in self.request_ids:
                    self.duplicates += 1
                    outcome = outcomes.EVENT_OUTCOME_DUPLICATE
                else:
                    self.request_ids.add(e.request_id)
                    self.events.append(e)
                    outcome = outcomes.EVENT_OUTCOME_ACCEPTED
                results.append(
                    event_service_pb2.EventResult(request_id=e.request_id, outcome=outcome)
                )
        return event_service_pb2.CreateEventsResponse(results=results)

    def workflow_phases(self, name: str) -> list[int]:
        with self.lock:
            return [
                e.workflow_event.phase
                for e in self.events
                if e.HasField("workflow_event") and e.workflow_event.execution_id.name == name
            ]


@dataclass
class Admin:
    servicer: RecordingAdmin
    address: str
    server: grpc.Server


@pytest.fixture
def admin() -> Iterator[Admin]:
    servicer = RecordingAdmin()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    event_service_pb2_grpc.add_EventServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield Admin(servicer, f"127.0.0.1:{port}", server)
    server.stop(0)


@pytest.fixture(autouse=True)
def _task_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    # Task processes import the test workflows from the repository root.
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))
    markers = tmp_path / "markers"
    monkeypatch.setenv("CADDIS_TEST_MARKERS", str(markers))
    return markers


@pytest.fixture
def markers(_task_env: Path) -> Path:
    return _task_env


@pytest.fixture
def storage(tmp_path: Path) -> StorageConfig:
    return StorageConfig(local_root=str(tmp_path / "blobs"), local_fsync=False)


@pytest.fixture
def make_config(tmp_path: Path, sqlite_url: str) -> Callable[..., PropellerConfig]:
    def make(**overrides: Any) -> PropellerConfig:
        process = overrides.pop("process", None) or ProcessPluginConfig(
            work_dir=str(tmp_path / "attempts"), cpu=4, memory="8Gi", warm_workers=2
        )
        base = PropellerConfig(
            server=ServerConfig(port=0, metrics_port=0, grace_period_s=0.5),
            database=DatabaseConfig(url=overrides.pop("db_url", sqlite_url)),
            replica_id=overrides.pop("replica_id", ""),
            poll_interval_s=0.02,
            resync_interval_s=0.5,
            lease_ttl_s=3.0,
            process=process,
        )
        return replace(base, **overrides)

    return make


@dataclass
class Propeller:
    running: RunningPropeller
    channel: grpc.Channel
    stub: propeller_service_pb2_grpc.PropellerServiceStub
    storage: StorageConfig
    launched: list[str] = field(default_factory=list)

    def launch(self, name: str, wf: Any, inputs: dict[str, Any], **options: Any) -> Any:
        closure = compile_closure(wf)
        lit = to_literals(wf, inputs)
        uri = f"{self.storage.resolved_metadata_prefix()}launch/{name}/inputs.pb"
        self.running.store.write_proto(uri, lit)
        request = propeller_service_pb2.LaunchExecutionRequest(
            execution_id=exec_id(name),
            compiled_closure=closure,
            inputs_uri=uri,
            options=propeller_service_pb2.ExecutionOptions(**options),
        )
        return self.stub.LaunchExecution(request)

    def state(self, name: str) -> propeller_service_pb2.GetExecutionStateResponse:
        return self.stub.GetExecutionState(
            propeller_service_pb2.GetExecutionStateRequest(execution_id=exec_id(name))
        )

    def wait_done(
        self, name: str, timeout: float = 30
    ) -> propeller_service_pb2.GetExecutionStateResponse:
        terminal = {
            WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED,
            WP.WORKFLOW_EXECUTION_PHASE_FAILED,
            WP.WORKFLOW_EXECUTION_PHASE_ABORTED,
        }
        return wait_until(
            lambda: (s := self.state(name)).phase in terminal and s,
            timeout=timeout,
            message=f"execution {name} done",
        )

    def outputs(self, name: str) -> literals_pb2.LiteralMap:
        uri = f"{self.running.controller.metadata_prefix.rstrip('/')}/p/d/{name}/outputs.pb"
        return self.running.store.read_proto(uri, literals_pb2.LiteralMap)


def compile_closure(wf: Any) -> Any:
    """The closure as admin would register it (project p, domain d)."""
    from caddis.core.settings import SerializationSettings

    return wf.compile(SerializationSettings(project="p", domain="d", version="v1"))


def exec_id(name: str) -> identifier_pb2.WorkflowExecutionIdentifier:
    return identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name=name)


def to_literals(wf: Any, inputs: dict[str, Any]) -> literals_pb2.LiteralMap:
    from caddis.core.type_engine import TypeEngine

    out = literals_pb2.LiteralMap()
    for k, v in inputs.items():
        py_type = wf.python_interface.inputs[k]
        lt = TypeEngine.to_literal_type(py_type)
        out.literals[k].CopyFrom(TypeEngine.to_literal(v, py_type, lt))
    return out


def int_output(lm: literals_pb2.LiteralMap, name: str = "o0") -> int:
    return int(lm.literals[name].scalar.primitive.integer)


@pytest.fixture
def start_propeller(storage: StorageConfig) -> Iterator[Callable[[PropellerConfig], Propeller]]:
    started: list[Propeller] = []

    def start(config: PropellerConfig) -> Propeller:
        running = serve(config, storage=storage)
        channel = grpc.insecure_channel(running.address)
        p = Propeller(
            running, channel, propeller_service_pb2_grpc.PropellerServiceStub(channel), storage
        )
        started.append(p)
        return p

    yield start
    for p in started:
        p.channel.close()
        with contextlib.suppress(Exception):
            p.running.stop(0)
