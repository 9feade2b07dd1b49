"""Delivery of the event outbox to admin's EventService.CreateEvents.

One sender thread per replica drains due outbox rows in order, in batches, and deletes what
admin accepted or refused for good. While admin is unreachable the rows stay and are retried
with exponential backoff; as they live in the database, a restart loses none. Any replica may
deliver any row: request ids make a second delivery a DUPLICATE on admin's side.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from caddis_idl.admin.v1 import event_service_pb2, event_service_pb2_grpc
from caddis_propeller.repository.database import Database

_log = logging.getLogger(__name__)

_O = event_service_pb2.EventOutcome
_DONE = {
    _O.EVENT_OUTCOME_ACCEPTED,
    _O.EVENT_OUTCOME_DUPLICATE,
    _O.EVENT_OUTCOME_ALREADY_TERMINAL,
    _O.EVENT_OUTCOME_INVALID,
    _O.EVENT_OUTCOME_WRONG_PRODUCER,
}
# NOT_FOUND can be a race with admin's own commit of the execution: retried a few times.
_NOT_FOUND_RETRIES = 20


class EventSender:
    """Drains the outbox to admin.

    Args:
        database: Where the outbox lives.
        endpoint: ``host:port`` of admin; empty keeps events in the outbox.
        batch_size: Events per CreateEvents call.
        retry_max: Largest backoff between attempts in seconds.
        timeout: Deadline of one call.
        on_sent: Metrics hook with (accepted, refused) counts.
    """

    def __init__(
        self,
        database: Database,
        endpoint: str,
        *,
        batch_size: int = 500,
        retry_max: float = 5.0,
        timeout: float = 10.0,
        on_sent: Callable[[int, int], None] | None = None,
    ) -> None:
        self.database = database
        self.endpoint = endpoint
        self.batch_size = batch_size
        self.retry_max = retry_max
        self.timeout = timeout
        self._on_sent = on_sent
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._channel = grpc.insecure_channel(endpoint) if endpoint else None
        self._stub = (
            event_service_pb2_grpc.EventServiceStub(self._channel) if self._channel else None
        )
        self._failures = 0

    def start(self) -> None:
        """Start the sender thread (no-op without an endpoint)."""
        if self._stub is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="propeller-events", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New events were committed: send soon."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread (undelivered events stay in the outbox) and close the channel."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._channel is not None:
            self._channel.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                more = self.send_once()
            except Exception:
                _log.warning("event delivery failed", exc_info=True)
                more = False
            if more:
                continue
            delay = 1.0 if self._failures == 0 else min(self.retry_max, 0.1 * 2**self._failures)
            self._wake.wait(delay)
            self._wake.clear()

    def send_once(self) -> bool:
        """Send one batch of due events; True when a full batch went (more may wait)."""
        assert self._stub is not None
        now = time.time()
        due = self.database.run(lambda r: r.due_events(now, self.batch_size), write=False)
        if not due:
            return False
        request = event_service_pb2.CreateEventsRequest(
            events=[event_service_pb2.BatchedEvent.FromString(e.payload) for e in due]
        )
        try:
            response = self._stub.CreateEvents(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            self._failures += 1
            delay = min(self.retry_max, 0.1 * 2**self._failures)
            _log.info("admin unreachable (%s); %d events wait", exc.code(), len(due))
            ids = [e.id for e in due]
            self.database.run(lambda r: r.defer_events(ids, time.time() + delay))
            return False
        self._failures = 0
        by_id = {r.request_id: r for r in response.results}
        done: list[int] = []
        retry: list[int] = []
        refused = 0
        for e in due:
            result = by_id.get(e.request_id)
            if result is None:
                retry.append(e.id)
            elif result.outcome in _DONE:
                done.append(e.id)
                if result.outcome in (_O.EVENT_OUTCOME_INVALID, _O.EVENT_OUTCOME_WRONG_PRODUCER):
                    refused += 1
                    _log.warning("admin refused event %s: %s", e.request_id, result.message)
            elif result.outcome == _O.EVENT_OUTCOME_NOT_FOUND and e.attempts >= _NOT_FOUND_RETRIES:
                done.append(e.id)
                refused += 1
            else:
                retry.append(e.id)

        def commit(r):  # type: ignore[no-untyped-def]
            r.delete_events(done)
            r.defer_events(retry, time.time() + 0.2)

        self.database.run(commit)
        if self._on_sent is not None:
            self._on_sent(len(done) - refused, refused)
        return len(due) >= self.batch_size and not retry


__all__ = ["EventSender"]
