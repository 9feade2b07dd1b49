"""Dynamic nodes: a task attempt that returned futures runs them as a nested graph.

The futures (a ``DynamicJobSpec``) are compiled with the same compiler against the tasks,
subworkflows and launch plans of the plan the node belongs to, stored at
``{path}/{attempt}/dynamic_compiled.pb`` and evaluated as a nested graph whose end outputs
become the node's outputs. Compiled plans are kept in a small LRU cache.
"""

from __future__ import annotations

from collections import OrderedDict

from caddis_idl.core.v1 import compiler_pb2, dynamic_job_pb2, literals_pb2
from caddis_propeller.compiler import CompilationError, compile_dynamic
from caddis_propeller.engine.core import _SYSTEM, EngineCore, _Ctx, _GraphRT, make_error
from caddis_propeller.engine.interfaces import Dynamic, TaskAttempt
from caddis_propeller.engine.plan import NodePlan, WorkflowPlan
from caddis_propeller.engine.state import FLAG_DYNAMIC, GraphPhase, GraphState, NodePhase, NodeState


class DynamicNodes(EngineCore):
    """Evaluates task nodes in their dynamic phase (``NodePhase.DYNAMIC_RUNNING``)."""

    # Compiled dynamic plans (LRU) and the plan of the task node being evaluated,
    # set by Engine.__init__ and by _eval_task.
    _dyn_plans: OrderedDict[str, WorkflowPlan]
    _current_wp: WorkflowPlan | None

    def _begin_dynamic(
        self,
        ctx: _Ctx,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
        att: TaskAttempt,
        status: Dynamic,
    ) -> None:
        spec = status.spec
        if spec is None:
            spec = self._data.get(f"{att.output_prefix}/futures.pb", dynamic_job_pb2.DynamicJobSpec)
            if spec is None:
                err = make_error(
                    "FuturesNotFound",
                    f"task reported futures but none were found at {att.output_prefix}/futures.pb",
                    kind=_SYSTEM,
                    recoverable=True,
                )
                self._retry_or_fail(ctx, np_, ns, err, path, parent)
                return
        else:
            self._data.put(f"{att.output_prefix}/futures.pb", spec)
        wp = self._current_wp
        try:
            closure = compile_dynamic(
                spec,
                node_id=np_.id,
                interface=att.task.interface,
                parent_id=att.task.id,
                tasks=wp.tasks.values() if wp is not None else (),
                subworkflows=wp.subworkflow_templates() if wp is not None else (),
                launch_plans=wp.launch_plans.values() if wp is not None else (),
            )
        except CompilationError as exc:
            err = make_error("MalformedDynamicWorkflow", f"node {path}: {exc}")
            self._fail(ctx, np_, ns, err, path, parent)
            return
        dkey = f"{att.output_prefix}/dynamic_compiled.pb"
        self._data.put(dkey, closure)
        self._remember_dyn(dkey, WorkflowPlan(closure))
        ns.child = GraphState()
        ns.flags |= FLAG_DYNAMIC
        self._set(ctx, np_, ns, NodePhase.DYNAMIC_RUNNING, path, parent)

    def _remember_dyn(self, key: str, wp: WorkflowPlan) -> None:
        self._dyn_plans[key] = wp
        self._dyn_plans.move_to_end(key)
        while len(self._dyn_plans) > self.config.dynamic_plan_cache_size:
            self._dyn_plans.popitem(last=False)

    def _dyn_plan(self, key: str) -> WorkflowPlan | None:
        wp = self._dyn_plans.get(key)
        if wp is None:
            closure = self._data.get(key, compiler_pb2.CompiledWorkflowClosure)
            if closure is None:
                return None
            wp = WorkflowPlan(closure)
            self._remember_dyn(key, wp)
        return wp

    def _eval_dynamic(
        self,
        ctx: _Ctx,
        rt: _GraphRT,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
    ) -> None:
        child = ns.child
        assert isinstance(child, GraphState)
        attempt_dir = f"{path}/{ns.attempt}"
        wp = self._dyn_plan(f"{ctx.dp}/{attempt_dir}/dynamic_compiled.pb")
        if wp is None:
            err = make_error(
                "DynamicClosureMissing",
                f"compiled dynamic workflow of {path} not found",
                kind=_SYSTEM,
                recoverable=True,
            )
            self._retry_or_fail(ctx, np_, ns, err, path, parent)
            return
        self._eval_graph(
            ctx, wp, wp.primary, child, f"{attempt_dir}/", f"{ctx.dp}/{path}/inputs.pb", path
        )
        if child.phase == GraphPhase.SUCCEEDED:
            if self._cache_on(ctx, np_):
                outputs = self._data.get(
                    f"{ctx.dp}/{attempt_dir}/outputs.pb", literals_pb2.LiteralMap
                )
                if outputs is not None:
                    ns.cache_status = self._cache_put(ctx, np_, self._inputs_of(ctx, path), outputs)
            self._release_reservation(ctx, np_, ns, path)
            self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
        elif child.phase in (GraphPhase.FAILED, GraphPhase.ABORTED):
            err = child.error or make_error("DynamicWorkflowFailed", f"{path} failed")
            self._retry_or_fail(ctx, np_, ns, err, path, parent)
