"""Local execution: run tasks, workflows, dynamics, map tasks and launch plans on this machine.

``wf(x=1)`` outside a workflow body calls :func:`execute_entity` (through the authoring
layer's hook). It runs the entity through the very engine propeller runs
(``caddis_propeller.engine.Engine``) with local implementations of its interfaces:

- task attempts are in-process calls of the task runtime (``caddis.runtime.execute_task``);
- the data store keeps LiteralMaps as objects (nothing is serialized on the hot path);
- files and dataframes go to a per-run raw-data directory, removed at the end unless the
  outputs reference it (only the referenced uploads are kept);
- caching uses the engine's canonical cache keys over a SQLite file
  (:class:`caddis._local.cache.LocalCache`), so map-task items are cached one by one;
- launch-plan nodes run their workflow inline as a nested local execution.

Retries, timeouts, ``min_success_ratio``, branches and failure policies are therefore exactly
the engine's. A failed run raises :class:`LocalExecutionError` (also an instance of the
original exception's type where possible) naming the workflow, node, task and error.

A task, dynamic or map task called on its own is wrapped in a one-node workflow.

Decks: a run of tasks with ``enable_deck=True`` keeps their ``deck.html`` pages in its run
directory; :func:`last_run_decks` returns their paths (the ``caddis`` logger also names them at
INFO, and ``caddis run`` prints them).

Environment knobs: ``CADDIS_LOCAL_CACHE_DIR`` (cache location), ``CADDIS_LOCAL_CACHE=0``
(disable the local cache), ``CADDIS_LOCAL_CACHE_OVERWRITE=1`` (recompute cached tasks and
replace their cached results).

Limits: an attempt with a timeout runs in a worker thread; when the engine times it out the
thread is abandoned (Python cannot stop a thread), keeps running in the background until the
function returns, and its result is dropped. Attempts without a timeout run on the caller's
thread.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

from caddis._local.runner import (
    EntityResolver,
    InProcessTaskRunner,
    MemoryDataStore,
    RunDirectory,
    blob_uris,
)
from caddis.core._transformers._context import DataContext, data_context
from caddis.core.gate import LocalGates
from caddis.core.settings import serialization_settings
from caddis.core.type_engine import TypeEngine
from caddis.core.workflow import WorkflowBase
from caddis_idl.core.v1 import identifier_pb2, literals_pb2
from caddis_propeller.engine import Engine, ExecutionOptions

# Imported at module level on purpose: this package is loaded only when something runs
# locally (or by `caddis cache`), and per-run function-level imports cost measurably.

__all__ = ["LocalExecutionError", "execute_entity", "last_run_decks", "local_cache"]


class LocalExecutionError(Exception):
    """A local run failed.

    Attributes:
        workflow: Name of the workflow (or wrapped entity) that was run.
        node: Path of the node that failed (``n2``, ``n0/n1`` inside a dynamic), if known.
        task: Name of the task that failed, if a task failed.
        error: The original exception raised by user code, if any.
        code: The engine's error code.
    """

    workflow: str = ""
    node: str | None = None
    task: str | None = None
    error: BaseException | None = None
    code: str = ""


_CACHE: list[Any] = []
_CACHE_LOCK = threading.Lock()

# Per thread: how deep in nested runs (inline launch plans) we are, and the deck pages of the
# current top-level run (a nested run's pages belong to the run that started it).
_DECKS = threading.local()


def last_run_decks() -> list[str]:
    """Paths of the ``deck.html`` pages written by the last local run in this thread.

    Tasks with ``enable_deck=True`` write a page per attempt (``.../decks/<node>/<attempt>/
    deck.html`` inside the run's directory, which is kept because of them). A new run in this
    thread replaces the list.

    Returns:
        Absolute file paths, sorted; empty when the last run wrote no decks.
    """
    return list(getattr(_DECKS, "pages", ()))


def local_cache() -> Any:
    """The process-wide :class:`~caddis._local.cache.LocalCache` (None when disabled)."""
    if os.environ.get("CADDIS_LOCAL_CACHE", "1").lower() in ("0", "false", "no", "off"):
        return None
    from caddis._local.cache import LocalCache, default_cache_dir

    directory = default_cache_dir()
    with _CACHE_LOCK:
        if _CACHE and _CACHE[0].directory == directory:
            return _CACHE[0]
        if _CACHE:
            _CACHE[0].close()
            _CACHE.clear()
        cache = LocalCache(directory)
        _CACHE.append(cache)
        return cache


class _Prepared:
    """What running one entity needs, computed once per entity object."""

    __slots__ = (
        "entity",
        "has_cache",
        "outputs_are_opaque",
        "outputs_may_hold_blobs",
        "plan",
        "resolver",
        "workflow",
    )

    def __init__(self, entity: Any, workflow: Any, plan: Any, resolver: Any, has_cache: bool):
        self.entity = entity
        self.workflow = workflow
        self.plan = plan
        self.resolver = resolver
        self.has_cache = has_cache
        out_types = workflow.python_interface.output_literal_types.values()
        self.outputs_may_hold_blobs = any(_may_hold_blobs(t) for t in out_types)
        self.outputs_are_opaque = any(_opaque(t) for t in out_types)


_PREPARED: dict[int, _Prepared] = {}
_SETTINGS: list[Any] = []


def _settings() -> Any:
    if not _SETTINGS:
        from caddis.core.settings import SerializationSettings

        _SETTINGS.append(
            SerializationSettings(project="local", domain="development", version="local")
        )
    return _SETTINGS[0]


def _wrap(entity: Any) -> Any:
    """A one-node workflow calling ``entity`` with the workflow's inputs."""
    from caddis.core.context import CompilationState, compilation_state
    from caddis.core.workflow import WorkflowBase, input_promises, trace_outputs

    iface = entity.python_interface
    wf = WorkflowBase(f"{entity.name}", iface)
    owner = f"local run of {entity.describe()}"
    state = CompilationState(owner, mode="workflow")
    with compilation_state(state):
        result = entity.compile_call(state, dict(input_promises(iface, owner)))
    wf.nodes = state.nodes
    wf.output_bindings = trace_outputs(owner, result, iface)
    return wf


def _may_hold_blobs(lt: Any) -> bool:
    """Whether values of this LiteralType can reference files (so the run dir must stay)."""
    kind = lt.WhichOneof("type")
    if kind in ("blob", "structured_dataset_type"):
        return True
    if kind == "collection_type":
        return _may_hold_blobs(lt.collection_type)
    if kind == "map_value_type":
        return _may_hold_blobs(lt.map_value_type)
    if kind == "union_type":
        return any(_may_hold_blobs(v) for v in lt.union_type.variants)
    return _opaque(lt)


def _opaque(lt: Any) -> bool:
    """Struct/binary values (dataclasses) may hold file references we cannot see into."""
    from caddis_idl.core.v1 import types_pb2

    kind = lt.WhichOneof("type")
    if kind == "simple":
        return lt.simple in (types_pb2.SIMPLE_TYPE_STRUCT, types_pb2.SIMPLE_TYPE_BINARY)
    if kind == "collection_type":
        return _opaque(lt.collection_type)
    if kind == "map_value_type":
        return _opaque(lt.map_value_type)
    if kind == "union_type":
        return any(_opaque(v) for v in lt.union_type.variants)
    return False


def _uses_cache(closure: Any) -> bool:
    # Node-level overrides (with_overrides(cache=...), map metadata) and dynamic bodies can
    # turn caching on where no task template does, so every run gets the (lazily opened)
    # cache; runs without cacheable nodes never touch it.
    return True


def _prepare(entity: Any) -> _Prepared:
    prepared = _PREPARED.get(id(entity))
    if prepared is not None and prepared.entity is entity:
        return prepared

    workflow = entity if isinstance(entity, WorkflowBase) else _wrap(entity)
    with serialization_settings(_settings()):
        closure = workflow.compile(_settings())
    plan = Engine.prepare(closure)
    resolver = EntityResolver()
    resolver.add(workflow)
    prepared = _Prepared(entity, workflow, plan, resolver, _uses_cache(closure))
    _PREPARED[id(entity)] = prepared
    return prepared


def _to_literals(entity: Any, inputs: dict[str, Any]) -> Any:

    iface = entity.python_interface
    lm = literals_pb2.LiteralMap()
    lits = lm.literals
    to_lit = TypeEngine.to_literal
    for name, tp in iface.inputs.items():
        if name in inputs:
            value = inputs[name]
        elif name in iface.defaults:
            value = iface.defaults[name]
        else:
            continue  # the engine names what is missing
        lits[name].CopyFrom(to_lit(value, tp, name=name))
    unknown = [k for k in inputs if k not in iface.inputs]
    if unknown:
        raise TypeError(
            f"{entity.describe()} got unexpected input(s) {', '.join(sorted(unknown))}; "
            f"inputs: {', '.join(iface.inputs) or '(none)'}"
        )
    return lm


def _from_literals(entity: Any, outputs: Any) -> Any:

    iface = entity.python_interface
    names = list(iface.outputs)
    if not names:
        return None
    to_py = TypeEngine.to_python_value
    values = [to_py(outputs.literals[n], iface.outputs[n], name=n) for n in names]
    if len(names) == 1 and not iface.outputs_are_tuple:
        return values[0]
    return iface.output_tuple()(*values)


class _InlineLaunchPlans:
    """LaunchPlanRunner for local runs: a launch-plan node runs its workflow inline."""

    def __init__(self, resolver: Any) -> None:
        self.resolver = resolver

    def _find(self, name: str) -> Any:
        entity = self.resolver._by_name.get(name)
        if entity is None:
            raise LookupError(f"launch plan {name!r} is not known to this local run")
        return entity

    def launch(self, request: Any) -> Any:
        from caddis_idl.core.v1 import execution_pb2
        from caddis_propeller.engine.interfaces import Failed, Succeeded

        try:
            lp = self._find(request.launch_plan.name)
            lm = _literal_inputs_for_lp(lp, request.inputs)
            outputs = _run(lp.workflow, lm, raise_errors=True)[0]
            return Succeeded(outputs)
        except LocalExecutionError as exc:
            return Failed(
                execution_pb2.ExecutionError(
                    code=exc.code or "USER:LaunchPlanFailed",
                    message=str(exc),
                    kind=execution_pb2.ERROR_KIND_USER,
                    recoverable=False,
                )
            )

    def check(self, request: Any, handle: str) -> Any:  # pragma: no cover - never Running
        raise RuntimeError("inline launch plans finish in launch()")

    def abort(self, request: Any, handle: str, reason: str) -> None:
        """Nothing to abort: child runs finish inline."""


def _literal_inputs_for_lp(lp: Any, inputs: Any) -> Any:

    lm = literals_pb2.LiteralMap()
    for k, v in getattr(lp, "default_literals", {}).items():
        lm.literals[k].CopyFrom(v)
    for k, v in inputs.literals.items():
        lm.literals[k].CopyFrom(v)
    for k, v in getattr(lp, "fixed_literals", {}).items():
        lm.literals[k].CopyFrom(v)
    return lm


def _binary_attr(binary: Any, path: Any) -> Any:
    """Attribute access into a msgpack Binary literal (dataclass outputs)."""
    import msgpack

    obj = msgpack.unpackb(binary.value, raw=False)
    for step in path:
        obj = obj[step]
    return TypeEngine.to_literal(obj, type(obj))


def _options() -> ExecutionOptions | None:
    # CADDIS_LOCAL_CACHE_OVERWRITE=1: run cacheable tasks anyway and replace their results
    # (flytekit's overwrite_cache); the run still populates the cache.
    if os.environ.get("CADDIS_LOCAL_CACHE_OVERWRITE", "").lower() in ("1", "true", "yes", "on"):
        return ExecutionOptions(overwrite_cache=True)
    return None


def _sleep(seconds: float | None) -> None:
    # Called only when a round made no progress: threaded attempts (timeouts) or backoff.
    time.sleep(0.005 if seconds is None else min(seconds, 0.05))


def _run(
    workflow: Any,
    inputs: Any,
    *,
    raise_errors: bool = True,
    prepared: Any = None,
    run_dir: RunDirectory | None = None,
) -> Any:
    prep = prepared or _prepare(workflow)
    if run_dir is None:
        run_dir = RunDirectory()
    data_ctx = _data_context_of(run_dir)
    name = f"local-{uuid.uuid4().hex[:12]}"
    runner = InProcessTaskRunner(prep.resolver, run_dir, f"local:development:{name}", data_ctx)
    cache = local_cache() if prep.has_cache else None
    if cache is not None:
        cache.set_run_prefixes((run_dir.raw_uri,))

    # Gates: sleeps skip ahead when nothing runs; signals come from local_signals().
    gates = LocalGates(prep.workflow.name, busy=lambda: bool(runner._threads))
    engine = Engine(
        runner,
        MemoryDataStore(),
        catalog=cache,
        launch_plans=_InlineLaunchPlans(prep.resolver),
        binary_attr=_binary_attr,
        clock=gates,
        signals=gates,
    )
    exec_id = identifier_pb2.WorkflowExecutionIdentifier(
        project="local", domain="development", name=name
    )
    outputs = None
    depth = getattr(_DECKS, "depth", 0)
    if depth == 0:
        _DECKS.pages = []
    _DECKS.depth = depth + 1

    try:
        # Installed once for the whole run (not per attempt): the hot path stays lean.
        with serialization_settings(_settings()), data_context(data_ctx):
            state = engine.start(
                prep.plan, inputs, execution_id=exec_id, data_prefix=name, options=_options()
            )
            engine.run(prep.plan, state, wait=lambda s: gates.wait(s, _sleep))
        outputs = engine.outputs(state)
        if outputs is None and raise_errors:
            raise _error_for(prep, state, runner)
    finally:
        _DECKS.depth = depth
        if cache is not None:
            cache.flush()

        kept = run_dir.cleanup(
            blob_uris(outputs) if prep.outputs_may_hold_blobs else (),
            keep_all_raw=prep.outputs_are_opaque and outputs is not None,
        )
        if kept and run_dir.decks_written:
            _note_decks(kept)
    return outputs, run_dir, data_ctx


def _note_decks(root: str) -> None:
    import glob
    import logging

    pages = sorted(
        glob.glob(os.path.join(glob.escape(root), "decks", "**", "deck.html"), recursive=True)
    )
    _DECKS.pages.extend(pages)
    log = logging.getLogger("caddis")
    for page in pages:
        log.info("deck written: %s", page)


def _error_for(prep: Any, state: Any, runner: Any) -> LocalExecutionError:
    err = state.error
    code = err.code if err is not None else "UNKNOWN"
    message = err.message if err is not None else "the execution failed"
    wf_name = prep.workflow.name
    node = None
    task = None
    original: BaseException | None = None
    failures = runner.failures
    if failures:
        node, task, original = failures[-1]
    entity = prep.entity
    what = (
        f"workflow '{wf_name}'"
        if entity is prep.workflow
        else f"{entity.describe()} (run locally as a one-node workflow)"
    )
    parts = [f"{what} failed"]
    if node:
        parts.append(f"at node '{node}'")
    if task:
        parts.append(f"(task '{task}')")
    head = " ".join(parts)
    if original is not None:
        text = f"{head}: {type(original).__name__}: {original}"
    else:
        text = f"{head}: [{code}] {message}"
    exc: LocalExecutionError
    if original is not None and not isinstance(original, LocalExecutionError):
        try:
            cls = type(type(original).__name__, (LocalExecutionError, type(original)), {})
            exc = cls(text)
        except Exception:  # some exception types cannot be combined or built from a message
            exc = LocalExecutionError(text)
    else:
        exc = LocalExecutionError(text)
    exc.workflow = wf_name
    exc.node = node
    exc.task = task
    exc.error = original
    exc.code = code
    exc.__cause__ = original
    return exc


def _data_context_of(run_dir: RunDirectory) -> DataContext:
    return DataContext(raw_output_prefix=run_dir.raw_uri, local_dir=run_dir.path("local"))


def execute_entity(entity: Any, inputs: dict[str, Any]) -> Any:
    """Run ``entity`` locally on Python ``inputs`` and return its Python outputs.

    Args:
        entity: A workflow, task, dynamic task, map task or launch plan.
        inputs: Input values by name (omitted inputs take their defaults).

    Returns:
        The single output, a named tuple of outputs, or None without outputs.

    Raises:
        LocalExecutionError: The run failed (also an instance of the user's exception type
            when a task raised it).
    """
    if hasattr(entity, "fixed_inputs") and hasattr(entity, "workflow"):
        merged = {**getattr(entity, "default_inputs", {}), **inputs, **entity.fixed_inputs}
        return execute_entity(entity.workflow, merged)
    prep = _prepare(entity)
    run_dir = RunDirectory()
    try:
        # Inside the run's data context: local files given as inputs are "uploaded" into the
        # run's raw-data directory (and cleaned up with it), not into a stray default one.
        with data_context(_data_context_of(run_dir)):
            lm = _to_literals(entity, inputs)
    except BaseException:
        run_dir.cleanup()
        raise
    outputs, run_dir, data_ctx = _run(entity, lm, prepared=prep, run_dir=run_dir)

    # Values that reference files read them from where the run kept them; downloads (if
    # any) go beside them, inside the kept run directory.
    final_ctx = DataContext(
        raw_output_prefix=data_ctx.raw_output_prefix, local_dir=run_dir.path("downloads")
    )
    with data_context(final_ctx):
        return _from_literals(entity, outputs)
