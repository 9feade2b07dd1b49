"""The bridge to the shared workflow compiler (caddis_propeller.compiler)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from caddis._serving.errors import InvalidArgumentError
from caddis_idl.core.v1 import compiler_pb2, identifier_pb2, tasks_pb2, workflow_pb2


def iter_nodes(nodes: Iterable[workflow_pb2.Node]) -> Iterator[workflow_pb2.Node]:
    """Every node, including those nested in branches and array nodes."""
    for node in nodes:
        yield node
        kind = node.WhichOneof("target")
        if kind == "branch_node":
            block = node.branch_node.if_else
            inner = [block.case.then_node, *(o.then_node for o in block.other)]
            if block.HasField("else_node"):
                inner.append(block.else_node)
            yield from iter_nodes(inner)
        elif kind == "array_node":
            yield from iter_nodes([node.array_node.node])


def _all_nodes(
    template: workflow_pb2.WorkflowTemplate, subs: Iterable[workflow_pb2.WorkflowTemplate]
) -> Iterator[workflow_pb2.Node]:
    for wf in (template, *subs):
        yield from iter_nodes(wf.nodes)
        if wf.HasField("failure_node"):
            yield from iter_nodes([wf.failure_node])


def referenced_tasks(
    template: workflow_pb2.WorkflowTemplate, subs: Iterable[workflow_pb2.WorkflowTemplate]
) -> list[identifier_pb2.Identifier]:
    """The task ids the workflow's nodes (and sub-workflows') refer to, without repeats."""
    seen: dict[bytes, identifier_pb2.Identifier] = {}
    for node in _all_nodes(template, list(subs)):
        if node.WhichOneof("target") == "task_node":
            ref = node.task_node.reference_id
            seen.setdefault(ref.SerializeToString(deterministic=True), ref)
    return list(seen.values())


def referenced_launch_plans(
    template: workflow_pb2.WorkflowTemplate, subs: Iterable[workflow_pb2.WorkflowTemplate]
) -> list[identifier_pb2.Identifier]:
    """The launch plan ids the workflow's nodes refer to, without repeats."""
    seen: dict[bytes, identifier_pb2.Identifier] = {}
    for node in _all_nodes(template, list(subs)):
        target = node.WhichOneof("target")
        if target == "workflow_node" and node.workflow_node.HasField("launchplan_ref"):
            ref = node.workflow_node.launchplan_ref
            seen.setdefault(ref.SerializeToString(deterministic=True), ref)
    return list(seen.values())


def compile_workflow(
    template: workflow_pb2.WorkflowTemplate,
    sub_workflows: list[workflow_pb2.WorkflowTemplate],
    tasks: list[tasks_pb2.TaskTemplate],
    launch_plans: list[workflow_pb2.LaunchPlanTemplate],
) -> compiler_pb2.CompiledWorkflowClosure:
    """Compile with the shared compiler, reporting every problem as INVALID_ARGUMENT.

    Raises:
        InvalidArgumentError: The workflow does not compile; the message lists each error
            with its code, node and variable.
    """
    from caddis_propeller import compiler

    try:
        return compiler.compile_workflow(
            template, tasks=tasks, subworkflows=sub_workflows, launch_plans=launch_plans
        )
    except compiler.CompilationError as exc:
        lines = [
            f"[{e.code}] node {e.node_id or '<workflow>'!r}"
            + (f" variable {e.variable!r}" if e.variable else "")
            + f": {e.message}"
            for e in exc.errors
        ]
        name = template.id.name
        raise InvalidArgumentError(
            f"workflow {name!r} failed to compile with {len(lines)} error(s):\n"
            + "\n".join(f"  - {line}" for line in lines)
        ) from exc
