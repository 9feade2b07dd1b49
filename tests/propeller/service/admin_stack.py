"""A real admin and a real propeller in-process, wired to each other, sharing one blob store.

Admin hands executions to propeller over PropellerService; propeller sends events, creates
child executions, reads signals and node executions through admin. Entities are registered
with the SDK's :class:`~caddis.remote.CaddisRemote` (no code bundle: task processes import
the test workflows from the repository root).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis.storage import StorageConfig
from caddis_admin.config import AdminConfig, OutboxConfig, SchedulerConfig
from caddis_admin.server import serve as serve_admin
from caddis_idl.core.v1 import execution_pb2
from tests.support import free_port, wait_until

PROJECT, DOMAIN = "p", "development"
WP = execution_pb2.WorkflowExecutionPhase


@dataclasses.dataclass
class Stack:
    """Admin, propeller and an SDK client of admin."""

    admin: Any
    propeller: Any
    remote: Any

    def run(self, entity: Any, inputs: dict[str, Any], *, name: str) -> Any:
        """Register ``entity`` and launch it (not waiting)."""
        return self.remote.execute(entity, inputs, name=name, version="v1")

    def wait(self, name: str, timeout: float = 45) -> Any:
        """Wait until admin reports ``name`` terminal; return the execution."""
        terminal = {
            "SUCCEEDED",
            "FAILED",
            "ABORTED",
            "TIMED_OUT",
        }
        return wait_until(
            lambda: (e := self.remote.fetch_execution(name)).phase in terminal and e,
            timeout=timeout,
            message=f"execution {name} terminal in admin",
        )


def start_stack(
    tmp_path: Path,
    storage: StorageConfig,
    make_config: Callable[..., Any],
    start_propeller: Callable[[Any], Any],
) -> Iterator[Stack]:
    """Start admin (SQLite) and propeller; yields a :class:`Stack` and stops admin after."""
    from caddis.remote import CaddisRemote

    metadata = storage.resolved_metadata_prefix()
    propeller_port = free_port()
    admin = serve_admin(
        AdminConfig(
            server=ServerConfig(port=0, metrics_port=0, max_workers=16),
            database=DatabaseConfig(url=f"sqlite:///{tmp_path / 'admin.db'}"),
            state_dir=str(tmp_path / "admin-state"),
            storage=storage,
            metadata_prefix=metadata,
            propeller_address=f"127.0.0.1:{propeller_port}",
            outbox=OutboxConfig(
                poll_interval_s=0.05, initial_backoff_s=0.02, max_backoff_s=0.2, rpc_timeout_s=2.0
            ),
            scheduler=SchedulerConfig(enabled=False),
        )
    )
    try:
        config = make_config(
            admin_endpoint=admin.address,
            metadata_prefix=metadata,
            server=ServerConfig(port=propeller_port, metrics_port=0, grace_period_s=0.5),
        )
        propeller = start_propeller(config)
        remote = CaddisRemote(
            endpoint=admin.address, project=PROJECT, domain=DOMAIN, insecure=True, storage=storage
        )
        try:
            yield Stack(admin, propeller, remote)
        finally:
            remote.close()
    finally:
        with contextlib.suppress(Exception):
            admin.stop(grace=0)


def runs(markers: Path, kind: str, execution: str | None = None) -> int:
    """How often task ``kind`` ran (optionally in one execution)."""
    if not markers.exists():
        return 0
    return sum(
        1
        for f in markers.iterdir()
        if f.name.split("|")[3] == kind and (execution is None or f.name.split("|")[0] == execution)
    )
