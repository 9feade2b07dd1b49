"""admin's process.

Wires config, database, blob store, managers, background threads and
the gRPC server. ``serve(config)`` for in-process use and tests, ``main(path)`` for
``caddis serve admin``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from prometheus_client import Gauge
from prometheus_client.core import GaugeMetricFamily

from caddis._serving.server import GrpcServer, serve_until_signalled
from caddis.storage import get_store
from caddis_admin.config import AdminConfig, load_admin_config
from caddis_admin.manager.context import AdminContext, Clock, Hooks, SystemClock
from caddis_admin.manager.events import EventManager
from caddis_admin.manager.executions import ExecutionManager, phase_name
from caddis_admin.manager.outbox import Dispatcher
from caddis_admin.manager.registration import RegistrationManager
from caddis_admin.manager.scheduler import Scheduler
from caddis_admin.manager.signals import SignalManager
from caddis_admin.repository.db import Database
from caddis_admin.rpc import servicers as s
from caddis_admin.rpc.propeller_client import GrpcPropellerClient
from caddis_idl.admin.v1 import (
    code_bundle_service_pb2,
    code_bundle_service_pb2_grpc,
    event_service_pb2,
    event_service_pb2_grpc,
    execution_service_pb2,
    execution_service_pb2_grpc,
    launch_plan_service_pb2,
    launch_plan_service_pb2_grpc,
    node_execution_service_pb2,
    node_execution_service_pb2_grpc,
    project_service_pb2,
    project_service_pb2_grpc,
    signal_service_pb2,
    signal_service_pb2_grpc,
    task_execution_service_pb2,
    task_execution_service_pb2_grpc,
    task_service_pb2,
    task_service_pb2_grpc,
    workflow_service_pb2,
    workflow_service_pb2_grpc,
)

_log = logging.getLogger(__name__)


class _PhaseCollector:
    """Executions by phase, counted in the database at scrape time (exact across replicas)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "caddis_admin_executions", "Executions by phase.", labels=["phase"]
        )
        try:
            with self.db.transaction(readonly=True) as repos:
                counts = repos.executions.phase_counts()
        except Exception:  # a scrape must not fail because the database blinked
            _log.exception("counting executions by phase failed")
            counts = {}
        for phase, count in sorted(counts.items()):
            family.add_metric([phase_name(phase)], count)
        yield family

    def describe(self) -> list[Any]:
        return []


class AdminServer:
    """A running admin: gRPC server, outbox dispatcher and scheduler.

    Attributes:
        address: ``host:port`` of the gRPC server.
        ctx: The shared context (database, store, clock).
        executions: The execution manager (tests drive it directly at times).
        scheduler: The scheduler, or None when disabled.
        dispatcher: The outbox dispatcher.
    """

    def __init__(self, config: AdminConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        db = Database(_db_config(config))
        if config.database.migrate:
            db.migrate()
        store = get_store(config.resolved_metadata_prefix(), config.storage)
        self.grpc = GrpcServer(config.server, name="admin")
        registry = self.grpc.registry
        transitions = Gauge(
            "caddis_admin_execution_phase_events",
            "Execution phase changes applied by this replica, by phase.",
            ["phase"],
            registry=registry,
        )
        lag = Gauge(
            "caddis_admin_scheduler_lag_seconds",
            "How late the oldest due scheduled time was when the scheduler handled it.",
            registry=registry,
        )
        registry.register(_PhaseCollector(db))  # type: ignore[arg-type]
        hooks = Hooks(
            execution_phase=lambda phase: transitions.labels(phase).inc(),
            scheduler_lag=lag.set,
        )
        self.ctx = AdminContext(config, db, store, clock or SystemClock(), hooks)
        self.registration = RegistrationManager(self.ctx)
        self.executions = ExecutionManager(self.ctx)
        self.events = EventManager(self.ctx, self.executions)
        self.signals = SignalManager(self.ctx)
        client = GrpcPropellerClient(config.propeller_address) if config.propeller_address else None
        self.dispatcher = Dispatcher(
            self.ctx, client, on_launch_refused=self.executions.fail_refused_launch
        )
        hooks.wake_dispatcher = self.dispatcher.wake
        Gauge(
            "caddis_admin_outbox_pending",
            "Hand-overs to propeller not yet delivered.",
            registry=registry,
        ).set_function(lambda: float(self.dispatcher.pending()))
        self.scheduler = Scheduler(self.ctx, self.executions) if config.scheduler.enabled else None
        self._add_services()

    def _add_services(self) -> None:
        reg, exe, evm = self.registration, self.executions, self.events
        g = self.grpc
        g.add_service(
            _name(project_service_pb2, "ProjectService"),
            project_service_pb2_grpc.add_ProjectServiceServicer_to_server,
            s.ProjectServicer(reg),
        )
        g.add_service(
            _name(task_service_pb2, "TaskService"),
            task_service_pb2_grpc.add_TaskServiceServicer_to_server,
            s.TaskServicer(reg),
        )
        g.add_service(
            _name(workflow_service_pb2, "WorkflowService"),
            workflow_service_pb2_grpc.add_WorkflowServiceServicer_to_server,
            s.WorkflowServicer(reg),
        )
        g.add_service(
            _name(launch_plan_service_pb2, "LaunchPlanService"),
            launch_plan_service_pb2_grpc.add_LaunchPlanServiceServicer_to_server,
            s.LaunchPlanServicer(reg),
        )
        g.add_service(
            _name(code_bundle_service_pb2, "CodeBundleService"),
            code_bundle_service_pb2_grpc.add_CodeBundleServiceServicer_to_server,
            s.CodeBundleServicer(reg),
        )
        g.add_service(
            _name(execution_service_pb2, "ExecutionService"),
            execution_service_pb2_grpc.add_ExecutionServiceServicer_to_server,
            s.ExecutionServicer(exe),
        )
        g.add_service(
            _name(node_execution_service_pb2, "NodeExecutionService"),
            node_execution_service_pb2_grpc.add_NodeExecutionServiceServicer_to_server,
            s.NodeExecutionServicer(evm),
        )
        g.add_service(
            _name(task_execution_service_pb2, "TaskExecutionService"),
            task_execution_service_pb2_grpc.add_TaskExecutionServiceServicer_to_server,
            s.TaskExecutionServicer(evm),
        )
        g.add_service(
            _name(signal_service_pb2, "SignalService"),
            signal_service_pb2_grpc.add_SignalServiceServicer_to_server,
            s.SignalServicer(self.signals),
        )
        g.add_service(
            _name(event_service_pb2, "EventService"),
            event_service_pb2_grpc.add_EventServiceServicer_to_server,
            s.EventServicer(evm),
        )

    def start(self) -> AdminServer:
        """Start serving and the background threads."""
        self.grpc.start()
        self.dispatcher.start()
        if self.scheduler is not None:
            self.scheduler.start()
        return self

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC server."""
        return self.grpc.address

    @property
    def metrics_url(self) -> str | None:
        """The Prometheus endpoint, if enabled."""
        return self.grpc.metrics_url

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop threads and server, close the database."""
        if self.scheduler is not None:
            self.scheduler.stop()
        self.dispatcher.stop()
        self.grpc.stop(grace)
        self.ctx.db.dispose()

    def __enter__(self) -> AdminServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _name(module: Any, service: str) -> str:
    return str(module.DESCRIPTOR.services_by_name[service].full_name)


def _db_config(config: AdminConfig) -> Any:
    import dataclasses

    # Every RPC thread holds a connection while it runs, and the outbox dispatcher, the
    # scheduler and metric scrapes take theirs too. A pool smaller than that makes threads
    # open overflow connections, which are closed again on return: a new PostgreSQL
    # connection (several ms) per RPC under load.
    pool_size = max(config.database.pool_size, config.server.max_workers + _BACKGROUND_CONNECTIONS)
    return dataclasses.replace(config.database, url=config.database_url(), pool_size=pool_size)


# Connections used outside RPC threads: outbox dispatcher, scheduler, metrics collector.
_BACKGROUND_CONNECTIONS = 3


def serve(config: AdminConfig | None = None, *, clock: Clock | None = None) -> AdminServer:
    """Start admin in this process and return it (tests; embedding).

    Args:
        config: The configuration; defaults plus ``CADDIS_*`` environment when None.
        clock: A clock for the scheduler and timestamps (tests inject a controllable one).

    Returns:
        The started server; call ``stop()`` when done.
    """
    return AdminServer(config or load_admin_config(), clock=clock).start()


def main(config_path: str | os.PathLike[str] | None = None) -> None:
    """Run admin in the foreground until SIGINT/SIGTERM (``caddis serve admin``).

    Args:
        config_path: A YAML or TOML file; None uses ``CADDIS_CONFIG`` when set.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = serve(load_admin_config(config_path))
    print(f"caddis admin listening on {server.address}", file=sys.stdout, flush=True)
    if server.metrics_url:
        print(f"caddis admin metrics on {server.metrics_url}", file=sys.stdout, flush=True)
    serve_until_signalled(server.grpc, on_stop=server.stop)
