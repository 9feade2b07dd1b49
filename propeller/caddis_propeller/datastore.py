"""The engine's DataStore over the blob store: keys are the URIs themselves.

Propeller hands the engine a data prefix that is a full URI
(``file:///.../metadata/<project>/<domain>/<execution>``), so every key the engine derives is
the deterministic URI a task process reads or writes, with no mapping to remember across
restarts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TypeVar

from google.protobuf.message import Message

from caddis.storage import BlobStore, NotFoundError

M = TypeVar("M", bound=Message)


class BlobDataStore:
    """``DataStore`` over a :class:`~caddis.storage.BlobStore`.

    Small messages read or written recently are kept in a bounded in-memory cache (they are
    immutable once written at a deterministic location, except for overwrites through this
    object, which update the cache).

    Args:
        store: The blob store.
        cache_entries: Messages to keep in memory.
    """

    def __init__(self, store: BlobStore, cache_entries: int = 4096) -> None:
        self.store = store
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._limit = cache_entries
        self._lock = threading.Lock()

    def _remember(self, key: str, data: bytes) -> None:
        if len(data) > 64 * 1024:
            return
        with self._lock:
            self._cache[key] = data
            self._cache.move_to_end(key)
            while len(self._cache) > self._limit:
                self._cache.popitem(last=False)

    def put(self, key: str, message: Message) -> None:
        """Write ``message`` to ``key``."""
        data = message.SerializeToString()
        self.store.put_bytes(key, data)
        self._remember(key, data)

    def get(self, key: str, message_type: type[M]) -> M | None:
        """Read ``key`` as ``message_type``; None when absent."""
        with self._lock:
            data = self._cache.get(key)
        if data is None:
            try:
                data = self.store.get_bytes(key)
            except NotFoundError:
                return None
            self._remember(key, data)
        return message_type.FromString(data)

    def uri(self, key: str) -> str:
        """The URI of ``key`` (the key itself)."""
        return key


__all__ = ["BlobDataStore"]
