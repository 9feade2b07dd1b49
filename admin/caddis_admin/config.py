"""admin's settings.

A dataclass filled from the ``admin`` section of the config file and ``CADDIS_ADMIN_*``
environment variables (storage from the shared ``storage`` section).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis.config import load_config
from caddis.storage import StorageConfig

DEFAULT_DOMAINS = ("development", "staging", "production")


@dataclass(frozen=True)
class OutboxConfig:
    """How the hand-over to propeller is delivered.

    Attributes:
        poll_interval_s: How often the dispatcher looks for undelivered messages when it was
            not woken by a new one.
        initial_backoff_s: Wait before retrying a failed delivery.
        max_backoff_s: Upper bound of the wait between retries.
        rpc_timeout_s: Deadline of one call to propeller.
        batch: Messages taken per round.
    """

    poll_interval_s: float = 0.5
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 5.0
    rpc_timeout_s: float = 5.0
    batch: int = 100


@dataclass(frozen=True)
class SchedulerConfig:
    """The scheduler loop inside admin.

    Attributes:
        enabled: Run the scheduler in this replica.
        poll_interval_s: How often it looks for due scheduled times.
        catch_up_policy: What to do with times missed while no scheduler ran, unless the
            schedule says otherwise: ``all`` (run each), ``latest`` (run only the newest) or
            ``none`` (skip them).
        max_catch_up: Most missed runs created per schedule per round (``all``).
        lease_ttl_s: How long a replica's scheduler lease lasts without renewal; another
            replica takes over after it expires.
    """

    enabled: bool = True
    poll_interval_s: float = 1.0
    catch_up_policy: str = "all"
    max_catch_up: int = 1000
    lease_ttl_s: float = 15.0


@dataclass(frozen=True)
class AdminConfig:
    """Everything admin needs to run.

    Attributes:
        server: Where the gRPC server listens (and its metrics endpoint).
        database: The SQL database (SQLite default under ``state_dir``).
        state_dir: Directory for the embedded defaults (SQLite file, file:// blob store).
        storage: Blob store settings (file:// under ``state_dir`` unless configured).
        metadata_prefix: Where admin writes closures and inputs; empty means the storage
            config's metadata prefix.
        domains: The domains every project has.
        auto_create_projects: Create a project on first registration under it, instead of
            refusing the registration.
        propeller_address: ``host:port`` of propeller's PropellerService; empty keeps
            hand-overs in the outbox until one is configured.
        max_concurrent_executions: Running executions allowed per project+domain (0 means
            no limit); executions beyond it wait queued.
        max_inline_data_bytes: Execution data up to this size is returned inline by
            GetExecutionData, larger data only by URI.
        default_max_parallelism: Max parallelism of executions that do not set one.
        outbox: Delivery of hand-overs to propeller.
        scheduler: The schedule loop.
        replica_id: This replica's name in leases; empty picks host and pid.
    """

    server: ServerConfig = field(default_factory=lambda: ServerConfig(port=8089))
    database: DatabaseConfig = field(default_factory=lambda: DatabaseConfig(url=""))
    state_dir: str = "~/.caddis/admin"
    storage: StorageConfig = field(default_factory=StorageConfig)
    metadata_prefix: str = ""
    domains: tuple[str, ...] = DEFAULT_DOMAINS
    auto_create_projects: bool = True
    propeller_address: str = ""
    max_concurrent_executions: int = 0
    max_inline_data_bytes: int = 2 * 1024 * 1024
    default_max_parallelism: int = 25
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    replica_id: str = ""

    def database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in ``state_dir``."""
        if self.database.url:
            return self.database.url
        path = Path(self.state_dir).expanduser().absolute()
        path.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path / 'admin.db'}"

    def resolved_metadata_prefix(self) -> str:
        """Where admin writes blobs: ``metadata_prefix``, else the storage default."""
        if self.metadata_prefix:
            return self.metadata_prefix.rstrip("/") + "/"
        return self.storage.resolved_metadata_prefix()

    def resolved_replica_id(self) -> str:
        """This replica's lease holder name."""
        return self.replica_id or f"{os.uname().nodename}-{os.getpid()}-{id(self):x}"


def load_admin_config(
    path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> AdminConfig:
    """Load admin's configuration from a file and the environment.

    The ``admin`` section fills :class:`AdminConfig` (``CADDIS_ADMIN_*`` overrides); the
    shared ``storage`` section fills its storage settings (``CADDIS_STORAGE_*``).

    Args:
        path: A YAML or TOML file; ``None`` uses ``CADDIS_CONFIG`` when set.
        env: The environment; ``os.environ`` when None.

    Returns:
        The configuration.
    """
    environ = dict(os.environ) if env is None else env
    cfg = load_config(AdminConfig, section="admin", path=path, env=environ)
    storage = StorageConfig.load(path, env=environ)
    if storage == StorageConfig():
        # Nothing configured for storage: keep the embedded store beside admin's state.
        root = str(Path(cfg.state_dir).expanduser().absolute() / "storage")
        storage = dataclasses.replace(storage, local_root=root)
    return dataclasses.replace(cfg, storage=storage)
