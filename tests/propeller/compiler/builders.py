"""Small builders for IDL templates and literals, shared by the compiler and engine tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import duration_pb2

from caddis_idl.core.v1 import (
    condition_pb2,
    identifier_pb2,
    interface_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
    workflow_pb2,
)
from caddis_propeller.compiler import list_of, optional, simple

ST = types_pb2.SimpleType
INT = simple(ST.SIMPLE_TYPE_INTEGER)
FLOAT = simple(ST.SIMPLE_TYPE_FLOAT)
STR = simple(ST.SIMPLE_TYPE_STRING)
BOOL = simple(ST.SIMPLE_TYPE_BOOLEAN)
NONE = simple(ST.SIMPLE_TYPE_NONE)
STRUCT = simple(ST.SIMPLE_TYPE_STRUCT)
ERROR = simple(ST.SIMPLE_TYPE_ERROR)
LIST_INT = list_of(INT)
OPT_INT = optional(INT)

PROJECT, DOMAIN, VERSION = "p", "d", "v1"


def ident(
    name: str, kind: int = identifier_pb2.ResourceType.RESOURCE_TYPE_TASK
) -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=kind, project=PROJECT, domain=DOMAIN, name=name, version=VERSION
    )


def typed_interface(
    inputs: Mapping[str, types_pb2.LiteralType], outputs: Mapping[str, types_pb2.LiteralType]
) -> interface_pb2.TypedInterface:
    return interface_pb2.TypedInterface(
        inputs=interface_pb2.VariableMap(
            variables={k: interface_pb2.Variable(type=t) for k, t in inputs.items()}
        ),
        outputs=interface_pb2.VariableMap(
            variables={k: interface_pb2.Variable(type=t) for k, t in outputs.items()}
        ),
    )


def task(
    name: str,
    inputs: Mapping[str, types_pb2.LiteralType] | None = None,
    outputs: Mapping[str, types_pb2.LiteralType] | None = None,
    *,
    retries: int = 0,
    cacheable: bool = False,
    cache_version: str = "1",
    serializable: bool = False,
    ignore: Sequence[str] = (),
    timeout: float | None = None,
    interruptible: bool | None = None,
) -> tasks_pb2.TaskTemplate:
    md = tasks_pb2.TaskMetadata(
        cacheable=cacheable,
        cache_version=cache_version if cacheable else "",
        retries=literals_pb2.RetryStrategy(retries=retries),
        cache_serializable=serializable,
        cache_ignore_input_vars=list(ignore),
    )
    if timeout is not None:
        md.timeout.CopyFrom(
            duration_pb2.Duration(seconds=int(timeout), nanos=int((timeout % 1) * 1e9))
        )
    if interruptible is not None:
        md.interruptible = interruptible
    return tasks_pb2.TaskTemplate(
        id=ident(name),
        type="python-task",
        metadata=md,
        interface=typed_interface(inputs or {}, outputs or {}),
    )


def lit(value: Any) -> literals_pb2.Literal:
    if isinstance(value, literals_pb2.Literal):
        return value
    if value is None:
        return literals_pb2.Literal(scalar=literals_pb2.Scalar(none_type=literals_pb2.Void()))
    if isinstance(value, bool):
        return literals_pb2.Literal(
            scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=value))
        )
    if isinstance(value, int):
        return literals_pb2.Literal(
            scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
        )
    if isinstance(value, float):
        return literals_pb2.Literal(
            scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(float_value=value))
        )
    if isinstance(value, str):
        return literals_pb2.Literal(
            scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value))
        )
    if isinstance(value, list):
        return literals_pb2.Literal(
            collection=literals_pb2.LiteralCollection(literals=[lit(v) for v in value])
        )
    if isinstance(value, dict):
        return literals_pb2.Literal(
            map=literals_pb2.LiteralMap(literals={k: lit(v) for k, v in value.items()})
        )
    raise TypeError(type(value))


def py(literal: literals_pb2.Literal) -> Any:
    kind = literal.WhichOneof("value")
    if kind == "collection":
        return [py(x) for x in literal.collection.literals]
    if kind == "map":
        return {k: py(v) for k, v in literal.map.literals.items()}
    sc = literal.scalar
    skind = sc.WhichOneof("value")
    if skind == "none_type" or skind is None:
        return None
    if skind == "union":
        return py(sc.union.value)
    if skind == "error":
        return sc.error
    if skind == "generic":
        return sc.generic
    p = sc.primitive
    return getattr(p, p.WhichOneof("value"))


def lmap(**values: Any) -> literals_pb2.LiteralMap:
    return literals_pb2.LiteralMap(literals={k: lit(v) for k, v in values.items()})


def pymap(lm: literals_pb2.LiteralMap) -> dict[str, Any]:
    return {k: py(v) for k, v in lm.literals.items()}


def ref(node_id: str, var: str, *attrs: str | int) -> literals_pb2.BindingData:
    path = [
        literals_pb2.PromiseAttribute(int_value=a)
        if isinstance(a, int)
        else literals_pb2.PromiseAttribute(string_value=a)
        for a in attrs
    ]
    return literals_pb2.BindingData(
        promise=literals_pb2.OutputReference(node_id=node_id, var=var, attr_path=path)
    )


def const(value: Any) -> literals_pb2.BindingData:
    literal = lit(value)
    if literal.WhichOneof("value") == "collection":
        return literals_pb2.BindingData(
            collection=literals_pb2.BindingDataCollection(
                bindings=[const(py(x)) for x in literal.collection.literals]
            )
        )
    if literal.WhichOneof("value") == "map":
        return literals_pb2.BindingData(
            map=literals_pb2.BindingDataMap(
                bindings={k: const(py(v)) for k, v in literal.map.literals.items()}
            )
        )
    return literals_pb2.BindingData(scalar=literal.scalar)


def coll(*items: literals_pb2.BindingData) -> literals_pb2.BindingData:
    return literals_pb2.BindingData(
        collection=literals_pb2.BindingDataCollection(bindings=list(items))
    )


def bindings(inputs: Mapping[str, literals_pb2.BindingData]) -> list[literals_pb2.Binding]:
    return [literals_pb2.Binding(var=k, binding=v) for k, v in inputs.items()]


def task_node(
    node_id: str,
    t: tasks_pb2.TaskTemplate,
    inputs: Mapping[str, literals_pb2.BindingData] | None = None,
    *,
    upstream: Sequence[str] = (),
    retries: int | None = None,
    timeout: float | None = None,
    cacheable: bool | None = None,
) -> workflow_pb2.Node:
    md = workflow_pb2.NodeMetadata(name=node_id)
    if retries is not None:
        md.retries.retries = retries
    if timeout is not None:
        md.timeout.CopyFrom(
            duration_pb2.Duration(seconds=int(timeout), nanos=int((timeout % 1) * 1e9))
        )
    if cacheable is not None:
        md.cacheable = cacheable
    return workflow_pb2.Node(
        id=node_id,
        metadata=md,
        inputs=bindings(inputs or {}),
        upstream_node_ids=list(upstream),
        task_node=workflow_pb2.TaskNode(reference_id=t.id),
    )


def subwf_node(
    node_id: str,
    wf: workflow_pb2.WorkflowTemplate,
    inputs: Mapping[str, literals_pb2.BindingData] | None = None,
) -> workflow_pb2.Node:
    return workflow_pb2.Node(
        id=node_id,
        inputs=bindings(inputs or {}),
        workflow_node=workflow_pb2.WorkflowNode(sub_workflow_ref=wf.id),
    )


def lp_node(
    node_id: str,
    lp: workflow_pb2.LaunchPlanTemplate,
    inputs: Mapping[str, literals_pb2.BindingData] | None = None,
) -> workflow_pb2.Node:
    return workflow_pb2.Node(
        id=node_id,
        inputs=bindings(inputs or {}),
        workflow_node=workflow_pb2.WorkflowNode(launchplan_ref=lp.id),
    )


def array_node(
    node_id: str,
    t: tasks_pb2.TaskTemplate,
    inputs: Mapping[str, literals_pb2.BindingData],
    *,
    bound: Sequence[str] = (),
    parallelism: int | None = None,
    min_success_ratio: float | None = None,
    min_successes: int | None = None,
    retries: int | None = None,
) -> workflow_pb2.Node:
    sub = task_node(f"{node_id}-sub", t, retries=retries)
    arr = workflow_pb2.ArrayNode(node=sub, bound_inputs=list(bound))
    if parallelism is not None:
        arr.parallelism = parallelism
    if min_success_ratio is not None:
        arr.min_success_ratio = min_success_ratio
    if min_successes is not None:
        arr.min_successes = min_successes
    return workflow_pb2.Node(id=node_id, inputs=bindings(inputs), array_node=arr)


def cmp(op: str, left: str | Any, right: Any) -> condition_pb2.BooleanExpression:
    ops = {
        "==": 1,
        "!=": 2,
        ">": 3,
        ">=": 4,
        "<": 5,
        "<=": 6,
    }

    def operand(v: Any) -> condition_pb2.Operand:
        if isinstance(v, str) and v.startswith("$"):
            return condition_pb2.Operand(var=v[1:])
        return condition_pb2.Operand(primitive=lit(v).scalar.primitive)

    return condition_pb2.BooleanExpression(
        comparison=condition_pb2.ComparisonExpression(
            operator=ops[op], left_value=operand(left), right_value=operand(right)
        )
    )


def unary(op: str, var: str) -> condition_pb2.BooleanExpression:
    ops = {"is_none": 1, "is_not_none": 2, "is_true": 3, "is_false": 4}
    return condition_pb2.BooleanExpression(
        unary=condition_pb2.UnaryExpression(
            operator=ops[op], operand=condition_pb2.Operand(var=var)
        )
    )


def conj(
    op: str, a: condition_pb2.BooleanExpression, b: condition_pb2.BooleanExpression
) -> condition_pb2.BooleanExpression:
    return condition_pb2.BooleanExpression(
        conjunction=condition_pb2.ConjunctionExpression(
            operator=1 if op == "and" else 2, left_expression=a, right_expression=b
        )
    )


def branch_node(
    node_id: str,
    inputs: Mapping[str, literals_pb2.BindingData],
    cases: Sequence[tuple[condition_pb2.BooleanExpression, workflow_pb2.Node]],
    *,
    else_node: workflow_pb2.Node | None = None,
    error: str | None = None,
) -> workflow_pb2.Node:
    blocks = [workflow_pb2.IfBlock(condition=c, then_node=n) for c, n in cases]
    ie = workflow_pb2.IfElseBlock(case=blocks[0], other=blocks[1:])
    if else_node is not None:
        ie.else_node.CopyFrom(else_node)
    if error is not None:
        ie.error.message = error
    return workflow_pb2.Node(
        id=node_id, inputs=bindings(inputs), branch_node=workflow_pb2.BranchNode(if_else=ie)
    )


def workflow(
    name: str,
    inputs: Mapping[str, types_pb2.LiteralType],
    outputs: Mapping[str, types_pb2.LiteralType],
    nodes: Sequence[workflow_pb2.Node],
    out: Mapping[str, literals_pb2.BindingData],
    *,
    failure_node: workflow_pb2.Node | None = None,
    fail_immediately: bool = True,
) -> workflow_pb2.WorkflowTemplate:
    wf = workflow_pb2.WorkflowTemplate(
        id=ident(name, identifier_pb2.ResourceType.RESOURCE_TYPE_WORKFLOW),
        interface=typed_interface(inputs, outputs),
        nodes=list(nodes),
        outputs=bindings(out),
    )
    wf.metadata.on_failure = (
        workflow_pb2.WorkflowMetadata.OnFailurePolicy.ON_FAILURE_POLICY_FAIL_IMMEDIATELY
        if fail_immediately
        else workflow_pb2.WorkflowMetadata.OnFailurePolicy.Value(
            "ON_FAILURE_POLICY_FAIL_AFTER_EXECUTABLE_NODES_COMPLETE"
        )
    )
    if failure_node is not None:
        wf.failure_node.CopyFrom(failure_node)
    return wf
