"""The file:// backend: a local directory tree (the embedded default)."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from caddis.storage._base import COPY_CHUNK, BlobStore, _unlink_quietly
from caddis.storage._errors import InvalidURIError
from caddis.storage._uri import parse_uri, scheme_of

__all__ = ["FileStore"]

# Temporary files live beside their target so that the final rename stays on one file system
# (and so is atomic); list() hides them by this prefix.
TMP_PREFIX = ".caddis-tmp-"

# errnos that network file systems (NFS, SMB) return for conditions that pass.
_TRANSIENT_ERRNOS = frozenset(
    {errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE, errno.EINTR}
)

_UMASK: int | None = None


def _file_mode() -> int:
    # mkstemp creates 0600 files; give the final file the mode open() would have given it.
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


_tmp_seq = itertools.count()
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _create_tmp(directory: str, name: str) -> tuple[int, str, bool]:
    """Create a fresh temporary file beside ``name``: (fd, path, needs chmod).

    Named by pid and a per-process counter: ``tempfile.mkstemp`` draws a random name for every
    file, which was a third of a small write's CPU (a map writes one object per item).
    ``O_EXCL`` still guarantees a fresh file; on a clash (a dead process's leftover with the
    same pid on a shared file system) the next number is tried, then mkstemp. The file is
    created with the mode ``open()`` would give it, so no chmod is needed.
    """
    pid = os.getpid()
    for _ in range(3):
        tmp = f"{directory}/{TMP_PREFIX}{name}.{pid}-{next(_tmp_seq)}"
        try:
            return os.open(tmp, _TMP_FLAGS, 0o666), tmp, False
        except FileExistsError:
            continue
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{name}.", dir=directory)
    return fd, tmp, True


class FileStore(BlobStore):
    """Objects are files under their absolute path; ``file:///a/b`` is the file ``/a/b``.

    Writes are atomic: data goes to a temporary file in the target directory, is flushed (and
    fsynced unless ``local_fsync`` is off) and renamed over the target, so a reader sees either
    the old object or the whole new one, never a partial file.
    """

    scheme = "file"

    def _path(self, uri: str) -> str:
        if scheme_of(uri) != "file":
            raise InvalidURIError(
                f"{uri!r} is not a file:// URI or local path", uri=uri, operation="parse"
            )
        return parse_uri(uri).key

    def _uri(self, path: str) -> str:
        return "file://" + path

    # -- writing -------------------------------------------------------------------------

    def _atomic_write(self, path: str, write: Callable[[BinaryIO], object]) -> None:
        if path.endswith("/"):
            raise InvalidURIError(
                f"{self._uri(path)} ends with '/': that names a prefix, not an object",
                uri=self._uri(path),
                operation="put",
            )
        directory, name = os.path.split(path)
        os.makedirs(directory, exist_ok=True)
        fd, tmp, chmod = _create_tmp(directory, name)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                if self.config.local_fsync:
                    os.fsync(out.fileno())
            if chmod:
                os.chmod(tmp, _file_mode())
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def put_bytes(self, uri: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store ``data`` at ``uri`` atomically."""
        path = self._path(uri)
        self._call("put_bytes", uri, lambda: self._atomic_write(path, lambda f: f.write(data)))

    def put_stream(
        self,
        uri: str,
        stream: BinaryIO,
        *,
        length: int | None = None,
        content_type: str | None = None,
    ) -> None:
        """Copy ``stream`` to ``uri`` in chunks, atomically."""
        path = self._path(uri)
        start = _tell(stream)

        def attempt() -> None:
            if start is not None:
                stream.seek(start)
            self._atomic_write(path, lambda f: shutil.copyfileobj(stream, f, COPY_CHUNK))

        self._call("put_stream", uri, attempt, retry=start is not None)

    def put_file(
        self, uri: str, local_path: str | os.PathLike[str], *, content_type: str | None = None
    ) -> None:
        """Copy the local file ``local_path`` to ``uri``, atomically."""
        source = os.fspath(local_path)
        path = self._path(uri)

        def attempt() -> None:
            with open(source, "rb") as src:
                self._atomic_write(path, lambda f: shutil.copyfileobj(src, f, COPY_CHUNK))

        self._call("put_file", uri, attempt)

    def copy(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst`` (atomically when ``dst`` is a file URI too)."""
        if scheme_of(dst) != "file":
            super().copy(src, dst)
            return
        src_path, dst_path = self._path(src), self._path(dst)

        def attempt() -> None:
            with open(src_path, "rb") as source:
                self._atomic_write(dst_path, lambda f: shutil.copyfileobj(source, f, COPY_CHUNK))

        self._call("copy", src, attempt)

    # -- reading -------------------------------------------------------------------------

    def get_bytes(self, uri: str) -> bytes:
        """The content of the file at ``uri``."""
        path = self._path(uri)
        return self._call("get_bytes", uri, lambda: Path(path).read_bytes())

    def get_stream(self, uri: str) -> BinaryIO:
        """Open the file at ``uri`` for reading."""
        path = self._path(uri)
        return self._call("get_stream", uri, lambda: open(path, "rb"))

    def exists(self, uri: str) -> bool:
        """Whether a regular file exists at ``uri``."""
        path = self._path(uri)
        return self._call("exists", uri, lambda: os.path.isfile(path))

    def size(self, uri: str) -> int:
        """The size of the file at ``uri``."""
        path = self._path(uri)

        def attempt() -> int:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a file", path)
            return st.st_size

        return self._call("size", uri, attempt)

    def list(self, prefix: str) -> Iterator[str]:
        """Yield ``file://`` URIs of the files whose path starts with ``prefix``, sorted."""
        path = self._path(prefix)
        base = path if path.endswith("/") else os.path.dirname(path)
        found = self._call("list", prefix, lambda: _walk(base, path))
        for item in sorted(found):
            yield self._uri(item)

    def delete(self, uri: str) -> None:
        """Remove the file at ``uri`` if it exists."""
        path = self._path(uri)

        def attempt() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

        self._call("delete", uri, attempt)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every file under ``prefix`` and the directories that become empty."""
        count = super().delete_prefix(prefix)
        path = self._path(prefix)
        if path.endswith("/") and os.path.isdir(path):
            # Leave no empty directory tree behind, as S3 would have none.
            for root, _dirs, _files in os.walk(path, topdown=False):
                with contextlib.suppress(OSError):
                    os.rmdir(root)
        return count

    def presigned_get_url(self, uri: str, expires: timedelta = timedelta(hours=1)) -> str:
        """The percent-encoded ``file://`` URL of ``uri`` (local files need no signature)."""
        return Path(self._path(uri)).as_uri()

    # -- errors --------------------------------------------------------------------------

    def _is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS

    def _is_not_found(self, exc: BaseException) -> bool:
        # A directory where an object was expected, or a file where a directory was: for a
        # blob store both mean "there is no object under this key".
        return isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError)


def _tell(stream: BinaryIO) -> int | None:
    try:
        if stream.seekable():
            return stream.tell()
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _walk(base: str, prefix: str) -> list[str]:
    found: list[str] = []
    if not os.path.isdir(base):
        return found
    for root, dirs, files in os.walk(base):
        # Only descend where paths can still match the prefix.
        dirs[:] = [d for d in dirs if _may_match(os.path.join(root, d) + "/", prefix)]
        for name in files:
            if name.startswith(TMP_PREFIX):
                continue
            full = os.path.join(root, name)
            if full.startswith(prefix):
                found.append(full)
    return found


def _may_match(directory: str, prefix: str) -> bool:
    return directory.startswith(prefix) or prefix.startswith(directory)
