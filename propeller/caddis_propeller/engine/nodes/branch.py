"""Branch nodes: evaluate the conditions, run the chosen case, report the others SKIPPED."""

from __future__ import annotations

from caddis_idl.core.v1 import literals_pb2
from caddis_propeller.engine.core import EngineCore, _Ctx, _GraphRT, make_error
from caddis_propeller.engine.plan import NodePlan
from caddis_propeller.engine.state import DONE_OK_PHASES, TERMINAL_PHASES, NodePhase, NodeState
from caddis_propeller.engine.values import ResolutionError, evaluate_condition


class BranchNodes(EngineCore):
    """Evaluates branch nodes (``NodeKind.BRANCH``)."""

    def _eval_branch(
        self,
        ctx: _Ctx,
        rt: _GraphRT,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
    ) -> None:
        if ns.phase == NodePhase.NOT_STARTED:
            inputs = self._start_inputs(ctx, rt, np_, ns, path, parent)
            if inputs is None:
                return
            chosen = -1
            try:
                for idx, (cond, _case) in enumerate(np_.cases):
                    if evaluate_condition(cond, inputs):
                        chosen = idx
                        break
            except ResolutionError as exc:
                self._fail(
                    ctx, np_, ns, make_error("BranchConditionError", f"{path}: {exc}"), path, parent
                )
                return
            if chosen < 0:
                if np_.else_node is not None:
                    chosen = len(np_.cases)
                else:
                    msg = np_.else_error or "no branch condition matched and there is no else"
                    self._fail(ctx, np_, ns, make_error("BranchNoMatch", msg), path, parent)
                    return
            ns.branch_case = chosen
            ns.child = NodeState()
            self._set(ctx, np_, ns, NodePhase.RUNNING, path, parent)
            if self._events is not None:
                others = [c for _e, c in np_.cases] + (
                    [np_.else_node] if np_.else_node is not None else []
                )
                for j, other in enumerate(others):
                    if j != chosen:
                        self._set(
                            ctx, other, NodeState(), NodePhase.SKIPPED, f"{path}/0/{other.id}", path
                        )
        case = np_.cases[ns.branch_case][1] if ns.branch_case < len(np_.cases) else np_.else_node
        assert case is not None and isinstance(ns.child, NodeState)
        cs = ns.child
        cpath = f"{path}/0/{case.id}"
        self._eval_node(ctx, rt, case, cs, cpath, path)
        if cs.phase in DONE_OK_PHASES:
            out = self._data.get(
                f"{ctx.dp}/{cpath}/{cs.attempt}/outputs.pb", literals_pb2.LiteralMap
            )
            self._data.put(f"{ctx.dp}/{path}/0/outputs.pb", out or literals_pb2.LiteralMap())
            self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
        elif cs.phase in TERMINAL_PHASES and cs.phase != NodePhase.SKIPPED:
            err = cs.error or make_error("BranchFailed", f"{cpath} ended in {cs.phase.name}")
            self._fail(ctx, np_, ns, err, path, parent)
