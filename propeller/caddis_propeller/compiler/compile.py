"""Compile workflow templates (and dynamic job specs) into CompiledWorkflowClosures.

Every check records a :class:`CompileIssue` and carries on, so one compile reports every
problem of a workflow; :class:`CompilationError` is raised once at the end.

Graph conventions (as in Flyte): the synthetic node ``start-node`` produces the workflow
inputs, ``end-node`` consumes the workflow outputs. A node's upstream set is its explicit
``upstream_node_ids`` plus every node its bindings (and, for a branch, its cases' bindings)
read from; nodes without upstream hang off ``start-node`` and nodes without downstream feed
``end-node``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from caddis_idl.core.v1 import (
    compiler_pb2,
    condition_pb2,
    dynamic_job_pb2,
    identifier_pb2,
    interface_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
    workflow_pb2,
)
from caddis_propeller.compiler.errors import CompilationError, CompileIssue, ErrorCode
from caddis_propeller.compiler.types import (
    format_type,
    is_castable,
    is_optional,
    is_primitive,
    list_of,
    optional,
    scalar_type_of,
)

START_NODE = "start-node"
END_NODE = "end-node"
RESERVED_NODE_IDS = frozenset({START_NODE, END_NODE})

# Name of the optional input through which a failure node receives the workflow's error.
FAILURE_NODE_ERROR_INPUT = "err"

IdKey = tuple[str, str, str, str]

_ST = types_pb2  # top-level enum values: plain ints, fast to read


def id_key(identifier: identifier_pb2.Identifier) -> IdKey:
    """Key an Identifier for lookups (resource type ignored: ids are looked up per kind)."""
    return (identifier.project, identifier.domain, identifier.name, identifier.version)


def format_id(identifier: identifier_pb2.Identifier) -> str:
    """Render an Identifier as ``project/domain/name@version`` for messages."""
    return f"{identifier.project}/{identifier.domain}/{identifier.name}@{identifier.version}"


@dataclass
class NodeInterface:
    """The typed inputs and outputs of a node as the compiler sees them.

    Attributes:
        inputs: Input variable types.
        outputs: Output variable types.
        required: Input names that must be bound.
    """

    inputs: dict[str, types_pb2.LiteralType] = field(default_factory=dict)
    outputs: dict[str, types_pb2.LiteralType] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)


def _interface_of(iface: interface_pb2.TypedInterface) -> NodeInterface:
    inputs = {k: v.type for k, v in iface.inputs.variables.items()}
    outputs = {k: v.type for k, v in iface.outputs.variables.items()}
    # Optional inputs may stay unbound: the engine binds them to None.
    required = {k for k, t in inputs.items() if not is_optional(t)}
    return NodeInterface(inputs, outputs, required)


class _Index:
    """The entities a compile may reference, keyed by identifier."""

    def __init__(
        self,
        tasks: Iterable[tasks_pb2.TaskTemplate],
        subworkflows: Iterable[workflow_pb2.WorkflowTemplate],
        launch_plans: Iterable[workflow_pb2.LaunchPlanTemplate],
    ) -> None:
        self.tasks = {id_key(t.id): t for t in tasks}
        self.subworkflows = {id_key(w.id): w for w in subworkflows}
        self.launch_plans = {id_key(lp.id): lp for lp in launch_plans}


class _TemplateCompiler:
    """Checks one workflow template and computes its connections."""

    def __init__(
        self, wf: workflow_pb2.WorkflowTemplate, index: _Index, issues: list[CompileIssue]
    ) -> None:
        self.wf = wf
        self.index = index
        self.issues = issues
        self.wf_name = wf.id.name
        self.nodes: dict[str, workflow_pb2.Node] = {}
        self.ifaces: dict[str, NodeInterface] = {}
        self.used_tasks: dict[IdKey, tasks_pb2.TaskTemplate] = {}
        self.used_subworkflows: dict[IdKey, workflow_pb2.WorkflowTemplate] = {}
        self.used_launch_plans: dict[IdKey, workflow_pb2.LaunchPlanTemplate] = {}

    # -- issue helpers --------------------------------------------------------------------
    def _add(self, code: ErrorCode, node_id: str, var: str, message: str) -> None:
        self.issues.append(CompileIssue(code, node_id, var, message, self.wf_name))

    # -- entry ---------------------------------------------------------------------------
    def run(self) -> compiler_pb2.ConnectionSet:
        wf = self.wf
        start_iface = NodeInterface(
            outputs={k: v.type for k, v in wf.interface.inputs.variables.items()}
        )
        self.ifaces[START_NODE] = start_iface
        all_ids: set[str] = set()
        for node in wf.nodes:
            self._register_ids(node, all_ids, top_level=True)
        for node in wf.nodes:
            if node.id in self.nodes and node.id not in self.ifaces:
                self.ifaces[node.id] = self._node_iface(node)

        deps: dict[str, list[str]] = {}
        for node_id, node in self.nodes.items():
            deps[node_id] = self._node_deps(node)
        for node in self.nodes.values():
            self._check_node(node)

        in_cycle = self._check_cycles(deps)
        self._check_outputs()
        if wf.HasField("failure_node") and wf.failure_node.id:
            self._check_failure_node(wf.failure_node)
        return self._connections(deps, in_cycle)

    # -- ids and interfaces ----------------------------------------------------------------
    def _register_ids(self, node: workflow_pb2.Node, seen: set[str], top_level: bool) -> None:
        if not node.id:
            self._add(ErrorCode.INVALID_NODE_ID, "", "", "a node has an empty id")
        elif node.id in RESERVED_NODE_IDS:
            self._add(
                ErrorCode.INVALID_NODE_ID,
                node.id,
                "",
                f"node id '{node.id}' is reserved for the workflow's synthetic nodes; rename it",
            )
        elif node.id in seen:
            self._add(
                ErrorCode.DUPLICATE_NODE_ID,
                node.id,
                "",
                f"node id '{node.id}' is used more than once; node ids must be unique",
            )
        else:
            seen.add(node.id)
            if top_level:
                self.nodes[node.id] = node
        if node.WhichOneof("target") == "branch_node":
            for case_node in _branch_nodes(node.branch_node):
                self._register_ids(case_node, seen, top_level=False)

    def _node_iface(self, node: workflow_pb2.Node) -> NodeInterface:
        kind = node.WhichOneof("target")
        if kind == "task_node":
            task = self._task(node.task_node.reference_id, node.id)
            return _interface_of(task.interface) if task is not None else NodeInterface()
        if kind == "workflow_node":
            wn = node.workflow_node
            if wn.WhichOneof("reference") == "sub_workflow_ref":
                sub = self.index.subworkflows.get(id_key(wn.sub_workflow_ref))
                if sub is None:
                    self._add(
                        ErrorCode.UNKNOWN_SUBWORKFLOW,
                        node.id,
                        "",
                        f"references subworkflow {format_id(wn.sub_workflow_ref)}, "
                        "which was not supplied to the compiler",
                    )
                    return NodeInterface()
                self.used_subworkflows[id_key(sub.id)] = sub
                return _interface_of(sub.interface)
            if wn.WhichOneof("reference") == "launchplan_ref":
                lp = self.index.launch_plans.get(id_key(wn.launchplan_ref))
                if lp is None:
                    self._add(
                        ErrorCode.UNKNOWN_LAUNCH_PLAN,
                        node.id,
                        "",
                        f"references launch plan {format_id(wn.launchplan_ref)}, "
                        "which was not supplied to the compiler",
                    )
                    return NodeInterface()
                self.used_launch_plans[id_key(lp.id)] = lp
                iface = _interface_of(lp.interface)
                # Launch plans carry defaults on the admin side: only the child launch can
                # tell whether an unbound input has one, so none is required here.
                iface.required = set()
                return iface
            self._add(ErrorCode.NO_TARGET, node.id, "", "workflow node references nothing")
            return NodeInterface()
        if kind == "branch_node":
            return self._branch_iface(node)
        if kind == "gate_node":
            return self._gate_iface(node)
        if kind == "array_node":
            return self._array_iface(node)
        self._add(
            ErrorCode.NO_TARGET,
            node.id,
            "",
            "node has no target (task, workflow, branch, gate or array)",
        )
        return NodeInterface()

    def _task(self, ref: identifier_pb2.Identifier, node_id: str) -> tasks_pb2.TaskTemplate | None:
        task = self.index.tasks.get(id_key(ref))
        if task is None:
            self._add(
                ErrorCode.UNKNOWN_TASK,
                node_id,
                "",
                f"references task {format_id(ref)}, which was not supplied to the compiler",
            )
            return None
        self.used_tasks[id_key(task.id)] = task
        return task

    def _bound_types(self, node: workflow_pb2.Node) -> dict[str, types_pb2.LiteralType]:
        out: dict[str, types_pb2.LiteralType] = {}
        for b in node.inputs:
            t = self._binding_type(b.binding)
            out[b.var] = t if t is not None else types_pb2.LiteralType()
        return out

    def _branch_iface(self, node: workflow_pb2.Node) -> NodeInterface:
        ie = node.branch_node.if_else
        if not ie.HasField("case") or not ie.case.HasField("then_node"):
            self._add(ErrorCode.INVALID_BRANCH, node.id, "", "branch has no first case")
            return NodeInterface(inputs=self._bound_types(node))
        case_nodes = _branch_nodes(node.branch_node)
        outputs: dict[str, types_pb2.LiteralType] | None = None
        for case_node in case_nodes:
            iface = self._node_iface(case_node)
            self.ifaces[case_node.id] = iface
            if outputs is None:
                outputs = dict(iface.outputs)
            else:
                # Downstream may only read outputs that every branch produces.
                outputs = {k: t for k, t in outputs.items() if k in iface.outputs}
        return NodeInterface(inputs=self._bound_types(node), outputs=outputs or {})

    def _gate_iface(self, node: workflow_pb2.Node) -> NodeInterface:
        gate = node.gate_node
        kind = gate.WhichOneof("condition")
        inputs = self._bound_types(node)
        if kind == "signal":
            name = gate.signal.output_variable_name
            if not name:
                self._add(
                    ErrorCode.INVALID_GATE, node.id, "", "signal gate has no output_variable_name"
                )
                return NodeInterface(inputs=inputs)
            return NodeInterface(inputs=inputs, outputs={name: gate.signal.type})
        if kind is None:
            self._add(ErrorCode.INVALID_GATE, node.id, "", "gate node has no condition")
        # Approve and sleep gates pass their inputs through (flytekit's approve(value)).
        return NodeInterface(inputs=inputs, outputs=dict(inputs))

    def _array_iface(self, node: workflow_pb2.Node) -> NodeInterface:
        arr = node.array_node
        if arr.WhichOneof("success_criteria") == "min_success_ratio" and not (
            0.0 <= arr.min_success_ratio <= 1.0
        ):
            self._add(
                ErrorCode.INVALID_ARRAY_NODE,
                node.id,
                "",
                f"min_success_ratio must lie in [0, 1], got {arr.min_success_ratio}",
            )
        sub = arr.node
        if sub.WhichOneof("target") != "task_node":
            self._add(
                ErrorCode.INVALID_ARRAY_NODE,
                node.id,
                "",
                "an array node maps a task node; the sub-node has target "
                f"'{sub.WhichOneof('target')}'",
            )
            return NodeInterface()
        task = self._task(sub.task_node.reference_id, node.id)
        if task is None:
            return NodeInterface()
        sub_iface = _interface_of(task.interface)
        bound = set(arr.bound_inputs)
        for var in bound - set(sub_iface.inputs):
            self._add(
                ErrorCode.UNKNOWN_INPUT,
                node.id,
                var,
                f"bound input '{var}' is not an input of task {format_id(task.id)}",
            )
        inputs = {k: (t if k in bound else list_of(t)) for k, t in sub_iface.inputs.items()}
        tolerant = (
            arr.WhichOneof("success_criteria") == "min_success_ratio" and arr.min_success_ratio < 1
        ) or arr.WhichOneof("success_criteria") == "min_successes"
        # Failed items yield None when failures are tolerated, so outputs become Optional.
        outputs = {k: list_of(optional(t) if tolerant else t) for k, t in sub_iface.outputs.items()}
        return NodeInterface(inputs, outputs, set(sub_iface.required))

    # -- dependencies -----------------------------------------------------------------------
    def _node_deps(self, node: workflow_pb2.Node) -> list[str]:
        deps: list[str] = []
        for up in node.upstream_node_ids:
            if up == START_NODE:
                continue
            if up not in self.nodes:
                self._add(
                    ErrorCode.UNKNOWN_NODE,
                    node.id,
                    "",
                    f"upstream_node_ids names '{up}', which is not a node of this workflow",
                )
            elif up not in deps:
                deps.append(up)
        for ref_node, ref in _promises_of(node):
            self._check_promise(ref_node, ref)
            if ref.node_id in self.nodes and ref.node_id not in deps:
                deps.append(ref.node_id)
        return deps

    def _check_promise(self, node: workflow_pb2.Node, ref: literals_pb2.OutputReference) -> None:
        if ref.node_id != START_NODE and ref.node_id not in self.nodes:
            self._add(
                ErrorCode.UNKNOWN_NODE,
                node.id,
                ref.var,
                f"reads output '{ref.var}' of node '{ref.node_id}', which is not a node of "
                "this workflow",
            )
            return
        iface = self.ifaces.get(ref.node_id)
        if iface is None or ref.var in iface.outputs:
            return
        if ref.node_id == START_NODE:
            msg = f"reads workflow input '{ref.var}', which the workflow does not declare"
        else:
            have = ", ".join(sorted(iface.outputs)) or "none"
            msg = (
                f"reads output '{ref.var}' of node '{ref.node_id}', which has no such output "
                f"(outputs: {have})"
            )
        self._add(ErrorCode.UNKNOWN_OUTPUT, node.id, ref.var, msg)

    # -- binding checks ---------------------------------------------------------------------
    def _promise_type(self, ref: literals_pb2.OutputReference) -> types_pb2.LiteralType | None:
        iface = self.ifaces.get(ref.node_id)
        if iface is None or ref.var not in iface.outputs:
            return None
        t: types_pb2.LiteralType | None = iface.outputs[ref.var]
        for attr in ref.attr_path:
            t = _attr_type(t, attr) if t is not None else None
        return t

    def _binding_type(self, bd: literals_pb2.BindingData) -> types_pb2.LiteralType | None:
        kind = bd.WhichOneof("value")
        if kind == "promise":
            return self._promise_type(bd.promise)
        if kind == "scalar":
            return scalar_type_of(bd.scalar)
        if kind == "offloaded_metadata" and bd.offloaded_metadata.HasField("inferred_type"):
            return bd.offloaded_metadata.inferred_type
        return None

    def _mismatch(
        self, bd: literals_pb2.BindingData, expected: types_pb2.LiteralType
    ) -> str | None:
        """Describe why ``bd`` cannot bind to ``expected`` (None when it can or cannot tell)."""
        kind = bd.WhichOneof("value")
        exp_kind = expected.WhichOneof("type")
        if exp_kind is None:
            return None
        if kind in ("collection", "map") and exp_kind == "union_type":
            if any(self._mismatch(bd, v) is None for v in expected.union_type.variants):
                return None
            return f"the {'list' if kind == 'collection' else 'dict'} value fits no variant"
        if kind == "promise":
            t = self._promise_type(bd.promise)
            if t is None or is_castable(t, expected):
                return None
            ref = bd.promise
            src = (
                f"workflow input '{ref.var}'"
                if ref.node_id == START_NODE
                else f"output '{ref.var}' of node '{ref.node_id}'"
            )
            if ref.attr_path:
                src += "".join(f"[{_attr_repr(a)}]" for a in ref.attr_path)
            return f"{src} has type {format_type(t)}"
        if kind == "scalar":
            return self._scalar_mismatch(bd.scalar, expected)
        if kind == "collection":
            if exp_kind != "collection_type":
                return "a list value is bound"
            for i, el in enumerate(bd.collection.bindings):
                m = self._mismatch(el, expected.collection_type)
                if m is not None:
                    return f"element {i}: {m}"
            return None
        if kind == "map":
            if exp_kind == "simple" and expected.simple == _ST.SIMPLE_TYPE_STRUCT:
                return None  # a dict of values bound to a generic struct / dataclass
            if exp_kind != "map_value_type":
                return "a dict value is bound"
            for key, el in bd.map.bindings.items():
                m = self._mismatch(el, expected.map_value_type)
                if m is not None:
                    return f"key '{key}': {m}"
            return None
        t = self._binding_type(bd)
        if t is not None and not is_castable(t, expected):
            return f"the value has type {format_type(t)}"
        return None

    def _scalar_mismatch(
        self, scalar: literals_pb2.Scalar, expected: types_pb2.LiteralType
    ) -> str | None:
        t = scalar_type_of(scalar)
        if t is None:
            return None
        # Enum values travel as strings: accept a constant string that names a member.
        if expected.WhichOneof("type") == "enum_type" and scalar.primitive.HasField("string_value"):
            if scalar.primitive.string_value in expected.enum_type.values:
                return None
            return (
                f"the constant '{scalar.primitive.string_value}' is not one of "
                f"{format_type(expected)}"
            )
        if is_castable(t, expected):
            return None
        return f"the constant value has type {format_type(t)}"

    def _check_bindings(
        self,
        node: workflow_pb2.Node,
        iface: NodeInterface,
        exempt: Sequence[str] = (),
    ) -> None:
        bound: set[str] = set()
        for b in node.inputs:
            if b.var in bound:
                self._add(
                    ErrorCode.DUPLICATE_BINDING,
                    node.id,
                    b.var,
                    f"input '{b.var}' is bound more than once",
                )
                continue
            bound.add(b.var)
            expected = iface.inputs.get(b.var)
            if expected is None:
                have = ", ".join(sorted(iface.inputs)) or "none"
                self._add(
                    ErrorCode.UNKNOWN_INPUT,
                    node.id,
                    b.var,
                    f"binds input '{b.var}', which the target does not declare (inputs: {have})",
                )
                continue
            m = self._mismatch(b.binding, expected)
            if m is not None:
                self._add(
                    ErrorCode.MISMATCHING_TYPES,
                    node.id,
                    b.var,
                    f"input '{b.var}' of node '{node.id}' expects {format_type(expected)}, but {m}",
                )
        for var in sorted(iface.required - bound - set(exempt)):
            self._add(
                ErrorCode.UNBOUND_INPUT,
                node.id,
                var,
                f"required input '{var}' ({format_type(iface.inputs[var])}) is not bound; "
                "pass a value or an upstream output",
            )

    def _check_node(self, node: workflow_pb2.Node, exempt: Sequence[str] = ()) -> None:
        iface = self.ifaces.get(node.id) or NodeInterface()
        kind = node.WhichOneof("target")
        if kind in ("task_node", "workflow_node", "array_node"):
            self._check_bindings(node, iface, exempt)
        elif kind == "branch_node":
            self._check_branch(node, iface)
        # Gates bind whatever they pass through: nothing to check beyond the promises.

    def _check_branch(self, node: workflow_pb2.Node, iface: NodeInterface) -> None:
        ie = node.branch_node.if_else
        blocks = ([ie.case] if ie.HasField("case") else []) + list(ie.other)
        for block in blocks:
            self._check_condition(node, block.condition, iface)
        if ie.WhichOneof("default") is None and not blocks:
            self._add(ErrorCode.INVALID_BRANCH, node.id, "", "branch has no cases")
        for case_node in _branch_nodes(node.branch_node):
            self._check_node(case_node)

    def _check_condition(
        self,
        node: workflow_pb2.Node,
        expr: condition_pb2.BooleanExpression,
        iface: NodeInterface,
    ) -> None:
        kind = expr.WhichOneof("expr")
        if kind == "conjunction":
            self._check_condition(node, expr.conjunction.left_expression, iface)
            self._check_condition(node, expr.conjunction.right_expression, iface)
            return
        if kind == "comparison":
            operands = [expr.comparison.left_value, expr.comparison.right_value]
        elif kind == "unary":
            operands = [expr.unary.operand]
        else:
            self._add(ErrorCode.INVALID_BRANCH, node.id, "", "a branch condition is empty")
            return
        for op in operands:
            okind = op.WhichOneof("val")
            if okind == "var":
                t = iface.inputs.get(op.var)
                if t is None:
                    self._add(
                        ErrorCode.UNKNOWN_CONDITION_VARIABLE,
                        node.id,
                        op.var,
                        f"condition reads '{op.var}', which is not an input bound on the branch",
                    )
                elif t.WhichOneof("type") is not None and not is_primitive(t):
                    self._add(
                        ErrorCode.NON_PRIMITIVE_CONDITION,
                        node.id,
                        op.var,
                        f"condition compares '{op.var}' of type {format_type(t)}; conditions "
                        "only compare primitives (int, float, str, bool, datetime, timedelta, "
                        "None)",
                    )
            elif okind == "scalar":
                t2 = scalar_type_of(op.scalar)
                if t2 is not None and not is_primitive(t2):
                    self._add(
                        ErrorCode.NON_PRIMITIVE_CONDITION,
                        node.id,
                        "",
                        f"condition compares a constant of type {format_type(t2)}",
                    )

    def _check_failure_node(self, node: workflow_pb2.Node) -> None:
        if node.id in self.nodes or node.id in RESERVED_NODE_IDS:
            self._add(
                ErrorCode.DUPLICATE_NODE_ID,
                node.id,
                "",
                f"failure node id '{node.id}' clashes with another node",
            )
        iface = self._node_iface(node)
        self.ifaces[node.id] = iface
        for ref_node, ref in _promises_of(node):
            self._check_promise(ref_node, ref)
        err_t = iface.inputs.get(FAILURE_NODE_ERROR_INPUT)
        exempt = [FAILURE_NODE_ERROR_INPUT] if err_t is not None else []
        self._check_node(node, exempt)

    def _check_outputs(self) -> None:
        declared = {k: v.type for k, v in self.wf.interface.outputs.variables.items()}
        bound: set[str] = set()
        end_node = workflow_pb2.Node(id=END_NODE)
        for b in self.wf.outputs:
            for ref_node, ref in _promises_in(end_node, b.binding):
                if ref.node_id != START_NODE and ref.node_id not in self.nodes:
                    self._add(
                        ErrorCode.UNKNOWN_NODE,
                        END_NODE,
                        b.var,
                        f"workflow output '{b.var}' reads node '{ref.node_id}', which is not a "
                        "node of this workflow",
                    )
                    continue
                iface = self.ifaces.get(ref.node_id)
                if iface is not None and ref.var not in iface.outputs:
                    have = ", ".join(sorted(iface.outputs)) or "none"
                    self._add(
                        ErrorCode.UNKNOWN_OUTPUT,
                        END_NODE,
                        b.var,
                        f"workflow output '{b.var}' is bound to output '{ref.var}' of node "
                        f"'{ref.node_id}', which has no such output (outputs: {have})",
                    )
                del ref_node
            if b.var not in declared:
                self._add(
                    ErrorCode.UNKNOWN_WORKFLOW_OUTPUT,
                    END_NODE,
                    b.var,
                    f"binds workflow output '{b.var}', which the workflow interface does not "
                    "declare",
                )
                continue
            bound.add(b.var)
            m = self._mismatch(b.binding, declared[b.var])
            if m is not None:
                self._add(
                    ErrorCode.MISMATCHING_TYPES,
                    END_NODE,
                    b.var,
                    f"workflow output '{b.var}' is declared {format_type(declared[b.var])}, "
                    f"but {m}",
                )
        for var in sorted(set(declared) - bound):
            self._add(
                ErrorCode.UNBOUND_WORKFLOW_OUTPUT,
                END_NODE,
                var,
                f"workflow output '{var}' is declared but not bound to any node output",
            )

    # -- graph checks -----------------------------------------------------------------------
    def _check_cycles(self, deps: dict[str, list[str]]) -> set[str]:
        in_cycle: set[str] = set()
        for scc in _strongly_connected(deps):
            if len(scc) == 1 and scc[0] not in deps.get(scc[0], []):
                continue
            in_cycle.update(scc)
            walk = _cycle_order(scc, deps)
            # The walk follows dependencies; show it in data-flow order (each feeds the next).
            ordered = [walk[0], *reversed(walk[1:])]
            path = " -> ".join([*ordered, ordered[0]])
            self._add(
                ErrorCode.CYCLE,
                ordered[0],
                "",
                f"nodes form a cycle: {path} (each feeds the next); break the loop",
            )
        return in_cycle

    def _connections(
        self, deps: dict[str, list[str]], in_cycle: set[str]
    ) -> compiler_pb2.ConnectionSet:
        order = list(self.nodes)
        upstream: dict[str, list[str]] = {}
        downstream: dict[str, list[str]] = {START_NODE: []}
        for nid in order:
            ups = deps.get(nid) or []
            upstream[nid] = sorted(ups) if ups else [START_NODE]
            downstream.setdefault(nid, [])
        for nid in order:
            for up in upstream[nid]:
                downstream.setdefault(up, []).append(nid)
        end_ups = {nid for nid in order if not downstream[nid]}
        for b in self.wf.outputs:
            for _n, ref in _promises_in(workflow_pb2.Node(id=END_NODE), b.binding):
                if ref.node_id in self.nodes or ref.node_id == START_NODE:
                    end_ups.add(ref.node_id)
        if not order:
            end_ups.add(START_NODE)
        upstream[END_NODE] = sorted(end_ups)
        for up in upstream[END_NODE]:
            downstream.setdefault(up, []).append(END_NODE)

        # Reachability: every node must be reachable from the start and lead to the end.
        reach = _walk(START_NODE, downstream)
        contrib = _walk(END_NODE, upstream)
        for nid in order:
            if nid in in_cycle:
                continue
            if nid not in reach:
                self._add(
                    ErrorCode.UNREACHABLE_NODE,
                    nid,
                    "",
                    "node is unreachable from the start: it waits on a cycle",
                )
            elif nid not in contrib:
                self._add(
                    ErrorCode.NOT_CONTRIBUTING,
                    nid,
                    "",
                    "node does not lead to the workflow's end: its only downstream is a cycle",
                )

        cs = compiler_pb2.ConnectionSet()
        for nid, ids in downstream.items():
            cs.downstream[nid].ids.extend(ids)
        for nid, ids in upstream.items():
            cs.upstream[nid].ids.extend(ids)
        return cs


# -- helpers ----------------------------------------------------------------------------------


def _branch_nodes(branch: workflow_pb2.BranchNode) -> list[workflow_pb2.Node]:
    ie = branch.if_else
    out: list[workflow_pb2.Node] = []
    if ie.HasField("case") and ie.case.HasField("then_node"):
        out.append(ie.case.then_node)
    out.extend(b.then_node for b in ie.other if b.HasField("then_node"))
    if ie.WhichOneof("default") == "else_node":
        out.append(ie.else_node)
    return out


def _promises_in(
    node: workflow_pb2.Node, bd: literals_pb2.BindingData
) -> Iterable[tuple[workflow_pb2.Node, literals_pb2.OutputReference]]:
    kind = bd.WhichOneof("value")
    if kind == "promise":
        yield node, bd.promise
    elif kind == "collection":
        for el in bd.collection.bindings:
            yield from _promises_in(node, el)
    elif kind == "map":
        for el in bd.map.bindings.values():
            yield from _promises_in(node, el)


def _promises_of(
    node: workflow_pb2.Node,
) -> Iterable[tuple[workflow_pb2.Node, literals_pb2.OutputReference]]:
    """Every promise a node reads, including those of its branch cases (recursively)."""
    for b in node.inputs:
        yield from _promises_in(node, b.binding)
    if node.WhichOneof("target") == "branch_node":
        for case_node in _branch_nodes(node.branch_node):
            yield from _promises_of(case_node)


def _attr_type(
    t: types_pb2.LiteralType, attr: literals_pb2.PromiseAttribute
) -> types_pb2.LiteralType | None:
    kind = t.WhichOneof("type")
    akind = attr.WhichOneof("value")
    if kind == "collection_type" and akind == "int_value":
        return t.collection_type
    if kind == "map_value_type" and akind == "string_value":
        return t.map_value_type
    if akind == "string_value" and attr.string_value in t.structure.dataclass_type:
        return t.structure.dataclass_type[attr.string_value]
    return None


def _attr_repr(attr: literals_pb2.PromiseAttribute) -> str:
    if attr.WhichOneof("value") == "int_value":
        return str(attr.int_value)
    return repr(attr.string_value)


def _walk(origin: str, edges: dict[str, list[str]]) -> set[str]:
    seen = {origin}
    stack = [origin]
    while stack:
        for nxt in edges.get(stack.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _strongly_connected(deps: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (deep chains must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in deps:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            succ = deps.get(v, [])
            recursed = False
            while i < len(succ):
                w = succ[i]
                i += 1
                if w not in index:
                    work.append((v, i))
                    work.append((w, 0))
                    recursed = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recursed:
                continue
            if low[v] == index[v]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                result.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return result


def _cycle_order(scc: list[str], deps: dict[str, list[str]]) -> list[str]:
    """Order a strongly connected component as one readable cycle path from its first node."""
    members = set(scc)
    start = min(scc)
    order = [start]
    seen = {start}
    cur = start
    while True:
        nxt = next((d for d in deps.get(cur, []) if d in members and d not in seen), None)
        if nxt is None:
            break
        order.append(nxt)
        seen.add(nxt)
        cur = nxt
    return order


# -- public API -------------------------------------------------------------------------------


def compile_workflow(
    workflow: workflow_pb2.WorkflowTemplate,
    tasks: Iterable[tasks_pb2.TaskTemplate] = (),
    subworkflows: Iterable[workflow_pb2.WorkflowTemplate] = (),
    launch_plans: Iterable[workflow_pb2.LaunchPlanTemplate] = (),
) -> compiler_pb2.CompiledWorkflowClosure:
    """Check a workflow and build the closure the engine runs.

    Args:
        workflow: The primary workflow template.
        tasks: Every task the workflow (and its subworkflows) may reference.
        subworkflows: Workflow templates referenced by ``sub_workflow_ref`` nodes.
        launch_plans: Launch plan templates referenced by ``launchplan_ref`` nodes.

    Returns:
        A CompiledWorkflowClosure with the primary workflow and every referenced subworkflow,
        each with its ConnectionSet, and the referenced tasks and launch plans (only those
        actually used, each once).

    Raises:
        CompilationError: With every problem found, in ``.errors``.
    """
    index = _Index(tasks, subworkflows, launch_plans)
    issues: list[CompileIssue] = []
    closure = compiler_pb2.CompiledWorkflowClosure()
    used_tasks: dict[IdKey, tasks_pb2.TaskTemplate] = {}
    used_lps: dict[IdKey, workflow_pb2.LaunchPlanTemplate] = {}
    compiled_subs: dict[IdKey, compiler_pb2.CompiledWorkflow] = {}

    def compile_one(
        wf: workflow_pb2.WorkflowTemplate, stack: tuple[IdKey, ...]
    ) -> compiler_pb2.CompiledWorkflow:
        tc = _TemplateCompiler(wf, index, issues)
        connections = tc.run()
        used_tasks.update(tc.used_tasks)
        used_lps.update(tc.used_launch_plans)
        for key, sub in tc.used_subworkflows.items():
            if key in stack:
                issues.append(
                    CompileIssue(
                        ErrorCode.RECURSIVE_SUBWORKFLOW,
                        "",
                        "",
                        f"subworkflow {format_id(sub.id)} includes itself (through "
                        f"{' -> '.join(k[2] for k in (*stack, key))}); recursion needs a "
                        "dynamic workflow or a launch plan",
                        wf.id.name,
                    )
                )
                continue
            if key not in compiled_subs:
                compiled_subs[key] = compiler_pb2.CompiledWorkflow()  # guard re-entry
                compiled_subs[key] = compile_one(sub, (*stack, key))
        return compiler_pb2.CompiledWorkflow(template=wf, connections=connections)

    primary = compile_one(workflow, (id_key(workflow.id),))
    if issues:
        raise CompilationError(issues)
    closure.primary.CopyFrom(primary)
    closure.sub_workflows.extend(compiled_subs.values())
    closure.tasks.extend(compiler_pb2.CompiledTask(template=t) for t in used_tasks.values())
    closure.launch_plans.extend(
        compiler_pb2.CompiledLaunchPlan(template=lp) for lp in used_lps.values()
    )
    return closure


def dynamic_workflow_id(
    parent: identifier_pb2.Identifier, node_id: str
) -> identifier_pb2.Identifier:
    """The identifier given to the workflow built from a dynamic node's futures."""
    return identifier_pb2.Identifier(
        resource_type=identifier_pb2.ResourceType.RESOURCE_TYPE_WORKFLOW,
        project=parent.project,
        domain=parent.domain,
        name=f"dynamic_{node_id}",
        version=parent.version,
    )


def compile_dynamic(
    spec: dynamic_job_pb2.DynamicJobSpec,
    *,
    node_id: str,
    interface: interface_pb2.TypedInterface,
    parent_id: identifier_pb2.Identifier | None = None,
    tasks: Iterable[tasks_pb2.TaskTemplate] = (),
    subworkflows: Iterable[workflow_pb2.WorkflowTemplate] = (),
    launch_plans: Iterable[workflow_pb2.LaunchPlanTemplate] = (),
) -> compiler_pb2.CompiledWorkflowClosure:
    """Compile the futures a dynamic task produced into a closure the engine can run.

    The spec's nodes become a workflow whose interface is the dynamic task's own interface:
    its outputs (``spec.outputs``) bind the task's declared outputs, and its nodes may read the
    task's inputs as ``start-node`` outputs. Node ids only need to be unique within the spec
    (the engine runs the result as a nested graph under the dynamic node's path).

    Args:
        spec: The DynamicJobSpec the task wrote.
        node_id: The dynamic node's id (names the generated workflow).
        interface: The dynamic task's interface.
        parent_id: The dynamic task's identifier (project/domain/version for the generated id).
        tasks: Tasks known beyond ``spec.tasks`` (e.g. those of the enclosing closure).
        subworkflows: Workflow templates known beyond ``spec.subworkflows``.
        launch_plans: Launch plan templates the spec's nodes may reference.

    Returns:
        The compiled closure.

    Raises:
        CompilationError: When the futures do not form a valid workflow.
    """
    wf = workflow_pb2.WorkflowTemplate(
        id=dynamic_workflow_id(parent_id or identifier_pb2.Identifier(), node_id),
        interface=interface,
        nodes=spec.nodes,
        outputs=spec.outputs,
    )
    # Spec entities win over known ones with the same id (they are the fresher definition).
    all_tasks = {id_key(t.id): t for t in tasks}
    all_tasks.update((id_key(t.id), t) for t in spec.tasks)
    all_subs = {id_key(w.id): w for w in subworkflows}
    all_subs.update((id_key(w.id), w) for w in spec.subworkflows)
    return compile_workflow(wf, all_tasks.values(), all_subs.values(), launch_plans)
