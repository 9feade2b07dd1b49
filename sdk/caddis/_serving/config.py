"""Configuration dataclasses shared by the services (pure Python; no grpc, no SQLAlchemy).

A service nests these in its own config dataclass and loads it with
:func:`caddis.config.load_config`, e.g. ``[datacatalog.server] port = 8089`` in the file or
``CADDIS_DATACATALOG_SERVER_PORT=8089`` in the environment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerConfig:
    """Where and how a gRPC service listens.

    Attributes:
        host: Interface the gRPC server binds to (``0.0.0.0`` to listen on all of them).
        port: gRPC port; ``0`` lets the OS choose a free one (tests do this). The bound port is
            reported by :attr:`caddis._serving.server.GrpcServer.port`.
        metrics_host: Interface of the Prometheus ``/metrics`` HTTP server.
        metrics_port: Port of the ``/metrics`` HTTP server; ``0`` lets the OS choose and
            ``None`` disables the endpoint.
        max_workers: Size of the thread pool that runs RPC handlers; RPCs beyond this many
            wait in gRPC's queue.
        grace_period_s: Seconds in-flight RPCs get to finish when the server stops.
        reflection: Whether to serve the gRPC reflection service (for grpcurl and friends).
    """

    host: str = "127.0.0.1"
    port: int = 0
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 0
    max_workers: int = 16
    grace_period_s: float = 5.0
    reflection: bool = True


@dataclass(frozen=True)
class DatabaseConfig:
    """The SQL database behind a service.

    Attributes:
        url: SQLAlchemy URL: ``sqlite:///path/to/file.db`` or
            ``postgresql+psycopg://user:password@host:5432/dbname``.
        pool_size: Connections kept open (PostgreSQL); size it near the server's max_workers.
        max_overflow: Extra connections allowed beyond ``pool_size`` under bursts.
        sqlite_busy_timeout_ms: How long a SQLite writer waits for the lock before failing.
        migrate: Whether the service upgrades the schema to the newest migration at start.
        echo: Log every SQL statement (debugging only).
    """

    url: str = "sqlite:///caddis.db"
    pool_size: int = 10
    max_overflow: int = 10
    sqlite_busy_timeout_ms: int = 30_000
    migrate: bool = True
    echo: bool = False


__all__ = ["DatabaseConfig", "ServerConfig"]
