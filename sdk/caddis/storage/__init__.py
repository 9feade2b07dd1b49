"""Blob storage: one interface over a local directory (file://) and S3/MinIO (s3://).

Usage::

    from caddis.storage import get_store, locations

    store = get_store("s3://bucket/prefix")       # or "file:///data", or a plain path
    store.put_bytes("s3://bucket/prefix/a.bin", b"...")
    with store.get_stream("s3://bucket/prefix/a.bin") as f:
        ...

Importing this package does not import the S3 client; it is loaded when an s3:// store is
first built.
"""

from caddis.storage import locations
from caddis.storage._base import BlobStore
from caddis.storage._config import RetryConfig, StorageConfig
from caddis.storage._errors import InvalidURIError, NotFoundError, PathEscapeError, StorageError
from caddis.storage._registry import clear_store_cache, get_store
from caddis.storage._uri import ParsedURI, parse_uri, scheme_of

__all__ = [
    "BlobStore",
    "InvalidURIError",
    "NotFoundError",
    "ParsedURI",
    "PathEscapeError",
    "RetryConfig",
    "StorageConfig",
    "StorageError",
    "clear_store_cache",
    "get_store",
    "locations",
    "parse_uri",
    "scheme_of",
]
