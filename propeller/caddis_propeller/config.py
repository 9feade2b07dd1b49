"""Configuration of the propeller service (section ``propeller``, ``CADDIS_PROPELLER_*``).

Example (YAML)::

    propeller:
      server: {host: 0.0.0.0, port: 8088, metrics_port: 9088}
      database: {url: "postgresql+psycopg://caddis@db:5432/caddis"}
      admin_endpoint: admin:8080
      datacatalog_endpoint: datacatalog:8089
      workers: 8
      process: {cpu: 8, memory: 16Gi, warm_workers: 4}

Environment overrides: ``CADDIS_PROPELLER_SERVER_PORT=0``,
``CADDIS_PROPELLER_DATABASE_URL=sqlite:///propeller.db``, ``CADDIS_PROPELLER_WORKERS=4``,
``CADDIS_PROPELLER_PROCESS_WARM_WORKERS=0``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis.config import load_config


def _default_server() -> ServerConfig:
    return ServerConfig(port=8088, metrics_port=9088)


def _default_database() -> DatabaseConfig:
    return DatabaseConfig(url="sqlite:///" + os.path.expanduser("~/.caddis/propeller.db"))


@dataclass(frozen=True)
class ProcessPluginConfig:
    """The local process plugin: task attempts as OS processes on this machine.

    Attributes:
        work_dir: Directory of attempt directories (pid, lock and log files); empty means
            ``~/.caddis/propeller/attempts``. Must survive a propeller restart.
        cpu: CPU slots of the machine (cores); 0 means ``os.cpu_count()``.
        memory: Memory slots, as a quantity (``16Gi``); empty means the machine's memory.
        gpu: GPU slots.
        default_cpu: CPU a task takes when it requests none.
        default_memory: Memory a task takes when it requests none.
        warm_workers: Warm worker processes (caddis pre-imported) that run tasks without
            paying Python start-up; 0 runs every attempt as a fresh process.
        warm_batch: Array items handed to one warm worker at once.
        python: Interpreter for ``python`` commands; empty means the one propeller runs on.
        start_grace_s: How long a spawned attempt may take to claim its directory before it
            counts as lost (and fails with a recoverable system error).
        abort_grace_s: Seconds between SIGTERM and SIGKILL when aborting.
    """

    work_dir: str = ""
    cpu: float = 0
    memory: str = ""
    gpu: int = 0
    default_cpu: float = 0.25
    default_memory: str = "64Mi"
    warm_workers: int = 2
    warm_batch: int = 64
    python: str = ""
    start_grace_s: float = 30.0
    abort_grace_s: float = 5.0


@dataclass(frozen=True)
class PropellerConfig:
    """Settings of the propeller service.

    Attributes:
        server: gRPC and metrics listeners.
        database: The SQL database holding executions, their engine state and the event
            outbox.
        replica_id: This replica's identity (lease owner, event ``producer_id``); empty means
            ``<hostname>-<pid>-<random>``.
        producer_id: The ``producer_id`` events carry (admin refuses events from another
            producer for the same execution); shared by all replicas of one deployment.
        admin_endpoint: ``host:port`` of admin (EventService for events; ExecutionService for
            launch-plan nodes' child executions; SignalService for gates; NodeExecutionService
            for recovery); empty disables event delivery (events stay in the outbox), and
            launch-plan and approve/signal gate nodes fail.
        datacatalog_endpoint: ``host:port`` of the datacatalog; empty disables caching.
        metadata_prefix: Blob prefix of execution data; empty means the storage section's.
        raw_data_prefix: Blob prefix of raw task data; empty means the storage section's.
        workers: Worker threads evaluating executions concurrently.
        max_streak: Engine rounds one pick may run back to back while the state keeps changing.
        resync_interval_s: How often every active execution is re-evaluated even without a
            trigger (and how often the database is scanned for work).
        poll_interval_s: Re-evaluation delay of an execution that waits on running tasks.
        notify_delay_s: Delay between a task reporting completion and the round that observes
            it, so that completions arriving together are handled by one round.
        lease_ttl_s: How long an execution lease lasts without renewal; a dead replica's
            executions are taken over after this.
        max_system_retries: System-error retries of a node (the system error budget).
        backoff_base_s: First retry delay of a failed attempt.
        backoff_multiplier: Growth of the retry delay per further failure.
        backoff_max_s: Largest retry delay.
        array_items_per_round: Array items started or checked per array node per round. It
            also bounds how many items are in flight at once, which keeps each round cheap
            (the engine checks every in-flight item each round).
        max_workflow_retries: Consecutive failed rounds before an execution fails.
        event_batch_size: Events per CreateEvents call.
        event_retry_max_s: Largest delay between delivery attempts while admin is down.
        catalog_timeout_s: Deadline of one datacatalog call.
        admin_timeout_s: Deadline of one admin call made while evaluating (child executions,
            signals, recovery listing).
        reservation_heartbeat_s: Heartbeat of cache-serialize reservations.
        inline_state_limit: Engine state up to this many bytes stays in the database row;
            larger state goes to the blob store.
        retention_s: How long a terminal execution is kept after it finished: its database
            row (with its engine state, inline or offloaded) and the process plugin's attempt
            directories. 0 or negative keeps everything forever.
        retention_interval_s: How often the retention janitor runs.
        retention_batch: Executions removed per database transaction (and attempt
            directories looked up per query), so a large backlog never holds a long lock.
        process: The local process plugin.
    """

    server: ServerConfig = field(default_factory=_default_server)
    database: DatabaseConfig = field(default_factory=_default_database)
    replica_id: str = ""
    producer_id: str = "propeller"
    admin_endpoint: str = ""
    datacatalog_endpoint: str = ""
    metadata_prefix: str = ""
    raw_data_prefix: str = ""
    workers: int = 4
    max_streak: int = 8
    resync_interval_s: float = 2.0
    poll_interval_s: float = 0.05
    notify_delay_s: float = 0.005
    lease_ttl_s: float = 10.0
    max_system_retries: int = 3
    backoff_base_s: float = 0.0
    backoff_multiplier: float = 2.0
    backoff_max_s: float = 60.0
    array_items_per_round: int = 1024
    max_workflow_retries: int = 10
    event_batch_size: int = 500
    event_retry_max_s: float = 5.0
    catalog_timeout_s: float = 5.0
    admin_timeout_s: float = 10.0
    reservation_heartbeat_s: float = 5.0
    inline_state_limit: int = 256 * 1024
    retention_s: float = 7 * 24 * 3600.0
    retention_interval_s: float = 300.0
    retention_batch: int = 500
    process: ProcessPluginConfig = field(default_factory=ProcessPluginConfig)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> PropellerConfig:
        """Load from the ``propeller`` section of ``path`` (or ``CADDIS_CONFIG``) and the env.

        Args:
            path: A YAML or TOML config file; ``None`` uses ``CADDIS_CONFIG`` when set.
            env: Environment holding ``CADDIS_PROPELLER_*`` overrides.

        Returns:
            The configuration.
        """
        return load_config(cls, section="propeller", path=path, env=env)


__all__ = ["ProcessPluginConfig", "PropellerConfig"]
