"""Entry points of the datacatalog service: :func:`serve` (in-process) and :func:`main`.

``caddis serve datacatalog --config FILE`` calls :func:`main`; tests call :func:`serve` with a
config that binds ``127.0.0.1:0`` and stop the returned handle.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from caddis._serving.server import GrpcServer, serve_until_signalled
from caddis.storage import BlobStore, StorageConfig, get_store
from caddis_datacatalog.config import DataCatalogConfig
from caddis_datacatalog.manager.catalog import CatalogManager, CatalogSettings
from caddis_datacatalog.repository.database import Database
from caddis_datacatalog.rpc.metrics import CatalogMetrics
from caddis_datacatalog.rpc.servicer import SERVICE_NAME, DataCatalogServicer
from caddis_idl.datacatalog.v1 import datacatalog_service_pb2_grpc

_log = logging.getLogger(__name__)


@dataclass
class RunningDataCatalog:
    """A started datacatalog: its gRPC server, database and blob store.

    Attributes:
        server: The gRPC server (``address``, ``port``, ``metrics_url``, ``registry``).
        database: The database it serves from.
        store: The blob store for offloaded values.
        config: The configuration it was started with.
    """

    server: GrpcServer
    database: Database
    store: BlobStore
    config: DataCatalogConfig

    @property
    def address(self) -> str:
        """``host:port`` to dial."""
        return self.server.address

    @property
    def metrics_url(self) -> str | None:
        """The Prometheus scrape URL, or ``None`` when metrics are off."""
        return self.server.metrics_url

    def stop(self, grace: float | None = None) -> None:
        """Stop serving and close the database connections."""
        self.server.stop(grace)
        self.database.dispose()

    def __enter__(self) -> RunningDataCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(config: DataCatalogConfig, *, storage: StorageConfig | None = None) -> RunningDataCatalog:
    """Migrate the database and start serving in background threads.

    Args:
        config: The service configuration.
        storage: Blob store settings (credentials, endpoint); loaded from the ``storage``
            section / ``CADDIS_STORAGE_*`` when ``None``.

    Returns:
        The running service; call :meth:`RunningDataCatalog.stop` to shut it down.
    """
    storage = storage if storage is not None else StorageConfig.load()
    data_prefix = (
        config.data_prefix or storage.resolved_metadata_prefix().rstrip("/") + "/datacatalog"
    )
    _ensure_sqlite_directory(config.database.url)
    # Every RPC worker thread may hold a connection at once; a smaller pool would make
    # lookups queue for connections rather than for CPU.
    database = Database(
        dataclasses.replace(
            config.database,
            pool_size=max(config.database.pool_size, config.server.max_workers),
        )
    )
    if config.database.migrate:
        database.migrate()
    store = get_store(data_prefix, storage)
    manager = CatalogManager(
        CatalogSettings(
            data_prefix=data_prefix,
            inline_limit_bytes=config.inline_limit_bytes,
            max_heartbeat_interval=dt.timedelta(seconds=config.max_heartbeat_interval_s),
            heartbeat_grace_multiplier=config.heartbeat_grace_multiplier,
            default_page_size=config.default_page_size,
            max_page_size=config.max_page_size,
            max_batch_size=config.max_batch_size,
            batch_response_bytes=config.batch_response_bytes,
        ),
        store,
    )
    server = GrpcServer(config.server, name="datacatalog")
    servicer = DataCatalogServicer(database, manager, CatalogMetrics(server.registry))
    server.add_service(
        SERVICE_NAME,
        datacatalog_service_pb2_grpc.add_DataCatalogServiceServicer_to_server,
        servicer,
    )
    try:
        server.start()
    except Exception:
        database.dispose()
        raise
    return RunningDataCatalog(server=server, database=database, store=store, config=config)


def _ensure_sqlite_directory(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix) :] not in ("", ":memory:"):
        Path(url[len(prefix) :]).expanduser().parent.mkdir(parents=True, exist_ok=True)


def main(config_path: str | os.PathLike[str] | None = None) -> None:
    """Run the datacatalog in the foreground until SIGINT/SIGTERM.

    Prints the gRPC and metrics addresses once listening.

    Args:
        config_path: A YAML or TOML config file; ``None`` uses ``CADDIS_CONFIG`` when set, and
            ``CADDIS_DATACATALOG_*`` variables override either.
    """
    logging.basicConfig(
        level=os.environ.get("CADDIS_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = DataCatalogConfig.load(config_path)
    storage = StorageConfig.load(config_path)
    running = serve(config, storage=storage)
    print(f"datacatalog listening on {running.address}", flush=True)
    if running.metrics_url:
        print(f"datacatalog metrics on {running.metrics_url}", flush=True)
    serve_until_signalled(running.server, on_stop=running.database.dispose)


__all__ = ["RunningDataCatalog", "main", "serve"]
