"""Entry points of the propeller service: :func:`serve` (in-process) and :func:`main`.

``caddis serve propeller --config FILE`` calls :func:`main`; tests call :func:`serve` with a
config that binds ``127.0.0.1:0`` and stop the returned handle.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import grpc

from caddis._serving.server import GrpcServer, serve_until_signalled
from caddis.storage import BlobStore, StorageConfig, get_store, locations
from caddis_idl.core.v1 import identifier_pb2
from caddis_idl.propeller.v1 import propeller_service_pb2_grpc
from caddis_propeller.clients.admin import EventSender
from caddis_propeller.clients.catalog import DataCatalogClient
from caddis_propeller.clients.launch_plans import AdminLaunchPlanRunner
from caddis_propeller.clients.recovery import ReferenceOutputs
from caddis_propeller.clients.signals import AdminSignalSource
from caddis_propeller.config import PropellerConfig
from caddis_propeller.datastore import BlobDataStore
from caddis_propeller.engine.interfaces import Succeeded, TaskAttempt, TaskStatus
from caddis_propeller.manager.controller import Controller
from caddis_propeller.manager.metrics import PropellerMetrics
from caddis_propeller.manager.retention import RetentionJanitor
from caddis_propeller.plugins.base import PluginRunner
from caddis_propeller.plugins.process import ProcessPlugin
from caddis_propeller.repository.database import Database
from caddis_propeller.rpc.servicer import SERVICE_NAME, PropellerServicer

_log = logging.getLogger(__name__)


@dataclass
class RunningPropeller:
    """A started propeller: gRPC server, control loop, plugins and event sender.

    Attributes:
        server: The gRPC server (``address``, ``port``, ``metrics_url``, ``registry``).
        controller: The control loop.
        plugin: The process plugin.
        sender: The event outbox sender.
        database: The database.
        store: The blob store of execution data.
        config: The configuration it was started with.
        catalog: The datacatalog client, when caching is on.
        admin_channel: The channel of child executions, signals and recovery, when admin is
            configured.
        retention: The janitor removing executions that finished more than ``retention_s``
            ago (not started when retention is off).
    """

    server: GrpcServer
    controller: Controller
    plugin: ProcessPlugin
    sender: EventSender
    database: Database
    store: BlobStore
    config: PropellerConfig
    catalog: DataCatalogClient | None = None
    admin_channel: grpc.Channel | None = None
    retention: RetentionJanitor | None = None

    @property
    def address(self) -> str:
        """``host:port`` to dial."""
        return self.server.address

    @property
    def metrics_url(self) -> str | None:
        """The Prometheus scrape URL, or ``None`` when metrics are off."""
        return self.server.metrics_url

    def stop(self, grace: float | None = None) -> None:
        """Stop serving and evaluating; running task processes carry on detached."""
        self.server.stop(grace)
        if self.retention is not None:
            self.retention.stop()
        self.controller.stop()
        self.sender.stop()
        self.plugin.close()
        if self.catalog is not None:
            self.catalog.close()
        if self.admin_channel is not None:
            self.admin_channel.close()
        self.database.dispose()

    def __enter__(self) -> RunningPropeller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(config: PropellerConfig, *, storage: StorageConfig | None = None) -> RunningPropeller:
    """Migrate the database, start the control loop and serve in background threads.

    Args:
        config: The service configuration.
        storage: Blob store settings; loaded from the ``storage`` section / ``CADDIS_STORAGE_*``
            when ``None``.

    Returns:
        The running service; call :meth:`RunningPropeller.stop` to shut it down.
    """
    storage = storage if storage is not None else StorageConfig.load()
    metadata_prefix = config.metadata_prefix or storage.resolved_metadata_prefix()
    raw_root = config.raw_data_prefix or storage.resolved_raw_data_prefix()
    database = Database(config.database)
    if config.database.migrate:
        database.migrate()
    store = get_store(metadata_prefix, storage)
    data = BlobDataStore(store)
    server = GrpcServer(config.server, name="propeller")
    metrics = PropellerMetrics(server.registry)

    def raw_prefix(attempt: TaskAttempt) -> str:
        e = attempt.execution_id
        try:
            return locations.raw_data_prefix(
                raw_root, e.project, e.domain, e.name, attempt.node_path, attempt.attempt
            )
        except Exception:
            return locations.raw_data_prefix(raw_root, e.project, e.domain, e.name)

    def on_start(seconds: float) -> None:
        metrics.task_start.observe(seconds)
        metrics.node_time.labels("queued").observe(seconds)

    def on_sent(accepted: int, refused: int) -> None:
        metrics.events_sent.labels("accepted").inc(accepted)
        metrics.events_sent.labels("refused").inc(refused)

    plugin = ProcessPlugin(
        config.process,
        store=store,
        locate=data.uri,
        raw_prefix=raw_prefix,
        on_start=on_start,
    )

    def on_terminal(attempt: TaskAttempt, status: TaskStatus, handle: str | None) -> None:
        # The per-node split of where time goes, from the runtime's timings.json.
        if not isinstance(status, Succeeded):
            return
        with contextlib.suppress(Exception):
            uri = data.uri(attempt.output_prefix).rstrip("/") + "/timings.json"
            timings: dict[str, Any] = json.loads(store.get_bytes(uri))
            for part, key in (
                ("input_download", "input_seconds"),
                ("user_code", "user_seconds"),
                ("output_upload", "output_seconds"),
            ):
                if key in timings:
                    metrics.node_time.labels(part).observe(float(timings[key]))

    runner = PluginRunner({}, plugin, on_terminal=on_terminal)
    runner.start_latency = lambda s: metrics.node_time.labels("plugin_start").observe(s)
    catalog: DataCatalogClient | None = None
    if config.datacatalog_endpoint:
        catalog = DataCatalogClient(
            config.datacatalog_endpoint,
            timeout=config.catalog_timeout_s,
            on_event=lambda what: metrics.cache.labels(what).inc(),
        )
    sender = EventSender(
        database,
        config.admin_endpoint,
        batch_size=config.event_batch_size,
        retry_max=config.event_retry_max_s,
        on_sent=on_sent,
    )
    # Launch-plan nodes, gates and recovery ask admin while evaluating (one channel).
    admin_channel: grpc.Channel | None = None
    launch_plans: AdminLaunchPlanRunner | None = None
    signals: AdminSignalSource | None = None
    if config.admin_endpoint:
        admin_channel = grpc.insecure_channel(config.admin_endpoint)
        launch_plans = AdminLaunchPlanRunner(admin_channel, store, timeout=config.admin_timeout_s)
        signals = AdminSignalSource(admin_channel, timeout=config.admin_timeout_s)

    def recovery(ref: identifier_pb2.WorkflowExecutionIdentifier, prefix: str) -> ReferenceOutputs:
        return ReferenceOutputs(
            ref, prefix, store, channel=admin_channel, timeout=config.admin_timeout_s
        )

    controller = Controller(
        config,
        database=database,
        store=store,
        data=data,
        runner=runner,
        catalog=catalog,
        metrics=metrics,
        metadata_prefix=metadata_prefix,
        on_events=sender.wake,
        launch_plans=launch_plans,
        signals=signals,
        recovery=recovery,
    )
    plugin.notify = controller.notify
    server.add_service(
        SERVICE_NAME,
        propeller_service_pb2_grpc.add_PropellerServiceServicer_to_server,
        PropellerServicer(controller),
    )
    try:
        server.start()
    except Exception:
        database.dispose()
        if admin_channel is not None:
            admin_channel.close()
        raise
    retention = RetentionJanitor(
        config,
        database=database,
        store=store,
        metadata_prefix=metadata_prefix,
        metrics=metrics,
        sweep_dirs=plugin.sweep,
    )
    controller.start()
    sender.start()
    retention.start()
    if plugin.pool is not None:
        plugin.pool.prestart()
    return RunningPropeller(
        server=server,
        controller=controller,
        plugin=plugin,
        sender=sender,
        database=database,
        store=store,
        config=config,
        catalog=catalog,
        admin_channel=admin_channel,
        retention=retention,
    )


def main(config_path: str | os.PathLike[str] | None = None) -> None:
    """Run propeller in the foreground until SIGINT/SIGTERM.

    Prints the gRPC and metrics addresses once listening.

    Args:
        config_path: A YAML or TOML config file; ``None`` uses ``CADDIS_CONFIG`` when set, and
            ``CADDIS_PROPELLER_*`` variables override either.
    """
    logging.basicConfig(
        level=os.environ.get("CADDIS_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = PropellerConfig.load(config_path)
    storage = StorageConfig.load(config_path)
    running = serve(config, storage=storage)
    print(f"propeller listening on {running.address}", flush=True)
    if running.metrics_url:
        print(f"propeller metrics on {running.metrics_url}", flush=True)

    def on_stop() -> None:
        if running.retention is not None:
            running.retention.stop()
        running.controller.stop()
        running.sender.stop()
        running.plugin.close()
        if running.admin_channel is not None:
            running.admin_channel.close()
        running.database.dispose()

    serve_until_signalled(running.server, on_stop=on_stop)


__all__ = ["RunningPropeller", "main", "serve"]
