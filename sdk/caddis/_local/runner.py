"""The engine's injected interfaces, implemented for local execution.

- :class:`MemoryDataStore`: a dict of message objects (no serialization on the hot path).
- :class:`InProcessTaskRunner`: runs attempts by calling the task runtime in this process
  (:func:`caddis.runtime.execute_task`); attempts with a timeout run in a worker thread that is
  abandoned when the engine times the attempt out (Python cannot kill a thread: the abandoned
  attempt keeps running in the background until its function returns, and its result is
  dropped).
- :class:`EntityResolver`: finds the Python entity of a task template (the objects the local
  run started from, the globals and closures of dynamic bodies, else module + name from the
  template's process arguments, as a task process would).
- :class:`RunDirectory`: the run's raw-data directory, created on first use and removed at
  the end unless the outputs reference it.
- :class:`QuietEvents`, :class:`WallClock`: event sink and clock.
"""

from __future__ import annotations

import contextvars
import datetime
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

from google.protobuf.message import Message

from caddis.runtime._execute import AttemptContext, TaskResult, execute_batch, execute_task
from caddis.runtime.checkpoint import SyncCheckpoint
from caddis_idl.core.v1 import execution_pb2, literals_pb2, tasks_pb2
from caddis_propeller.engine.interfaces import (
    Dynamic,
    Failed,
    Running,
    Succeeded,
    TaskAttempt,
    TaskStatus,
)

__all__ = [
    "EntityResolver",
    "InProcessTaskRunner",
    "MemoryDataStore",
    "QuietEvents",
    "RunDirectory",
    "WallClock",
]


class MemoryDataStore:
    """The engine's DataStore as a dict of message objects."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: dict[str, Message] = {}

    def put(self, key: str, message: Message) -> None:
        """Store ``message`` under ``key`` (by reference: callers never mutate it)."""
        self.data[key] = message

    def get(self, key: str, message_type: type[Any]) -> Any:
        """The message under ``key`` or None."""
        return self.data.get(key)


class QuietEvents:
    """Event sink of local runs: keeps the last error events for messages, counts the rest."""

    array_item_events = False

    def __init__(self) -> None:
        self.count = 0
        self.events: list[Any] | None = None

    def record(self) -> None:
        """Keep every event (tests and debugging)."""
        self.events = []

    def emit(self, event: Any) -> None:
        """Accept one event."""
        self.count += 1
        if self.events is not None:
            self.events.append(event)


class WallClock:
    """The real clock."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()


class RunDirectory:
    """Scratch space of one local run, created lazily and cleaned up at the end.

    Layout under ``root``: ``raw/`` (files and dataframes tasks produce), ``local/``
    (downloads), ``work/`` (working directories), ``ckpt/`` (checkpoints), ``decks/``.
    """

    def __init__(self) -> None:
        self.root = os.path.join(tempfile.gettempdir(), f"caddis-run-{uuid.uuid4().hex[:16]}")
        self.raw = os.path.join(self.root, "raw")
        self.raw_uri = "file://" + self.raw
        self.decks_written = False

    def path(self, *parts: str) -> str:
        """A path under the root (not created)."""
        return os.path.join(self.root, *parts)

    def cleanup(self, keep_uris: Sequence[str] = (), keep_all_raw: bool = False) -> str | None:
        """Remove the run's directory except what ``keep_uris`` (and decks) reference.

        ``keep_all_raw`` keeps every upload (outputs whose values we cannot look into, such
        as dataclasses, may reference any of them).

        Returns:
            The root when something was kept, else None.
        """
        if not os.path.isdir(self.root):
            return None
        keep: set[str] = set()
        raw_prefix = self.raw + os.sep
        for uri in keep_uris:
            path = unquote(urlparse(uri).path) if uri.startswith("file://") else uri
            if path.startswith(raw_prefix):
                # Keep the whole upload directory (raw/<uuid>/...) that holds the value.
                keep.add(path[len(raw_prefix) :].split(os.sep, 1)[0])
        for name in ("local", "work", "ckpt"):
            shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
        if keep_all_raw and os.path.isdir(self.raw) and os.listdir(self.raw):
            keep.update(os.listdir(self.raw))
        if os.path.isdir(self.raw):
            for entry in os.listdir(self.raw):
                if entry not in keep:
                    shutil.rmtree(os.path.join(self.raw, entry), ignore_errors=True)
            if not keep:
                shutil.rmtree(self.raw, ignore_errors=True)
        if not keep and not self.decks_written:
            shutil.rmtree(self.root, ignore_errors=True)
            return None
        return self.root


def blob_uris(lm: literals_pb2.LiteralMap | None) -> list[str]:
    """Every blob / structured dataset URI inside ``lm``."""
    out: list[str] = []
    if lm is None:
        return out

    def walk(lit: literals_pb2.Literal) -> None:
        kind = lit.WhichOneof("value")
        if kind == "scalar":
            sc = lit.scalar
            sk = sc.WhichOneof("value")
            if sk == "blob":
                out.append(sc.blob.uri)
            elif sk == "structured_dataset":
                out.append(sc.structured_dataset.uri)
            elif sk == "union":
                walk(sc.union.value)
        elif kind == "collection":
            for x in lit.collection.literals:
                walk(x)
        elif kind == "map":
            for x in lit.map.literals.values():
                walk(x)

    for lit in lm.literals.values():
        walk(lit)
    return out


class EntityResolver:
    """Maps task templates to the Python task objects that run them."""

    def __init__(self) -> None:
        self._by_name: dict[str, Any] = {}

    def add(self, entity: Any) -> None:
        """Make ``entity`` (and what it calls) resolvable by its name."""
        from caddis.core.translator import collect_entities

        for e in collect_entities(entity):
            self._by_name.setdefault(e.name, e)
            self._add_scope(e)

    def _add_scope(self, entity: Any) -> None:
        # A dynamic body calls tasks that exist only at run time in its spec: index the
        # entities its function can see (module globals it names, closure cells).
        fn = getattr(entity, "task_function", None)
        if fn is None or getattr(entity, "compile_futures", None) is None:
            return
        code = getattr(fn, "__code__", None)
        candidates: list[Any] = []
        if code is not None:
            g = getattr(fn, "__globals__", {})
            candidates.extend(g[n] for n in _names_in(code) if n in g)
            for cell in getattr(fn, "__closure__", None) or ():
                try:
                    candidates.append(cell.cell_contents)
                except ValueError:  # empty cell
                    continue
        for c in candidates:
            name = getattr(c, "name", None)
            if (
                isinstance(name, str)
                and hasattr(c, "python_interface")
                and name not in self._by_name
            ):
                self.add(c)

    def resolve(self, template: tasks_pb2.TaskTemplate) -> Any:
        """The task object for ``template``.

        Raises:
            LookupError: The task cannot be found (message says where it looked).
        """
        name = template.id.name
        entity = self._by_name.get(name)
        if entity is not None:
            return entity
        args = list(template.process.args)
        module = _arg(args, "--module")
        attr = _arg(args, "--name")
        if module and attr:
            from caddis.core.resolver import load_entity, module_name_of

            main = sys.modules.get("__main__")
            main_file = getattr(main, "__file__", None)
            if main_file and module_name_of("__main__", main_file) == module:
                # The script being run (python wf.py) defines it: do not import it twice.
                found = getattr(main, attr, None)
                if found is not None and hasattr(found, "python_interface"):
                    self._by_name[name] = found
                    return found

            entity = load_entity(module, attr, _arg(args, "--resolver") or "caddis.default")
            self._by_name[name] = entity
            self._add_scope(entity)
            return entity
        raise LookupError(
            f"task {name!r} is not known to this local run and its template names no module; "
            f"define it at module level"
        )


def _names_in(code: Any) -> set[str]:
    # Global names used by a function, including its nested comprehensions and lambdas.
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _names_in(const)
    return names


def _arg(args: list[str], flag: str) -> str | None:
    try:
        return args[args.index(flag) + 1]
    except (ValueError, IndexError):
        return None


def _failed_from(result: TaskResult) -> Failed:
    err = result.execution_error()
    assert err is not None
    return Failed(err)


class _ThreadedAttempt:
    __slots__ = ("done", "result", "thread")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: TaskResult | None = None
        self.thread: threading.Thread | None = None


class InProcessTaskRunner:
    """The engine's TaskRunner for local runs: attempts are in-process runtime calls.

    Args:
        resolver: Finds task objects for templates.
        run_dir: The run's scratch space.
        execution_name: Execution id string for ``current_context()``.
        data_context: Type-engine DataContext of the run (raw-data dir, download dir).
    """

    def __init__(
        self,
        resolver: EntityResolver,
        run_dir: RunDirectory,
        execution_name: str,
        data_context: Any,
    ) -> None:
        self.resolver = resolver
        self.run_dir = run_dir
        self.execution_name = execution_name
        self.data_context = data_context
        self._threads: dict[str, _ThreadedAttempt] = {}
        self._tasks: dict[int, tuple[tasks_pb2.TaskTemplate, Any, bool]] = {}
        self.execution_date = datetime.datetime.now(datetime.UTC)
        self.environment: dict[str, str] = {}
        #: (node path, task name, exception) of failed attempts, for error messages.
        self.failures: list[tuple[str, str, BaseException | None]] = []
        self.attempts = 0

    # ------------------------------------------------------------------ contexts
    def _context(self, attempt: TaskAttempt, generates_deck: bool) -> AttemptContext:
        # Plain string concatenation: this runs once per task attempt on the hot path.
        sub = attempt.node_path if os.sep == "/" else attempt.node_path.replace("/", os.sep)
        n = attempt.attempt
        root = self.run_dir.root
        ckpt_root = f"{root}/ckpt/{sub}"
        prev = None
        # Resume from the latest earlier attempt that saved something (not only the last one).
        for a in range(n - 1, -1, -1):
            candidate = f"{ckpt_root}/{a}"
            if os.path.isdir(candidate):
                prev = candidate
                break
        deck_dir = None
        if generates_deck:
            deck_dir = f"{root}/decks/{sub}/{n}"
            self.run_dir.decks_written = True
        # Positional: keyword construction costs measurably per map item (field order of
        # AttemptContext, which lives in caddis.runtime._execute).
        return AttemptContext(
            self.execution_name,
            "",
            n,
            self.run_dir.raw_uri,
            f"{root}/work/{sub}/{n}",
            SyncCheckpoint(f"{ckpt_root}/{n}", prev),
            deck_dir,
            True if generates_deck else None,
            self.environment,
            None,
            "",
            self.execution_date,
        )

    def _status(self, attempt: TaskAttempt, result: TaskResult) -> TaskStatus:
        if result.outputs is not None:
            return Succeeded(result.outputs)
        if result.futures is not None:
            return Dynamic(result.futures)
        self.failures.append((attempt.node_path, attempt.task.id.name, result.exception))
        return _failed_from(result)

    def _run(self, attempt: TaskAttempt) -> TaskResult:
        self.attempts += 1
        template = attempt.task
        cached = self._tasks.get(id(template))
        if cached is not None and cached[0] is template:
            task, generates_deck = cached[1], cached[2]
            return execute_task(task, attempt.inputs, self._context(attempt, generates_deck))
        try:
            task = self.resolver.resolve(template)
        except Exception as exc:
            from caddis.runtime._execute import error_document

            r = TaskResult(
                error=error_document(
                    f"USER:{type(exc).__name__}", str(exc), user=True, recoverable=False
                ),
                exception=exc,
            )
            return r
        generates_deck = bool(template.metadata.generates_deck)
        # Keyed by the template object (the engine's plan keeps it alive for the run).
        self._tasks[id(template)] = (template, task, generates_deck)
        return execute_task(task, attempt.inputs, self._context(attempt, generates_deck))

    # ------------------------------------------------------------------ TaskRunner
    def start(self, attempt: TaskAttempt) -> TaskStatus:
        """Run the attempt now; with a timeout, in a thread the engine may abandon."""
        if attempt.timeout is None:
            return self._status(attempt, self._run(attempt))
        key = f"{attempt.node_path}#{attempt.attempt}"
        holder = _ThreadedAttempt()

        def target() -> None:
            try:
                holder.result = self._run(attempt)
            finally:
                holder.done.set()

        # The thread runs in a copy of this context: the run's data context and serialization
        # settings (installed once per run, not per attempt) must be visible there too.
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(target,), name=f"caddis-{key}", daemon=True)
        holder.thread = t
        self._threads[key] = holder
        t.start()
        if holder.done.wait(attempt.timeout):
            del self._threads[key]
            assert holder.result is not None
            return self._status(attempt, holder.result)
        return Running(handle=key)

    def check(self, attempt: TaskAttempt, handle: str) -> TaskStatus:
        """Status of a threaded attempt (waits briefly, so the driver does not spin)."""
        holder = self._threads.get(handle)
        if holder is None:
            return Failed(
                execution_pb2.ExecutionError(
                    code="SYSTEM:LostAttempt",
                    message=f"attempt {handle} is not running in this process",
                    kind=execution_pb2.ERROR_KIND_SYSTEM,
                    recoverable=True,
                )
            )
        if holder.done.wait(0.01):
            self._threads.pop(handle, None)
            assert holder.result is not None
            return self._status(attempt, holder.result)
        return Running(handle=handle)

    def abort(self, attempt: TaskAttempt, handle: str, reason: str) -> None:
        """Abandon a threaded attempt (its thread finishes in the background)."""
        self._threads.pop(handle, None)
        self.failures.append((attempt.node_path, attempt.task.id.name, None))

    def start_batch(self, attempts: Sequence[TaskAttempt]) -> list[TaskStatus]:
        """Run array items in a tight loop through :func:`caddis.runtime.execute_batch`.

        Items of one task without a timeout or decks share the per-attempt set-up; anything
        else goes through :meth:`start` one by one.
        """
        if not attempts:
            return []
        first = attempts[0].task
        cached = self._tasks.get(id(first))
        if cached is None or cached[0] is not first:
            try:
                entity = self.resolver.resolve(first)
            except Exception:  # start() reports it per item
                return [self.start(a) for a in attempts]
            cached = (first, entity, bool(first.metadata.generates_deck))
            self._tasks[id(first)] = cached
        if cached[2] or any(a.task is not first or a.timeout is not None for a in attempts):
            return [self.start(a) for a in attempts]
        task = cached[1]
        root = self.run_dir.root
        self.attempts += len(attempts)

        def prepare(i: int, params: Any) -> None:
            a = attempts[i]
            sub = a.node_path if os.sep == "/" else a.node_path.replace("/", os.sep)
            n = a.attempt
            ckpt_root = f"{root}/ckpt/{sub}"
            prev = None
            for k in range(n - 1, -1, -1):
                if os.path.isdir(f"{ckpt_root}/{k}"):
                    prev = f"{ckpt_root}/{k}"
                    break
            params.working_directory = f"{root}/work/{sub}/{n}"
            params.checkpoint = SyncCheckpoint(f"{ckpt_root}/{n}", prev)
            params.attempt_number = n

        ctx = AttemptContext(
            self.execution_name,
            "",
            0,
            self.run_dir.raw_uri,
            f"{root}/work",
            None,
            None,
            None,
            self.environment,
            None,
            "",
            self.execution_date,
        )
        results = execute_batch(task, [a.inputs for a in attempts], ctx, prepare)
        status = self._status
        return [status(a, r) for a, r in zip(attempts, results, strict=True)]
