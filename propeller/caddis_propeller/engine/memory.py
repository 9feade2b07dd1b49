"""In-memory implementations of the engine's interfaces, for local execution and tests.

All pure Python: a dict DataStore (messages kept as objects, no serialization), a dict
catalog with reservations, a manual clock, and an event sink that collects events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import Message

from caddis_idl.core.v1 import literals_pb2
from caddis_propeller.engine.cache_keys import CacheKey
from caddis_propeller.engine.interfaces import Event

M = TypeVar("M", bound=Message)


class InMemoryDataStore:
    """DataStore over a dict: ``put`` keeps the object itself, ``get`` returns it (read-only)."""

    def __init__(self) -> None:
        self.items: dict[str, Message] = {}

    def put(self, key: str, message: Message) -> None:
        """Store ``message`` under ``key``."""
        self.items[key] = message

    def get(self, key: str, message_type: type[M]) -> M | None:
        """Return the message under ``key`` or None."""
        msg = self.items.get(key)
        if msg is None:
            return None
        if not isinstance(msg, message_type):
            raise TypeError(f"{key} holds a {type(msg).__name__}, not {message_type.__name__}")
        return msg


class InMemoryCatalog:
    """Catalog over dicts, with reservations that expire after 3 heartbeats of ``clock``.

    Attributes:
        entries: Cached outputs by key.
        reservations: Holder and expiry per key.
        lookups: Number of lookups (tests assert on it).
    """

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.entries: dict[CacheKey, literals_pb2.LiteralMap] = {}
        self.reservations: dict[CacheKey, tuple[str, float]] = {}
        self.lookups = 0
        self._clock = clock

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock.now()
        import time

        return time.time()

    def lookup(self, key: CacheKey) -> literals_pb2.LiteralMap | None:
        """Return cached outputs or None."""
        self.lookups += 1
        return self.entries.get(key)

    def put(self, key: CacheKey, outputs: literals_pb2.LiteralMap, *, overwrite: bool) -> None:
        """Record outputs (keeps the first unless ``overwrite``)."""
        if overwrite or key not in self.entries:
            self.entries[key] = outputs

    def get_or_extend_reservation(self, key: CacheKey, owner_id: str, heartbeat: float) -> bool:
        """Take, extend or report someone else's reservation."""
        now = self._now()
        held = self.reservations.get(key)
        if held is None or held[0] == owner_id or held[1] < now:
            self.reservations[key] = (owner_id, now + 3 * heartbeat)
            return True
        return False

    def release_reservation(self, key: CacheKey, owner_id: str) -> None:
        """Release when held by ``owner_id``."""
        held = self.reservations.get(key)
        if held is not None and held[0] == owner_id:
            del self.reservations[key]


class ManualClock:
    """A clock that moves only when told (tests, deterministic local runs)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        """Current time."""
        return self.t

    def advance(self, seconds: float | None) -> None:
        """Move forward (None: by one second). Usable as ``Engine.run(wait=...)``."""
        self.t += 1.0 if seconds is None else max(seconds, 0.0)


@dataclass
class CollectingEventSink:
    """EventSink that keeps every event in a list."""

    array_item_events: bool = False
    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        """Append the event."""
        self.events.append(event)
