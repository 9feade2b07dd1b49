"""Choosing (and caching) the store for a URI."""

from __future__ import annotations

import os
import threading

from caddis.storage._base import BlobStore
from caddis.storage._config import StorageConfig
from caddis.storage._uri import scheme_of

__all__ = ["clear_store_cache", "get_store"]

_lock = threading.Lock()
_stores: dict[tuple[str, StorageConfig], BlobStore] = {}


def get_store(
    uri_or_prefix: str | os.PathLike[str], config: StorageConfig | None = None
) -> BlobStore:
    """The store that serves ``uri_or_prefix``'s scheme (``file://``/plain path, or ``s3://``).

    Stores are cached per (scheme, config), so a process shares one S3 client and its
    connection pool per configuration.

    Args:
        uri_or_prefix: Any URI or prefix of the wanted backend.
        config: The storage configuration; ``None`` loads it with :meth:`StorageConfig.load`
            (``CADDIS_CONFIG`` file and ``CADDIS_STORAGE_*`` variables).

    Returns:
        The store.

    Raises:
        InvalidURIError: For schemes other than file and s3.
    """
    scheme = scheme_of(uri_or_prefix)
    cfg = config if config is not None else StorageConfig.load()
    key = (scheme, cfg)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _build(scheme, cfg)
            _stores[key] = store
        return store


def clear_store_cache() -> None:
    """Forget every cached store and loaded configuration (tests; after credentials rotate)."""
    with _lock:
        _stores.clear()
    StorageConfig.clear_cache()


def _build(scheme: str, config: StorageConfig) -> BlobStore:
    if scheme == "s3":
        # Imported here so that `import caddis.storage` never loads minio.
        from caddis.storage._s3 import S3Store

        return S3Store(config)
    from caddis.storage._local import FileStore

    return FileStore(config)
