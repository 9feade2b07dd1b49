"""``python -m caddis.runtime execute ...``: run one task attempt as a process.

The task process contract (DESIGN.md): read ``inputs.pb`` (a LiteralMap) from ``--inputs``,
run the task named by ``--module``/``--name``, and write exactly one of ``outputs.pb``,
``futures.pb`` or ``error.pb`` under ``--output-prefix`` (plus ``deck.html`` when decks are
on). The process exits 0 whenever it wrote one of them, even for a failed task: propeller
reads ``error.pb``. It exits non-zero only when it could not write anything (or when
``CADDIS_FAIL_ON_ERROR`` is set and the task failed). With ``CADDIS_RUNTIME_TIMINGS=1`` it also
writes ``timings.json`` (input conversion, user code, output conversion and upload seconds).

Argument parsing uses argparse (not click): it is imported once per task process and start-up
time is paid per task.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "run_attempt"]

_TEMPLATE_MARK = "{{"


def _opt(value: str | None) -> str | None:
    # An un-substituted template ("{{.prevCheckpointPrefix}}") means "not provided".
    if not value or _TEMPLATE_MARK in value:
        return None
    return value


_PARSER: list[argparse.ArgumentParser] = []


def _parser() -> argparse.ArgumentParser:
    # Built once per process: warm workers call main() once per attempt.
    if _PARSER:
        return _PARSER[0]
    p = argparse.ArgumentParser(prog="python -m caddis.runtime")
    sub = p.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="run one task attempt")
    ex.add_argument("--inputs", required=True, help="URI of inputs.pb (a LiteralMap)")
    ex.add_argument("--output-prefix", required=True, help="where outputs/futures/error go")
    ex.add_argument("--raw-output-prefix", default="", help="where files/dataframes go")
    ex.add_argument("--checkpoint-path", default=None, help="this attempt's checkpoint prefix")
    ex.add_argument("--prev-checkpoint", default=None, help="previous attempt's checkpoint")
    ex.add_argument("--resolver", default="caddis.default")
    ex.add_argument("--module", required=True, help="module defining the task")
    ex.add_argument("--name", required=True, help="attribute name of the task in the module")
    ex.add_argument("--code-bundle-uri", default=None, help="content-addressed code bundle")
    ex.add_argument("--code-bundle-digest", default=None, help="sha256:<hex> of the bundle")
    ex.add_argument("--code-bundle-cache", default=None, help="cache dir for unpacked bundles")
    ex.add_argument("--execution-id", default=None, help="project:domain:name, for context")
    ex.add_argument("--attempt", type=int, default=None, help="retry attempt, for context")
    ex.add_argument("--enable-deck", action="store_true", default=None)
    # Identity of the registered task: a dynamic task's futures reference the tasks they call
    # under the same project, domain and version (and code bundle). Env fallbacks:
    # CADDIS_PROJECT, CADDIS_DOMAIN, CADDIS_VERSION.
    ex.add_argument("--project", default=None)
    ex.add_argument("--domain", default=None)
    ex.add_argument("--version", default=None)
    _PARSER.append(p)
    return p


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


_STORES: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
_ENV_NAMES: list[str] = []


def _storage_env_names() -> list[str]:
    # The variables StorageConfig.load reads (CADDIS_STORAGE_<FIELD>, nested retry fields,
    # the config file path): looked up by name, which is much cheaper than scanning environ.
    if not _ENV_NAMES:
        import dataclasses

        from caddis.storage import RetryConfig, StorageConfig

        names = ["CADDIS_CONFIG"]
        for f in dataclasses.fields(StorageConfig):
            names.append(f"CADDIS_STORAGE_{f.name.upper()}")
        for f in dataclasses.fields(RetryConfig):
            names.append(f"CADDIS_STORAGE_RETRY_{f.name.upper()}")
        _ENV_NAMES.extend(names)
    return _ENV_NAMES


def _store(uri: str) -> Any:
    # Loading StorageConfig (file + environment) per call costs more than a trivial task in a
    # warm worker; cache the store per scheme and storage-related environment.
    scheme = uri.split("://", 1)[0] if "://" in uri else "file"
    get = os.environ.get
    key = (scheme, tuple((n, get(n) or "") for n in _storage_env_names()))
    store = _STORES.get(key)
    if store is None:
        from caddis.storage import get_store

        store = _STORES[key] = get_store(uri)
    return store


def _write(prefix: str, name: str, message: Any) -> None:
    uri = _join(prefix, name)
    _store(uri).write_proto(uri, message)


_HOST: list[str] = []


def _hostname() -> str:
    if not _HOST:
        _HOST.append(socket.gethostname())
    return _HOST[0]


_SEQ = [0]


def _write_timings(prefix: str, timings: dict[str, float]) -> None:
    # Opt-in (CADDIS_RUNTIME_TIMINGS=1): one more durable write per attempt costs more than a
    # trivial task. Written before the result file, so whoever sees the result finds them.
    uri = _join(prefix, "timings.json")
    with contextlib.suppress(Exception):  # informative only: never fail an attempt over it
        _store(uri).put_bytes(uri, json.dumps(timings).encode())


def run_attempt(
    *,
    inputs: str,
    output_prefix: str,
    raw_output_prefix: str = "",
    module: str,
    name: str,
    resolver: str = "caddis.default",
    checkpoint_path: str | None = None,
    prev_checkpoint: str | None = None,
    code_bundle_uri: str | None = None,
    code_bundle_digest: str | None = None,
    code_bundle_cache: str | None = None,
    execution_id: str | None = None,
    attempt: int | None = None,
    enable_deck: bool | None = None,
    project: str | None = None,
    domain: str | None = None,
    version: str | None = None,
) -> str:
    """Run one attempt per the task process contract; returns the file name it wrote.

    Args:
        inputs: URI of ``inputs.pb``.
        output_prefix: Prefix for ``outputs.pb`` / ``futures.pb`` / ``error.pb``.
        raw_output_prefix: Where offloaded values go.
        module: Module of the task.
        name: Attribute of the task in the module.
        resolver: Resolver name (only ``caddis.default``).
        checkpoint_path: This attempt's checkpoint prefix.
        prev_checkpoint: The previous attempt's checkpoint prefix.
        code_bundle_uri: Code bundle to fetch before importing ``module``.
        code_bundle_digest: Its ``sha256:<hex>`` digest.
        code_bundle_cache: Where unpacked bundles are cached.
        execution_id: ``project:domain:name`` of the execution (for ``current_context``).
        attempt: Retry attempt number (for ``current_context``).
        enable_deck: Force decks on (None: as the task says).
        project: Project of the registered task (dynamic futures reference it).
        domain: Domain of the registered task.
        version: Version of the registered task.

    Raises:
        Exception: Only when even ``error.pb`` could not be written.
    """
    from caddis.runtime._execute import AttemptContext, TaskResult, error_document, execute_task
    from caddis_idl.core.v1 import literals_pb2

    worker = _hostname()
    output_prefix = output_prefix.rstrip("/")
    raw = _opt(raw_output_prefix) or _join(output_prefix, "raw")
    try:
        if code_bundle_uri:
            from caddis.runtime.bundle import fetch_bundle

            if not code_bundle_digest:
                raise ValueError("--code-bundle-uri needs --code-bundle-digest")
            fetch_bundle(code_bundle_uri, code_bundle_digest, code_bundle_cache)
        elif os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        from caddis.core.resolver import load_entity

        task = load_entity(module, name, resolver)
        lm = _store(inputs).read_proto(inputs, literals_pb2.LiteralMap)
        checkpoint = None
        cp = _opt(checkpoint_path)
        if cp:
            from caddis.runtime.checkpoint import SyncCheckpoint

            checkpoint = SyncCheckpoint(cp, _opt(prev_checkpoint))
        from caddis.core._transformers._context import DataContext

        # Named, not created: most tasks never download or use their working directory, and
        # creating + removing a directory per attempt dominated trivial tasks in warm workers.
        _SEQ[0] += 1
        local_dir = os.path.join(
            tempfile.gettempdir(), f"caddis-task-{os.getpid()}-{_SEQ[0]}-{time.monotonic_ns()}"
        )
        ctx = AttemptContext(
            execution_id=execution_id or os.environ.get("CADDIS_EXECUTION_ID", "local"),
            task_id=str(getattr(task, "name", name)),
            attempt=attempt if attempt is not None else int(os.environ.get("CADDIS_ATTEMPT", 0)),
            raw_output_prefix=raw,
            working_directory=os.path.join(local_dir, "work"),
            checkpoint=checkpoint,
            output_prefix=output_prefix,
            enable_deck=enable_deck,
            data_context=DataContext(
                raw_output_prefix=raw, local_dir=local_dir, store_factory=_store
            ),
            worker=worker,
        )
        from caddis.core.settings import SerializationSettings, serialization_settings

        settings = SerializationSettings(
            project=project or os.environ.get("CADDIS_PROJECT", ""),
            domain=domain or os.environ.get("CADDIS_DOMAIN", ""),
            version=version or os.environ.get("CADDIS_VERSION", ""),
            code_bundle_uri=code_bundle_uri or "",
            code_bundle_digest=code_bundle_digest or "",
        )
        try:
            with serialization_settings(settings):
                result: TaskResult = execute_task(task, lm, ctx)
        finally:
            # Uploads are done by now; nothing the attempt left locally is needed any more.
            if os.path.exists(local_dir):
                shutil.rmtree(local_dir, ignore_errors=True)
    except Exception as exc:  # the platform failed before the user's code ran
        import traceback

        doc = error_document(
            f"SYSTEM:{type(exc).__name__}",
            f"task {module}.{name}: {exc}\n{traceback.format_exc()}",
            user=False,
            recoverable=True,
            worker=worker,
        )
        _write(output_prefix, "error.pb", doc)
        return "error.pb"
    if os.environ.get("CADDIS_RUNTIME_TIMINGS"):
        _write_timings(output_prefix, result.timings)
    if result.outputs is not None:
        _write(output_prefix, "outputs.pb", result.outputs)
        return "outputs.pb"
    if result.futures is not None:
        _write(output_prefix, "futures.pb", result.futures)
        return "futures.pb"
    assert result.error is not None
    _write(output_prefix, "error.pb", result.error)
    return "error.pb"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m caddis.runtime``; returns the exit status."""
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    try:
        written = run_attempt(
            inputs=args.inputs,
            output_prefix=args.output_prefix,
            raw_output_prefix=args.raw_output_prefix,
            module=args.module,
            name=args.name,
            resolver=args.resolver,
            checkpoint_path=args.checkpoint_path,
            prev_checkpoint=args.prev_checkpoint,
            code_bundle_uri=args.code_bundle_uri,
            code_bundle_digest=args.code_bundle_digest,
            code_bundle_cache=args.code_bundle_cache,
            execution_id=args.execution_id,
            attempt=args.attempt,
            enable_deck=args.enable_deck,
            project=args.project,
            domain=args.domain,
            version=args.version,
        )
    except Exception as exc:  # nothing could be written: the one case of a non-zero exit
        print(f"caddis.runtime: could not write a result: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("CADDIS_RUNTIME_VERBOSE"):
        print(
            f"caddis.runtime: wrote {written} in {time.perf_counter() - started:.3f}s",
            file=sys.stderr,
        )
    if written == "error.pb" and os.environ.get("CADDIS_FAIL_ON_ERROR"):
        return 1
    return 0
