"""Checkpoints: let a retried task attempt resume from where the previous attempt stopped.

A task reaches its checkpoint through ``current_context().checkpoint``. Each attempt writes to
its own destination prefix and reads from the previous attempt's (the runtime passes both:
``--checkpoint-path`` and ``--prev-checkpoint``), so a retry sees what the failed attempt
saved last. The API follows flytekit's ``SyncCheckpoint``: ``read``/``write`` for a single
bytes blob, ``restore``/``save`` for a whole directory or file.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["Checkpoint", "SyncCheckpoint"]

_BLOB_NAME = "_checkpoint.bin"


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _local_path(uri: str) -> str:
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(uri).path)
    return uri


class Checkpoint:
    """The interface of a task attempt's checkpoint (flytekit's ``Checkpoint``)."""

    def prev_exists(self) -> bool:
        """Whether a previous attempt left a checkpoint."""
        raise NotImplementedError

    def restore(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Copy the previous checkpoint into ``path`` (a directory) and return it."""
        raise NotImplementedError

    def save(self, cp: str | os.PathLike[str] | BinaryIO) -> None:
        """Save a directory, a file or a binary stream as this attempt's checkpoint."""
        raise NotImplementedError

    def read(self) -> bytes | None:
        """The previous attempt's checkpoint blob (written with :meth:`write`), if any."""
        raise NotImplementedError

    def write(self, b: bytes) -> None:
        """Write ``b`` as this attempt's checkpoint blob."""
        raise NotImplementedError


class SyncCheckpoint(Checkpoint):
    """A checkpoint stored synchronously under a URI prefix (``file://`` or ``s3://``).

    Args:
        checkpoint_dest: Prefix this attempt writes to.
        checkpoint_src: Prefix of the previous attempt's checkpoint (None on the first).
        local_dir: Scratch directory for restored files (created on first use).
    """

    def __init__(
        self,
        checkpoint_dest: str,
        checkpoint_src: str | None = None,
        local_dir: str | None = None,
    ) -> None:
        self._dest = checkpoint_dest.rstrip("/")
        self._src = checkpoint_src.rstrip("/") if checkpoint_src else None
        self._local_dir = local_dir
        self._restored: Path | None = None

    @property
    def dest(self) -> str:
        """Where this attempt's checkpoint goes."""
        return self._dest

    @property
    def source(self) -> str | None:
        """Where the previous attempt's checkpoint is read from."""
        return self._src

    def _store(self, uri: str) -> Any:
        from caddis.storage import get_store

        return get_store(uri)

    def _list(self, prefix: str) -> list[str]:
        if _is_local(prefix):
            root = _local_path(prefix)
            if not os.path.isdir(root):
                return []
            out: list[str] = []
            for dirpath, _dirs, files in os.walk(root):
                out.extend(os.path.join(dirpath, f) for f in files)
            return out
        return list(self._store(prefix).list(prefix + "/"))

    def prev_exists(self) -> bool:
        """Whether a previous attempt left a checkpoint."""
        return self._src is not None and bool(self._list(self._src))

    def restore(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Copy the previous checkpoint into ``path`` and return it (None if there is none).

        Args:
            path: Target directory; defaults to a scratch directory of this attempt.
        """
        if self._restored is not None:
            return self._restored
        if self._src is None:
            return None
        files = self._list(self._src)
        if not files:
            return None
        target = Path(path) if path is not None else Path(self._scratch())
        target.mkdir(parents=True, exist_ok=True)
        if _is_local(self._src):
            root = _local_path(self._src)
            for f in files:
                rel = os.path.relpath(f, root)
                dst = target / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dst)
        else:
            store = self._store(self._src)
            for uri in files:
                rel = uri[len(self._src) + 1 :]
                dst = target / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                store.get_file(uri, dst)
        self._restored = target
        return target

    def _scratch(self) -> str:
        if self._local_dir is None:
            self._local_dir = tempfile.mkdtemp(prefix="caddis-ckpt-")
        os.makedirs(self._local_dir, exist_ok=True)
        return self._local_dir

    def save(self, cp: str | os.PathLike[str] | BinaryIO) -> None:
        """Save a directory (recursively), a file, or a binary stream as the checkpoint.

        Args:
            cp: A local directory or file path, or a readable binary stream.
        """
        if isinstance(cp, io.IOBase) or hasattr(cp, "read"):
            self._put_bytes(_BLOB_NAME, cp.read())  # type: ignore[union-attr]
            return
        src = Path(cp)  # type: ignore[arg-type]
        if src.is_dir():
            for dirpath, _dirs, files in os.walk(src):
                for f in files:
                    full = Path(dirpath) / f
                    self._put_file(str(full.relative_to(src)), full)
        elif src.is_file():
            self._put_file(src.name, src)
        else:
            raise ValueError(f"checkpoint save: {src} is neither a file nor a directory")

    def _put_file(self, rel: str, full: Path) -> None:
        if _is_local(self._dest):
            dst = Path(_local_path(self._dest)) / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(full, dst)
        else:
            self._store(self._dest).put_file(f"{self._dest}/{rel}", full)

    def _put_bytes(self, rel: str, data: bytes) -> None:
        if _is_local(self._dest):
            dst = Path(_local_path(self._dest)) / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so that a crash mid-write leaves the last good checkpoint.
            tmp = dst.with_name(dst.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dst)
        else:
            self._store(self._dest).put_bytes(f"{self._dest}/{rel}", data)

    def read(self) -> bytes | None:
        """The previous attempt's checkpoint blob, or None when it wrote none."""
        if self._src is None:
            return None
        if _is_local(self._src):
            p = Path(_local_path(self._src)) / _BLOB_NAME
            return p.read_bytes() if p.is_file() else None
        store = self._store(self._src)
        uri = f"{self._src}/{_BLOB_NAME}"
        return bytes(store.get_bytes(uri)) if store.exists(uri) else None

    def write(self, b: bytes) -> None:
        """Write ``b`` as this attempt's checkpoint blob (replacing an earlier write)."""
        self._put_bytes(_BLOB_NAME, bytes(b))
