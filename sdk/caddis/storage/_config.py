"""The storage configuration (section ``storage``, variables ``CADDIS_STORAGE_*``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from caddis.config import CONFIG_ENV_VAR, load_config

__all__ = ["RetryConfig", "StorageConfig"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class RetryConfig:
    """How transient failures (connection refused, timeouts, 5xx, SlowDown) are retried.

    Attributes:
        max_attempts: Tries in total, the first included (1 disables retrying).
        initial_backoff: Seconds before the first retry.
        max_backoff: Upper bound of a single wait, in seconds.
        multiplier: Growth of the wait from one retry to the next.
        max_elapsed: Seconds after which no new attempt starts, however many are left.
    """

    max_attempts: int = 6
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    multiplier: float = 2.0
    max_elapsed: float = 30.0


@dataclass(frozen=True)
class StorageConfig:
    """Where blobs live and how to reach S3.

    Load it with :meth:`load` (file section ``storage`` and ``CADDIS_STORAGE_*`` variables,
    e.g. ``CADDIS_STORAGE_ENDPOINT``, ``CADDIS_STORAGE_RETRY_MAX_ATTEMPTS``).

    Attributes:
        local_root: Directory of the embedded (file://) store used by the default prefixes.
        metadata_prefix: Where inputs/outputs/futures/errors go; empty means
            ``file://<local_root>/metadata``. An ``s3://bucket/path`` in production.
        raw_data_prefix: Where task-produced files and dataframes go; empty means
            ``file://<local_root>/raw``.
        endpoint: S3 endpoint as ``host:port``; an ``http://`` or ``https://`` URL also works
            and then decides ``secure``.
        access_key: S3 access key; ``None`` means anonymous access.
        secret_key: S3 secret key.
        session_token: Optional STS session token.
        region: S3 region; set it to save the bucket-location lookup.
        secure: Use HTTPS.
        cert_check: Verify the server certificate (HTTPS only).
        ca_bundle: A CA bundle file for verifying the server certificate.
        part_size: Multipart part size in bytes for streamed uploads (at least 5 MiB); memory
            use of an upload is about ``part_size * (2 * parallel_uploads + 1)``.
        parallel_uploads: Parts uploaded concurrently.
        connect_timeout: Seconds to wait for a TCP connection.
        read_timeout: Seconds to wait for data on an open connection.
        local_fsync: fsync file:// writes before the atomic rename, so a crash right after a
            write cannot leave an empty file behind.
        retry: The retry policy for transient failures.
    """

    local_root: str = "~/.caddis/storage"
    metadata_prefix: str = ""
    raw_data_prefix: str = ""
    endpoint: str = "s3.amazonaws.com"
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    region: str | None = None
    secure: bool = True
    cert_check: bool = True
    ca_bundle: str | None = None
    part_size: int = 16 * _MIB
    parallel_uploads: int = 2
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    local_fsync: bool = True
    retry: RetryConfig = field(default_factory=RetryConfig)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ
    ) -> StorageConfig:
        """Load from the ``storage`` section of ``path`` (or ``CADDIS_CONFIG``) and the env.

        Results are cached per (file, its size and modification time, ``CADDIS_STORAGE_*``
        variables of ``env``): a warm worker calls this for every task attempt, and parsing the
        file and the environment again each time cost ~15 % of a trivial task. Changing the
        file or a variable gives a fresh load; :meth:`clear_cache` forgets everything.

        Args:
            path: A YAML or TOML config file; ``None`` uses ``CADDIS_CONFIG`` if set.
            env: Environment holding ``CADDIS_STORAGE_*`` overrides.

        Returns:
            The configuration.
        """
        key = _cache_key(path, env)
        if key is not None:
            key = (cls, *key)
            cached = _LOADED.get(key)
            if cached is not None:
                return cached
        config = load_config(cls, section="storage", path=path, env=env)
        if key is not None:
            with _LOCK:
                if len(_LOADED) >= _CACHE_LIMIT:
                    _LOADED.clear()
                _LOADED[key] = config
        return config

    @staticmethod
    def clear_cache() -> None:
        """Forget the results cached by :meth:`load` (tests; or to re-read an unchanged file)."""
        with _LOCK:
            _LOADED.clear()

    def resolved_metadata_prefix(self) -> str:
        """``metadata_prefix``, or ``file://<local_root>/metadata`` when it is empty."""
        return self.metadata_prefix or _file_prefix(self.local_root, "metadata")

    def resolved_raw_data_prefix(self) -> str:
        """``raw_data_prefix``, or ``file://<local_root>/raw`` when it is empty."""
        return self.raw_data_prefix or _file_prefix(self.local_root, "raw")


_ENV_PREFIX = "CADDIS_STORAGE_"
_CACHE_LIMIT = 64
_LOCK = threading.Lock()
_LOADED: dict[tuple[object, ...], StorageConfig] = {}


def _cache_key(
    path: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> tuple[object, ...] | None:
    """What :meth:`StorageConfig.load` depends on; None when it cannot be told (no caching)."""
    if path is None:
        path = env.get(CONFIG_ENV_VAR) or None
    file: tuple[object, ...] = ()
    if path is not None:
        try:
            st = os.stat(path)
        except OSError:
            return None  # a missing file is load_config's error to report, every time
        file = (os.fspath(path), st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)
    # Keys only: os.environ decodes every value it yields, and only a few keys match.
    overrides = tuple(sorted((k, env[k]) for k in env if k.startswith(_ENV_PREFIX)))
    return (file, overrides)


def _file_prefix(root: str, name: str) -> str:
    return "file://" + str(Path(root).expanduser().absolute() / name) + "/"
