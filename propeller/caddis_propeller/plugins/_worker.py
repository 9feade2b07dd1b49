"""A warm worker: a long-lived process that runs task attempts without Python start-up.

Started by :class:`~caddis_propeller.plugins.warm.WarmPool` as
``python -m caddis_propeller.plugins._worker``. It imports the task runtime once, then reads
JSON lines from stdin, each a batch of jobs::

    {"jobs": [{"dir": ATTEMPT_DIR, "module": "caddis.runtime", "args": [...], "env": {...}}]}

and for every job runs the attempt-directory protocol (lock, check ``claimed``, claim, run,
unlock) so an attempt runs at most once even when propeller restarts and hands it out again.
The task runs in this process (``module.main(args)`` or ``runpy``) with stdout/stderr sent to
the attempt's files; results go to the attempt's deterministic blob location, where propeller
(this instance or the next) finds them. It reports ``{"dir": ..., "status": ...}`` on its
original stdout and exits when stdin closes (propeller went away), after its current batch.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import sys
import time
from pathlib import Path
from typing import Any

from caddis_propeller.plugins import attempt_dir as ad


def _preload() -> None:
    # What every caddis task needs; paid once per worker instead of once per task.
    for module in ("caddis", "caddis.runtime.entrypoint", "caddis.storage", "caddis.core"):
        with contextlib.suppress(Exception):
            importlib.import_module(module)


def _run_module(module: str, args: list[str]) -> int:
    main = None
    if module == "caddis.runtime":
        with contextlib.suppress(Exception):
            main = importlib.import_module("caddis.runtime.entrypoint").main
    if main is not None:
        return int(main(args) or 0)
    saved = sys.argv
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return 0


_COPY_CHUNK = 1 << 20


class _Scratch:
    """This worker's own stdout/stderr files, reused by every job.

    Creating two files per attempt cost more than a trivial task itself (~150 us per file
    creation on the dev machine's ext4). A job writes into these (truncated before it) and
    only what it actually wrote is copied into the attempt directory afterwards.
    """

    def __init__(self, root: Path) -> None:
        base = root / f".warm-{os.getpid()}"
        self.paths = (f"{base}.{ad.STDOUT}", f"{base}.{ad.STDERR}")
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        self.fds = (os.open(self.paths[0], flags, 0o644), os.open(self.paths[1], flags, 0o644))

    def reset(self) -> None:
        """Empty both files (O_APPEND: the next write lands at offset 0)."""
        for fd in self.fds:
            os.ftruncate(fd, 0)

    def keep(self, directory: Path) -> None:
        """Append what the job wrote to the attempt's ``stdout`` / ``stderr``."""
        for fd, name in zip(self.fds, (ad.STDOUT, ad.STDERR), strict=True):
            size = os.fstat(fd).st_size
            if not size:
                continue
            dest = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                offset = 0
                while offset < size:
                    chunk = os.pread(fd, min(_COPY_CHUNK, size - offset), offset)
                    if not chunk:
                        break
                    os.write(dest, chunk)
                    offset += len(chunk)
            finally:
                os.close(dest)

    def remove(self) -> None:
        """Close and delete the files (the worker is exiting)."""
        for fd, path in zip(self.fds, self.paths, strict=True):
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)


_scratch: dict[Path, _Scratch] = {}


def _scratch_for(directory: Path) -> _Scratch:
    # Attempt directories are <work_dir>/<2 hex>/<30 hex>: the scratch files sit in work_dir.
    root = directory.parent.parent
    scratch = _scratch.get(root)
    if scratch is None:
        scratch = _scratch[root] = _Scratch(root)
    return scratch


def run_job(job: dict[str, Any]) -> str:
    """Run one job under the attempt-directory protocol; returns its status word."""
    directory = Path(job["dir"])
    fd = ad.try_lock(directory)
    if fd is None:
        return "busy"
    try:
        if ad.read_claim(directory) is not None:
            return "already"
        scratch = _scratch_for(directory)
        scratch.reset()
        ad.write_claim(
            directory,
            {
                "pid": os.getpid(),
                "start": ad.proc_start_marker(os.getpid()),
                "mode": "warm",
                "stderr": scratch.paths[1],
                "exec": job.get("exec"),
            },
            lock_fd=fd,
        )
        env = job.get("env") or {}
        saved_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        sys.stdout.flush()
        sys.stderr.flush()
        saved_out, saved_err = os.dup(1), os.dup(2)
        os.dup2(scratch.fds[0], 1)
        os.dup2(scratch.fds[1], 2)
        cwd = os.getcwd()
        try:
            if job.get("cwd"):
                os.chdir(job["cwd"])
            code = _run_module(job["module"], list(job["args"]))
        except BaseException as exc:  # the task must not take the worker down
            print(f"warm worker: task raised {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            for fdx in (saved_out, saved_err):
                os.close(fdx)
            with contextlib.suppress(OSError):
                scratch.keep(directory)
            os.chdir(cwd)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return "done" if code == 0 else f"exit:{code}"
    finally:
        ad.release(fd)


def main() -> None:
    """Serve batches from stdin until it closes."""
    _preload()
    report = os.fdopen(os.dup(1), "w", buffering=1)
    # Nothing of the task may write into the report channel.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    report.write(json.dumps({"ready": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        batch = json.loads(line)
        for job in batch.get("jobs", []):
            began = time.perf_counter()
            try:
                status = run_job(job)
            except Exception as exc:
                status = f"error:{type(exc).__name__}: {exc}"
            report.write(
                json.dumps({"dir": job["dir"], "status": status, "s": time.perf_counter() - began})
                + "\n"
            )
    for scratch in _scratch.values():
        scratch.remove()


if __name__ == "__main__":
    main()
