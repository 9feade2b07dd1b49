"""The evaluation engine: level-triggered rounds over one execution's state.

Each round looks only at the *active* nodes of each graph (ready to start, in flight, or
waiting on a timer), never at the whole graph: when a node finishes, its downstream counters
drop and nodes whose counters reach zero join the active set (and are evaluated in the same
round, so a chain of in-process tasks finishes in one round). Work per round is bounded
(``EngineConfig.max_node_evaluations_per_round``, ``array_items_per_round``) so a huge array
cannot starve other executions sharing a propeller worker.

The handlers of the node kinds are mixins in ``engine/nodes/``, one module per kind; what
they share with the engine (the round context, a graph's runtime, events, input
resolution, failing and retrying, parallelism slots, the catalog) is ``EngineCore`` in
``engine/core.py``. This module keeps the public API, graph evaluation, dispatch to the
node kinds, recovery and aborting.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from caddis_idl.core.v1 import compiler_pb2, identifier_pb2, literals_pb2
from caddis_propeller.engine.core import (
    _TP,
    _WP,
    EngineConfig,
    EngineCore,
    _Ctx,
    _GraphRT,
    make_error,
)
from caddis_propeller.engine.interfaces import (
    BatchCatalog,
    BatchTaskRunner,
    BinaryAttrResolver,
    Catalog,
    Clock,
    CompletionTracker,
    DataStore,
    EventSink,
    LaunchPlanRunner,
    LaunchRequest,
    PriorOutputs,
    SignalSource,
    TaskRunner,
    WorkflowEvent,
)
from caddis_propeller.engine.nodes.array import ArrayNodes
from caddis_propeller.engine.nodes.branch import BranchNodes
from caddis_propeller.engine.nodes.gates import GateNodes
from caddis_propeller.engine.nodes.subworkflow import SubworkflowNodes
from caddis_propeller.engine.nodes.task import TaskNodes
from caddis_propeller.engine.plan import (
    END_INDEX,
    NONE_LITERAL,
    START_INDEX,
    GraphPlan,
    NodeKind,
    NodePlan,
    WorkflowPlan,
)
from caddis_propeller.engine.state import (
    DONE_OK_PHASES,
    FLAG_COUNTED,
    TERMINAL_PHASES,
    ExecutionOptions,
    ExecutionState,
    GraphPhase,
    GraphState,
    NodePhase,
    NodeState,
)
from caddis_propeller.engine.values import ResolutionError

__all__ = ["Engine", "EngineConfig", "RoundResult", "make_error"]


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What a round did and when the next one is useful.

    Attributes:
        done: The execution reached a terminal phase.
        phase: The WorkflowExecutionPhase after the round.
        changed: Some state changed (persist it; another round may make progress).
        wake_at: Earliest clock time a timer (backoff, sleep gate, timeout) fires, or None.
        pending: Work is in flight outside the engine (tasks, child executions, signals,
            reservations) whose progress only a later round observes.
        budget_exhausted: The round stopped early on its work bound; run another round soon.
    """

    done: bool
    phase: int
    changed: bool
    wake_at: float | None
    pending: bool
    budget_exhausted: bool


class Engine(TaskNodes, ArrayNodes, BranchNodes, GateNodes, SubworkflowNodes, EngineCore):
    """Evaluates executions of compiled workflows; see the package docstring for the protocol.

    One Engine serves any number of executions (it keeps no per-execution state besides
    caches of plans); it is not thread-safe: use one per worker thread.

    Args:
        runner: Runs task attempts.
        data: Stores inputs, outputs, futures, errors and compiled dynamic closures.
        catalog: Memoization; None disables caching.
        events: Receives events; None disables them (the cheapest local mode).
        clock: Time source; defaults to ``time.time``.
        launch_plans: Runs launch-plan nodes; None makes them fail.
        signals: Supplies gate signals; None makes approve/signal gates fail.
        binary_attr: Resolves attribute paths into Binary literals (see BinaryAttrResolver).
        config: Engine knobs.
    """

    def __init__(
        self,
        runner: TaskRunner,
        data: DataStore,
        *,
        catalog: Catalog | None = None,
        events: EventSink | None = None,
        clock: Clock | None = None,
        launch_plans: LaunchPlanRunner | None = None,
        signals: SignalSource | None = None,
        binary_attr: BinaryAttrResolver | None = None,
        config: EngineConfig | None = None,
    ) -> None:
        self._runner = runner
        self._batch: BatchTaskRunner | None = (
            runner if isinstance(runner, BatchTaskRunner) else None
        )
        self._tracker: CompletionTracker | None = (
            runner if isinstance(runner, CompletionTracker) else None
        )
        self._data = data
        self._catalog = catalog
        self._batch_catalog = catalog if isinstance(catalog, BatchCatalog) else None
        self._events = events
        self._item_events = bool(events is not None and getattr(events, "array_item_events", False))
        if clock is None:
            import time

            self._now: Callable[[], float] = time.time
        else:
            self._now = clock.now
        self._lp = launch_plans
        self._signals = signals
        self._binary_attr = binary_attr
        self.config = config or EngineConfig()
        self._dyn_plans: OrderedDict[str, WorkflowPlan] = OrderedDict()
        self._current_wp: WorkflowPlan | None = None

    # =========================================================================================
    # Public API
    # =========================================================================================
    @staticmethod
    def prepare(closure: compiler_pb2.CompiledWorkflowClosure) -> WorkflowPlan:
        """Index a compiled closure for evaluation (cache the result per closure)."""
        return WorkflowPlan(closure)

    def start(
        self,
        plan: WorkflowPlan,
        inputs: literals_pb2.LiteralMap,
        *,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        data_prefix: str | None = None,
        options: ExecutionOptions | None = None,
    ) -> ExecutionState:
        """Create the state of a new execution and store its inputs.

        Optional workflow inputs that are missing are bound to None.

        Raises:
            ValueError: When a required workflow input is missing.
        """
        iface = plan.primary.template.interface.inputs.variables
        missing = [k for k in iface if k not in inputs.literals]
        if missing:
            from caddis_propeller.compiler import is_optional

            required = [k for k in missing if not is_optional(iface[k].type)]
            if required:
                raise ValueError(
                    f"workflow {plan.primary.template.id.name} is missing required inputs: "
                    + ", ".join(sorted(required))
                )
            full = literals_pb2.LiteralMap()
            full.CopyFrom(inputs)
            for k in missing:
                full.literals[k].CopyFrom(NONE_LITERAL)
            inputs = full
        dp = (
            data_prefix
            if data_prefix is not None
            else f"{execution_id.project}/{execution_id.domain}/{execution_id.name}"
        )
        st = ExecutionState(execution_id, dp, options, GraphState(len(plan.primary.nodes)))
        st.n_running = 0
        self._data.put(st.inputs_key, inputs)
        if self._events is not None:
            self._events.emit(WorkflowEvent(_WP.WORKFLOW_EXECUTION_PHASE_QUEUED, self._now()))
        return st

    def round(
        self,
        plan: WorkflowPlan,
        state: ExecutionState,
        *,
        recovery: PriorOutputs | None = None,
    ) -> RoundResult:
        """Evaluate one round: start what is ready, observe what is running, finish what is done.

        Args:
            plan: The prepared plan of the execution's closure.
            state: The execution state (mutated in place; persist it when ``changed``).
            recovery: Outputs of an earlier execution to reuse (RECOVERED nodes).

        Returns:
            A RoundResult telling the driver whether to persist and when to come back.
        """
        if state.done:
            return RoundResult(True, state.phase, False, None, False, False)
        ctx = _Ctx(state, self._now(), self.config.max_node_evaluations_per_round, recovery)
        if state.n_running < 0:
            state.n_running = _count_running(state.root)
        if state.abort_reason is not None:
            self._abort_execution(ctx, plan, state.abort_reason)
        else:
            if state.phase == _WP.WORKFLOW_EXECUTION_PHASE_QUEUED:
                self._wf_phase(ctx, _WP.WORKFLOW_EXECUTION_PHASE_RUNNING)
            root = state.root
            self._eval_graph(ctx, plan, plan.primary, root, "", state.inputs_key, None)
            if root.phase == GraphPhase.SUCCEEDED:
                self._wf_phase(ctx, _WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED)
            elif root.phase == GraphPhase.FAILED:
                state.error = root.error
                if state.phase != _WP.WORKFLOW_EXECUTION_PHASE_FAILING:
                    self._wf_phase(ctx, _WP.WORKFLOW_EXECUTION_PHASE_FAILING)
                self._wf_phase(ctx, _WP.WORKFLOW_EXECUTION_PHASE_FAILED, root.error)
            elif (
                root.phase == GraphPhase.FAILING
                and state.phase != _WP.WORKFLOW_EXECUTION_PHASE_FAILING
            ):
                self._wf_phase(ctx, _WP.WORKFLOW_EXECUTION_PHASE_FAILING)
        state.rounds += 1
        return RoundResult(
            state.done, state.phase, ctx.changed, ctx.wake_at, ctx.pending, ctx.exhausted
        )

    def abort(self, plan: WorkflowPlan, state: ExecutionState, reason: str) -> None:
        """Abort the execution now: stop every running attempt and child, mark all ABORTED."""
        if state.done:
            return
        state.abort_reason = reason
        ctx = _Ctx(state, self._now(), 0, None)
        if state.n_running < 0:
            state.n_running = _count_running(state.root)
        self._abort_execution(ctx, plan, reason)

    def outputs(self, state: ExecutionState) -> literals_pb2.LiteralMap | None:
        """The execution's outputs once it succeeded, else None."""
        if state.phase != _WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED:
            return None
        return self._data.get(state.outputs_key, literals_pb2.LiteralMap)

    def run(
        self,
        plan: WorkflowPlan,
        state: ExecutionState,
        *,
        wait: Callable[[float | None], None] | None = None,
        recovery: PriorOutputs | None = None,
        max_rounds: int | None = None,
    ) -> ExecutionState:
        """Drive rounds until the execution is done (the local driver's loop).

        Args:
            plan: The prepared plan.
            state: The state from :meth:`start`.
            wait: Called when a round made no progress: with the seconds until the next timer,
                or None when only external progress (running tasks) can help. Local mode
                sleeps; tests advance a fake clock.
            recovery: Prior outputs to reuse.
            max_rounds: Safety bound (None = unbounded).

        Raises:
            RuntimeError: When nothing can make progress (a bug) or ``max_rounds`` is hit.
        """
        rounds = 0
        while not state.done:
            r = self.round(plan, state, recovery=recovery)
            rounds += 1
            if max_rounds is not None and rounds >= max_rounds and not state.done:
                raise RuntimeError(f"execution not done after {rounds} rounds")
            if r.done or r.changed or r.budget_exhausted:
                continue
            if r.wake_at is not None:
                if wait is None:
                    raise RuntimeError("execution waits on a timer but no wait callback is set")
                wait(max(0.0, r.wake_at - self._now()))
            elif r.pending:
                if wait is None:
                    raise RuntimeError("execution waits on running work; no wait callback set")
                wait(None)
            else:
                raise RuntimeError("execution is stalled: nothing runs and nothing is ready")
        return state

    # =========================================================================================
    # Graphs
    # =========================================================================================
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
        if gs.phase in (GraphPhase.SUCCEEDED, GraphPhase.FAILED, GraphPhase.ABORTED):
            return
        rt: _GraphRT | None = gs.rt
        if rt is None:
            rt = _GraphRT(wp, plan, gs, prefix, inputs_key, parent)
            gs.rt = rt
        active = rt.active
        nodes = gs.nodes
        plan_nodes = plan.nodes
        remaining = rt.remaining
        work = list(active)
        wi = 0
        while wi < len(work):
            if ctx.budget <= 0:
                ctx.exhausted = True
                break
            i = work[wi]
            wi += 1
            if i not in active:
                continue
            ctx.budget -= 1
            if i == END_INDEX:
                self._eval_end(ctx, rt)
                del active[i]
                if gs.phase != GraphPhase.RUNNING:
                    break
                continue
            np_ = plan_nodes[i]
            ns = nodes[i]
            if ns is None:
                ns = NodeState()
                nodes[i] = ns
            self._eval_node(ctx, rt, np_, ns, prefix + np_.id, parent)
            ph = ns.phase
            if ph not in TERMINAL_PHASES:
                continue
            del active[i]
            if ph in DONE_OK_PHASES or ph == NodePhase.SKIPPED:
                for d in np_.downstream:
                    remaining[d] -= 1
                    if remaining[d] == 0:
                        active[d] = None
                        work.append(d)
            else:
                if gs.error is None:
                    gs.error = ns.error or make_error(
                        "NodeFailed", f"node {prefix + np_.id} ended in {ph.name}"
                    )
                    gs.failed_node = prefix + np_.id
                if gs.phase == GraphPhase.RUNNING:
                    gs.phase = GraphPhase.FAILING
                    ctx.changed = True
                if plan.fail_immediately:
                    self._abort_active(ctx, rt, "another node failed (fail immediately)")
                    break
        if gs.phase == GraphPhase.FAILING and not active:
            self._finish_failing(ctx, rt)

    def _eval_end(self, ctx: _Ctx, rt: _GraphRT) -> None:
        gs = rt.gs
        out = literals_pb2.LiteralMap()
        try:
            for var, r in rt.plan.outputs:
                out.literals[var].CopyFrom(self._resolve(ctx, rt, r))
        except ResolutionError as exc:
            gs.error = make_error("OutputsBindingError", f"workflow outputs: {exc}")
            gs.phase = GraphPhase.FAILING
            ctx.changed = True
            return
        self._data.put(f"{ctx.dp}/{rt.prefix}outputs.pb", out)
        end = NodeState()
        end.phase = NodePhase.SUCCEEDED
        gs.nodes[END_INDEX] = end
        gs.phase = GraphPhase.SUCCEEDED
        ctx.changed = True

    def _abort_active(self, ctx: _Ctx, rt: _GraphRT, reason: str) -> None:
        for i in list(rt.active):
            ns = rt.gs.nodes[i]
            if ns is not None and ns.phase not in TERMINAL_PHASES and i != END_INDEX:
                if ns.phase == NodePhase.NOT_STARTED:
                    continue
                np_ = rt.plan.nodes[i]
                self._abort_node(ctx, rt.wp, np_, ns, rt.prefix + np_.id, rt.parent_path, reason)
        rt.active.clear()

    def _finish_failing(self, ctx: _Ctx, rt: _GraphRT) -> None:
        gs = rt.gs
        fn = rt.plan.failure_node
        if fn is not None:
            fs = gs.failure_node
            if fs is None:
                fs = NodeState()
                gs.failure_node = fs
            if fs.phase not in TERMINAL_PHASES:
                self._eval_node(ctx, rt, fn, fs, rt.prefix + fn.id, rt.parent_path)
                if fs.phase not in TERMINAL_PHASES:
                    return
        gs.phase = GraphPhase.FAILED
        ctx.changed = True

    # =========================================================================================
    # Nodes
    # =========================================================================================
    def _eval_node(
        self,
        ctx: _Ctx,
        rt: _GraphRT,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
    ) -> None:
        if ns.phase == NodePhase.NOT_STARTED:
            nodes = rt.gs.nodes
            for u in np_.upstream:
                nu = nodes[u]
                if u != START_INDEX and nu is not None and nu.phase == NodePhase.SKIPPED:
                    self._set(ctx, np_, ns, NodePhase.SKIPPED, path, parent)
                    return
            if ctx.recovery is not None and self._recover(ctx, np_, ns, path, parent):
                return
        kind = np_.kind
        if kind == NodeKind.TASK:
            self._eval_task(ctx, rt, np_, ns, path, parent)
        elif kind == NodeKind.ARRAY:
            self._eval_array(ctx, rt, np_, ns, path, parent)
        elif kind == NodeKind.BRANCH:
            self._eval_branch(ctx, rt, np_, ns, path, parent)
        elif kind == NodeKind.SUBWORKFLOW:
            self._eval_subworkflow(ctx, rt, np_, ns, path, parent)
        elif kind == NodeKind.LAUNCH_PLAN:
            self._eval_launch_plan(ctx, rt, np_, ns, path, parent)
        elif kind == NodeKind.GATE:
            self._eval_gate(ctx, rt, np_, ns, path, parent)

    def _recover(
        self, ctx: _Ctx, np_: NodePlan, ns: NodeState, path: str, parent: str | None
    ) -> bool:
        prior = self._prior(ctx, path)
        if prior is None:
            return False
        self._data.put(f"{ctx.dp}/{path}/0/outputs.pb", prior)
        self._set(ctx, np_, ns, NodePhase.RECOVERED, path, parent, outputs=True)
        return True

    # =========================================================================================
    # Abort
    # =========================================================================================
    def _abort_execution(self, ctx: _Ctx, plan: WorkflowPlan, reason: str) -> None:
        state = ctx.state
        if state.phase != _WP.WORKFLOW_EXECUTION_PHASE_ABORTING:
            self._wf_phase(ctx, _WP.WORKFLOW_EXECUTION_PHASE_ABORTING)
        self._abort_graph(ctx, plan, plan.primary, state.root, "", None, reason)
        state.error = make_error("ExecutionAborted", reason)
        self._wf_phase(ctx, _WP.WORKFLOW_EXECUTION_PHASE_ABORTED, state.error)

    def _abort_graph(
        self,
        ctx: _Ctx,
        wp: WorkflowPlan,
        plan: GraphPlan,
        gs: GraphState,
        prefix: str,
        parent: str | None,
        reason: str,
    ) -> None:
        if gs.phase in (GraphPhase.SUCCEEDED, GraphPhase.FAILED, GraphPhase.ABORTED):
            return
        for i, ns in enumerate(gs.nodes):
            if ns is None or ns.phase in TERMINAL_PHASES or ns.phase == NodePhase.NOT_STARTED:
                continue
            np_ = plan.nodes[i]
            self._abort_node(ctx, wp, np_, ns, prefix + np_.id, parent, reason)
        gs.phase = GraphPhase.ABORTED
        gs.rt = None
        ctx.changed = True

    def _abort_node(
        self,
        ctx: _Ctx,
        wp: WorkflowPlan,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
        reason: str,
    ) -> None:
        kind = np_.kind
        if kind == NodeKind.TASK:
            if ns.phase == NodePhase.RUNNING and ns.handle is not None:
                try:
                    att = self._attempt(ctx, np_, ns, path, None)
                    self._runner.abort(att, ns.handle, reason)
                    self._task_event(ctx, att, _TP.TASK_EXECUTION_PHASE_ABORTED)
                except Exception:
                    pass
            elif ns.phase == NodePhase.DYNAMIC_RUNNING and isinstance(ns.child, GraphState):
                dwp = self._dyn_plan(f"{ctx.dp}/{path}/{ns.attempt}/dynamic_compiled.pb")
                if dwp is not None:
                    self._abort_graph(
                        ctx, dwp, dwp.primary, ns.child, f"{path}/{ns.attempt}/", path, reason
                    )
        elif kind == NodeKind.SUBWORKFLOW and isinstance(ns.child, GraphState):
            assert np_.sub_key is not None
            self._abort_graph(
                ctx, wp, wp.subworkflow(np_.sub_key), ns.child, f"{path}/0/", path, reason
            )
        elif kind == NodeKind.BRANCH and isinstance(ns.child, NodeState):
            case = (
                np_.cases[ns.branch_case][1] if ns.branch_case < len(np_.cases) else np_.else_node
            )
            if case is not None and ns.child.phase not in TERMINAL_PHASES:
                self._abort_node(ctx, wp, case, ns.child, f"{path}/0/{case.id}", path, reason)
        elif kind == NodeKind.LAUNCH_PLAN and ns.handle is not None and self._lp is not None:
            req = LaunchRequest(
                ctx.state.execution_id,
                path,
                np_.node.workflow_node.launchplan_ref,
                np_.launch_plan,
                literals_pb2.LiteralMap(),
                ns.attempt,
            )
            with contextlib.suppress(Exception):
                self._lp.abort(req, ns.handle, reason)
        elif kind == NodeKind.ARRAY and ns.array is not None and np_.array is not None:
            self._abort_items(ctx, np_.array.sub, ns.array, path, reason)
        ns.rt = None
        self._release_slot(ctx, ns)
        self._release_reservation(ctx, np_, ns, path)
        ns.error = make_error("Aborted", reason)
        self._set(ctx, np_, ns, NodePhase.ABORTED, path, parent)


def _count_running(gs: GraphState) -> int:
    n = 0
    for ns in gs.nodes:
        if ns is None:
            continue
        if ns.flags & FLAG_COUNTED:
            n += 1
        if isinstance(ns.child, GraphState):
            n += _count_running(ns.child)
        elif isinstance(ns.child, NodeState) and ns.child.flags & FLAG_COUNTED:
            n += 1
    return n
