"""Start, inspect and stop the sandbox services as background processes.

State lives under one directory (default ``~/.caddis/sandbox``, or ``CADDIS_SANDBOX_DIR``)::

    config/<service>.yaml   the config each service was started with
    client.yaml             the `remote` and `storage` sections the SDK and CLI read
    db/<service>.db         SQLite databases (unless --db names a PostgreSQL server)
    storage/                the file:// blob store (unless --storage names an s3:// prefix)
    logs/<service>.log      each service's output
    sandbox.json            pids, ports and addresses of the running services
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from caddis._sandbox.health import check

SERVICES = ("datacatalog", "admin", "propeller")
PACKAGES = {
    "admin": "caddis_admin.server",
    "propeller": "caddis_propeller.server",
    "datacatalog": "caddis_datacatalog.server",
}
DEFAULT_PORTS = {"admin": 30080, "propeller": 30088, "datacatalog": 30089}

# Popen objects of services started by this process: held so that they are not collected
# (and warned about) while the service runs on purpose, and so that stop() can reap them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def default_state_dir() -> Path:
    """``$CADDIS_SANDBOX_DIR``, else ``~/.caddis/sandbox``."""
    return Path(os.environ.get("CADDIS_SANDBOX_DIR", "~/.caddis/sandbox")).expanduser()


class SandboxError(Exception):
    """The sandbox could not be started, inspected or stopped; the message says why."""


@dataclass
class SandboxOptions:
    """What ``caddis sandbox start`` was asked for.

    Attributes:
        state_dir: Directory of configs, databases, blobs, logs and state.
        db: SQLAlchemy URL of a PostgreSQL server (each service gets its own database, named
            after the URL's database with ``_<service>`` appended); empty uses SQLite files.
        storage: ``s3://bucket/prefix`` for blobs; empty uses ``<state_dir>/storage``.
        s3_endpoint: S3 endpoint (``host:port`` or URL) when ``storage`` is s3://.
        s3_access_key: S3 access key.
        s3_secret_key: S3 secret key.
        ports: gRPC port per service; metrics listen on port + 10.
        host: Interface the services bind.
    """

    state_dir: Path
    db: str = ""
    storage: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    host: str = "127.0.0.1"


@dataclass
class ServiceState:
    """One started service as recorded in ``sandbox.json``."""

    name: str
    pid: int
    address: str
    metrics_url: str
    config: str
    log: str


def available(service: str) -> bool:
    """Whether the service's ``server`` module is installed (others are still being built)."""
    try:
        return importlib.util.find_spec(PACKAGES[service]) is not None
    except ModuleNotFoundError:
        return False


def _storage_section(opts: SandboxOptions) -> dict[str, Any]:
    if not opts.storage:
        return {"local_root": str(opts.state_dir / "storage")}
    if not opts.storage.startswith("s3://"):
        raise SandboxError(f"--storage must be an s3://bucket/prefix URI, got {opts.storage!r}")
    prefix = opts.storage.rstrip("/")
    section: dict[str, Any] = {
        "metadata_prefix": f"{prefix}/metadata/",
        "raw_data_prefix": f"{prefix}/raw/",
        "local_root": str(opts.state_dir / "storage"),
    }
    if opts.s3_endpoint:
        section["endpoint"] = opts.s3_endpoint
        if opts.s3_endpoint.startswith("http://"):
            section["secure"] = False
    if opts.s3_access_key:
        section["access_key"] = opts.s3_access_key
        section["secret_key"] = opts.s3_secret_key
    return section


def _db_url(opts: SandboxOptions, service: str) -> str:
    if not opts.db:
        return f"sqlite:///{opts.state_dir / 'db' / f'{service}.db'}"
    import sqlalchemy as sa

    url = sa.make_url(opts.db)
    if url.get_backend_name() != "postgresql":
        raise SandboxError(f"--db must be a postgresql:// URL, got {opts.db!r}")
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"{url.database or 'caddis'}_{service}"
    _create_database(url, name)
    return url.set(database=name).render_as_string(hide_password=False)


def _create_database(url: Any, name: str) -> None:
    # Each service keeps its own Alembic version table, so each needs its own database.
    import psycopg
    from psycopg import sql

    params = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "dbname": url.database or "postgres",
    }
    try:
        with psycopg.connect(
            **{k: v for k, v in params.items() if v is not None}, autocommit=True, connect_timeout=5
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise SandboxError(
            f"cannot prepare PostgreSQL database {name!r} at {url.host}: {exc}"
        ) from exc


def write_configs(opts: SandboxOptions) -> dict[str, Path]:
    """Write each service's config file and the client config; return the service files."""
    (opts.state_dir / "config").mkdir(parents=True, exist_ok=True)
    (opts.state_dir / "db").mkdir(exist_ok=True)
    storage = _storage_section(opts)
    addr = {s: f"{opts.host}:{opts.ports[s]}" for s in SERVICES}
    sections: dict[str, dict[str, Any]] = {
        "datacatalog": {},
        "admin": {
            "state_dir": str(opts.state_dir / "admin"),
            "propeller_address": addr["propeller"] if available("propeller") else "",
        },
        "propeller": {
            "admin_endpoint": addr["admin"],
            "datacatalog_endpoint": addr["datacatalog"],
            "process": {"work_dir": str(opts.state_dir / "propeller" / "attempts")},
        },
    }
    files: dict[str, Path] = {}
    for service in SERVICES:
        body = {
            "server": {
                "host": opts.host,
                "port": opts.ports[service],
                "metrics_host": opts.host,
                "metrics_port": opts.ports[service] + 10,
            },
            "database": {"url": _db_url(opts, service)} if available(service) else {},
            **sections[service],
        }
        path = opts.state_dir / "config" / f"{service}.yaml"
        path.write_text(yaml.safe_dump({service: body, "storage": storage}, sort_keys=False))
        files[service] = path
    client = {
        "remote": {"endpoint": addr["admin"], "insecure": True},
        "storage": storage,
    }
    (opts.state_dir / "client.yaml").write_text(yaml.safe_dump(client, sort_keys=False))
    return files


def _state_file(state_dir: Path) -> Path:
    return state_dir / "sandbox.json"


def read_state(state_dir: Path) -> dict[str, ServiceState]:
    """The services recorded as started in ``state_dir`` (empty when none)."""
    path = _state_file(state_dir)
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {name: ServiceState(**entry) for name, entry in data.get("services", {}).items()}


def _write_state(state_dir: Path, services: dict[str, ServiceState]) -> None:
    path = _state_file(state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"services": {n: asdict(s) for n, s in services.items()}}, indent=2))
    tmp.replace(path)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie we reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child that exited but was not waited for still answers kill(0); reap it if ours.
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
            return False
        return True
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def start(
    opts: SandboxOptions,
    *,
    timeout: float = 60.0,
    echo: Callable[[str], None] = print,
) -> dict[str, ServiceState]:
    """Start every available service in the background and wait until each is healthy.

    Args:
        opts: What to start and where.
        timeout: Seconds each service has to become healthy.
        echo: Where progress lines go.

    Returns:
        The started services.

    Raises:
        SandboxError: A service is already running here, exited, or did not become healthy.
    """
    running = {n: s for n, s in read_state(opts.state_dir).items() if pid_alive(s.pid)}
    if running:
        names = ", ".join(f"{n} (pid {s.pid})" for n, s in running.items())
        raise SandboxError(
            f"the sandbox in {opts.state_dir} is already running: {names}; "
            f"`caddis sandbox stop` first"
        )
    files = write_configs(opts)
    (opts.state_dir / "logs").mkdir(exist_ok=True)
    started: dict[str, ServiceState] = {}
    try:
        for service in SERVICES:
            if not available(service):
                echo(f"{service}: not available yet ({PACKAGES[service]} is missing); skipped")
                continue
            log_path = opts.state_dir / "logs" / f"{service}.log"
            state = _spawn(service, files[service], log_path, opts)
            started[service] = state
            _write_state(opts.state_dir, started)
            _wait_healthy(state, timeout)
            echo(f"{service}: serving on {state.address} (metrics {state.metrics_url})")
    except BaseException:
        stop(opts.state_dir, echo=lambda _m: None)
        raise
    return started


def _spawn(service: str, config: Path, log_path: Path, opts: SandboxOptions) -> ServiceState:
    env = dict(os.environ)
    # The file is the whole truth: no CADDIS_CONFIG or stray overrides from the caller's shell.
    for key in list(env):
        if key == "CADDIS_CONFIG" or key.startswith(f"CADDIS_{service.upper()}_"):
            del env[key]
    # Task processes that propeller spawns read their blob store settings from the
    # environment, not from propeller's config file: hand the storage section down.
    for key, value in _storage_section(opts).items():
        env[f"CADDIS_STORAGE_{key.upper()}"] = str(value)
    command = [
        sys.executable,
        "-c",
        "from caddis._cli.main import main; main()",
        "serve",
        service,
        "--config",
        str(config),
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(opts.state_dir),
            start_new_session=True,  # keeps running after the terminal closes
        )
    _CHILDREN[proc.pid] = proc
    port = opts.ports[service]
    return ServiceState(
        name=service,
        pid=proc.pid,
        address=f"{opts.host}:{port}",
        metrics_url=f"http://{opts.host}:{port + 10}/metrics",
        config=str(config),
        log=str(log_path),
    )


def _wait_healthy(state: ServiceState, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not pid_alive(state.pid):
            raise SandboxError(
                f"{state.name} exited while starting; last lines of {state.log}:\n"
                + _tail(Path(state.log))
            )
        if check(state.address, timeout=1.0):
            return
        if time.monotonic() >= deadline:
            raise SandboxError(
                f"{state.name} did not become healthy on {state.address} within {timeout:g}s; "
                f"see {state.log}:\n" + _tail(Path(state.log))
            )
        time.sleep(0.1)  # polling another process's health endpoint


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def status(state_dir: Path) -> dict[str, tuple[ServiceState, str]]:
    """Each recorded service with ``SERVING``, ``NOT_SERVING`` or ``STOPPED``."""
    out: dict[str, tuple[ServiceState, str]] = {}
    for name, state in read_state(state_dir).items():
        if not pid_alive(state.pid):
            out[name] = (state, "STOPPED")
        else:
            out[name] = (state, "SERVING" if check(state.address, timeout=1.0) else "NOT_SERVING")
    return out


def stop(
    state_dir: Path, *, timeout: float = 15.0, echo: Callable[[str], None] = print
) -> list[str]:
    """Stop the recorded services (SIGTERM, then SIGKILL after ``timeout``).

    Only the pids recorded in ``sandbox.json`` are signalled.

    Returns:
        Names of the services that were running and were stopped.
    """
    stopped: list[str] = []
    states = read_state(state_dir)
    for name in reversed(SERVICES):
        state = states.get(name)
        if state is None or not pid_alive(state.pid):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting on another process to exit
        if pid_alive(state.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, signal.SIGKILL)
        stopped.append(name)
        echo(f"{name}: stopped (pid {state.pid})")
    path = _state_file(state_dir)
    if path.exists():
        path.unlink()
    return stopped


__all__ = [
    "DEFAULT_PORTS",
    "SERVICES",
    "SandboxError",
    "SandboxOptions",
    "ServiceState",
    "available",
    "default_state_dir",
    "pid_alive",
    "read_state",
    "start",
    "status",
    "stop",
    "write_configs",
]
