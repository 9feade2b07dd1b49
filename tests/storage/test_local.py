"""file:// specifics: atomic writes, plain paths, temp files hidden from listings."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from caddis.storage import InvalidURIError, StorageConfig, StorageError, get_store, parse_uri


class BlockingStream(io.RawIOBase):
    """Yields ``head``, then blocks until released, then yields ``tail`` (or fails)."""

    def __init__(self, head: bytes, tail: bytes, fail: bool = False) -> None:
        self.parts = [head, tail]
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail = fail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self.parts:
            return 0
        if len(self.parts) == 1:
            self.started.set()
            assert self.release.wait(10)
            if self.fail:
                raise OSError("source broke mid-way")
        data = self.parts.pop(0)
        buffer[: len(data)] = data
        return len(data)


def test_readers_never_see_a_partial_write(tmp_path: Path) -> None:
    store = get_store(str(tmp_path), StorageConfig())
    uri = f"file://{tmp_path}/exec/n0/attempt-0/outputs.pb"
    store.put_bytes(uri, b"old")
    stream = BlockingStream(b"new-", b"content")
    writer = threading.Thread(target=store.put_stream, args=(uri, io.BufferedReader(stream, 4)))
    writer.start()
    try:
        assert stream.started.wait(10)
        # Half of the new content is on disk (in a temp file), and yet:
        assert store.get_bytes(uri) == b"old"
        assert list(store.list(f"file://{tmp_path}/")) == [uri]
    finally:
        stream.release.set()
        writer.join(10)
    assert store.get_bytes(uri) == b"new-content"
    assert sorted(os.listdir(tmp_path / "exec/n0/attempt-0")) == ["outputs.pb"]


def test_failed_write_keeps_the_old_object_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = get_store(str(tmp_path), StorageConfig())
    uri = str(tmp_path / "outputs.pb")
    store.put_bytes(uri, b"old")
    stream = BlockingStream(b"new-", b"content", fail=True)
    stream.release.set()
    with pytest.raises(StorageError, match=r"put_stream .*outputs\.pb"):
        store.put_stream(uri, io.BufferedReader(stream, 4))
    assert store.get_bytes(uri) == b"old"
    assert os.listdir(tmp_path) == ["outputs.pb"]


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    store = get_store(str(tmp_path), StorageConfig())
    store.put_bytes(str(tmp_path / "f"), b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o666 & ~umask


def test_plain_paths_and_file_uris_are_the_same_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = get_store("relative/dir", StorageConfig())
    store.put_bytes("relative/dir/a.txt", b"a")
    assert store.get_bytes(f"file://{tmp_path}/relative/dir/a.txt") == b"a"
    assert store.get_bytes(f"file://localhost{tmp_path}/relative/dir/a.txt") == b"a"
    assert list(store.list("relative/")) == [f"file://{tmp_path}/relative/dir/a.txt"]


def test_uri_parsing() -> None:
    assert parse_uri("s3://bkt/a/b/").key == "a/b/"
    assert parse_uri("s3://bkt").key == ""
    assert parse_uri("file:///x/y").key == "/x/y"
    assert parse_uri("/x/y/").key == "/x/y/"
    with pytest.raises(InvalidURIError, match="unsupported storage scheme 'gs'"):
        get_store("gs://bucket/key", StorageConfig())
    with pytest.raises(InvalidURIError, match="names host"):
        parse_uri("file://otherhost/x")


def test_writing_to_a_prefix_is_refused(tmp_path: Path) -> None:
    store = get_store(str(tmp_path), StorageConfig())
    with pytest.raises(InvalidURIError, match="names a prefix"):
        store.put_bytes(f"{tmp_path}/dir/", b"x")


def test_the_store_cache_shares_stores_per_config(tmp_path: Path) -> None:
    config = StorageConfig(local_root=str(tmp_path))
    assert get_store("/a", config) is get_store(
        "file:///b", StorageConfig(local_root=str(tmp_path))
    )
    assert get_store("/a", config) is not get_store("/a", StorageConfig(local_root="/elsewhere"))


def test_default_config_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CADDIS_STORAGE_LOCAL_FSYNC", "false")
    monkeypatch.setenv("CADDIS_STORAGE_LOCAL_ROOT", str(tmp_path))
    monkeypatch.delenv("CADDIS_CONFIG", raising=False)
    store = get_store(str(tmp_path))
    assert store.config.local_fsync is False
    assert store.config.resolved_metadata_prefix() == f"file://{tmp_path}/metadata/"
    assert store.config.resolved_raw_data_prefix() == f"file://{tmp_path}/raw/"


def test_temporary_name_clashes_fall_back_to_fresh_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import itertools

    from caddis.storage import _local

    store = get_store(str(tmp_path), StorageConfig(local_fsync=False))
    # Leftovers of a dead process with our pid hold the next names: the write still succeeds,
    # through the next numbers or, when those clash too, a random name.
    for start in (0, 100):
        monkeypatch.setattr(_local, "_tmp_seq", itertools.count(start))
        for n in range(start, start + (2 if start == 0 else 3)):
            (tmp_path / f"{_local.TMP_PREFIX}obj.{os.getpid()}-{n}").write_bytes(b"old")
        store.put_bytes(str(tmp_path / "obj"), b"new %d" % start)
        assert (tmp_path / "obj").read_bytes() == b"new %d" % start
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".caddis-tmp-"))
    assert len(leftovers) == 5  # only the planted ones: nothing of ours is left behind
