"""The retention janitor: removes what propeller keeps of executions that finished long ago.

Every ``retention_interval_s`` it:

1. Deletes, ``retention_batch`` at a time (one short transaction each), the rows of executions
   that became terminal more than ``retention_s`` ago and have no event left in the outbox
   (an execution whose events have not all reached admin stays until they have). Before the
   rows go, the blobs that only propeller uses go: ``<execution prefix>/propeller/`` (its copy
   of an inline workflow closure, offloaded engine state of every version). Inputs, outputs
   and everything else of the execution belong to admin and its users and stay.
2. Asks the process plugin to remove attempt directories whose execution no longer has a row
   (those just deleted, and those left by executions gone some other way, e.g. a database
   reset), when untouched for ``retention_s`` and not locked by a running attempt.

Several replicas may run it at once: every DELETE re-checks its conditions, a row another
replica deleted first simply does not count, and deleting a blob or directory twice is
harmless. It never touches a non-terminal execution.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from caddis.storage import BlobStore, locations
from caddis_propeller.config import PropellerConfig
from caddis_propeller.manager.metrics import PropellerMetrics
from caddis_propeller.repository.database import Database
from caddis_propeller.repository.repo import ExecutionKey, ExpiredExecution, Repository

_log = logging.getLogger(__name__)

SweepDirs = Callable[[float, Callable[[set[str]], set[str]]], int]
"""``sweep(unchanged_since, existing)``: the plugin's removal of orphaned attempt dirs."""


@dataclass(frozen=True)
class RetentionResult:
    """What one janitor run removed."""

    executions: int = 0
    attempt_dirs: int = 0


class RetentionJanitor:
    """Periodically removes terminal executions older than ``retention_s``.

    Args:
        config: Propeller settings (``retention_s``, ``retention_interval_s``,
            ``retention_batch``).
        database: Executions and the outbox.
        store: Blob store of execution data.
        metadata_prefix: Blob prefix of execution data.
        metrics: Series to record.
        sweep_dirs: The process plugin's attempt-directory sweep; None skips directories.
        clock: Epoch seconds (tests move time instead of waiting).
    """

    def __init__(
        self,
        config: PropellerConfig,
        *,
        database: Database,
        store: BlobStore,
        metadata_prefix: str,
        metrics: PropellerMetrics,
        sweep_dirs: SweepDirs | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.retention = config.retention_s
        self.interval = max(0.01, config.retention_interval_s)
        self.batch = max(1, config.retention_batch)
        self.database = database
        self.store = store
        self.metadata_prefix = metadata_prefix
        self.metrics = metrics
        self.sweep_dirs = sweep_dirs
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """False when ``retention_s`` is 0 or negative (everything is kept)."""
        return self.retention > 0

    def start(self) -> None:
        """Run in a background thread (first run at once, then every interval)."""
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="propeller-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a run in progress ends after its current batch."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                _log.warning("retention run failed", exc_info=True)
            self._stop.wait(self.interval)

    def run_once(self) -> RetentionResult:
        """One run: rows and propeller's blobs first, then attempt directories."""
        if not self.enabled:
            return RetentionResult()
        began = time.perf_counter()
        cutoff = self.clock() - self.retention
        executions = self._remove_executions(cutoff)
        dirs = 0
        if self.sweep_dirs is not None and not self._stop.is_set():
            dirs = self.sweep_dirs(cutoff, self._existing)
            self.metrics.retention_removed.labels("attempt_dirs").inc(dirs)
        self.metrics.retention_run.observe(time.perf_counter() - began)
        self.metrics.retention_last_success.set(time.time())
        if executions or dirs:
            _log.info(
                "retention removed %d executions and %d attempt directories", executions, dirs
            )
        return RetentionResult(executions, dirs)

    def _remove_executions(self, cutoff: float) -> int:
        removed = 0
        while not self._stop.is_set():
            batch = self.database.run(lambda r: r.expired(cutoff, self.batch), write=False)
            if not batch:
                break
            for expired in batch:
                self._remove_blobs(expired)
            deleted = self.database.run(partial(_delete, [e.id for e in batch], cutoff))
            removed += deleted
            self.metrics.retention_removed.labels("executions").inc(deleted)
            if deleted == 0 or len(batch) < self.batch:
                # Nothing left, or another janitor is deleting the same rows: it finishes them.
                break
        return removed

    def _remove_blobs(self, expired: ExpiredExecution) -> None:
        """Delete the blobs only propeller uses; a failure stops the run (rows stay)."""
        key = expired.key
        prefix = locations.execution_prefix(
            self.metadata_prefix, key.project, key.domain, key.name
        ).rstrip("/")
        own = prefix + "/propeller/"
        self.store.delete_prefix(own)
        if expired.state_uri and not expired.state_uri.startswith(own):
            self.store.delete(expired.state_uri)

    def _existing(self, keys: set[str]) -> set[str]:
        parsed: dict[ExecutionKey, str] = {}
        for text in keys:
            parts = text.split("/")
            if len(parts) == 3:
                parsed[ExecutionKey(*parts)] = text
            # A malformed key cannot be checked: report it as existing, so it is kept.
        found = self.database.run(lambda r: r.existing(parsed), write=False)
        return {parsed[k] for k in found} | {t for t in keys if len(t.split("/")) != 3}


def _delete(ids: list[int], cutoff: float, repo: Repository) -> int:
    return repo.delete_expired(ids, cutoff)


__all__ = ["RetentionJanitor", "RetentionResult", "SweepDirs"]
