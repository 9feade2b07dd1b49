"""The attempt directory: how an attempt is run at most once and found again after a restart.

Each attempt of the process plugin has a local directory (named by a hash of execution, node
path and attempt) holding:

- ``lock``: ``flock``-ed exclusively by whoever runs the attempt, for as long as it runs. The
  lock lives on the open file, which the task process inherits, so it is held exactly while the
  task process (or the warm worker running the item) is alive; propeller probes it to tell
  "still running" from "gone", independent of pid reuse.
- the claim, written under the lock just before the task runs (JSON: pid, the pid's start
  marker from ``/proc``, how it runs, and ``exec``: the execution's ``project/domain/name``,
  which is how retention finds the directories of an execution it removed). Whoever takes the
  lock and finds a claim must not run the attempt again. Together: an attempt runs at most
  once, whichever replica, restart or warm worker gets to it. A fresh process's claim is the
  file ``claimed``; a warm worker writes its claim into the ``lock`` file it already holds (one
  file creation less per map item: creating a file costs ~150 us on the dev machine's ext4,
  more than a trivial task's own work).
- ``stdout`` / ``stderr``: the task's output streams. Warm workers capture them in scratch
  files of their own and copy them here only when the task wrote something; the claim names
  the worker's scratch stderr, so a worker that dies mid-task still leaves its tail findable.

The results themselves (``outputs.pb``, ``futures.pb``, ``error.pb``) are at the attempt's
deterministic blob location, not here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

LOCK = "lock"
CLAIMED = "claimed"
STDOUT = "stdout"
STDERR = "stderr"


def attempt_dir(work_dir: Path, execution: str, node_path: str, attempt: int) -> Path:
    """The directory of one attempt (not created)."""
    digest = hashlib.sha256(f"{execution}\x00{node_path}\x00{attempt}".encode()).hexdigest()
    return work_dir / digest[:2] / digest[2:32]


def proc_start_marker(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None when it is gone.

    Together with the pid it names one process: a recycled pid has another start time.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields follow the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    if len(fields) < 20 or fields[0] == b"Z":
        return None  # a zombie has exited
    return fields[19].decode()


def try_lock(directory: Path) -> int | None:
    """Take the attempt's lock without waiting; the fd holding it, or None when held."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def is_running(directory: Path) -> bool:
    """True while someone holds the attempt's lock (its process is alive)."""
    lock = directory / LOCK
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock, if it got one
    return False


def read_claim(directory: Path) -> dict[str, Any] | None:
    """The claim record (``claimed`` file, else the lock's content), or None when unclaimed."""
    try:
        data = (directory / CLAIMED).read_bytes()
    except FileNotFoundError:
        try:
            data = (directory / LOCK).read_bytes()
        except FileNotFoundError:
            return None
        if not data:
            return None
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        return {}  # torn write: claimed all the same
    return value if isinstance(value, dict) else {}


def write_claim(directory: Path, record: dict[str, Any], lock_fd: int | None = None) -> None:
    """Record the claim.

    Args:
        directory: The attempt directory.
        record: The claim (JSON-safe).
        lock_fd: The fd from :func:`try_lock`: write the claim into the (empty) lock file
            instead of creating ``claimed``. Only for a claim written once: a torn write reads
            as claimed all the same, an empty file as unclaimed (the task has not run).
    """
    if lock_fd is not None:
        os.pwrite(lock_fd, json.dumps(record).encode(), 0)
        return
    tmp = directory / f".{CLAIMED}.{os.getpid()}"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, directory / CLAIMED)


def stderr_tail(directory: Path, limit: int = 2000) -> str:
    """The end of the attempt's stderr (or its warm worker's scratch stderr), for messages."""
    path = directory / STDERR
    if not path.exists():
        scratch = (read_claim(directory) or {}).get("stderr")
        if isinstance(scratch, str):
            path = Path(scratch)
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def release(fd: int) -> None:
    """Drop a lock taken with :func:`try_lock`."""
    with contextlib.suppress(OSError):
        os.close(fd)


_SHARD = re.compile(r"[0-9a-f]{2}")
_LEAF = re.compile(r"[0-9a-f]{30}")


def _attempt_dirs(work_dir: Path) -> Iterator[Path]:
    """Every ``<2 hex>/<30 hex>`` directory (warm workers' scratch files are not matched)."""
    with contextlib.suppress(FileNotFoundError):
        for shard in os.scandir(work_dir):
            if not (_SHARD.fullmatch(shard.name) and shard.is_dir(follow_symlinks=False)):
                continue
            with contextlib.suppress(FileNotFoundError):
                for leaf in os.scandir(shard.path):
                    if _LEAF.fullmatch(leaf.name) and leaf.is_dir(follow_symlinks=False):
                        yield Path(leaf.path)


def _last_change(directory: Path, since: float) -> float:
    """The newest mtime of the directory and its entries (0 when it is gone).

    Stops at the directory's own mtime when that is already ``since`` or later (most recent
    attempts), so a sweep over many young directories costs one stat each.
    """
    newest = 0.0
    with contextlib.suppress(OSError):
        newest = directory.stat().st_mtime
        if newest >= since:
            return newest
        for entry in os.scandir(directory):
            with contextlib.suppress(OSError):
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def sweep(
    work_dir: Path,
    unchanged_since: float,
    existing: Callable[[set[str]], set[str]],
    batch: int = 500,
) -> int:
    """Remove the attempt directories of executions that no longer exist.

    A directory is removed only when all of these hold: nothing in it changed since
    ``unchanged_since``; its lock is free (no process runs the attempt), and stays held by
    this sweep while it checks and removes; its claim names an execution (``exec``) that
    ``existing`` does not report. Directories without that name (never claimed, or claimed
    by a version before the name was recorded) are kept: nothing tells whose they are.

    Args:
        work_dir: The plugin's work directory.
        unchanged_since: Epoch seconds; a directory touched after this is kept.
        existing: Given ``project/domain/name`` keys, those that still have an execution.
        batch: Keys asked about per call of ``existing``.

    Returns:
        How many attempt directories were removed.
    """
    removed = 0
    candidates: dict[str, list[Path]] = {}

    def flush() -> None:
        nonlocal removed
        alive = existing(set(candidates))
        for key, dirs in candidates.items():
            if key in alive:
                continue
            for directory in dirs:
                if _remove(directory):
                    removed += 1
        candidates.clear()

    for directory in _attempt_dirs(work_dir):
        if _last_change(directory, unchanged_since) >= unchanged_since or is_running(directory):
            continue
        key = (read_claim(directory) or {}).get("exec")
        if not isinstance(key, str) or not key:
            continue
        candidates.setdefault(key, []).append(directory)
        if len(candidates) >= batch:
            flush()
    if candidates:
        flush()
    return removed


def _remove(directory: Path) -> bool:
    """Remove one attempt directory while holding its lock; False when an attempt runs."""
    try:
        fd = try_lock(directory)
    except OSError:
        return False
    if fd is None:
        return False  # an attempt started meanwhile
    try:
        shutil.rmtree(directory, ignore_errors=True)
    finally:
        release(fd)
    return not directory.exists()


__all__ = [
    "CLAIMED",
    "LOCK",
    "STDERR",
    "STDOUT",
    "attempt_dir",
    "is_running",
    "proc_start_marker",
    "read_claim",
    "release",
    "stderr_tail",
    "sweep",
    "try_lock",
    "write_claim",
]
