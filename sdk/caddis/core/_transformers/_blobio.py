"""Uploads and downloads for values passed by reference, with content hashes on the way up.

The hash of what is uploaded is computed while the bytes stream to the store (no second
read), and becomes ``Literal.hash``: cache keys then follow the content of a file, directory,
dataframe or array, not the random URI it was uploaded to.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any, BinaryIO

from caddis.core._transformers._context import DataContext

__all__ = [
    "HashingReader",
    "is_remote",
    "join_uri",
    "sha256_hex",
    "upload_bytes",
    "upload_dir",
    "upload_file",
]


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URI (``s3://``, ``file://``...) rather than a local path."""
    return "://" in path


def join_uri(prefix: str, *parts: str) -> str:
    """Joins URI segments with single slashes."""
    out = prefix.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as hex."""
    return hashlib.sha256(data).hexdigest()


class HashingReader(io.RawIOBase):
    """Wraps a binary file; hashes what is read. Seeking back to 0 restarts the hash.

    Args:
        raw: The underlying binary file, positioned at 0.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._hash = hashlib.sha256()
        self._pos = 0

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """True: a storage retry may rewind to the start."""
        return True

    def tell(self) -> int:
        """Current position."""
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        """Supports rewinding to the start (a retried upload) or staying in place."""
        if whence == 0 and offset == 0:
            self._raw.seek(0)
            self._hash = hashlib.sha256()
            self._pos = 0
        elif not (whence == 0 and offset == self._pos) and not (whence == 1 and offset == 0):
            raise io.UnsupportedOperation("HashingReader only rewinds to the start")
        return self._pos

    def readinto(self, buffer: Any) -> int:
        """Reads into ``buffer`` and feeds the bytes to the hash."""
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._hash.update(data)
        self._pos += n
        return n

    def hexdigest(self) -> str:
        """The SHA-256 of everything read so far."""
        return self._hash.hexdigest()


def upload_file(ctx: DataContext, local_path: str, uri: str) -> str:
    """Uploads a local file to ``uri``; returns the SHA-256 of its content.

    Args:
        ctx: The data context whose store serves ``uri``.
        local_path: The local file.
        uri: Destination.
    """
    size = os.path.getsize(local_path)
    with open(local_path, "rb") as raw:
        reader = HashingReader(raw)
        ctx.store(uri).put_stream(uri, reader, length=size)  # type: ignore[arg-type]
        return reader.hexdigest()


def upload_bytes(ctx: DataContext, data: bytes, uri: str) -> str:
    """Uploads ``data`` to ``uri``; returns its SHA-256."""
    ctx.store(uri).put_bytes(uri, data)
    return sha256_hex(data)


def upload_dir(ctx: DataContext, local_dir: str, uri: str) -> str:
    """Uploads every file under ``local_dir`` below ``uri``; returns a hash of the tree.

    The tree hash covers each file's relative path and content hash, in sorted order, so
    it is the same however the directory was written.
    """
    entries: list[str] = []
    for root, dirs, files in os.walk(local_dir):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, local_dir).replace(os.sep, "/")
            digest = upload_file(ctx, full, join_uri(uri, rel))
            entries.append(f"{rel}\0{digest}")
    return sha256_hex("\n".join(sorted(entries)).encode())


def download_dir(ctx: DataContext, uri: str, local_dir: str) -> None:
    """Downloads every object below ``uri`` into ``local_dir``, keeping relative paths."""
    from caddis.storage import parse_uri

    prefix = uri.rstrip("/") + "/"
    prefix_key = parse_uri(prefix).key
    store = ctx.store(uri)
    os.makedirs(local_dir, exist_ok=True)
    for item in store.list(prefix):
        key = parse_uri(item).key
        rel = key[len(prefix_key) :] if key.startswith(prefix_key) else os.path.basename(key)
        if not rel:
            continue
        target = os.path.join(local_dir, *rel.split("/"))
        store.get_file(item, target)
