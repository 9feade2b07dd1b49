"""The BlobStore contract, run against both backends (file:// always, s3:// with moto)."""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import pytest
from google.protobuf import struct_pb2

from caddis.storage import NotFoundError, StorageError, locations
from tests.storage.conftest import StoreCase


class OneShotStream(io.RawIOBase):
    """A readable stream that cannot seek (like a pipe or a socket)."""

    def __init__(self, data: bytes, chunk: int = 1000) -> None:
        self._data = data
        self._pos = 0
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._chunk, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def test_bytes_round_trip_and_overwrite(case: StoreCase) -> None:
    uri = case.uri("a", "b.bin")
    case.store.put_bytes(uri, b"first")
    assert case.store.get_bytes(uri) == b"first"
    case.store.put_bytes(uri, b"second, longer")
    assert case.store.get_bytes(uri) == b"second, longer"
    assert case.store.size(uri) == len(b"second, longer")
    case.store.put_bytes(case.uri("empty"), b"")
    assert case.store.get_bytes(case.uri("empty")) == b""


def test_missing_object_is_not_found_and_not_retried(case: StoreCase) -> None:
    uri = case.uri("missing.pb")
    for op in (case.store.get_bytes, case.store.size, case.store.get_stream):
        with pytest.raises(NotFoundError) as info:
            op(uri)
        assert info.value.uri == uri
        assert info.value.attempts == 1
        assert uri in str(info.value)
    assert not case.store.exists(uri)


def test_exists_is_about_objects_not_prefixes(case: StoreCase) -> None:
    case.store.put_bytes(case.uri("dir", "x"), b"1")
    assert case.store.exists(case.uri("dir", "x"))
    assert not case.store.exists(case.uri("dir"))
    with pytest.raises(NotFoundError):
        case.store.get_bytes(case.uri("dir"))


def test_stream_round_trip_with_unknown_length(case: StoreCase) -> None:
    data = bytes(range(256)) * 4000
    uri = case.uri("stream.bin")
    case.store.put_stream(uri, io.BufferedReader(OneShotStream(data)))
    with case.store.get_stream(uri) as stream:
        chunks = []
        while chunk := stream.read(4096):
            chunks.append(chunk)
    assert b"".join(chunks) == data


def test_put_stream_reads_from_the_current_position(case: StoreCase) -> None:
    source = io.BytesIO(b"headerPAYLOAD")
    source.seek(6)
    case.store.put_stream(case.uri("p"), source)
    assert case.store.get_bytes(case.uri("p")) == b"PAYLOAD"


def test_file_round_trip(case: StoreCase, tmp_path: Path) -> None:
    local = tmp_path / "in.txt"
    local.write_bytes(b"hello file" * 1000)
    uri = case.uri("files", "in.txt")
    case.store.put_file(uri, local)
    out = case.store.get_file(uri, tmp_path / "out" / "copy.txt")
    assert out.read_bytes() == local.read_bytes()
    assert not [p for p in out.parent.iterdir() if p.name != "copy.txt"]


def test_get_file_of_missing_object_leaves_nothing(case: StoreCase, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        case.store.get_file(case.uri("nope"), tmp_path / "dl" / "x")
    assert not (tmp_path / "dl" / "x").exists()


def test_list_is_recursive_sorted_and_uses_string_prefixes(case: StoreCase) -> None:
    keys = ["n1/a.pb", "n1/sub/deep/b.pb", "n10/c.pb", "n2/d.pb", "top.pb"]
    for key in keys:
        case.store.put_bytes(case.uri(key), key.encode())
    assert list(case.store.list(case.prefix)) == [case.uri(k) for k in sorted(keys)]
    assert list(case.store.list(case.uri("n1/"))) == [
        case.uri("n1/a.pb"),
        case.uri("n1/sub/deep/b.pb"),
    ]
    # Without the trailing slash the prefix is a plain string prefix, as in S3.
    assert list(case.store.list(case.uri("n1"))) == [
        case.uri("n1/a.pb"),
        case.uri("n1/sub/deep/b.pb"),
        case.uri("n10/c.pb"),
    ]
    assert list(case.store.list(case.uri("nothing-here/"))) == []
    # Every listed URI reads back.
    for uri in case.store.list(case.prefix):
        assert case.store.get_bytes(uri) == uri[len(case.prefix) :].encode()


def test_copy(case: StoreCase) -> None:
    case.store.put_bytes(case.uri("src"), b"payload")
    case.store.copy(case.uri("src"), case.uri("nested", "dst"))
    assert case.store.get_bytes(case.uri("nested", "dst")) == b"payload"
    assert case.store.get_bytes(case.uri("src")) == b"payload"
    with pytest.raises(NotFoundError):
        case.store.copy(case.uri("missing"), case.uri("dst2"))


def test_delete_and_delete_prefix(case: StoreCase) -> None:
    for key in ("x/1", "x/2", "x/y/3", "xz", "keep/4"):
        case.store.put_bytes(case.uri(key), b".")
    case.store.delete(case.uri("x/1"))
    assert not case.store.exists(case.uri("x/1"))
    case.store.delete(case.uri("x/1"))  # idempotent
    assert case.store.delete_prefix(case.uri("x/")) == 2
    assert list(case.store.list(case.prefix)) == [case.uri("keep/4"), case.uri("xz")]


def test_proto_round_trip_and_corrupt_content(case: StoreCase) -> None:
    msg = struct_pb2.Struct()
    msg.update({"b": 2, "a": "x", "nested": {"k": [1, 2]}})
    uri = case.uri("outputs.pb")
    case.store.write_proto(uri, msg)
    assert case.store.read_proto(uri, struct_pb2.Struct) == msg
    case.store.put_bytes(case.uri("bad.pb"), b"\xff\xff\xff")
    with pytest.raises(StorageError, match=r"read_proto .*bad\.pb.*google\.protobuf\.Struct"):
        case.store.read_proto(case.uri("bad.pb"), struct_pb2.Struct)
    with pytest.raises(NotFoundError):
        case.store.read_proto(case.uri("none.pb"), struct_pb2.Struct)


def test_presigned_url_reads_the_object(case: StoreCase) -> None:
    uri = case.uri("deck dir", "deck.html")
    case.store.put_bytes(uri, b"<html>deck</html>", content_type="text/html")
    url = case.store.presigned_get_url(uri)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"<html>deck</html>"


def test_locations_under_a_store(case: StoreCase) -> None:
    execution = locations.execution_prefix(case.prefix, "flyteexamples", "development", "f3a1")
    node = locations.node_prefix(execution, "n0/dn1/3")
    attempt = locations.attempt_prefix(node, 1)
    case.store.put_bytes(locations.join(node, locations.INPUTS), b"in")
    case.store.put_bytes(locations.join(attempt, locations.OUTPUTS), b"out")
    case.store.put_bytes(locations.join(attempt, locations.CHECKPOINT_DIR, "step-1"), b"ck")
    assert list(case.store.list(node)) == [
        f"{node}attempt-1/checkpoint/step-1",
        f"{node}attempt-1/outputs.pb",
        f"{node}inputs.pb",
    ]
