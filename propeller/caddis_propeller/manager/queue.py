"""The ready queue: executions due for a round, now or at a time, each at most once."""

from __future__ import annotations

import heapq
import threading
import time


class ReadyQueue:
    """A delay queue of execution ids with de-duplication and "busy" tracking.

    An id is queued at most once (re-queueing earlier moves it forward). While a worker holds
    an id (between :meth:`get` and :meth:`done`) no other worker gets it; a re-queue during
    that time is remembered and applied at :meth:`done`, so a trigger is never lost.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, int]] = []
        self._due: dict[int, float] = {}
        self._busy: set[int] = set()
        self._again: dict[int, float] = {}
        self._seq = 0
        self._closed = False

    def __len__(self) -> int:
        return len(self._due)

    def put(self, item: int, at: float = 0.0) -> None:
        """Make ``item`` due at monotonic time ``at`` (0: now)."""
        with self._cond:
            if item in self._busy:
                prev = self._again.get(item)
                if prev is None or at < prev:
                    self._again[item] = at
                return
            prev = self._due.get(item)
            if prev is not None and prev <= at:
                return
            self._due[item] = at
            self._seq += 1
            heapq.heappush(self._heap, (at, self._seq, item))
            self._cond.notify()

    def get(self, timeout: float) -> int | None:
        """The next due item (marked busy), or None after ``timeout`` or when closed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap:
                    at, _, item = self._heap[0]
                    if self._due.get(item) != at:
                        heapq.heappop(self._heap)  # superseded entry
                        continue
                    if at > now:
                        break
                    heapq.heappop(self._heap)
                    del self._due[item]
                    self._busy.add(item)
                    return item
                wait = deadline - now
                if self._heap:
                    wait = min(wait, self._heap[0][0] - now)
                if wait <= 0 and now >= deadline:
                    return None
                self._cond.wait(max(wait, 0.0005))
        return None

    def done(self, item: int) -> None:
        """Release ``item``; re-queue it if it was triggered meanwhile."""
        with self._cond:
            self._busy.discard(item)
            again = self._again.pop(item, None)
        if again is not None:
            self.put(item, again)

    def discard(self, item: int) -> None:
        """Forget ``item`` (its lease was lost or it finished)."""
        with self._cond:
            self._due.pop(item, None)
            self._again.pop(item, None)

    def close(self) -> None:
        """Wake every waiter; further gets return None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


__all__ = ["ReadyQueue"]
