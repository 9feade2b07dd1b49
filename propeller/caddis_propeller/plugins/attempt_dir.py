"""The attempt directory: how an attempt is run at most once and found again after a restart.

Each attempt of the process plugin has a local directory (named by a hash of execution, node
path and attempt) holding:

- ``lock``: ``flock``-ed exclusively by whoever runs the attempt, for as long as it runs. The
  lock lives on the open file, which the task process inherits, so it is held exactly while the
  task process (or the warm worker running the item) is alive; propeller probes it to tell
  "still running" from "gone", independent of pid reuse.
- the claim, written under the lock just before the task runs (JSON: pid, the pid's start
  marker from ``/proc``, how it runs). Whoever takes the lock and finds a claim must not run
  the attempt again. Together: an attempt runs at most once, whichever replica, restart or warm
  worker gets to it. A fresh process's claim is the file ``claimed``; a warm worker writes its
  claim into the ``lock`` file it already holds (one file creation less per map item: creating
  a file costs ~150 us on the dev machine's ext4, more than a trivial task's own work).
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
    "try_lock",
    "write_claim",
]
