"""The local process plugin: each task attempt is an OS process on this machine.

- A fresh attempt runs as ``command + args`` of the task's ``ProcessSpec`` (templates such as
  ``{{.input}}`` replaced by the attempt's locations), detached in its own session so it
  outlives propeller. ``python -m <module>`` tasks run on warm workers instead when the pool is
  on (no interpreter start-up per task); array items go to them in batches.
- Attempts take CPU / memory / GPU slots (:mod:`caddis_propeller.plugins.slots`); what does not
  fit waits in a queue and is reported QUEUED.
- Restart safety lives in the attempt directory (:mod:`caddis_propeller.plugins.attempt_dir`):
  ``start`` after a restart finds the claim and re-attaches instead of starting again; the
  result is read from the deterministic ``outputs.pb`` / ``futures.pb`` / ``error.pb``; a
  process that is still running is recognised by the lock it holds (and its pid plus start
  marker, used to signal it on abort).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caddis.storage import BlobStore
from caddis_idl.core.v1 import errors_pb2, execution_pb2, tasks_pb2
from caddis_propeller.config import ProcessPluginConfig
from caddis_propeller.engine.interfaces import (
    Dynamic,
    Failed,
    Running,
    Succeeded,
    TaskAttempt,
    TaskStatus,
)
from caddis_propeller.plugins import attempt_dir as ad
from caddis_propeller.plugins.base import system_error
from caddis_propeller.plugins.slots import Request, Slots, machine_memory, parse_bytes, request_of
from caddis_propeller.plugins.warm import WarmJob, WarmPool, default_python

_log = logging.getLogger(__name__)

_TP = execution_pb2.TaskExecutionPhase
_QUEUED = _TP.TASK_EXECUTION_PHASE_QUEUED
_RUNNING = _TP.TASK_EXECUTION_PHASE_RUNNING
_WAITING = _TP.TASK_EXECUTION_PHASE_WAITING_FOR_RESOURCES
_DEFAULT_COMMAND = ("python", "-m", "caddis.runtime")
_PYTHONS = {"python", "python3", "python3.11", "python3.12", "python3.13"}


@dataclass(eq=False)
class _Job:
    key: str
    dir: Path
    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    request: Request
    warm_key: str | None
    module: str | None
    queued_at: float
    state: str = "queued"  # queued | running | reported | external
    proc: subprocess.Popen[bytes] | None = None
    report: str = ""
    started_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


Locator = Callable[[str], str]
"""Maps an engine DataStore key to the URI a task process reads or writes."""


class ProcessPlugin:
    """Runs attempts as local processes (fresh or on warm workers).

    Args:
        config: Plugin settings.
        store: Blob store holding the attempts' inputs and results.
        locate: DataStore key -> URI.
        raw_prefix: Raw-data prefix for an attempt (``{{.rawOutputDataPrefix}}``).
        on_start: Called with (attempt dir, seconds queued) when a process starts.
    """

    name = "process"

    def __init__(
        self,
        config: ProcessPluginConfig,
        *,
        store: BlobStore,
        locate: Locator,
        raw_prefix: Callable[[TaskAttempt], str],
        on_start: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.locate = locate
        self.raw_prefix = raw_prefix
        self.on_start = on_start
        root = config.work_dir or os.path.expanduser("~/.caddis/propeller/attempts")
        self.work_dir = Path(root).expanduser()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._root = str(self.work_dir)
        self.python = config.python or default_python()
        cpu = config.cpu or float(os.cpu_count() or 1)
        memory = parse_bytes(config.memory) if config.memory else machine_memory()
        self.slots = Slots(cpu, memory, config.gpu)
        self._default_memory = parse_bytes(config.default_memory)
        self._lock = threading.RLock()
        self._jobs: dict[str, _Job] = {}
        self._fresh_queue: list[_Job] = []
        # Handles of jobs in flight whose status cannot have changed: queued or running here,
        # nothing reported yet. A report (warm worker, process exit, spawn failure) removes
        # the handle; ``needs_check`` names everything else (see CompletionTracker).
        self._quiet: set[str] = set()
        self._closed = False
        self.notify: Callable[[str], None] | None = None
        """Told ``project/domain/name`` when an attempt of that execution finished."""
        self.pool: WarmPool | None = None
        if config.warm_workers > 0:
            self.pool = WarmPool(
                size=config.warm_workers,
                python=self.python,
                batch=config.warm_batch,
                log_dir=self.work_dir,
                on_report=self._on_warm_report,
                admit=self._admit_batch,
                release=self._release_batch,
            )

    # ---------------------------------------------------------------- identity and argv
    def _dir(self, attempt: TaskAttempt) -> Path:
        e = attempt.execution_id
        return ad.attempt_dir(
            self.work_dir, f"{e.project}/{e.domain}/{e.name}", attempt.node_path, attempt.attempt
        )

    def _handle(self, directory: Path) -> str:
        return str(directory.relative_to(self.work_dir))

    def _prefix(self, attempt: TaskAttempt) -> str:
        return self.locate(attempt.output_prefix).rstrip("/")

    def _argv(
        self, attempt: TaskAttempt
    ) -> tuple[list[str], dict[str, str], str | None, str | None]:
        task = attempt.task
        spec = task.process if task.HasField("process") else tasks_pb2.ProcessSpec()
        command = list(spec.command) or list(_DEFAULT_COMMAND)
        args = list(spec.args)
        out = self._prefix(attempt)
        prev = ""
        if attempt.attempt > 0:
            # The previous attempt's checkpoint, next to this attempt's directory.
            base = out.rsplit("/", 1)[0]
            prev = f"{base}/attempt-{attempt.attempt - 1}/checkpoint/"
        values = {
            "{{.input}}": self.locate(attempt.inputs_key),
            "{{.inputs}}": self.locate(attempt.inputs_key),
            "{{.outputPrefix}}": out,
            "{{.rawOutputDataPrefix}}": self.raw_prefix(attempt),
            "{{.checkpointOutputPrefix}}": f"{out}/checkpoint/",
            "{{.prevCheckpointPrefix}}": prev,
        }

        def fill(text: str) -> str:
            for k, v in values.items():
                if k in text:
                    text = text.replace(k, v)
            return text

        args = [fill(a) for a in args]
        module: str | None = None
        if command[0] in _PYTHONS:
            command[0] = self.python
            if len(command) == 3 and command[1] == "-m":
                module = command[2]
        bundle_key: str | None = None
        if module == "caddis.runtime":
            e = attempt.execution_id
            if (
                spec.HasField("code_bundle")
                and spec.code_bundle.uri
                and "--code-bundle-uri" not in args
            ):
                args += [
                    "--code-bundle-uri",
                    spec.code_bundle.uri,
                    "--code-bundle-digest",
                    spec.code_bundle.digest,
                ]
            if "--execution-id" not in args:
                args += ["--execution-id", f"{e.project}:{e.domain}:{e.name}"]
            if "--attempt" not in args:
                args += ["--attempt", str(attempt.attempt)]
        if spec.HasField("code_bundle"):
            bundle_key = spec.code_bundle.digest or spec.code_bundle.uri
        env = {kv.key: kv.value for kv in spec.env}
        e = attempt.execution_id
        env.setdefault("CADDIS_EXECUTION_PROJECT", e.project)
        env.setdefault("CADDIS_EXECUTION_DOMAIN", e.domain)
        env.setdefault("CADDIS_EXECUTION_NAME", e.name)
        env.setdefault("CADDIS_NODE_PATH", attempt.node_path)
        env.setdefault("CADDIS_ATTEMPT", str(attempt.attempt))
        # Dynamic tasks reference the registered versions of the tasks they call.
        tid = task.id
        env.setdefault("CADDIS_PROJECT", tid.project)
        env.setdefault("CADDIS_DOMAIN", tid.domain)
        env.setdefault("CADDIS_VERSION", tid.version)
        # The runtime writes timings.json (read for the node_time split metric) only on request.
        # Not for map items: one more file per item to write (~150 us to create on ext4) and one
        # for propeller to read back, for 10,000 samples of a trivial function.
        if attempt.array_index is None:
            env.setdefault("CADDIS_RUNTIME_TIMINGS", "1")
        warm = module is not None and not spec.image and self.pool is not None
        warm_key = (bundle_key or "") if warm else None
        return [*command, *args], env, module, warm_key

    def _request(self, attempt: TaskAttempt) -> Request:
        resources: tasks_pb2.Resources | None = None
        if attempt.overrides is not None and attempt.overrides.HasField("resources"):
            resources = attempt.overrides.resources
        elif attempt.task.HasField("process") and attempt.task.process.HasField("resources"):
            resources = attempt.task.process.resources
        return request_of(resources, self.config.default_cpu, self._default_memory)

    # ---------------------------------------------------------------- results
    def _result(self, attempt: TaskAttempt) -> TaskStatus | None:
        prefix = self._prefix(attempt)
        if self.store.exists(f"{prefix}/outputs.pb"):
            return Succeeded()
        if self.store.exists(f"{prefix}/futures.pb"):
            return Dynamic()
        error_uri = f"{prefix}/error.pb"
        if self.store.exists(error_uri):
            doc = self.store.read_proto(error_uri, errors_pb2.ErrorDocument)
            ce = doc.error
            return Failed(
                execution_pb2.ExecutionError(
                    code=ce.code or "UnknownError",
                    message=ce.message,
                    error_uri=error_uri,
                    kind=ce.origin or execution_pb2.ErrorKind.ERROR_KIND_USER,
                    recoverable=ce.kind == errors_pb2.ContainerError.Kind.KIND_RECOVERABLE,
                    timestamp=ce.timestamp if ce.HasField("timestamp") else None,
                    worker=ce.worker,
                )
            )
        return None

    def _adoptable(self, attempt: TaskAttempt) -> TaskStatus | None:
        if attempt.array_index is not None:
            # One existence check per item (a map has thousands): a finished item has outputs.
            prefix = self._prefix(attempt)
            return Succeeded() if self.store.exists(f"{prefix}/outputs.pb") else None
        return self._result(attempt)

    def _lost(self, job: _Job | None, directory: Path) -> Failed:
        code = job.proc.returncode if job is not None and job.proc is not None else None
        detail = f" (exit code {code})" if code is not None else ""
        tail = ad.stderr_tail(directory)
        message = "the task process ended without writing outputs.pb, futures.pb or error.pb"
        message += detail
        if tail:
            message += f"; stderr ends with:\n{tail}"
        return system_error("ProcessLost", message)

    # ---------------------------------------------------------------- plugin interface
    def start(self, attempt: TaskAttempt) -> TaskStatus:
        """Queue the attempt (or re-attach to it after a restart)."""
        return self.start_batch([attempt])[0]

    def start_batch(self, attempts: Sequence[TaskAttempt]) -> Sequence[TaskStatus]:
        """Queue many attempts; warm ones go to workers in batches."""
        statuses: list[TaskStatus] = []
        warm: list[WarmJob] = []
        fresh = False
        now = time.time()
        for attempt in attempts:
            directory = self._dir(attempt)
            key = str(directory)
            handle = self._handle(directory)
            with self._lock:
                known = key in self._jobs
            if known or ad.read_claim(directory) is not None:
                statuses.append(self.check(attempt, handle))
                continue
            # Attempt directories are local to a machine; results are in the shared blob
            # store. An attempt that finished under a replica on another (dead) machine is
            # adopted from its deterministic result, never run again.
            done = self._adoptable(attempt)
            if done is not None:
                statuses.append(done)
                continue
            job = self._new_job(attempt, directory, now)
            with self._lock:
                self._jobs[key] = job
                self._quiet.add(handle)
            if job.warm_key is not None:
                warm.append(self._warm_job(job))
            else:
                with self._lock:
                    self._fresh_queue.append(job)
                fresh = True
            statuses.append(Running(handle, phase=_QUEUED, reason="queued"))
        if warm and self.pool is not None:
            self.pool.submit(warm)
        if fresh:
            self._pump_fresh()
        return statuses

    def _new_job(self, attempt: TaskAttempt, directory: Path, now: float) -> _Job:
        argv, env, module, warm_key = self._argv(attempt)
        directory.mkdir(parents=True, exist_ok=True)
        if attempt.array_index is not None:
            # The engine hands array items their inputs in memory (it does not write 10,000
            # inputs.pb for a map); a task process reads them from the blob store.
            self.store.write_proto(self.locate(attempt.inputs_key), attempt.inputs)
        e = attempt.execution_id
        return _Job(
            extra={"exec": f"{e.project}/{e.domain}/{e.name}"},
            key=str(directory),
            dir=directory,
            argv=argv,
            env=env,
            cwd=None,
            request=self._request(attempt),
            warm_key=warm_key,
            module=module,
            queued_at=now,
        )

    def _warm_job(self, job: _Job) -> WarmJob:
        assert job.module is not None and job.warm_key is not None
        return WarmJob(
            dir=job.key,
            key=job.warm_key,
            payload={
                "module": job.module,
                "args": job.argv[3:],
                "env": job.env,
                "exec": job.extra.get("exec"),
            },
        )

    def needs_check(self, handles: Collection[str]) -> Collection[str]:
        """Of ``handles``, those that may have finished: all but the known, unreported ones.

        One C-level set difference (no per-handle Python work), so an engine round over 10,000
        items in flight costs about a millisecond here plus the work per completed item.
        """
        with self._lock:
            return set(handles).difference(self._quiet)

    def _wake(self, key: str) -> None:
        """Mark a job as needing a check (called with ``self._lock`` held or not)."""
        self._quiet.discard(key[len(self._root) + 1 :])

    def check(self, attempt: TaskAttempt, handle: str) -> TaskStatus:
        """Status from (cheapest first) memory, the result files, the lock and the claim."""
        # The hot path (thousands of in-flight array items per round): no Path objects, no I/O.
        key = f"{self._root}/{handle}"
        with self._lock:
            job = self._jobs.get(key)
        if job is not None:
            if job.state == "queued":
                if job.warm_key is None:
                    self._pump_fresh()
                if job.state == "queued":
                    return Running(handle, phase=_WAITING, reason="waiting for resources")
            if job.state == "running":
                if job.proc is not None:
                    if job.proc.poll() is None:
                        return Running(handle, phase=_RUNNING)
                elif job.warm_key is not None:
                    return Running(handle, phase=_RUNNING)
        directory = self.work_dir / handle
        result = self._result(attempt)
        if result is not None:
            return result
        if ad.is_running(directory):
            if job is None:
                # Adopted after a restart: it runs, so it holds slots.
                with self._lock:
                    self._jobs[key] = _Job(
                        key=key,
                        dir=directory,
                        argv=[],
                        env={},
                        cwd=None,
                        request=self._request(attempt),
                        warm_key=None,
                        module=None,
                        queued_at=time.time(),
                        state="external",
                    )
                self.slots.force(key, self._request(attempt))
            return Running(handle, phase=_RUNNING)
        if ad.read_claim(directory) is None:
            if job is not None and job.state in ("running", "queued"):
                return Running(handle, phase=_QUEUED, reason="starting")
            # Never ran (the queue was lost with a restart, or a worker died first): queue it.
            with self._lock:
                self._jobs.pop(key, None)
            return self.start_batch([attempt])[0]
        # Claimed and nobody holds the lock: it ended. A last look for a result written
        # between our first look and its exit.
        result = self._result(attempt)
        if result is not None:
            return result
        return self._lost(job, directory)

    def abort(self, attempt: TaskAttempt, handle: str, reason: str) -> None:
        """Stop the attempt: drop it from the queues or signal its process group."""
        directory = self.work_dir / handle
        key = str(directory)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state == "queued":
                with contextlib.suppress(ValueError):
                    self._fresh_queue.remove(job)
        if self.pool is not None:
            self.pool.cancel(key)
        pid: int | None = None
        if job is not None and job.proc is not None:
            pid = job.proc.pid if job.proc.poll() is None else None
        elif ad.is_running(directory):
            claim = ad.read_claim(directory) or {}
            candidate = claim.get("pid")
            if isinstance(candidate, int) and ad.proc_start_marker(candidate) == claim.get("start"):
                pid = candidate
        if pid is not None:
            self._terminate(pid, job)

    def _terminate(self, pid: int, job: _Job | None) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        start = ad.proc_start_marker(pid)

        def kill_later() -> None:
            deadline = time.monotonic() + self.config.abort_grace_s
            while time.monotonic() < deadline:
                if job is not None and job.proc is not None:
                    if job.proc.poll() is not None:
                        return
                elif ad.proc_start_marker(pid) != start:
                    return
                time.sleep(0.05)
            if ad.proc_start_marker(pid) == start:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            if job is not None and job.proc is not None:
                with contextlib.suppress(Exception):
                    job.proc.wait(timeout=1)

        threading.Thread(target=kill_later, name="abort-kill", daemon=True).start()

    def finalize(self, attempt: TaskAttempt, handle: str) -> None:
        """Give back the attempt's slots and forget it."""
        key = str(self.work_dir / handle)
        with self._lock:
            job = self._jobs.pop(key, None)
            self._quiet.discard(handle)
        if job is not None and job.proc is not None:
            with contextlib.suppress(Exception):
                job.proc.poll()
        self.slots.release(key)
        self._pump_fresh()
        if self.pool is not None:
            self.pool.pump()

    # ---------------------------------------------------------------- fresh processes
    def _pump_fresh(self) -> None:
        while True:
            with self._lock:
                if not self._fresh_queue or self._closed:
                    return
                job = self._fresh_queue[0]
                if not self.slots.try_acquire(job.key, job.request):
                    return
                self._fresh_queue.pop(0)
                job.state = "running"
            try:
                self._spawn(job)
            except Exception as exc:
                _log.warning("could not start %s", job.argv, exc_info=True)
                job.extra["spawn_error"] = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self._wake(job.key)
                (job.dir / ad.STDERR).write_text(f"could not start the task: {exc}\n")
                self.slots.release(job.key)

    def _spawn(self, job: _Job) -> None:
        fd = ad.try_lock(job.dir)
        if fd is None:
            job.state = "external"  # someone (an earlier propeller's worker) runs it
            with self._lock:
                self._wake(job.key)
            self.slots.release(job.key)
            return
        try:
            if ad.read_claim(job.dir) is not None:
                job.state = "external"
                with self._lock:
                    self._wake(job.key)
                self.slots.release(job.key)
                return
            # Claim before spawning: a crash between the two loses this attempt (a system
            # retry follows) but can never run it twice.
            ad.write_claim(job.dir, {"pid": None, "mode": "process", "exec": job.extra.get("exec")})
            env = dict(os.environ)
            env.update(job.env)
            with open(job.dir / ad.STDOUT, "ab") as out, open(job.dir / ad.STDERR, "ab") as err:
                proc = subprocess.Popen(
                    job.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=env,
                    cwd=job.cwd,
                    # The child inherits the locked file: the lock lives while it does.
                    pass_fds=(fd,),
                    # Own session: outlives propeller; abort signals the whole group.
                    start_new_session=True,
                )
            job.proc = proc
            job.started_at = time.time()
            ad.write_claim(
                job.dir,
                {
                    "pid": proc.pid,
                    "start": ad.proc_start_marker(proc.pid),
                    "mode": "process",
                    "exec": job.extra.get("exec"),
                },
            )
        finally:
            ad.release(fd)
        if self.on_start is not None:
            self.on_start(job.started_at - job.queued_at)
        if job.proc is not None:
            proc = job.proc

            def wait_exit() -> None:
                # Reaps the child and wakes the execution as soon as the process ends.
                with contextlib.suppress(Exception):
                    proc.wait()
                with self._lock:
                    self._wake(job.key)
                self._notify(job)

            threading.Thread(target=wait_exit, name="proc-wait", daemon=True).start()

    # ---------------------------------------------------------------- warm workers
    def _admit_batch(self, batch_id: str, jobs: list[WarmJob]) -> bool:
        with self._lock:
            requests = [self._jobs[j.dir].request for j in jobs if j.dir in self._jobs]
        if not requests:
            return True
        # A worker runs its batch one job at a time: the batch needs the largest request.
        req = Request(
            max(r.cpu for r in requests),
            max(r.memory for r in requests),
            max(r.gpu for r in requests),
        )
        if not self.slots.try_acquire(batch_id, req):
            return False
        now = time.time()
        with self._lock:
            for j in jobs:
                job = self._jobs.get(j.dir)
                if job is not None:
                    job.state = "running"
                    job.started_at = now
                    if self.on_start is not None:
                        self.on_start(now - job.queued_at)
        return True

    def _release_batch(self, batch_id: str) -> None:
        self.slots.release(batch_id)
        self._pump_fresh()

    def _on_warm_report(self, directory: str, status: str) -> None:
        with self._lock:
            job = self._jobs.get(directory)
            if job is not None:
                job.state = "reported"
                job.report = status
            self._wake(directory)
        self._notify(job)

    def _notify(self, job: _Job | None) -> None:
        if job is not None and self.notify is not None:
            with contextlib.suppress(Exception):
                self.notify(job.extra.get("exec", ""))

    def sweep(self, unchanged_since: float, existing: Callable[[set[str]], set[str]]) -> int:
        """Remove attempt directories of executions that no longer exist (retention).

        See :func:`caddis_propeller.plugins.attempt_dir.sweep`; ``existing`` maps
        ``project/domain/name`` keys to those that still have an execution.

        Returns:
            How many attempt directories were removed.
        """
        return ad.sweep(self.work_dir, unchanged_since, existing)

    def close(self) -> None:
        """Stop starting work; running processes and warm batches carry on detached."""
        with self._lock:
            self._closed = True
        if self.pool is not None:
            self.pool.close()


__all__ = ["ProcessPlugin"]
