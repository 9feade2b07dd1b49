"""S3-specific behaviour: multipart streaming in bounded memory, retries, resumed downloads."""

from __future__ import annotations

import hashlib
import io
import logging
import subprocess
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from caddis.storage import NotFoundError, RetryConfig, StorageError, get_store
from tests.conftest import S3Endpoint, _moto_server_command
from tests.storage.conftest import s3_config
from tests.support import free_port, port_open, stop_process

MIB = 1024 * 1024


class PatternStream(io.RawIOBase):
    """``size`` bytes generated on the fly (never held in memory), hashed as they are read."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pos = 0
        self._block = hashlib.sha256(b"seed").digest() * (MIB // 32)
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._size - self._pos, MIB)
        if n <= 0:
            return 0
        offset = self._pos % MIB
        counter = (self._pos // MIB).to_bytes(8, "big")
        chunk = (counter + self._block)[offset : offset + n]
        if len(chunk) < n:
            chunk += (counter + self._block)[: n - len(chunk)]
        buffer[:n] = chunk
        self.sha.update(chunk)
        self._pos += n
        return n


@pytest.mark.s3
@pytest.mark.slow
def test_large_object_streams_both_ways_in_bounded_memory(
    s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    size = 60 * MIB
    config = s3_config(s3_endpoint, part_size=5 * MIB, parallel_uploads=1)
    store = get_store(f"s3://{s3_bucket}", config)
    uri = f"s3://{s3_bucket}/big/object.bin"
    source = PatternStream(size)

    tracemalloc.start()
    try:
        store.put_stream(uri, io.BufferedReader(source, buffer_size=MIB))  # length unknown
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        downloaded = hashlib.sha256()
        total = 0
        with store.get_stream(uri) as stream:
            while chunk := stream.read(MIB):
                downloaded.update(chunk)
                total += len(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert total == size
    assert downloaded.hexdigest() == source.sha.hexdigest()
    assert store.size(uri) == size
    # It went up as a multipart upload (the ETag of one is "<md5>-<parts>").
    etag = s3_endpoint.client().stat_object(s3_bucket, "big/object.bin").etag
    assert etag.endswith("-12"), etag
    # About (2 * parallel_uploads + 1) parts: the one being read and a copy per part in
    # flight; far below the object's size.
    assert upload_peak < 4 * 5 * MIB, upload_peak
    assert download_peak < 8 * MIB, download_peak


@pytest.mark.s3
def test_copy_between_backends(s3_endpoint: S3Endpoint, s3_bucket: str, tmp_path: Path) -> None:
    config = s3_config(s3_endpoint)
    s3 = get_store(f"s3://{s3_bucket}", config)
    local = get_store(str(tmp_path), config)
    local.put_bytes(str(tmp_path / "a.bin"), b"from disk")
    local.copy(str(tmp_path / "a.bin"), f"s3://{s3_bucket}/a.bin")
    assert s3.get_bytes(f"s3://{s3_bucket}/a.bin") == b"from disk"
    s3.copy(f"s3://{s3_bucket}/a.bin", f"file://{tmp_path}/back/a.bin")
    assert (tmp_path / "back" / "a.bin").read_bytes() == b"from disk"


@pytest.mark.s3
def test_missing_bucket_is_not_found(s3_endpoint: S3Endpoint) -> None:
    store = get_store("s3://x", s3_config(s3_endpoint))
    with pytest.raises(NotFoundError, match="no-such-bucket-here"):
        store.get_bytes("s3://no-such-bucket-here/k")
    with pytest.raises(NotFoundError):
        list(store.list("s3://no-such-bucket-here/"))


def test_bucket_only_uri_is_refused_for_objects(s3_endpoint_free_config: object) -> None:
    from caddis.storage import InvalidURIError

    store = get_store("s3://bkt", s3_endpoint_free_config)  # type: ignore[arg-type]
    with pytest.raises(InvalidURIError, match="names a bucket"):
        store.get_bytes("s3://bkt")
    with pytest.raises(InvalidURIError, match="no bucket"):
        store.get_bytes("s3:///key")


@pytest.fixture
def s3_endpoint_free_config() -> object:
    port = free_port()
    return s3_config(S3Endpoint("127.0.0.1", port))


def test_endpoint_down_gives_up_naming_uri_and_operation(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens here
    retry = RetryConfig(max_attempts=3, initial_backoff=0.01, max_backoff=0.02, max_elapsed=10)
    store = get_store("s3://bkt", s3_config(S3Endpoint("127.0.0.1", port), retry=retry))
    uri = "s3://bkt/exec/n0/attempt-0/outputs.pb"
    with (
        caplog.at_level(logging.WARNING, logger="caddis.storage"),
        pytest.raises(StorageError) as info,
    ):
        store.put_bytes(uri, b"data")
    err = info.value
    assert not isinstance(err, NotFoundError)
    assert (err.uri, err.operation, err.attempts) == (uri, "put_stream", 3)
    assert uri in str(err) and "put_stream" in str(err) and "after 3 attempt(s)" in str(err)
    assert len([r for r in caplog.records if "transient failure" in r.message]) == 2
    with pytest.raises(StorageError, match=r"get_stream s3://bkt/k failed after 3 attempt"):
        store.get_bytes("s3://bkt/k")


@pytest.mark.s3
@pytest.mark.slow
def test_endpoint_coming_up_during_the_retry_window(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    retry = RetryConfig(max_attempts=100, initial_backoff=0.05, max_backoff=0.5, max_elapsed=60)
    endpoint = S3Endpoint("127.0.0.1", port)
    store = get_store("s3://bkt", s3_config(endpoint, retry=retry))
    assert not port_open(port)
    # moto_server takes a while to start, so the first attempts find the port closed.
    proc = subprocess.Popen(
        _moto_server_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with caplog.at_level(logging.WARNING, logger="caddis.storage"):
            assert store.exists("s3://bkt/not-there") is False
        assert any("transient failure" in r.message for r in caplog.records)
        endpoint.client().make_bucket("bkt")
        store.put_bytes("s3://bkt/k", b"v")
        assert store.get_bytes("s3://bkt/k") == b"v"
    finally:
        stop_process(proc)


# -- a scripted S3 endpoint, for failures moto cannot produce -----------------------------


class Script:
    """What the fake endpoint answers; it records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.errors: list[tuple[int, str]] = []  # answered first, in order
        self.final: tuple[int, str] = (404, "NoSuchKey")
        self.body: bytes | None = None  # when set, GETs serve it...
        self.cut_first_at: int | None = None  # ...and the first one breaks off here


def _error_xml(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>scripted</Message><Resource>/b/k</Resource><RequestId>1</RequestId>"
        f"</Error>"
    ).encode()


@pytest.fixture
def fake_s3() -> Iterator[tuple[Script, int]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _error(self, status: int, code: str) -> None:
            body = _error_xml(code)
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            script.requests.append(("GET", self.path, dict(self.headers)))
            if script.errors:
                self._error(*script.errors.pop(0))
                return
            if script.body is None:
                self._error(*script.final)
                return
            start = 0
            range_header = self.headers.get("Range")
            if range_header:
                start = int(range_header.split("=")[1].split("-")[0])
            payload = script.body[start:]
            self.send_response(206 if range_header else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("ETag", '"abc"')
            self.end_headers()
            if script.cut_first_at is not None and not range_header:
                self.wfile.write(payload[: script.cut_first_at])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_slowdown_and_5xx_are_retried_then_not_found_is_not(fake_s3: tuple[Script, int]) -> None:
    script, port = fake_s3
    retry = RetryConfig(max_attempts=5, initial_backoff=0.01, max_backoff=0.02)
    store = get_store("s3://bkt", s3_config(S3Endpoint("127.0.0.1", port), retry=retry))
    script.errors = [(503, "SlowDown"), (503, "ServiceUnavailable"), (500, "InternalError")]
    with pytest.raises(NotFoundError) as info:
        store.get_bytes("s3://bkt/k")
    assert info.value.attempts == 4
    assert len(script.requests) == 4


def test_permanent_server_errors_give_up_within_the_bound(fake_s3: tuple[Script, int]) -> None:
    script, port = fake_s3
    retry = RetryConfig(max_attempts=4, initial_backoff=0.01, max_backoff=0.02)
    store = get_store("s3://bkt", s3_config(S3Endpoint("127.0.0.1", port), retry=retry))
    script.errors = [(500, "InternalError")] * 10
    with pytest.raises(StorageError, match=r"get_stream s3://bkt/k failed after 4 attempt") as info:
        store.get_bytes("s3://bkt/k")
    assert "InternalError" in str(info.value)
    assert len(script.requests) == 4


def test_access_denied_is_not_retried(fake_s3: tuple[Script, int]) -> None:
    script, port = fake_s3
    store = get_store("s3://bkt", s3_config(S3Endpoint("127.0.0.1", port)))
    script.final = (403, "AccessDenied")
    with pytest.raises(StorageError, match="AccessDenied") as info:
        store.get_bytes("s3://bkt/k")
    assert not isinstance(info.value, NotFoundError)
    assert len(script.requests) == 1


def test_download_resumes_after_a_broken_connection(fake_s3: tuple[Script, int]) -> None:
    script, port = fake_s3
    store = get_store("s3://bkt", s3_config(S3Endpoint("127.0.0.1", port)))
    script.body = bytes(range(256)) * 1000
    script.cut_first_at = 100_000
    assert store.get_bytes("s3://bkt/k") == script.body
    assert len(script.requests) == 2
    resumed = script.requests[1][2]
    assert resumed.get("Range") == "bytes=100000-"
    assert resumed.get("If-Match") == '"abc"'
