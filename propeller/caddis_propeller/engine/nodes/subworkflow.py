"""Workflow nodes: subworkflows (a nested graph in this execution) and launch plans.

A subworkflow node evaluates the subworkflow's graph under ``{path}/0/``; a launch-plan node
starts a child execution through the ``LaunchPlanRunner`` (local: inline; propeller: admin)
and polls it like a task attempt.
"""

from __future__ import annotations

from caddis_idl.core.v1 import literals_pb2
from caddis_propeller.engine.core import _SYSTEM, EngineCore, _Ctx, _GraphRT, make_error
from caddis_propeller.engine.interfaces import Failed, LaunchRequest, Running, Succeeded
from caddis_propeller.engine.plan import NodePlan
from caddis_propeller.engine.state import GraphPhase, GraphState, NodePhase, NodeState


class SubworkflowNodes(EngineCore):
    """Evaluates subworkflow and launch-plan nodes (``SUBWORKFLOW``, ``LAUNCH_PLAN``)."""

    def _eval_subworkflow(
        self,
        ctx: _Ctx,
        rt: _GraphRT,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
    ) -> None:
        if ns.phase == NodePhase.NOT_STARTED:
            if self._start_inputs(ctx, rt, np_, ns, path, parent) is None:
                return
            ns.child = GraphState()
            self._set(ctx, np_, ns, NodePhase.RUNNING, path, parent)
        child = ns.child
        assert isinstance(child, GraphState) and np_.sub_key is not None
        sub = rt.wp.subworkflow(np_.sub_key)
        self._eval_graph(ctx, rt.wp, sub, child, f"{path}/0/", f"{ctx.dp}/{path}/inputs.pb", path)
        if child.phase == GraphPhase.SUCCEEDED:
            self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
        elif child.phase in (GraphPhase.FAILED, GraphPhase.ABORTED):
            err = child.error or make_error("SubWorkflowFailed", f"{path} failed")
            self._fail(ctx, np_, ns, err, path, parent)

    def _eval_launch_plan(
        self,
        ctx: _Ctx,
        rt: _GraphRT,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
    ) -> None:
        inputs: literals_pb2.LiteralMap | None = None
        if ns.phase == NodePhase.NOT_STARTED:
            inputs = self._start_inputs(ctx, rt, np_, ns, path, parent)
            if inputs is None:
                return
            self._set(ctx, np_, ns, NodePhase.QUEUED, path, parent)
        if self._lp is None:
            err = make_error(
                "NoLaunchPlanRunner", "this engine cannot run launch plans", kind=_SYSTEM
            )
            self._fail(ctx, np_, ns, err, path, parent)
            return
        if ns.phase == NodePhase.QUEUED and not self._may_start(ctx, ns):
            return
        req = LaunchRequest(
            execution_id=ctx.state.execution_id,
            node_path=path,
            launch_plan=np_.node.workflow_node.launchplan_ref,
            template=np_.launch_plan,
            inputs=inputs if inputs is not None else self._inputs_of(ctx, path),
            attempt=ns.attempt,
        )
        try:
            if ns.phase == NodePhase.QUEUED:
                ns.started_at = ctx.now
                status = self._lp.launch(req)
            else:
                status = self._lp.check(req, ns.handle or "")
        except Exception as exc:
            status = Failed(make_error("LaunchError", f"{type(exc).__name__}: {exc}", kind=_SYSTEM))
        if isinstance(status, Running):
            ns.handle = status.handle
            if ns.phase != NodePhase.RUNNING:
                self._set(ctx, np_, ns, NodePhase.RUNNING, path, parent)
            ctx.pending = True
        elif isinstance(status, Succeeded):
            self._release_slot(ctx, ns)
            self._data.put(
                f"{ctx.dp}/{path}/{ns.attempt}/outputs.pb",
                status.outputs if status.outputs is not None else literals_pb2.LiteralMap(),
            )
            self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
        elif isinstance(status, Failed):
            self._retry_or_fail(ctx, np_, ns, status.error, path, parent)
        else:
            err = make_error("UnexpectedStatus", "a launch plan cannot return futures")
            self._fail(ctx, np_, ns, err, path, parent)
