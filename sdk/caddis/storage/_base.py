"""The :class:`BlobStore` interface shared by every backend."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, TypeVar

from google.protobuf.message import DecodeError, Message

from caddis.storage._config import StorageConfig
from caddis.storage._errors import NotFoundError, StorageError
from caddis.storage._retry import call_with_retry

__all__ = ["BlobStore"]

T = TypeVar("T")
M = TypeVar("M", bound=Message)

COPY_CHUNK = 1024 * 1024


class BlobStore(ABC):
    """Blob storage behind one interface, addressed by full URIs.

    Get a store with :func:`caddis.storage.get_store`; each backend accepts the URIs of its
    scheme (``file://`` and plain paths, or ``s3://bucket/key``). Transient failures are
    retried within ``config.retry``; a missing object raises :class:`NotFoundError` at once;
    any other failure raises :class:`StorageError` naming the URI and the operation.
    """

    scheme: str = ""

    def __init__(self, config: StorageConfig) -> None:
        self.config = config

    # -- bytes ---------------------------------------------------------------------------

    def put_bytes(self, uri: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store ``data`` at ``uri``, replacing any object there."""
        self.put_stream(uri, io.BytesIO(data), length=len(data), content_type=content_type)

    def get_bytes(self, uri: str) -> bytes:
        """The whole content of the object at ``uri``."""
        with self.get_stream(uri) as stream:
            return stream.read()

    # -- streams -------------------------------------------------------------------------

    @abstractmethod
    def put_stream(
        self,
        uri: str,
        stream: BinaryIO,
        *,
        length: int | None = None,
        content_type: str | None = None,
    ) -> None:
        """Store what ``stream`` yields until EOF at ``uri`` without holding it all in memory.

        Args:
            uri: Destination object.
            stream: A binary file-like object; read from its current position. Seekable
                streams are rewound and retried on transient failures; others are tried once.
            length: The number of bytes, when known (saves buffering on S3).
            content_type: MIME type recorded with the object (S3 only).
        """

    @abstractmethod
    def get_stream(self, uri: str) -> BinaryIO:
        """Open the object at ``uri`` for streamed reading; use it as a context manager.

        Raises:
            NotFoundError: When there is no object at ``uri``.
        """

    # -- local files ---------------------------------------------------------------------

    def put_file(
        self, uri: str, local_path: str | os.PathLike[str], *, content_type: str | None = None
    ) -> None:
        """Upload the local file ``local_path`` to ``uri``."""
        path = Path(local_path)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise StorageError(
                f"put_file {uri}: cannot read local file {path}: {exc}",
                uri=uri,
                operation="put_file",
            ) from exc
        with handle:
            self.put_stream(
                uri, handle, length=os.fstat(handle.fileno()).st_size, content_type=content_type
            )

    def get_file(self, uri: str, local_path: str | os.PathLike[str]) -> Path:
        """Download ``uri`` to ``local_path`` (atomically: written aside, then renamed).

        Returns:
            The local path.
        """
        path = Path(local_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.get_stream(uri) as source:
            fd, tmp = tempfile.mkstemp(prefix=f".caddis-tmp-{path.name}.", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out, COPY_CHUNK)
                os.replace(tmp, path)
            except BaseException:
                _unlink_quietly(tmp)
                raise
        return path

    # -- objects -------------------------------------------------------------------------

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether an object exists at ``uri`` (a prefix with objects under it does not count)."""

    @abstractmethod
    def size(self, uri: str) -> int:
        """The size in bytes of the object at ``uri``.

        Raises:
            NotFoundError: When there is no object at ``uri``.
        """

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Yield the URIs of all objects whose key starts with ``prefix``, recursively.

        The prefix is a plain string prefix, as in S3: ``.../n1`` also matches ``.../n10/x``;
        end it with ``/`` to list one "directory". URIs come in lexicographic order.
        """

    @abstractmethod
    def delete(self, uri: str) -> None:
        """Delete the object at ``uri``; deleting a missing object is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object :meth:`list` yields for ``prefix``.

        Returns:
            How many objects were deleted.
        """
        count = 0
        for uri in list(self.list(prefix)):
            self.delete(uri)
            count += 1
        return count

    def copy(self, src: str, dst: str) -> None:
        """Copy the object at ``src`` to ``dst``; ``dst`` may belong to another backend."""
        from caddis.storage._registry import get_store

        target = get_store(dst, self.config)
        with self.get_stream(src) as stream:
            target.put_stream(dst, stream, length=self.size(src))

    @abstractmethod
    def presigned_get_url(self, uri: str, expires: timedelta = timedelta(hours=1)) -> str:
        """A URL that lets anyone holding it read ``uri`` until ``expires`` from now.

        file:// objects return their ``file://`` URL (percent-encoded; no expiry applies).
        """

    # -- protobuf ------------------------------------------------------------------------

    def write_proto(self, uri: str, msg: Message) -> None:
        """Serialize ``msg`` (deterministically) to ``uri``."""
        self.put_bytes(
            uri, msg.SerializeToString(deterministic=True), content_type="application/x-protobuf"
        )

    def read_proto(self, uri: str, msg_type: type[M]) -> M:
        """Read ``uri`` and parse it as ``msg_type``.

        Raises:
            NotFoundError: When there is no object at ``uri``.
            StorageError: When the content does not parse as ``msg_type``.
        """
        data = self.get_bytes(uri)
        msg = msg_type()
        try:
            msg.ParseFromString(data)
        except DecodeError as exc:
            raise StorageError(
                f"read_proto {uri}: content ({len(data)} bytes) is not a valid "
                f"{msg_type.DESCRIPTOR.full_name}: {exc}",
                uri=uri,
                operation="read_proto",
            ) from exc
        return msg

    # -- retrying ------------------------------------------------------------------------

    def _call(self, operation: str, uri: str, fn: Callable[[], T], *, retry: bool = True) -> T:
        return call_with_retry(
            fn,
            policy=self.config.retry,
            uri=uri,
            operation=operation,
            is_transient=self._is_transient,
            translate=lambda exc, attempts: self._translate(exc, uri, operation, attempts),
            retry=retry,
        )

    @abstractmethod
    def _is_transient(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt."""

    @abstractmethod
    def _is_not_found(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the object (or bucket) does not exist."""

    def _translate(self, exc: Exception, uri: str, operation: str, attempts: int) -> StorageError:
        if self._is_not_found(exc):
            return NotFoundError(
                f"{operation} {uri}: no such object",
                uri=uri,
                operation=operation,
                attempts=attempts,
            )
        return StorageError(
            f"{operation} {uri} failed: {type(exc).__name__}: {exc}",
            uri=uri,
            operation=operation,
            attempts=attempts,
        )


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
