"""What the engine and the handlers of every node kind share.

``EngineCore`` is the base class of :class:`caddis_propeller.engine.executor.Engine` and of
the node handlers in ``engine/nodes/`` (one mixin per node kind). It declares the injected
collaborators and holds the helpers that several node kinds use: events and phase changes,
input resolution, failing and retrying a node, parallelism slots and the catalog. ``_Ctx``
is the context of one round and ``_GraphRT`` the transient runtime of one graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from caddis_idl.core.v1 import execution_pb2, literals_pb2
from caddis_propeller.engine.cache_keys import CacheKey, cache_key, reservation_owner
from caddis_propeller.engine.interfaces import (
    BatchCatalog,
    BatchTaskRunner,
    BinaryAttrResolver,
    Catalog,
    CompletionTracker,
    DataStore,
    EventSink,
    LaunchPlanRunner,
    NodeEvent,
    PriorOutputs,
    Running,
    SignalSource,
    TaskAttempt,
    TaskEvent,
    TaskRunner,
    WorkflowEvent,
)
from caddis_propeller.engine.plan import (
    END_INDEX,
    START_INDEX,
    GraphPlan,
    NodeKind,
    NodePlan,
    Resolver,
    WorkflowPlan,
)
from caddis_propeller.engine.state import (
    DONE_OK_PHASES,
    FLAG_COUNTED,
    FLAG_DYNAMIC,
    FLAG_RESERVED,
    TERMINAL_PHASES,
    ArrayState,
    ExecutionState,
    GraphState,
    NodePhase,
    NodeState,
)
from caddis_propeller.engine.values import ResolutionError, resolve_attr_path

# Top-level enum values are plain module ints; going through the enum wrapper classes costs
# a slow __getattr__ per access on the hot path.
_WP = _NP = _TP = _CS = execution_pb2
_USER = execution_pb2.ERROR_KIND_USER
_SYSTEM = execution_pb2.ERROR_KIND_SYSTEM

NODE_EVENT_PHASE: dict[NodePhase, int] = {
    # The event phase of each engine node phase (the controller's node counts use it too).
    NodePhase.NOT_STARTED: _NP.NODE_EXECUTION_PHASE_UNSPECIFIED,
    NodePhase.QUEUED: _NP.NODE_EXECUTION_PHASE_QUEUED,
    NodePhase.RUNNING: _NP.NODE_EXECUTION_PHASE_RUNNING,
    NodePhase.DYNAMIC_RUNNING: _NP.NODE_EXECUTION_PHASE_DYNAMIC_RUNNING,
    NodePhase.SUCCEEDED: _NP.NODE_EXECUTION_PHASE_SUCCEEDED,
    NodePhase.FAILED: _NP.NODE_EXECUTION_PHASE_FAILED,
    NodePhase.SKIPPED: _NP.NODE_EXECUTION_PHASE_SKIPPED,
    NodePhase.TIMED_OUT: _NP.NODE_EXECUTION_PHASE_TIMED_OUT,
    NodePhase.ABORTED: _NP.NODE_EXECUTION_PHASE_ABORTED,
    NodePhase.RECOVERED: _NP.NODE_EXECUTION_PHASE_RECOVERED,
}


def make_error(
    code: str,
    message: str,
    *,
    kind: execution_pb2.ErrorKind.ValueType = _USER,
    recoverable: bool = False,
) -> execution_pb2.ExecutionError:
    """Build an ExecutionError (helper for runners and tests)."""
    return execution_pb2.ExecutionError(
        code=code,
        message=message,
        kind=kind,
        recoverable=recoverable,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Engine knobs (platform-wide; per-execution knobs are in ExecutionOptions).

    Attributes:
        max_system_retries: Attempts that may fail with SYSTEM errors before the node fails.
        backoff_base: Delay in seconds before the first retry (0 = retry at once).
        backoff_multiplier: Growth of the delay per further failure.
        backoff_max: Upper bound of the delay.
        interruptible_failure_threshold: After this many failed attempts a node runs
            non-interruptible; -1 = only the last possible attempt does.
        max_node_evaluations_per_round: Bound on node evaluations per round.
        array_items_per_round: Bound on item starts/checks per array node per round, and on its
            items in flight at once (the persisted state and each round's bookkeeping grow
            with the items in flight, not with the array's size).
        reservation_heartbeat: Heartbeat (s) requested for cache-serialization reservations.
        dynamic_plan_cache_size: Compiled dynamic plans kept in memory (LRU).
    """

    max_system_retries: int = 3
    backoff_base: float = 0.0
    backoff_multiplier: float = 2.0
    backoff_max: float = 300.0
    interruptible_failure_threshold: int = -1
    max_node_evaluations_per_round: int = 100_000
    array_items_per_round: int = 10_000
    reservation_heartbeat: float = 10.0
    dynamic_plan_cache_size: int = 256


class _Ctx:
    """Per-round context."""

    __slots__ = (
        "budget",
        "changed",
        "dp",
        "exhausted",
        "now",
        "pending",
        "recovery",
        "state",
        "wake_at",
    )

    def __init__(
        self, state: ExecutionState, now: float, budget: int, recovery: PriorOutputs | None
    ) -> None:
        self.state = state
        self.now = now
        self.budget = budget
        self.recovery = recovery
        self.dp = state.data_prefix
        self.changed = False
        self.pending = False
        self.exhausted = False
        self.wake_at: float | None = None

    def wake(self, t: float) -> None:
        if self.wake_at is None or t < self.wake_at:
            self.wake_at = t


class _GraphRT:
    """Transient runtime of one graph (ready set, counters, cached inputs); never persisted."""

    __slots__ = (
        "active",
        "gs",
        "inputs",
        "inputs_key",
        "parent_path",
        "plan",
        "prefix",
        "remaining",
        "wp",
    )

    def __init__(
        self,
        wp: WorkflowPlan,
        plan: GraphPlan,
        gs: GraphState,
        prefix: str,
        inputs_key: str,
        parent_path: str | None,
    ) -> None:
        self.wp = wp
        self.plan = plan
        self.gs = gs
        self.prefix = prefix
        self.inputs_key = inputs_key
        self.parent_path = parent_path
        self.inputs: literals_pb2.LiteralMap | None = None
        n = len(plan.nodes)
        if len(gs.nodes) != n:
            gs.nodes = [None] * n
        nodes = gs.nodes
        self.remaining = [0] * n
        self.active: dict[int, None] = {}
        ok_or_skipped = DONE_OK_PHASES | {NodePhase.SKIPPED}
        for np_ in plan.nodes:
            if np_.index == START_INDEX:
                continue
            cnt = 0
            for u in np_.upstream:
                if u == START_INDEX:
                    continue
                nu = nodes[u]
                if nu is None or nu.phase not in ok_or_skipped:
                    cnt += 1
            self.remaining[np_.index] = cnt
        for i in range(2, n):
            ns = nodes[i]
            if ns is not None and ns.phase in TERMINAL_PHASES:
                continue
            if (ns is not None and ns.phase != NodePhase.NOT_STARTED) or self.remaining[i] == 0:
                self.active[i] = None
        end = nodes[END_INDEX]
        if (end is None or end.phase not in TERMINAL_PHASES) and self.remaining[END_INDEX] == 0:
            self.active[END_INDEX] = None


def _answer(hit: literals_pb2.LiteralMap | None) -> tuple[literals_pb2.LiteralMap | None, int]:
    """A catalog's answer as (outputs or None, CatalogCacheStatus HIT or MISS)."""
    if hit is None:
        return None, _CS.CATALOG_CACHE_STATUS_MISS
    return hit, _CS.CATALOG_CACHE_STATUS_HIT


class EngineCore:
    """State and helpers shared by the engine and its node handlers.

    Not used on its own: :class:`~caddis_propeller.engine.executor.Engine` sets the attributes
    below in its constructor and evaluates graphs and nodes, which the handlers of nested
    graphs (subworkflows, dynamics) and nested nodes (branch cases) call back into.
    """

    # Set by Engine.__init__ (see its docstring).
    config: EngineConfig
    _runner: TaskRunner
    _batch: BatchTaskRunner | None
    _tracker: CompletionTracker | None
    _data: DataStore
    _catalog: Catalog | None
    _batch_catalog: BatchCatalog | None
    _events: EventSink | None
    _item_events: bool
    _now: Callable[[], float]
    _lp: LaunchPlanRunner | None
    _signals: SignalSource | None
    _binary_attr: BinaryAttrResolver | None

    # -- provided by Engine: nested graphs (subworkflows, dynamics) and nodes (branch cases) --
    def _eval_graph(
        self,
        ctx: _Ctx,
        wp: WorkflowPlan,
        plan: GraphPlan,
        gs: GraphState,
        prefix: str,
        inputs_key: str,
        parent: str | None,
    ) -> None:
        raise NotImplementedError

    def _eval_node(
        self,
        ctx: _Ctx,
        rt: _GraphRT,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
    ) -> None:
        raise NotImplementedError

    # =========================================================================================
    # Events and phases
    # =========================================================================================
    def _wf_phase(
        self, ctx: _Ctx, phase: int, error: execution_pb2.ExecutionError | None = None
    ) -> None:
        ctx.state.phase = phase
        ctx.changed = True
        if self._events is not None:
            out = ctx.state.outputs_key if phase == _WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED else None
            self._events.emit(WorkflowEvent(phase, ctx.now, error, out))

    def _set(
        self,
        ctx: _Ctx,
        np_: NodePlan,
        ns: NodeState,
        phase: NodePhase,
        path: str,
        parent: str | None,
        *,
        outputs: bool = False,
    ) -> None:
        ns.phase = phase
        ctx.changed = True
        ev = self._events
        if ev is not None:
            target = None
            if np_.task is not None:
                target = np_.task.id
            elif np_.launch_plan is not None:
                target = np_.launch_plan.id
            ev.emit(
                NodeEvent(
                    node_path=path,
                    node_id=np_.id,
                    phase=NODE_EVENT_PHASE[phase],
                    occurred_at=ctx.now,
                    attempt=ns.attempt,
                    parent_path=parent,
                    inputs_key=f"{ctx.dp}/{path}/inputs.pb",
                    outputs_key=(f"{ctx.dp}/{path}/{ns.attempt}/outputs.pb" if outputs else None),
                    error=ns.error if phase in TERMINAL_PHASES else None,
                    cache_status=ns.cache_status or _array_cache_status(ns.array),
                    is_parent=np_.kind in (NodeKind.SUBWORKFLOW, NodeKind.BRANCH, NodeKind.ARRAY)
                    or bool(ns.flags & FLAG_DYNAMIC),
                    is_dynamic=bool(ns.flags & FLAG_DYNAMIC),
                    dynamic_closure_key=(
                        f"{ctx.dp}/{path}/{ns.attempt}/dynamic_compiled.pb"
                        if ns.flags & FLAG_DYNAMIC
                        else None
                    ),
                    node_name=np_.name,
                    target=target,
                )
            )

    def _task_event(
        self,
        ctx: _Ctx,
        attempt: TaskAttempt,
        phase: int,
        *,
        handle: str | None = None,
        error: execution_pb2.ExecutionError | None = None,
        outputs_key: str | None = None,
        status: Running | None = None,
    ) -> None:
        ev = self._events
        if ev is None or (attempt.array_index is not None and not self._item_events):
            return
        ev.emit(
            TaskEvent(
                node_path=attempt.node_path,
                node_id=attempt.node_id,
                task_id=attempt.task.id,
                attempt=attempt.attempt,
                phase=phase,
                occurred_at=ctx.now,
                phase_version=status.phase_version if status else 0,
                handle=handle,
                inputs_key=attempt.inputs_key,
                outputs_key=outputs_key,
                error=error,
                logs=status.logs if status else (),
                reason=status.reason if status else "",
                array_index=attempt.array_index,
                task_type=attempt.task.type,
            )
        )

    # =========================================================================================
    # Nodes: what the node kinds share
    # =========================================================================================
    # -- recovery -----------------------------------------------------------------------------
    @staticmethod
    def _prior(ctx: _Ctx, path: str) -> literals_pb2.LiteralMap | None:
        """The reference's outputs of a node or array item, or None to run it."""
        assert ctx.recovery is not None
        try:
            return ctx.recovery.get(path)
        except Exception:
            return None  # recovery is an optimisation: on failure, run the node or item

    # -- inputs -----------------------------------------------------------------------------
    def _node_outputs(self, ctx: _Ctx, rt: _GraphRT, idx: int) -> literals_pb2.LiteralMap:
        if idx == START_INDEX:
            inp = rt.inputs
            if inp is None:
                inp = self._data.get(rt.inputs_key, literals_pb2.LiteralMap)
                if inp is None:
                    raise ResolutionError(f"inputs not found at {rt.inputs_key}")
                rt.inputs = inp
            return inp
        ns = rt.gs.nodes[idx]
        np_ = rt.plan.nodes[idx]
        if ns is None or ns.phase not in DONE_OK_PHASES:
            raise ResolutionError(f"node '{np_.id}' has no outputs (it did not succeed)")
        key = f"{ctx.dp}/{rt.prefix}{np_.id}/{ns.attempt}/outputs.pb"
        out = self._data.get(key, literals_pb2.LiteralMap)
        if out is None:
            raise ResolutionError(f"outputs of node '{np_.id}' not found at {key}")
        return out

    def _resolve(self, ctx: _Ctx, rt: _GraphRT, r: Resolver) -> literals_pb2.Literal:
        tag = r[0]
        if tag == "p":
            src = self._node_outputs(ctx, rt, r[1])
            try:
                lit = src.literals[r[2]]
            except KeyError:
                node_id = rt.plan.nodes[r[1]].id
                raise ResolutionError(f"node '{node_id}' has no output '{r[2]}'") from None
            if r[3]:
                return resolve_attr_path(lit, r[3], self._binary_attr)
            return lit
        if tag == "l":
            lit2: literals_pb2.Literal = r[1]
            return lit2
        if tag == "c":
            out = literals_pb2.Literal()
            lits = out.collection.literals
            for sub in r[1]:
                lits.append(self._resolve(ctx, rt, sub))
            return out
        if tag == "m":
            out = literals_pb2.Literal()
            out.map.SetInParent()
            for k, sub in r[1].items():
                out.map.literals[k].CopyFrom(self._resolve(ctx, rt, sub))
            return out
        if tag == "u":
            inner = self._resolve(ctx, rt, r[1])
            out = literals_pb2.Literal()
            out.scalar.union.value.CopyFrom(inner)
            out.scalar.union.type.CopyFrom(r[2])
            return out
        raise ResolutionError(f"unknown binding kind {tag!r}")

    def _resolve_inputs(self, ctx: _Ctx, rt: _GraphRT, np_: NodePlan) -> literals_pb2.LiteralMap:
        lm = literals_pb2.LiteralMap()
        lits = lm.literals
        for var, r in np_.bindings:
            if r[0] == "p" and not r[3]:
                src = self._node_outputs(ctx, rt, r[1])
                try:
                    lits[var].CopyFrom(src.literals[r[2]])
                except KeyError:
                    node_id = rt.plan.nodes[r[1]].id
                    raise ResolutionError(
                        f"input '{var}': node '{node_id}' has no output '{r[2]}'"
                    ) from None
            else:
                try:
                    lits[var].CopyFrom(self._resolve(ctx, rt, r))
                except ResolutionError as exc:
                    raise ResolutionError(f"input '{var}': {exc}") from None
        for var, lit in np_.defaults:
            lits[var].CopyFrom(lit)
        if np_.error_input is not None:
            gs = rt.gs
            err = literals_pb2.Literal()
            err.scalar.error.failed_node_id = gs.failed_node
            err.scalar.error.message = gs.error.message if gs.error is not None else ""
            lits[np_.error_input].CopyFrom(err)
        return lm

    def _start_inputs(
        self, ctx: _Ctx, rt: _GraphRT, np_: NodePlan, ns: NodeState, path: str, parent: str | None
    ) -> literals_pb2.LiteralMap | None:
        """Resolve and store a node's inputs; on failure, fail the node and return None."""
        try:
            inputs = self._resolve_inputs(ctx, rt, np_)
        except ResolutionError as exc:
            self._fail(
                ctx,
                np_,
                ns,
                make_error("BindingResolutionError", f"node {path}: {exc}"),
                path,
                parent,
            )
            return None
        self._data.put(f"{ctx.dp}/{path}/inputs.pb", inputs)
        return inputs

    def _inputs_of(self, ctx: _Ctx, path: str) -> literals_pb2.LiteralMap:
        inputs = self._data.get(f"{ctx.dp}/{path}/inputs.pb", literals_pb2.LiteralMap)
        return inputs if inputs is not None else literals_pb2.LiteralMap()

    # -- common transitions -----------------------------------------------------------------
    def _fail(
        self,
        ctx: _Ctx,
        np_: NodePlan,
        ns: NodeState,
        err: execution_pb2.ExecutionError,
        path: str,
        parent: str | None,
        phase: NodePhase = NodePhase.FAILED,
    ) -> None:
        ns.error = err
        self._release_slot(ctx, ns)
        self._release_reservation(ctx, np_, ns, path)
        self._set(ctx, np_, ns, phase, path, parent)

    def _may_start(self, ctx: _Ctx, ns: NodeState) -> bool:
        """True when a queued attempt may start now: its retry backoff is over and it holds a slot.

        Task and launch-plan nodes start their attempts through this. Otherwise the round
        learns when to come back: at the backoff's end (``wake``), or once a slot frees up
        (``_take_slot`` sets ``pending``).
        """
        if ns.retry_at and ns.retry_at > ctx.now:
            ctx.wake(ns.retry_at)
            return False
        return self._take_slot(ctx, ns)

    def _take_slot(self, ctx: _Ctx, ns: NodeState) -> bool:
        if ns.flags & FLAG_COUNTED:
            return True
        limit = ctx.state.options.max_parallelism
        if limit and ctx.state.n_running >= limit:
            ctx.pending = True
            return False
        ctx.state.n_running += 1
        ns.flags |= FLAG_COUNTED
        return True

    def _release_slot(self, ctx: _Ctx, ns: NodeState) -> None:
        if ns.flags & FLAG_COUNTED:
            ns.flags &= ~FLAG_COUNTED
            ctx.state.n_running -= 1

    def _backoff(self, failures: int) -> float:
        cfg = self.config
        if cfg.backoff_base <= 0:
            return 0.0
        return float(
            min(cfg.backoff_max, cfg.backoff_base * cfg.backoff_multiplier ** (failures - 1))
        )

    def _retry_or_fail(
        self,
        ctx: _Ctx,
        np_: NodePlan,
        ns: NodeState,
        err: execution_pb2.ExecutionError,
        path: str,
        parent: str | None,
        *,
        timed_out: bool = False,
    ) -> bool:
        """Charge a failed attempt to its budget; requeue (True) or fail the node (False)."""
        self._release_slot(ctx, ns)
        if err.kind == _SYSTEM:
            ns.system_failures += 1
            retry = ns.system_failures <= self.config.max_system_retries
        else:
            ns.user_failures += 1
            retry = err.recoverable and ns.user_failures <= np_.retries
        ns.handle = None
        if retry:
            self._release_reservation(ctx, np_, ns, path)
            ns.child = None
            ns.flags &= ~FLAG_DYNAMIC
            delay = self._backoff(ns.attempt)
            ns.retry_at = ctx.now + delay if delay > 0 else 0.0
            ns.phase = NodePhase.QUEUED
            ctx.changed = True
            return True
        self._fail(
            ctx, np_, ns, err, path, parent, NodePhase.TIMED_OUT if timed_out else NodePhase.FAILED
        )
        return False

    # -- cache ------------------------------------------------------------------------------
    def _interruptible(self, ctx: _Ctx, np_: NodePlan, attempt: int) -> bool:
        """Whether attempt number ``attempt`` of a task node or array item may be interrupted.

        The execution's override, else the task's own setting; after
        ``interruptible_failure_threshold`` failed attempts (or on the last attempt the retry
        budgets allow) it runs non-interruptible, so that a task is not starved by
        preemption. Task nodes and array items follow the same rule.
        """
        override = ctx.state.options.interruptible
        wanted = np_.interruptible if override is None else override
        if not wanted:
            return False
        threshold = self.config.interruptible_failure_threshold
        if threshold > 0:
            return attempt < threshold
        return attempt < np_.retries + self.config.max_system_retries

    def _cache_on(self, ctx: _Ctx, np_: NodePlan) -> bool:
        return np_.cacheable and self._catalog is not None and not ctx.state.options.skip_cache

    def _ck(self, np_: NodePlan, inputs: literals_pb2.LiteralMap) -> CacheKey:
        assert np_.task is not None
        return cache_key(np_.task, inputs, cache_version=np_.cache_version)

    def _lookup(self, key: CacheKey) -> tuple[literals_pb2.LiteralMap | None, int]:
        assert self._catalog is not None
        try:
            hit = self._catalog.lookup(key)
        except Exception:
            return None, _CS.CATALOG_CACHE_STATUS_LOOKUP_FAILURE
        return _answer(hit)

    def _cache_put(
        self,
        ctx: _Ctx,
        np_: NodePlan,
        inputs: literals_pb2.LiteralMap,
        outputs: literals_pb2.LiteralMap,
    ) -> int:
        assert self._catalog is not None
        try:
            self._catalog.put(
                self._ck(np_, inputs), outputs, overwrite=ctx.state.options.overwrite_cache
            )
        except Exception:
            return _CS.CATALOG_CACHE_STATUS_PUT_FAILURE
        return _CS.CATALOG_CACHE_STATUS_POPULATED

    def _release_reservation(self, ctx: _Ctx, np_: NodePlan, ns: NodeState, path: str) -> None:
        if not ns.flags & FLAG_RESERVED or self._catalog is None:
            return
        ns.flags &= ~FLAG_RESERVED
        try:
            key = self._ck(np_, self._inputs_of(ctx, path))
            self._catalog.release_reservation(
                key, reservation_owner(ctx.state.execution_id.name, path, ns.attempt)
            )
        except Exception:
            pass  # the reservation expires on its own; never fail a node over it


def _array_cache_status(a: ArrayState | None) -> int:
    """One CatalogCacheStatus for an array node from its items' (0 when caching is off).

    Items carry their own statuses; the node's events report a summary so that a rerun
    served from the cache shows HIT: all items HIT -> HIT; any PUT/LOOKUP failure -> that;
    any POPULATED -> POPULATED; otherwise the first item status (MISS or SKIPPED).
    """
    if a is None or not a.cache:
        return 0
    seen = set(a.cache)
    seen.discard(0)
    if not seen:
        return 0
    for status in (
        _CS.CATALOG_CACHE_STATUS_PUT_FAILURE,
        _CS.CATALOG_CACHE_STATUS_LOOKUP_FAILURE,
        _CS.CATALOG_CACHE_STATUS_POPULATED,
        _CS.CATALOG_CACHE_STATUS_MISS,
        _CS.CATALOG_CACHE_STATUS_SKIPPED,
    ):
        if status in seen:
            return int(status)
    return _CS.CATALOG_CACHE_STATUS_HIT
