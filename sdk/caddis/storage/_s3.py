"""The s3:// backend: MinIO or any S3-compatible service through the ``minio`` client.

This module imports ``minio`` at the top; :mod:`caddis.storage` imports this module only when an
s3:// store is first built, so that task processes that never touch S3 do not pay for it.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, BinaryIO

import urllib3
from minio import Minio
from minio.commonconfig import ComposeSource, CopySource
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError

from caddis.storage._base import COPY_CHUNK, BlobStore
from caddis.storage._config import StorageConfig
from caddis.storage._errors import InvalidURIError, StorageError
from caddis.storage._uri import parse_uri

__all__ = ["S3Store"]

# S3 error codes that describe a passing condition of the service, not of the request.
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "XMinioServerNotInitialized",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "ResourceNotFound", "NoSuchObject"})

_MAX_COPY_SIZE = 5 * 1024**3  # larger sources need a multipart (compose) copy
_DELETE_BATCH = 1000  # the DeleteObjects limit


def _endpoint(config: StorageConfig) -> tuple[str, bool]:
    endpoint, secure = config.endpoint.strip(), config.secure
    for scheme, is_secure in (("https://", True), ("http://", False)):
        if endpoint.lower().startswith(scheme):
            endpoint, secure = endpoint[len(scheme) :], is_secure
    return endpoint.rstrip("/"), secure


class S3Store(BlobStore):
    """Objects in S3 buckets, addressed as ``s3://bucket/key``.

    Streamed uploads go as multipart uploads of ``config.part_size`` parts; streamed downloads
    read the response body in chunks and, when the connection breaks mid-way, resume from the
    last byte received (with ``If-Match`` on the first ETag so a replaced object is noticed).
    """

    scheme = "s3"

    def __init__(self, config: StorageConfig) -> None:
        super().__init__(config)
        endpoint, secure = _endpoint(config)
        ca_certs = config.ca_bundle or os.environ.get("SSL_CERT_FILE")
        if ca_certs is None and secure:
            import certifi

            ca_certs = certifi.where()
        # Our own pool without urllib3 retries: retrying is ours to bound and to report.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout),
            maxsize=max(10, config.parallel_uploads + 2),
            cert_reqs="CERT_REQUIRED" if config.cert_check else "CERT_NONE",
            ca_certs=ca_certs,
            retries=False,
        )
        self._client = Minio(
            endpoint,
            access_key=config.access_key,
            secret_key=config.secret_key,
            session_token=config.session_token,
            secure=secure,
            region=config.region,
            http_client=http,
            cert_check=config.cert_check,
        )

    @property
    def client(self) -> Any:
        """The underlying ``minio.Minio`` client, for what this interface does not cover."""
        return self._client

    def _split(self, uri: str, *, allow_empty_key: bool = False) -> tuple[str, str]:
        parsed = parse_uri(uri)
        if parsed.scheme != "s3":
            raise InvalidURIError(f"{uri!r} is not an s3:// URI", uri=uri, operation="parse")
        if not parsed.key and not allow_empty_key:
            raise InvalidURIError(
                f"{uri!r} names a bucket, not an object; use s3://bucket/key",
                uri=uri,
                operation="parse",
            )
        return parsed.bucket, parsed.key

    # -- writing -------------------------------------------------------------------------

    def put_stream(
        self,
        uri: str,
        stream: BinaryIO,
        *,
        length: int | None = None,
        content_type: str | None = None,
    ) -> None:
        """Upload ``stream`` to ``uri`` (multipart above ``part_size``)."""
        bucket, key = self._split(uri)
        start = _tell(stream)

        def attempt() -> None:
            if start is not None:
                stream.seek(start)
            self._client.put_object(
                bucket,
                key,
                stream,
                -1 if length is None else length,
                content_type=content_type or "application/octet-stream",
                part_size=self.config.part_size,
                num_parallel_uploads=self.config.parallel_uploads,
            )

        self._call("put_stream", uri, attempt, retry=start is not None)

    def copy(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst``; server-side when both are in S3."""
        if parse_uri(dst).scheme != "s3":
            super().copy(src, dst)
            return
        src_bucket, src_key = self._split(src)
        dst_bucket, dst_key = self._split(dst)

        def attempt() -> None:
            size = self._client.stat_object(src_bucket, src_key).size
            if size is not None and size > _MAX_COPY_SIZE:
                self._client.compose_object(
                    dst_bucket, dst_key, [ComposeSource(src_bucket, src_key)]
                )
            else:
                self._client.copy_object(dst_bucket, dst_key, CopySource(src_bucket, src_key))

        self._call("copy", src, attempt)

    # -- reading -------------------------------------------------------------------------

    def get_stream(self, uri: str) -> BinaryIO:
        """Open ``uri`` for streamed reading (resumes after broken connections)."""
        bucket, key = self._split(uri)
        raw = _ResumingReader(self, bucket, key, uri)
        raw.open_first()
        return io.BufferedReader(raw, buffer_size=COPY_CHUNK)

    def exists(self, uri: str) -> bool:
        """Whether an object exists at ``uri``."""
        bucket, key = self._split(uri)

        def attempt() -> bool:
            try:
                self._client.stat_object(bucket, key)
            except S3Error as exc:
                if exc.code in NOT_FOUND_CODES:
                    return False
                raise
            return True

        return self._call("exists", uri, attempt)

    def size(self, uri: str) -> int:
        """The size in bytes of the object at ``uri``."""
        bucket, key = self._split(uri)
        return self._call("size", uri, lambda: int(self._client.stat_object(bucket, key).size or 0))

    def list(self, prefix: str) -> Iterator[str]:
        """Yield ``s3://`` URIs of the objects under ``prefix`` (resumes after failures)."""
        bucket, key = self._split(prefix, allow_empty_key=True)
        state: dict[str, Any] = {"it": None, "last": None}

        def step() -> Any:
            if state["it"] is None:
                state["it"] = iter(
                    self._client.list_objects(
                        bucket, prefix=key or None, recursive=True, start_after=state["last"]
                    )
                )
            try:
                return next(state["it"], None)
            except BaseException:
                # A failed generator is finished; the next attempt lists again after the last
                # key it has already yielded.
                state["it"] = None
                raise

        while True:
            obj = self._call("list", prefix, step)
            if obj is None:
                return
            state["last"] = obj.object_name
            if not obj.is_dir:
                yield f"s3://{bucket}/{obj.object_name}"

    def delete(self, uri: str) -> None:
        """Delete the object at ``uri`` (no error when it is missing)."""
        bucket, key = self._split(uri)
        self._call("delete", uri, lambda: self._client.remove_object(bucket, key))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` in batches of up to 1000 per request."""
        bucket, _ = self._split(prefix, allow_empty_key=True)
        count = 0
        batch: builtins.list[str] = []
        for uri in self.list(prefix):
            batch.append(uri.split("/", 3)[3])
            if len(batch) == _DELETE_BATCH:
                count += self._delete_batch(prefix, bucket, batch)
                batch = []
        if batch:
            count += self._delete_batch(prefix, bucket, batch)
        return count

    def _delete_batch(self, prefix: str, bucket: str, keys: builtins.list[str]) -> int:
        def attempt() -> None:
            errors = list(self._client.remove_objects(bucket, [DeleteObject(k) for k in keys]))
            if errors:
                first = errors[0]
                raise StorageError(
                    f"delete_prefix {prefix}: {len(errors)} object(s) not deleted, e.g. "
                    f"{first.name}: {first.code} {first.message}",
                    uri=prefix,
                    operation="delete_prefix",
                )

        self._call("delete_prefix", prefix, attempt)
        return len(keys)

    def presigned_get_url(self, uri: str, expires: timedelta = timedelta(hours=1)) -> str:
        """A pre-signed HTTP(S) GET URL for ``uri`` valid for ``expires``."""
        bucket, key = self._split(uri)
        return self._call(
            "presigned_get_url",
            uri,
            lambda: str(self._client.presigned_get_object(bucket, key, expires=expires)),
        )

    # -- errors --------------------------------------------------------------------------

    def _is_transient(self, exc: BaseException) -> bool:
        return is_transient_s3_error(exc)

    def _is_not_found(self, exc: BaseException) -> bool:
        return isinstance(exc, S3Error) and exc.code in NOT_FOUND_CODES


def is_transient_s3_error(exc: BaseException) -> bool:
    """Whether ``exc`` from the minio client/urllib3 is worth retrying."""
    if isinstance(exc, S3Error):
        status = getattr(exc.response, "status", 0) or 0
        return exc.code in TRANSIENT_CODES or status >= 500 or status == 429
    if isinstance(exc, ServerError):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, InvalidResponseError):
        # A proxy or load balancer answering 502/503 with an HTML page ends up here.
        code = getattr(exc, "_code", 0) or 0
        return code >= 500 or code == 429
    if isinstance(exc, urllib3.exceptions.HTTPError):
        # Connection refused/reset, timeouts, truncated bodies; not malformed URLs.
        return not isinstance(exc, urllib3.exceptions.LocationValueError)
    return isinstance(exc, ConnectionError | TimeoutError)


def _tell(stream: BinaryIO) -> int | None:
    try:
        if stream.seekable():
            return stream.tell()
    except (AttributeError, OSError, ValueError):
        pass
    return None


class _ResumingReader(io.RawIOBase):
    """The body of a GET, read in chunks; a broken connection reopens at the current offset."""

    def __init__(self, store: S3Store, bucket: str, key: str, uri: str) -> None:
        super().__init__()
        self._store = store
        self._bucket = bucket
        self._key = key
        self._uri = uri
        self._response: Any = None
        self._etag: str | None = None
        self._pos = 0

    def readable(self) -> bool:
        return True

    def open_first(self) -> None:
        self._store._call("get_stream", self._uri, self._open)

    def _open(self) -> None:
        headers: dict[str, str | builtins.list[str] | tuple[str]] | None = (
            {"If-Match": self._etag} if self._etag else None
        )
        response = self._store._client.get_object(
            self._bucket, self._key, offset=self._pos, request_headers=headers
        )
        if self._etag is None:
            self._etag = response.headers.get("ETag")
        self._response = response

    def _read_chunk(self, size: int) -> bytes:
        if self._response is None:
            self._open()
        try:
            return bytes(self._response.read(size, decode_content=False))
        except BaseException:
            self._release()
            raise

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        read: Callable[[], bytes] = lambda: self._read_chunk(len(view))  # noqa: E731
        data = self._store._call("get_stream", self._uri, read)
        n = len(data)
        view[:n] = data
        self._pos += n
        return n

    def _release(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            # Closing a broken connection may fail again; there is nothing left to do then.
            with contextlib.suppress(Exception):
                response.close()
                response.release_conn()

    def close(self) -> None:
        self._release()
        super().close()
