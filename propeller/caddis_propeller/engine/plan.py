"""Static execution plans: a compiled closure indexed once for fast evaluation.

A plan is derived deterministically from an (immutable) CompiledWorkflowClosure, so it is
never persisted: the driver keeps it in memory or rebuilds it with ``Engine.prepare``. Nodes get
integer indices (0 = start-node, 1 = end-node, then template order); the mutable state refers to
nodes by these indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from caddis_idl.core.v1 import (
    compiler_pb2,
    condition_pb2,
    literals_pb2,
    tasks_pb2,
    workflow_pb2,
)
from caddis_propeller.compiler import (
    END_NODE,
    FAILURE_NODE_ERROR_INPUT,
    START_NODE,
    id_key,
    is_optional,
)
from caddis_propeller.compiler.compile import IdKey

START_INDEX = 0
END_INDEX = 1

NONE_LITERAL = literals_pb2.Literal(scalar=literals_pb2.Scalar(none_type=literals_pb2.Void()))

_POLICY = workflow_pb2.WorkflowMetadata.OnFailurePolicy
_FAIL_LATER = _POLICY.ON_FAILURE_POLICY_FAIL_AFTER_EXECUTABLE_NODES_COMPLETE


class NodeKind(IntEnum):
    """What a node does."""

    START = 0
    END = 1
    TASK = 2
    SUBWORKFLOW = 3
    LAUNCH_PLAN = 4
    BRANCH = 5
    GATE = 6
    ARRAY = 7


# A compiled binding ("resolver"), as nested tuples for speed:
#   ("p", node_index, var, attr_path)   promise (attr_path: tuple of str|int, possibly empty)
#   ("l", literal)                      constant
#   ("c", [resolver, ...])              collection
#   ("m", {key: resolver})              map
#   ("u", resolver, LiteralType)        wrap the value in a Union scalar of that type
Resolver = tuple[Any, ...]


@dataclass(slots=True, eq=False)
class ArrayPlan:
    """Static facts of an array node."""

    sub: NodePlan
    parallelism: int
    min_successes: int | None
    min_success_ratio: float | None
    bound: frozenset[str]
    run_all: bool
    output_vars: tuple[str, ...]

    def required_successes(self, size: int) -> int:
        """How many items must succeed for the node to succeed."""
        if self.min_successes is not None:
            return min(self.min_successes, size)
        if self.min_success_ratio is not None:
            return min(size, math.ceil(self.min_success_ratio * size - 1e-9))
        return size


@dataclass(slots=True, eq=False)
class NodePlan:
    """Static facts of one node, ready for evaluation."""

    id: str
    index: int
    kind: NodeKind
    node: workflow_pb2.Node
    bindings: list[tuple[str, Resolver]] = field(default_factory=list)
    defaults: list[tuple[str, literals_pb2.Literal]] = field(default_factory=list)
    upstream: tuple[int, ...] = ()
    downstream: tuple[int, ...] = ()
    task: tasks_pb2.TaskTemplate | None = None
    output_vars: tuple[str, ...] = ()
    retries: int = 0
    timeout: float | None = None
    interruptible: bool = False
    cacheable: bool = False
    cache_version: str = ""
    cache_serializable: bool = False
    sub_key: IdKey | None = None
    launch_plan: workflow_pb2.LaunchPlanTemplate | None = None
    cases: list[tuple[condition_pb2.BooleanExpression, NodePlan]] = field(default_factory=list)
    else_node: NodePlan | None = None
    else_error: str | None = None
    array: ArrayPlan | None = None
    error_input: str | None = None

    @property
    def name(self) -> str:
        """NodeMetadata.name or the id."""
        return self.node.metadata.name or self.id


@dataclass(slots=True, eq=False)
class GraphPlan:
    """Static facts of one workflow graph (primary, subworkflow or dynamic)."""

    template: workflow_pb2.WorkflowTemplate
    nodes: list[NodePlan]
    by_id: dict[str, int]
    outputs: list[tuple[str, Resolver]]
    failure_node: NodePlan | None
    fail_immediately: bool
    output_vars: tuple[str, ...]


def _seconds(d: Any) -> float | None:
    total = float(d.seconds) + d.nanos / 1e9
    return total if total > 0 else None


class WorkflowPlan:
    """An indexed CompiledWorkflowClosure: the primary graph, subworkflows, tasks, launch plans.

    Attributes:
        closure: The closure this plan was built from.
        primary: The primary workflow's graph plan.
    """

    def __init__(self, closure: compiler_pb2.CompiledWorkflowClosure) -> None:
        self.closure = closure
        self.tasks: dict[IdKey, tasks_pb2.TaskTemplate] = {
            id_key(t.template.id): t.template for t in closure.tasks
        }
        self.launch_plans: dict[IdKey, workflow_pb2.LaunchPlanTemplate] = {
            id_key(lp.template.id): lp.template for lp in closure.launch_plans
        }
        self._sub_compiled: dict[IdKey, compiler_pb2.CompiledWorkflow] = {
            id_key(w.template.id): w for w in closure.sub_workflows
        }
        self._graphs: dict[IdKey, GraphPlan] = {}
        self.primary = self._build(closure.primary)

    def subworkflow(self, key: IdKey) -> GraphPlan:
        """The graph plan of a subworkflow (built on first use)."""
        plan = self._graphs.get(key)
        if plan is None:
            plan = self._build(self._sub_compiled[key])
            self._graphs[key] = plan
        return plan

    def subworkflow_templates(self) -> list[workflow_pb2.WorkflowTemplate]:
        """Every subworkflow template in the closure (for compiling dynamic specs)."""
        return [w.template for w in self._sub_compiled.values()]

    # -- building ---------------------------------------------------------------------------
    def _build(self, compiled: compiler_pb2.CompiledWorkflow) -> GraphPlan:
        wf = compiled.template
        by_id: dict[str, int] = {START_NODE: START_INDEX, END_NODE: END_INDEX}
        for i, node in enumerate(wf.nodes):
            by_id[node.id] = i + 2
        interruptible_default = wf.metadata_defaults.interruptible
        nodes = [
            NodePlan(START_NODE, START_INDEX, NodeKind.START, workflow_pb2.Node(id=START_NODE)),
            NodePlan(END_NODE, END_INDEX, NodeKind.END, workflow_pb2.Node(id=END_NODE)),
        ]
        for i, node in enumerate(wf.nodes):
            nodes.append(self._node(node, i + 2, by_id, interruptible_default))
        conn = compiled.connections
        for np_ in nodes:
            ups = conn.upstream[np_.id].ids if np_.id in conn.upstream else []
            downs = conn.downstream[np_.id].ids if np_.id in conn.downstream else []
            np_.upstream = tuple(by_id[u] for u in ups)
            np_.downstream = tuple(by_id[d] for d in downs)
        failure = None
        if wf.HasField("failure_node") and wf.failure_node.id:
            failure = self._node(wf.failure_node, -1, by_id, interruptible_default)
            iface_inputs = self._input_types(failure)
            bound = {b for b, _ in failure.bindings}
            if FAILURE_NODE_ERROR_INPUT in iface_inputs and FAILURE_NODE_ERROR_INPUT not in bound:
                failure.error_input = FAILURE_NODE_ERROR_INPUT
                failure.defaults = [
                    (k, v) for k, v in failure.defaults if k != FAILURE_NODE_ERROR_INPUT
                ]
        return GraphPlan(
            template=wf,
            nodes=nodes,
            by_id=by_id,
            outputs=[(b.var, self._resolver(b.binding, by_id)) for b in wf.outputs],
            failure_node=failure,
            fail_immediately=wf.metadata.on_failure != _FAIL_LATER,
            output_vars=tuple(wf.interface.outputs.variables),
        )

    def _input_types(self, np_: NodePlan) -> dict[str, Any]:
        if np_.task is not None:
            return dict(np_.task.interface.inputs.variables)
        return {}

    def _node(
        self,
        node: workflow_pb2.Node,
        index: int,
        by_id: dict[str, int],
        interruptible_default: bool,
    ) -> NodePlan:
        target = node.WhichOneof("target")
        md = node.metadata
        np_ = NodePlan(node.id, index, NodeKind.TASK, node)
        np_.bindings = [(b.var, self._resolver(b.binding, by_id)) for b in node.inputs]
        bound = {b.var for b in node.inputs}
        if target == "task_node":
            task = self.tasks[id_key(node.task_node.reference_id)]
            np_.task = task
            self._task_metadata(np_, task, md, interruptible_default)
            np_.output_vars = tuple(task.interface.outputs.variables)
            np_.defaults = [
                (k, NONE_LITERAL)
                for k, v in task.interface.inputs.variables.items()
                if k not in bound and is_optional(v.type)
            ]
        elif target == "workflow_node":
            wn = node.workflow_node
            np_.retries = md.retries.retries if md.HasField("retries") else 0
            np_.timeout = _seconds(md.timeout) if md.HasField("timeout") else None
            if wn.WhichOneof("reference") == "sub_workflow_ref":
                np_.kind = NodeKind.SUBWORKFLOW
                np_.sub_key = id_key(wn.sub_workflow_ref)
                sub_wf = self._sub_compiled[np_.sub_key].template
                np_.output_vars = tuple(sub_wf.interface.outputs.variables)
                np_.defaults = [
                    (k, NONE_LITERAL)
                    for k, v in sub_wf.interface.inputs.variables.items()
                    if k not in bound and is_optional(v.type)
                ]
            else:
                np_.kind = NodeKind.LAUNCH_PLAN
                lp = self.launch_plans.get(id_key(wn.launchplan_ref))
                np_.launch_plan = lp
                if lp is not None:
                    np_.output_vars = tuple(lp.interface.outputs.variables)
        elif target == "branch_node":
            np_.kind = NodeKind.BRANCH
            ie = node.branch_node.if_else
            blocks = [ie.case, *ie.other]
            np_.cases = [
                (b.condition, self._node(b.then_node, -1, by_id, interruptible_default))
                for b in blocks
            ]
            if ie.WhichOneof("default") == "else_node":
                np_.else_node = self._node(ie.else_node, -1, by_id, interruptible_default)
            elif ie.WhichOneof("default") == "error":
                np_.else_error = ie.error.message or "no branch condition matched"
            outs: set[str] | None = None
            for _c, case in np_.cases + ([(None, np_.else_node)] if np_.else_node else []):
                assert case is not None
                outs = set(case.output_vars) if outs is None else outs & set(case.output_vars)
            np_.output_vars = tuple(sorted(outs or ()))
        elif target == "gate_node":
            np_.kind = NodeKind.GATE
            np_.timeout = _seconds(md.timeout) if md.HasField("timeout") else None
            if node.gate_node.WhichOneof("condition") == "signal":
                np_.output_vars = (node.gate_node.signal.output_variable_name,)
            else:
                np_.output_vars = tuple(b.var for b in node.inputs)
        elif target == "array_node":
            np_.kind = NodeKind.ARRAY
            arr = node.array_node
            sub = self._node(arr.node, -1, by_id, interruptible_default)
            # Item inputs come from the array node's own bindings; the sub-node's are ignored.
            sub.bindings = []
            sub.defaults = []
            crit = arr.WhichOneof("success_criteria")
            np_.array = ArrayPlan(
                sub=sub,
                parallelism=arr.parallelism if arr.HasField("parallelism") else 0,
                min_successes=arr.min_successes if crit == "min_successes" else None,
                min_success_ratio=arr.min_success_ratio if crit == "min_success_ratio" else None,
                bound=frozenset(arr.bound_inputs),
                run_all=arr.run_all_sub_nodes,
                output_vars=sub.output_vars,
            )
            np_.task = sub.task
            np_.output_vars = sub.output_vars
            if sub.task is not None:
                np_.defaults = [
                    (k, NONE_LITERAL)
                    for k, v in sub.task.interface.inputs.variables.items()
                    if k not in bound and is_optional(v.type)
                ]
        return np_

    @staticmethod
    def _task_metadata(
        np_: NodePlan,
        task: tasks_pb2.TaskTemplate,
        md: workflow_pb2.NodeMetadata,
        interruptible_default: bool,
    ) -> None:
        tm = task.metadata
        np_.retries = md.retries.retries if md.HasField("retries") else tm.retries.retries
        if md.HasField("timeout"):
            np_.timeout = _seconds(md.timeout)
        elif tm.HasField("timeout"):
            np_.timeout = _seconds(tm.timeout)
        if md.HasField("interruptible"):
            np_.interruptible = md.interruptible
        elif tm.HasField("interruptible"):
            np_.interruptible = tm.interruptible
        else:
            np_.interruptible = interruptible_default
        np_.cacheable = md.cacheable if md.HasField("cacheable") else tm.cacheable
        np_.cache_version = md.cache_version or tm.cache_version
        np_.cache_serializable = (
            md.cache_serializable if md.HasField("cache_serializable") else tm.cache_serializable
        )

    def _resolver(self, bd: literals_pb2.BindingData, by_id: dict[str, int]) -> Resolver:
        kind = bd.WhichOneof("value")
        r: Resolver
        if kind == "promise":
            p = bd.promise
            attrs = tuple(
                a.int_value if a.WhichOneof("value") == "int_value" else a.string_value
                for a in p.attr_path
            )
            r = ("p", by_id[p.node_id], p.var, attrs)
        elif kind == "scalar":
            r = ("l", literals_pb2.Literal(scalar=bd.scalar))
        elif kind == "collection":
            r = ("c", [self._resolver(b, by_id) for b in bd.collection.bindings])
        elif kind == "map":
            r = ("m", {k: self._resolver(b, by_id) for k, b in bd.map.bindings.items()})
        elif kind == "offloaded_metadata":
            r = ("l", literals_pb2.Literal(offloaded_metadata=bd.offloaded_metadata))
        else:
            r = ("l", NONE_LITERAL)
        if bd.HasField("union"):
            r = ("u", r, bd.union.target_type)
        return r
