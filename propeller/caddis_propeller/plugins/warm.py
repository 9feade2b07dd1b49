"""A pool of warm worker processes that run task attempts in batches.

Workers (:mod:`caddis_propeller.plugins._worker`) are started detached, pre-import caddis, and
take batches of jobs over a pipe. A worker is bound to one code-bundle key (tasks of another
bundle get another worker) so user modules of different bundles never mix in one interpreter.
The pool does not decide whether an attempt ran: the attempt directory does (see
:mod:`caddis_propeller.plugins.attempt_dir`); the pool only moves jobs and reports back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

_log = logging.getLogger(__name__)


@dataclass(eq=False)
class WarmJob:
    """One attempt for a warm worker.

    Attributes:
        dir: The attempt directory.
        key: The code-bundle key (workers serve one key each).
        payload: What the worker receives (module, args, env, cwd).
    """

    dir: str
    key: str
    payload: dict[str, Any]


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[str]
    key: str
    stdin: IO[str]
    outstanding: set[str] = field(default_factory=set)
    alive: bool = True


Report = Callable[[str, str], None]
"""Called with (attempt dir, status) as workers finish jobs (``done``, ``busy``, ...)."""

Admit = Callable[[list[WarmJob]], bool]
"""Asked before a batch is handed to a worker; False keeps it queued (no free slots)."""


class WarmPool:
    """Warm workers fed from a queue.

    Args:
        size: Most workers alive at once.
        python: Interpreter of the workers.
        batch: Jobs handed to a worker at once.
        log_dir: Where workers' own stderr goes.
        on_report: Receives job outcomes.
        admit: Admission check per batch (resource slots).
        release: Called with a batch's id when it finished (gives the slots back).
    """

    def __init__(
        self,
        *,
        size: int,
        python: str,
        batch: int,
        log_dir: Path,
        on_report: Report,
        admit: Callable[[str, list[WarmJob]], bool],
        release: Callable[[str], None],
    ) -> None:
        self.size = size
        self.python = python
        self.batch = max(1, batch)
        self.log_dir = log_dir
        self._on_report = on_report
        self._admit = admit
        self._release = release
        self._lock = threading.RLock()
        self._queue: deque[WarmJob] = deque()
        self._workers: list[_Worker] = []
        self._closed = False
        self._batch_of: dict[str, str] = {}
        self._batch_left: dict[str, int] = {}
        self._seq = 0

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker."""
        return len(self._queue)

    def prestart(self, key: str = "") -> None:
        """Start workers for ``key`` up to the pool size (start-up is paid before work comes)."""
        with self._lock:
            while len(self._workers) < self.size:
                self._spawn(key)

    def submit(self, jobs: list[WarmJob]) -> None:
        """Queue jobs and hand out what the workers and slots allow."""
        with self._lock:
            self._queue.extend(jobs)
            self._dispatch()

    def cancel(self, directory: str) -> bool:
        """Drop a job that has not been handed out yet; True when it was queued."""
        with self._lock:
            for job in self._queue:
                if job.dir == directory:
                    self._queue.remove(job)
                    return True
        return False

    def pump(self) -> None:
        """Hand out queued jobs (after slots were freed elsewhere)."""
        with self._lock:
            self._dispatch()

    def _spawn(self, key: str) -> _Worker:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        err = open(self.log_dir / "warm-workers.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [self.python, "-m", "caddis_propeller.plugins._worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
                # Own session: the worker outlives a killed propeller and finishes its batch.
                start_new_session=True,
            )
        finally:
            err.close()
        assert proc.stdin is not None and proc.stdout is not None
        worker = _Worker(proc=proc, key=key, stdin=proc.stdin)
        self._workers.append(worker)
        threading.Thread(
            target=self._read, args=(worker, proc.stdout), name="warm-reader", daemon=True
        ).start()
        return worker

    def _idle_worker(self, key: str) -> _Worker | None:
        for worker in self._workers:
            if worker.alive and not worker.outstanding and worker.key == key:
                return worker
        if len(self._workers) < self.size:
            return self._spawn(key)
        for worker in self._workers:
            if worker.alive and not worker.outstanding:
                # Rebind: retire an idle worker of another bundle, start one for this key.
                self._retire(worker)
                return self._spawn(key)
        return None

    def _retire(self, worker: _Worker) -> None:
        worker.alive = False
        with contextlib.suppress(ValueError):
            self._workers.remove(worker)
        with contextlib.suppress(OSError):
            worker.stdin.close()

    def _dispatch(self) -> None:
        while self._queue and not self._closed:
            key = self._queue[0].key
            worker = self._idle_worker(key)
            if worker is None:
                return
            batch: list[WarmJob] = []
            rest: deque[WarmJob] = deque()
            while self._queue and len(batch) < self.batch:
                job = self._queue.popleft()
                (batch if job.key == key else rest).append(job)
            self._queue.extendleft(reversed(rest))
            self._seq += 1
            batch_id = f"b{self._seq}"
            if not self._admit(batch_id, batch):
                self._queue.extendleft(reversed(batch))
                return
            self._batch_left[batch_id] = len(batch)
            for job in batch:
                worker.outstanding.add(job.dir)
                self._batch_of[job.dir] = batch_id
            line = json.dumps({"jobs": [{"dir": j.dir, **j.payload} for j in batch]})
            try:
                worker.stdin.write(line + "\n")
                worker.stdin.flush()
            except OSError:
                # Died under us; the reader thread requeues its outstanding jobs.
                _log.warning("warm worker %d is gone", worker.proc.pid)

    def _finish(self, directory: str) -> None:
        batch_id = self._batch_of.pop(directory, None)
        if batch_id is None:
            return
        left = self._batch_left.get(batch_id, 1) - 1
        if left <= 0:
            self._batch_left.pop(batch_id, None)
            self._release(batch_id)
        else:
            self._batch_left[batch_id] = left

    def _read(self, worker: _Worker, stream: IO[str]) -> None:
        for line in stream:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            directory = msg.get("dir")
            if directory is None:
                continue
            with self._lock:
                worker.outstanding.discard(directory)
                self._finish(directory)
            try:
                self._on_report(directory, str(msg.get("status", "")))
            except Exception:
                _log.warning("warm report handler failed", exc_info=True)
            with self._lock:
                self._dispatch()
        # EOF: the worker exited (crashed, killed by an abort, or retired).
        with contextlib.suppress(Exception):
            stream.close()
        with contextlib.suppress(Exception):
            worker.stdin.close()
        with contextlib.suppress(Exception):
            worker.proc.wait(timeout=5)
        with self._lock:
            worker.alive = False
            with contextlib.suppress(ValueError):
                self._workers.remove(worker)
            lost = list(worker.outstanding)
            worker.outstanding.clear()
            for directory in lost:
                self._finish(directory)
        for directory in lost:
            # The attempt directory tells the plugin whether the job ran (and died) or not.
            with contextlib.suppress(Exception):
                self._on_report(directory, "worker-exited")
        with self._lock:
            self._dispatch()

    def worker_pids(self) -> list[int]:
        """Pids of live workers."""
        with self._lock:
            return [w.proc.pid for w in self._workers if w.alive]

    def close(self) -> None:
        """Stop handing out work and let workers exit after their current batch."""
        with self._lock:
            self._closed = True
            workers = list(self._workers)
            self._workers.clear()
        for worker in workers:
            worker.alive = False
            with contextlib.suppress(OSError):
                worker.stdin.close()


def default_python() -> str:
    """The interpreter propeller runs on."""
    import sys

    return sys.executable or os.environ.get("PYTHON", "python3")


__all__ = ["WarmJob", "WarmPool", "default_python"]
