"""An admin served on 127.0.0.1:0 over the test database (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis.storage import StorageConfig
from caddis_admin.config import AdminConfig, OutboxConfig, SchedulerConfig
from caddis_admin.server import AdminServer, serve
from caddis_idl.admin.v1 import (
    event_service_pb2_grpc,
    execution_service_pb2_grpc,
    launch_plan_service_pb2_grpc,
    node_execution_service_pb2_grpc,
    project_service_pb2_grpc,
    signal_service_pb2_grpc,
    task_execution_service_pb2_grpc,
    task_service_pb2_grpc,
    workflow_service_pb2_grpc,
)
from tests.admin.helpers import FakePropeller


def admin_config(db_url: str, tmp_path: Path, **overrides: Any) -> AdminConfig:
    cfg = AdminConfig(
        server=ServerConfig(port=0, metrics_port=0, max_workers=16),
        database=DatabaseConfig(url=db_url, pool_size=10),
        state_dir=str(tmp_path / "state"),
        storage=StorageConfig(local_root=str(tmp_path / "storage"), local_fsync=False),
        metadata_prefix=f"file://{tmp_path / 'blobs'}",
        outbox=OutboxConfig(
            poll_interval_s=0.05, initial_backoff_s=0.02, max_backoff_s=0.2, rpc_timeout_s=1.0
        ),
        scheduler=SchedulerConfig(enabled=False, poll_interval_s=0.05, lease_ttl_s=2.0),
    )
    return dataclasses.replace(cfg, **overrides)


class Stubs:
    def __init__(self, channel: grpc.Channel) -> None:
        self.projects = project_service_pb2_grpc.ProjectServiceStub(channel)
        self.tasks = task_service_pb2_grpc.TaskServiceStub(channel)
        self.workflows = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
        self.launch_plans = launch_plan_service_pb2_grpc.LaunchPlanServiceStub(channel)
        self.executions = execution_service_pb2_grpc.ExecutionServiceStub(channel)
        self.nodes = node_execution_service_pb2_grpc.NodeExecutionServiceStub(channel)
        self.task_executions = task_execution_service_pb2_grpc.TaskExecutionServiceStub(channel)
        self.events = event_service_pb2_grpc.EventServiceStub(channel)
        self.signals = signal_service_pb2_grpc.SignalServiceStub(channel)


@pytest.fixture
def propeller() -> Iterator[FakePropeller]:
    fake = FakePropeller().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def make_admin(db_url: str, tmp_path: Path) -> Iterator[Callable[..., AdminServer]]:
    started: list[AdminServer] = []

    def make(clock: Any = None, **overrides: Any) -> AdminServer:
        server = serve(admin_config(db_url, tmp_path, **overrides), clock=clock)
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            with contextlib.suppress(Exception):
                server.stop(grace=0)


@pytest.fixture
def admin(make_admin: Callable[..., AdminServer], propeller: FakePropeller) -> AdminServer:
    return make_admin(propeller_address=propeller.address)


@pytest.fixture
def stubs(admin: AdminServer) -> Iterator[Stubs]:
    with grpc.insecure_channel(admin.address) as ch:
        yield Stubs(ch)
