"""The local execution cache: the engine's Catalog over one SQLite file (stdlib sqlite3).

Keys are the engine's canonical cache keys (``caddis_propeller.engine.cache_keys``): dataset
(project, domain, task name, cache version + interface signature) and tag (hash of the
inputs minus ``cache_ignore_input_vars``), so local hits follow exactly the rules remote hits
do. Outputs are stored as serialized LiteralMaps.

Files and directories a cached output references are copied into the cache's own blob
directory (their URIs rewritten), because the run's raw-data directory is deleted when the
run ends. Their content hash (``Literal.hash``) is kept, so keys downstream do not change.

Location: ``$CADDIS_LOCAL_CACHE_DIR/local-cache.sqlite``, else
``$XDG_CACHE_HOME/caddis/local-cache.sqlite`` (``~/.cache/caddis`` when XDG_CACHE_HOME is unset).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
from typing import Any
from urllib.parse import unquote, urlparse

from caddis_idl.core.v1 import literals_pb2

__all__ = ["LocalCache", "default_cache_dir"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    tag TEXT NOT NULL,
    outputs BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (name, version, tag, project, domain)
) WITHOUT ROWID;
"""


def default_cache_dir() -> str:
    """Where the local cache lives (see the module docstring)."""
    explicit = os.environ.get("CADDIS_LOCAL_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "caddis")


def _file_path(uri: str) -> str | None:
    if uri.startswith("file://"):
        return unquote(urlparse(uri).path)
    if uri and "://" not in uri:
        return uri
    return None


class LocalCache:
    """A Catalog (``caddis_propeller.engine.interfaces.Catalog``) backed by SQLite.

    One connection per instance, used under a lock (map-task items may be looked up from
    worker threads). Writes are batched in one transaction and committed by :meth:`flush`
    (the local executor flushes at the end of every run) so that caching thousands of map
    items costs one fsync.

    Args:
        directory: Cache directory (default :func:`default_cache_dir`).
        raw_prefixes: Local raw-data prefixes of the current run; blobs under them are copied
            into the cache when outputs are stored. Set per run with :meth:`set_run_prefixes`.
    """

    def __init__(self, directory: str | None = None, raw_prefixes: tuple[str, ...] = ()) -> None:
        self.directory = directory or default_cache_dir()
        self.path = os.path.join(self.directory, "local-cache.sqlite")
        self.blob_dir = os.path.join(self.directory, "blobs")
        self._raw_prefixes = tuple(raw_prefixes)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._dirty = False
        self.hits = 0
        self.misses = 0
        self.puts = 0

    # ----------------------------------------------------------------- connection
    def _connect(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            os.makedirs(self.directory, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.commit()
            self._conn = conn
        return conn

    def set_run_prefixes(self, prefixes: tuple[str, ...]) -> None:
        """Name the raw-data prefixes of the current run (their blobs get copied on put)."""
        self._raw_prefixes = tuple(p.rstrip("/") for p in prefixes)

    def flush(self) -> None:
        """Commit pending writes."""
        with self._lock:
            if self._conn is not None and self._dirty:
                self._conn.commit()
                self._dirty = False

    def close(self) -> None:
        """Commit and close the connection."""
        self.flush()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ----------------------------------------------------------------- Catalog protocol
    def lookup(self, key: Any) -> literals_pb2.LiteralMap | None:
        """Cached outputs for ``key`` or None."""
        with self._lock:
            row = (
                self._connect()
                .execute(
                    "SELECT outputs FROM artifacts WHERE name=? AND version=? AND tag=? "
                    "AND project=? AND domain=?",
                    (key.name, key.version, key.tag, key.project, key.domain),
                )
                .fetchone()
            )
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return literals_pb2.LiteralMap.FromString(row[0])

    def put(self, key: Any, outputs: literals_pb2.LiteralMap, *, overwrite: bool) -> None:
        """Record ``outputs`` for ``key``; an existing entry is kept unless ``overwrite``."""
        stored = self._persist_blobs(outputs, key.tag)
        data = stored.SerializeToString(deterministic=True)
        verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
        with self._lock:
            self._connect().execute(
                f"{verb} INTO artifacts (project, domain, name, version, tag, outputs, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key.project, key.domain, key.name, key.version, key.tag, data, time.time()),
            )
            self._dirty = True
        self.puts += 1

    def get_or_extend_reservation(self, key: Any, owner_id: str, heartbeat: float) -> bool:
        """Local runs are alone with their cache: the reservation is always granted."""
        return True

    def release_reservation(self, key: Any, owner_id: str) -> None:
        """Nothing to release locally."""

    # ----------------------------------------------------------------- management
    def info(self) -> dict[str, Any]:
        """Location, entry count, per-task counts and size on disk."""
        entries: list[tuple[str, int]] = []
        total = 0
        if os.path.exists(self.path):
            with self._lock:
                conn = self._connect()
                rows = conn.execute(
                    "SELECT name, COUNT(*) FROM artifacts GROUP BY name ORDER BY name"
                ).fetchall()
            entries = [(str(r[0]), int(r[1])) for r in rows]
            total = sum(n for _, n in entries)
        size = 0
        for root in (self.directory,):
            if os.path.isdir(root):
                for dirpath, _dirs, files in os.walk(root):
                    for f in files:
                        with contextlib.suppress(OSError):
                            size += os.path.getsize(os.path.join(dirpath, f))
        return {"path": self.path, "entries": total, "tasks": entries, "bytes": size}

    def clear(self, task_name: str | None = None) -> int:
        """Delete entries (all, or one task's); returns how many were deleted."""
        if not os.path.exists(self.path):
            return 0
        with self._lock:
            conn = self._connect()
            if task_name is None:
                n = conn.execute("DELETE FROM artifacts").rowcount
            else:
                n = conn.execute("DELETE FROM artifacts WHERE name=?", (task_name,)).rowcount
            conn.commit()
            self._dirty = False
        if task_name is None:
            shutil.rmtree(self.blob_dir, ignore_errors=True)
        return int(n)

    # ----------------------------------------------------------------- blobs
    def _persist_blobs(self, outputs: literals_pb2.LiteralMap, tag: str) -> literals_pb2.LiteralMap:
        if not self._raw_prefixes or not _has_blob(outputs):
            return outputs
        copy = literals_pb2.LiteralMap()
        copy.CopyFrom(outputs)
        for lit in copy.literals.values():
            self._rewrite(lit, tag)
        return copy

    def _rewrite(self, lit: literals_pb2.Literal, tag: str) -> None:
        kind = lit.WhichOneof("value")
        if kind == "collection":
            for item in lit.collection.literals:
                self._rewrite(item, tag)
        elif kind == "map":
            for item in lit.map.literals.values():
                self._rewrite(item, tag)
        elif kind == "scalar":
            sc = lit.scalar
            sk = sc.WhichOneof("value")
            if sk == "blob":
                sc.blob.uri = self._relocate(sc.blob.uri, tag)
            elif sk == "structured_dataset":
                sc.structured_dataset.uri = self._relocate(sc.structured_dataset.uri, tag)
            elif sk == "union":
                self._rewrite(sc.union.value, tag)

    def _relocate(self, uri: str, tag: str) -> str:
        path = _file_path(uri)
        if path is None:
            return uri
        for prefix in self._raw_prefixes:
            root = _file_path(prefix) or prefix
            if path == root or path.startswith(root.rstrip("/") + "/"):
                rel = os.path.relpath(path, root)
                safe_tag = tag.replace("/", "_")
                dst = os.path.join(self.blob_dir, safe_tag, rel)
                if os.path.isdir(path):
                    shutil.copytree(path, dst, dirs_exist_ok=True)
                elif os.path.exists(path):
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(path, dst)
                else:
                    return uri
                return "file://" + dst
        return uri


def _has_blob(lm: literals_pb2.LiteralMap) -> bool:
    def walk(lit: literals_pb2.Literal) -> bool:
        kind = lit.WhichOneof("value")
        if kind == "scalar":
            sk = lit.scalar.WhichOneof("value")
            if sk in ("blob", "structured_dataset"):
                return True
            if sk == "union":
                return walk(lit.scalar.union.value)
            return False
        if kind == "collection":
            return any(walk(x) for x in lit.collection.literals)
        if kind == "map":
            return any(walk(x) for x in lit.map.literals.values())
        return False

    return any(walk(x) for x in lm.literals.values())
