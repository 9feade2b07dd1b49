"""The transactional outbox dispatcher: delivers hand-overs to propeller after commit.

An execution row and its outbox row commit in one transaction, so a hand-over is never lost
and never sent for an execution that does not exist. This thread claims due messages,
delivers them, and marks them delivered; failures are retried with exponential backoff.
A crash between delivery and marking redelivers the message, which is safe because
propeller's LaunchExecution and AbortExecution are idempotent by execution id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

from caddis_admin.manager.context import AdminContext
from caddis_admin.repository.store import Repos

_log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """Delivery failed; ``permanent`` ones are not retried.

    Args:
        message: What happened, for logs and the execution's error.
        permanent: Repeating the same message cannot succeed.
        code: The status code name propeller answered with (``INVALID_ARGUMENT``), empty
            when it was not reached.
    """

    def __init__(self, message: str, *, permanent: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


# Answers to LaunchExecution that mean propeller will never run this execution as sent (its
# closure or inputs are unusable): the execution fails with the reason instead of staying
# QUEUED forever.
LAUNCH_REFUSED_CODES = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION"})


class LaunchRefusedHandler(Protocol):
    """Marks an execution failed because propeller refused to launch it."""

    def __call__(self, repos: Repos, execution_id: int, reason: str) -> None:
        """Called inside the transaction that settles the outbox message."""
        ...


class PropellerClient(Protocol):
    """How the dispatcher reaches propeller (the rpc layer provides the gRPC one)."""

    def deliver(self, kind: str, payload: bytes, timeout: float) -> None:
        """Send one message (``launch`` or ``abort``); raise DeliveryError on failure."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class Dispatcher:
    """A background thread draining the outbox into propeller.

    Args:
        ctx: The shared admin context.
        client: The propeller client; None holds every message until one is configured.
        on_launch_refused: Fails an execution whose launch propeller refused outright.
    """

    def __init__(
        self,
        ctx: AdminContext,
        client: PropellerClient | None,
        on_launch_refused: LaunchRefusedHandler | None = None,
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.on_launch_refused = on_launch_refused
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0

    def start(self) -> None:
        """Start the thread."""
        if self.client is None:
            return
        self._thread = threading.Thread(target=self._loop, name="admin-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for new messages now (called after a commit that added some)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.client is not None:
            self.client.close()

    def _loop(self) -> None:
        cfg = self.ctx.config.outbox
        while not self._stop.is_set():
            self._wake.clear()
            try:
                busy = self.run_once()
            except Exception:  # the loop must survive a database hiccup
                _log.exception("outbox round failed")
                busy = False
            if not busy:
                self._wake.wait(cfg.poll_interval_s)

    def run_once(self) -> bool:
        """One round: claim and deliver due messages. True when it delivered any."""
        assert self.client is not None
        cfg = self.ctx.config.outbox
        now = _now_us()
        lease = now + int((cfg.rpc_timeout_s + 5) * 1_000_000)

        def claim(repos: Repos) -> list[tuple[int, str, bytes, int, int]]:
            got = []
            for row in repos.outbox.due(now, cfg.batch):
                if repos.outbox.claim(row.id, now, lease):
                    got.append((row.id, row.kind, row.payload, row.attempts + 1, row.execution_id))
            return got

        batch = self.ctx.db.run(claim)
        progressed = False
        for row_id, kind, payload, attempts, execution_id in batch:
            if self._stop.is_set():
                break
            try:
                self.client.deliver(kind, payload, cfg.rpc_timeout_s)
            except DeliveryError as exc:
                if exc.permanent:
                    _log.error("outbox message %d refused by propeller: %s", row_id, exc)
                    fail = None
                    if (
                        kind == "launch"
                        and exc.code in LAUNCH_REFUSED_CODES
                        and self.on_launch_refused is not None
                    ):
                        fail = partial(self.on_launch_refused, execution_id=execution_id)
                    self.ctx.db.run(partial(_refused, row_id=row_id, error=str(exc), fail=fail))
                    self.wake()  # a failed execution may have freed a quota slot
                    continue
                backoff = min(cfg.max_backoff_s, cfg.initial_backoff_s * 2 ** (attempts - 1))
                retry_at = _now_us() + int(backoff * 1_000_000)
                self.ctx.db.run(partial(_failed, row_id=row_id, retry_at=retry_at, error=str(exc)))
                continue
            self.ctx.db.run(partial(_delivered, row_id=row_id))
            self.delivered += 1
            progressed = True
        return progressed

    def pending(self) -> int:
        """Messages not yet delivered (held ones excluded)."""
        with self.ctx.db.transaction(readonly=True) as repos:
            return repos.outbox.pending_count()


def _failed(repos: Repos, *, row_id: int, retry_at: int, error: str) -> None:
    repos.outbox.failed(row_id, retry_at, error)


def _delivered(repos: Repos, *, row_id: int) -> None:
    repos.outbox.delivered(row_id, _now_us())


def _refused(repos: Repos, *, row_id: int, error: str, fail: Callable[..., None] | None) -> None:
    # Never retried: marked done, with the reason kept for operators.
    repos.outbox.delivered(row_id, _now_us())
    repos.outbox.failed(row_id, 0, error)
    if fail is not None:
        fail(repos, reason=error)


def _now_us() -> int:
    # Delivery timing follows the real clock, whatever clock the managers are given.
    return int(time.time() * 1_000_000)
