"""Run one task attempt in this process, on in-memory literals.

This is the core that every way of running a task shares: the ``python -m caddis.runtime``
process entry point (which reads ``inputs.pb`` and writes one of ``outputs.pb``/``futures.pb``/
``error.pb`` around it), local execution (which calls it directly with LiteralMap objects)
and propeller's warm worker processes (which call it per attempt).

It is on the hot path of local execution, so it does as little as possible per call: no
protobuf serialization, no file system access unless the task asks for its working directory
or checkpoint, and one pass of the type engine's precompiled codecs per variable.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from caddis.core.context import _EXECUTION, ExecutionParameters
from caddis.exceptions import (
    FlyteNonRecoverableException,
    FlyteRecoverableException,
    NonRecoverableError,
    RecoverableError,
    is_recoverable,
)
from caddis.runtime.checkpoint import Checkpoint
from caddis_idl.core.v1 import dynamic_job_pb2, errors_pb2, execution_pb2, literals_pb2

__all__ = [
    "AttemptContext",
    "ExecutionId",
    "FlyteNonRecoverableException",
    "FlyteRecoverableException",
    "NonRecoverableError",
    "RecoverableError",
    "TaskResult",
    "error_document",
    "execute_batch",
    "execute_named",
    "execute_task",
    "is_recoverable",
]

_perf = time.perf_counter


class ExecutionId(str):
    """The execution id as ``project:domain:name`` that also has flytekit's attributes.

    ``current_context().execution_id`` is a string in caddis' ExecutionParameters; flytekit
    code reads ``current_context().execution_id.name`` (and ``.project``, ``.domain``), which
    this subclass supports.
    """

    __slots__ = ()

    def _part(self, i: int) -> str:
        parts = self.split(":")
        if len(parts) == 3:
            return parts[i]
        return str(self) if i == 2 else ""

    @property
    def project(self) -> str:
        """The execution's project."""
        return self._part(0)

    @property
    def domain(self) -> str:
        """The execution's domain."""
        return self._part(1)

    @property
    def name(self) -> str:
        """The execution's name."""
        return self._part(2)


_EXEC_IDS: dict[str, ExecutionId] = {}


def _execution_id(value: str) -> ExecutionId:
    eid = _EXEC_IDS.get(value)
    if eid is None:
        if len(_EXEC_IDS) > 1024:  # bounded: one entry per execution seen by this process
            _EXEC_IDS.clear()
        eid = _EXEC_IDS[value] = ExecutionId(value)
    return eid


class _AttemptParameters(ExecutionParameters):
    """ExecutionParameters whose working directory is created on first access.

    Creating a directory per attempt costs more than a trivial task itself; most tasks never
    look at it.
    """

    _wd: str

    @property  # type: ignore[override]
    def working_directory(self) -> str:
        os.makedirs(self._wd, exist_ok=True)
        return self._wd

    @working_directory.setter
    def working_directory(self, value: str) -> None:
        self._wd = value


@dataclass(slots=True)
class AttemptContext:
    """Where one attempt runs: identity, storage locations and options.

    Attributes:
        execution_id: The workflow execution, as ``project:domain:name`` (or ``local``).
        task_id: Readable task identifier for messages and decks.
        attempt: Zero-based retry attempt.
        raw_output_prefix: Where files and dataframes the task produces are uploaded.
        working_directory: Scratch directory of the attempt, created on first use.
        checkpoint: The attempt's checkpoint, if checkpointing is set up.
        output_prefix: Local directory or URI where ``deck.html`` is written (None: not
            written; the rendered page is still returned).
        enable_deck: Render decks; None follows the task's ``enable_deck``.
        environment: Extra values for ``current_context().get``.
        data_context: A type-engine DataContext to install while converting values (None:
            the one already in effect).
        worker: Name of the worker for error documents.
        execution_date: When the execution started (``current_context().execution_date``).
    """

    execution_id: str = "local"
    task_id: str = ""
    attempt: int = 0
    raw_output_prefix: str = ""
    working_directory: str | None = None
    checkpoint: Checkpoint | None = None
    output_prefix: str | None = None
    enable_deck: bool | None = None
    environment: dict[str, str] = field(default_factory=dict)
    data_context: Any = None
    worker: str = ""
    execution_date: datetime.datetime | None = None


@dataclass(slots=True)
class TaskResult:
    """What one attempt produced: exactly one of outputs, futures or error.

    Attributes:
        outputs: The output LiteralMap on success.
        futures: The DynamicJobSpec of a dynamic task.
        error: The ErrorDocument on failure.
        input_seconds: Time converting inputs to Python values (downloads included).
        user_seconds: Time in the user's function (or the dynamic body's compilation).
        output_seconds: Time converting outputs to literals (uploads included).
        deck_html: The rendered deck page, when decks are enabled.
        exception: The exception raised by user code (in-process callers only; never
            serialized).
    """

    outputs: literals_pb2.LiteralMap | None = None
    futures: dynamic_job_pb2.DynamicJobSpec | None = None
    error: errors_pb2.ErrorDocument | None = None
    input_seconds: float = 0.0
    user_seconds: float = 0.0
    output_seconds: float = 0.0
    deck_html: str | None = None
    exception: BaseException | None = None

    @property
    def timings(self) -> dict[str, float]:
        """The timing split, for events and logs."""
        return {
            "input_seconds": self.input_seconds,
            "user_seconds": self.user_seconds,
            "output_seconds": self.output_seconds,
        }

    def execution_error(self) -> execution_pb2.ExecutionError | None:
        """The error as the engine's ExecutionError (None unless the attempt failed)."""
        if self.error is None:
            return None
        ce = self.error.error
        err = execution_pb2.ExecutionError(
            code=ce.code,
            message=ce.message,
            kind=ce.origin,
            recoverable=ce.kind == errors_pb2.ContainerError.KIND_RECOVERABLE,
        )
        err.timestamp.CopyFrom(ce.timestamp)
        return err


def error_document(
    code: str,
    message: str,
    *,
    user: bool,
    recoverable: bool,
    worker: str = "",
) -> errors_pb2.ErrorDocument:
    """Build the ``error.pb`` document of a failed attempt.

    Args:
        code: Short machine-readable code (``USER:ValueError``).
        message: Human-readable message (usually with the traceback).
        user: The user's code failed (origin USER) rather than the platform (SYSTEM).
        recoverable: Whether a retry may succeed.
        worker: The worker that ran the attempt.
    """
    doc = errors_pb2.ErrorDocument()
    ce = doc.error
    ce.code = code
    ce.message = message
    ce.kind = (
        errors_pb2.ContainerError.KIND_RECOVERABLE
        if recoverable
        else errors_pb2.ContainerError.KIND_NON_RECOVERABLE
    )
    ce.origin = execution_pb2.ERROR_KIND_USER if user else execution_pb2.ERROR_KIND_SYSTEM
    ce.timestamp.GetCurrentTime()
    if worker:
        ce.worker = worker
    return doc


def _user_traceback(exc: BaseException) -> str:
    # Drop the runtime's own frames: the user wants to see their code.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_globals.get("__name__") == __name__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class _Plan:
    """Per-task cached facts: python types, output names and the function to call."""

    __slots__ = (
        "compile_futures",
        "decks",
        "defaults",
        "in_types",
        "name",
        "out_names",
        "out_tuple",
        "out_types",
        "run",
    )

    def __init__(self, task: Any) -> None:
        iface = task.python_interface
        self.name: str = getattr(task, "name", repr(task))
        self.in_types: dict[str, Any] = dict(iface.inputs)
        self.out_types: dict[str, Any] = dict(iface.outputs)
        self.out_names: list[str] = list(iface.outputs)
        self.out_tuple: bool = bool(iface.outputs_are_tuple)
        self.defaults: dict[str, Any] = dict(iface.defaults)
        self.compile_futures: Callable[..., Any] | None = getattr(task, "compile_futures", None)
        self.run: Callable[..., Any] = task.execute
        meta = getattr(task, "metadata", None)
        self.decks: bool = bool(
            getattr(meta, "generates_deck", False) or getattr(task, "enable_deck", False)
        )


_PLANS: dict[int, tuple[Any, _Plan]] = {}


def _plan_of(task: Any) -> _Plan:
    entry = _PLANS.get(id(task))
    if entry is not None and entry[0] is task:
        return entry[1]
    plan = _Plan(task)
    _PLANS[id(task)] = (task, plan)
    return plan


_TE: list[Any] = []


_LOADED: dict[tuple[str, str], Any] = {}


def execute_named(
    module: str,
    name: str,
    inputs: literals_pb2.LiteralMap,
    ctx: AttemptContext | None = None,
) -> TaskResult:
    """:func:`execute_task` for the task at ``module.name`` (loaded once per process).

    Warm worker processes call this per attempt: the import happens on the first attempt of a
    task and later attempts skip it. A task that cannot be loaded gives a SYSTEM recoverable
    error document rather than an exception.
    """
    task = _LOADED.get((module, name))
    if task is None:
        try:
            from caddis.core.resolver import load_entity

            task = load_entity(module, name)
        except Exception as exc:
            return TaskResult(
                error=error_document(
                    f"SYSTEM:{type(exc).__name__}",
                    f"cannot load task {module}.{name}: {exc}",
                    user=False,
                    recoverable=True,
                    worker=ctx.worker if ctx else "",
                ),
                exception=exc,
            )
        _LOADED[(module, name)] = task
    return execute_task(task, inputs, ctx)


def _engine() -> Any:
    from caddis.core.type_engine import TypeEngine

    _TE.append(TypeEngine)
    return TypeEngine


def execute_task(
    task: Any,
    inputs: literals_pb2.LiteralMap,
    ctx: AttemptContext | None = None,
) -> TaskResult:
    """Run one attempt of ``task`` on ``inputs`` and return what it produced.

    Never raises for failures of the task: user exceptions become a USER error document,
    recoverable (retried within the task's ``retries``) unless the task raised
    :class:`~caddis.exceptions.NonRecoverableError` (see :func:`is_recoverable`);
    failures converting values or loading data become SYSTEM recoverable ones.
    ``KeyboardInterrupt``/``SystemExit`` propagate.

    Args:
        task: A caddis task (``python_interface``, ``execute`` and, for dynamic tasks,
            ``compile_futures``).
        inputs: The input literals.
        ctx: Where the attempt runs; defaults to a local, deck-less context.

    Returns:
        A :class:`TaskResult` with exactly one of outputs, futures or error set.
    """
    if ctx is None:
        ctx = AttemptContext()
    plan = _plan_of(task)
    result = TaskResult()
    data_token = None
    if ctx.data_context is not None:
        from caddis.core._transformers._context import _current as _data_var

        data_token = _data_var.set(ctx.data_context)
    params = _AttemptParameters(
        execution_id=_execution_id(ctx.execution_id),
        task_id=ctx.task_id or plan.name,
        working_directory=ctx.working_directory
        or os.path.join(_scratch_root(), f"{os.getpid()}-{_next_id()}"),
        raw_output_prefix=ctx.raw_output_prefix,
        checkpoint=ctx.checkpoint,
        # Passed rather than defaulted: getLogger takes a lock and now() a syscall per task.
        logging=_USER_LOGGER,
        execution_date=ctx.execution_date or _EPOCH,
        attempt_number=ctx.attempt,
        decks=[],
        environment=ctx.environment,
    )
    token = _EXECUTION.set(params)
    try:
        _run(task, plan, inputs, ctx, params, result)
    finally:
        _EXECUTION.reset(token)
        if data_token is not None:
            from caddis.core._transformers._context import _current as _data_var

            _data_var.reset(data_token)
    return result


def execute_batch(
    task: Any,
    inputs: Sequence[literals_pb2.LiteralMap],
    ctx: AttemptContext,
    prepare: Callable[[int, ExecutionParameters], None] | None = None,
) -> list[TaskResult]:
    """Run many attempts of one task (map-task items) in a tight loop.

    Equivalent to calling :func:`execute_task` per item, minus the per-item set-up: one
    ExecutionParameters object serves every item, and ``prepare(i, params)`` updates its
    per-item fields (``working_directory``, ``checkpoint``, ``attempt_number``) before item
    ``i`` runs. Items run one after the other in this thread; decks are per item.

    Args:
        task: The task.
        inputs: Input literals per item.
        ctx: The shared attempt context (its checkpoint and working directory are defaults).
        prepare: Per-item hook adjusting the shared parameters.

    Returns:
        One result per item, in order.
    """
    plan = _plan_of(task)
    data_token = None
    if ctx.data_context is not None:
        from caddis.core._transformers._context import _current as _data_var

        data_token = _data_var.set(ctx.data_context)
    params = _AttemptParameters(
        execution_id=_execution_id(ctx.execution_id),
        task_id=ctx.task_id or plan.name,
        working_directory=ctx.working_directory
        or os.path.join(_scratch_root(), f"{os.getpid()}-{_next_id()}"),
        raw_output_prefix=ctx.raw_output_prefix,
        checkpoint=ctx.checkpoint,
        logging=_USER_LOGGER,
        execution_date=ctx.execution_date or _EPOCH,
        attempt_number=ctx.attempt,
        decks=[],
        environment=ctx.environment,
    )
    token = _EXECUTION.set(params)
    out: list[TaskResult] = []
    append = out.append
    try:
        for i, lm in enumerate(inputs):
            if prepare is not None:
                prepare(i, params)
            if params.decks:
                params.decks = []
            result = TaskResult()
            _run(task, plan, lm, ctx, params, result)
            append(result)
    finally:
        _EXECUTION.reset(token)
        if data_token is not None:
            from caddis.core._transformers._context import _current as _data_var

            _data_var.reset(data_token)
    return out


_EPOCH = datetime.datetime.fromtimestamp(0, datetime.UTC)
_USER_LOGGER = logging.getLogger("caddis.user")
_counter = [0]


def _next_id() -> int:
    _counter[0] += 1
    return _counter[0]


_SCRATCH: list[str] = []


def _scratch_root() -> str:
    if not _SCRATCH:
        import atexit
        import shutil
        import tempfile

        # One root per process, created lazily with the first attempt that needs it and
        # removed when the process exits (callers that care pass their own directories).
        root = os.path.join(tempfile.gettempdir(), f"caddis-work-{os.getpid()}")
        atexit.register(shutil.rmtree, root, True)
        _SCRATCH.append(root)
    return _SCRATCH[0]


def _run(
    task: Any,
    plan: _Plan,
    inputs: literals_pb2.LiteralMap,
    ctx: AttemptContext,
    params: ExecutionParameters,
    result: TaskResult,
) -> None:
    engine = _TE[0] if _TE else _engine()
    t0 = _perf()
    # 1. Inputs: literals -> Python values. A failure here is the platform's (or a type
    # mismatch the compiler should have caught): SYSTEM, recoverable.
    try:
        kwargs = engine.literal_map_to_kwargs(inputs, plan.in_types)
        if len(kwargs) < len(plan.in_types):
            for name in plan.in_types:
                if name not in kwargs:
                    if name in plan.defaults:
                        kwargs[name] = plan.defaults[name]
                    else:
                        raise TypeError(f"{plan.name}: missing input '{name}'")
    except Exception as exc:
        result.input_seconds = _perf() - t0
        result.exception = exc
        result.error = error_document(
            f"SYSTEM:{type(exc).__name__}",
            f"{plan.name}: loading inputs failed: {exc}\n{_user_traceback(exc)}",
            user=False,
            recoverable=True,
            worker=ctx.worker,
        )
        return
    t1 = _perf()
    result.input_seconds = t1 - t0

    # 2. The user's code.
    try:
        if plan.compile_futures is not None:
            spec = plan.compile_futures(**kwargs)
        else:
            returned = plan.run(**kwargs)
    except Exception as exc:
        result.user_seconds = _perf() - t1
        result.exception = exc
        recoverable = is_recoverable(exc)
        result.error = error_document(
            f"USER:{type(exc).__name__}",
            f"{plan.name} failed: {type(exc).__name__}: {exc}\n{_user_traceback(exc)}",
            user=True,
            recoverable=recoverable,
            worker=ctx.worker,
        )
        _finish_decks(task, plan, ctx, params, result, kwargs, None)
        return
    t2 = _perf()
    result.user_seconds = t2 - t1

    if plan.compile_futures is not None:
        result.futures = spec
        _finish_decks(task, plan, ctx, params, result, kwargs, None)
        return

    # 3. Outputs: Python values -> literals (uploads of files and dataframes happen here).
    try:
        names = plan.out_names
        if names:
            if not plan.out_tuple:
                values = {names[0]: returned}
            else:
                if not isinstance(returned, tuple | list) or len(returned) != len(names):
                    got = len(returned) if isinstance(returned, tuple | list) else 1
                    raise _UserOutputError(
                        f"{plan.name} declares {len(names)} outputs ({', '.join(names)}) "
                        f"but returned {got} value(s)"
                    )
                values = dict(zip(names, returned, strict=True))
            try:
                # The type engine's fast path writes primitives straight into the map.
                outputs = engine.dict_to_literal_map(values, plan.out_types)
            except (TypeError, ValueError) as exc:  # incl. TypeTransformerFailedError
                raise _UserOutputError(f"{plan.name}: {exc}") from exc
        else:
            if returned is not None and not _is_none_like(returned):
                raise _UserOutputError(
                    f"{plan.name} declares no outputs but returned {type(returned).__name__}"
                )
            outputs = literals_pb2.LiteralMap()
    except _UserOutputError as exc:
        # A wrong return value is the user's mistake: fail without retrying.
        result.output_seconds = _perf() - t2
        result.exception = exc
        result.error = error_document(
            "USER:OutputError", str(exc), user=True, recoverable=False, worker=ctx.worker
        )
        return
    except Exception as exc:
        result.output_seconds = _perf() - t2
        result.exception = exc
        result.error = error_document(
            f"SYSTEM:{type(exc).__name__}",
            f"{plan.name}: writing outputs failed: {exc}\n{_user_traceback(exc)}",
            user=False,
            recoverable=True,
            worker=ctx.worker,
        )
        return
    result.outputs = outputs
    result.output_seconds = _perf() - t2
    if params.decks or plan.decks or ctx.enable_deck:
        _finish_decks(task, plan, ctx, params, result, kwargs, values if names else {})


class _UserOutputError(Exception):
    pass


def _is_none_like(value: Any) -> bool:
    # A task without outputs may end with a VoidPromise-like value from nested local calls.
    return type(value).__name__ == "VoidPromise"


def _decks_enabled(plan: _Plan, ctx: AttemptContext) -> bool:
    if ctx.enable_deck is not None:
        return ctx.enable_deck
    return plan.decks


def _finish_decks(
    task: Any,
    plan: _Plan,
    ctx: AttemptContext,
    params: ExecutionParameters,
    result: TaskResult,
    inputs: dict[str, Any],
    outputs: dict[str, Any] | None,
) -> None:
    if not params.decks and not _decks_enabled(plan, ctx):
        return
    from caddis.runtime.deck import Deck, render_deck_page, summary_table

    decks = list(params.decks)
    if _decks_enabled(plan, ctx):
        body = summary_table("Inputs", inputs)
        if outputs is not None:
            body += summary_table("Outputs", outputs)
        if result.error is not None:
            body += f"<h3>Error</h3><pre>{_escape(result.error.error.message)}</pre>"
        body += (
            f"<p>timings: inputs {result.input_seconds * 1e3:.3f} ms, user code "
            f"{result.user_seconds * 1e3:.3f} ms, outputs {result.output_seconds * 1e3:.3f} ms</p>"
        )
        decks.insert(0, Deck("Input/Output", body, auto_add=False))
    html = render_deck_page(plan.name, decks)
    result.deck_html = html
    if ctx.output_prefix:
        _write_text(ctx.output_prefix, "deck.html", html)


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def _write_text(prefix: str, name: str, text: str) -> None:
    if "://" not in prefix or prefix.startswith("file://"):
        path = prefix
        if prefix.startswith("file://"):
            from urllib.parse import unquote, urlparse

            path = unquote(urlparse(prefix).path)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, name), "w", encoding="utf-8") as f:
            f.write(text)
        return
    from caddis.storage import get_store

    get_store(prefix).put_bytes(
        f"{prefix.rstrip('/')}/{name}", text.encode(), content_type="text/html"
    )
