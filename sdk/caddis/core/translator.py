"""Python entities to IDL: nodes, workflow templates, registration sets and closures.

This is the one place where the authoring layer's graph (``Node`` objects holding Python
entities and promises) becomes protobuf. Task templates are built by the tasks themselves
(``PythonTask.to_template``); launch plans by ``LaunchPlan.to_idl``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from caddis.core.base import Entity
from caddis.core.node import Node
from caddis.core.promise import Bound, binding_to_idl
from caddis.core.settings import SerializationSettings, current_serialization_settings
from caddis_idl.core.v1 import (
    compiler_pb2,
    literals_pb2,
    tasks_pb2,
    workflow_pb2,
)

__all__ = [
    "SerializedEntities",
    "bindings_to_idl",
    "collect_entities",
    "compile_closure",
    "get_serializable",
    "node_metadata",
    "node_to_idl",
    "workflow_template",
]


def node_metadata(node: Node) -> workflow_pb2.NodeMetadata:
    """The node's ``NodeMetadata``: its name plus only the settings overridden on the node.

    Unset fields inherit from the task, so a task's retries/timeout/cache live in one place.
    """
    md = workflow_pb2.NodeMetadata(name=node.metadata_name)
    if node.timeout is not None:
        md.timeout.FromTimedelta(node.timeout)
    if node.retries is not None:
        md.retries.retries = node.retries
    if node.interruptible is not None:
        md.interruptible = node.interruptible
    if node.cache is not None:
        md.cacheable = node.cache
    if node.cache_version:
        md.cache_version = node.cache_version
    if node.cache_serialize is not None:
        md.cache_serializable = node.cache_serialize
    return md


def bindings_to_idl(bindings: dict[str, Bound]) -> list[literals_pb2.Binding]:
    """IDL bindings, in the order of the entity's inputs."""
    return [literals_pb2.Binding(var=var, binding=binding_to_idl(b)) for var, b in bindings.items()]


def node_to_idl(node: Node, settings: SerializationSettings) -> workflow_pb2.Node:
    """The IDL ``Node`` of a recorded node (its target filled in by the entity)."""
    out = workflow_pb2.Node(
        id=node.id,
        metadata=node_metadata(node),
        inputs=bindings_to_idl(node.bindings),
        upstream_node_ids=node.upstream_node_ids(),
    )
    fill = getattr(node.entity, "fill_node_target", None)
    if fill is None:  # pragma: no cover - every entity kind defines it
        raise TypeError(f"{node.entity!r} cannot be a node")
    fill(out, node, settings)
    return out


def workflow_template(
    wf: Any, settings: SerializationSettings | None = None
) -> workflow_pb2.WorkflowTemplate:
    """The ``WorkflowTemplate`` of a (traced) workflow."""
    settings = settings or current_serialization_settings()
    template = workflow_pb2.WorkflowTemplate(
        id=wf.id(settings),
        metadata=workflow_pb2.WorkflowMetadata(on_failure=wf.failure_policy.to_idl()),
        interface=wf.python_interface.typed_interface(),
        nodes=[node_to_idl(n, settings) for n in wf.nodes],
        outputs=bindings_to_idl(wf.output_bindings),
        metadata_defaults=workflow_pb2.WorkflowMetadataDefaults(interruptible=wf.interruptible),
    )
    if wf.failure_node is not None:
        template.failure_node.CopyFrom(node_to_idl(wf.failure_node, settings))
    return template


# ---------------------------------------------------------------------- collecting entities
def _children(entity: Any) -> Iterator[Any]:
    deps = getattr(entity, "dependencies", None)
    if callable(deps):
        yield from deps()


def collect_entities(*roots: Any) -> list[Any]:
    """Every entity the roots need registered, dependencies first, each once.

    Reference entities are included (callers skip them: they are registered elsewhere).
    """
    seen: dict[tuple[str, int, str], Any] = {}
    order: list[Any] = []
    visiting: set[int] = set()

    def visit(entity: Any) -> None:
        key = (type(entity).__name__, int(getattr(entity, "resource_type", 0)), entity.name)
        if key in seen or id(entity) in visiting:
            return
        visiting.add(id(entity))
        for child in _children(entity):
            visit(child)
        visiting.discard(id(entity))
        seen[key] = entity
        order.append(entity)

    for root in roots:
        visit(root)
    return order


@dataclass
class SerializedEntities:
    """The IDL of everything a registration needs, dependencies first.

    Attributes:
        tasks: Task templates.
        workflows: Workflow templates (subworkflows before the workflows using them).
        launch_plans: Admin launch plans (id + spec).
        launch_plan_templates: The compiler's view of the launch plans.
    """

    tasks: list[tasks_pb2.TaskTemplate] = field(default_factory=list)
    workflows: list[workflow_pb2.WorkflowTemplate] = field(default_factory=list)
    launch_plans: list[Any] = field(default_factory=list)
    launch_plan_templates: list[workflow_pb2.LaunchPlanTemplate] = field(default_factory=list)


def get_serializable(
    *entities: Any, settings: SerializationSettings | None = None
) -> SerializedEntities:
    """Serialize entities and everything they use (flytekit's ``get_serializable``).

    A workflow brings its tasks, subworkflows, launch plans (with their workflows), map
    tasks' tasks and failure handler; a launch plan brings its workflow. Reference entities
    are left out: they are registered already.

    Args:
        *entities: Tasks, workflows and launch plans to register.
        settings: Project, domain, version and image.
    """
    from caddis.core.launch_plan import LaunchPlan
    from caddis.core.reference import ReferenceEntity
    from caddis.core.task import PythonTask
    from caddis.core.workflow import WorkflowBase

    settings = settings or current_serialization_settings()
    out = SerializedEntities()
    for entity in collect_entities(*entities):
        if isinstance(entity, ReferenceEntity):
            continue
        if isinstance(entity, PythonTask):
            out.tasks.append(entity.to_template(settings))
        elif isinstance(entity, WorkflowBase):
            out.workflows.append(entity.to_template(settings))
        elif isinstance(entity, LaunchPlan):
            out.launch_plans.append(entity.to_idl(settings))
            out.launch_plan_templates.append(entity.to_template(settings))
    return out


def compile_closure(
    wf: Any, settings: SerializationSettings | None = None
) -> compiler_pb2.CompiledWorkflowClosure:
    """Compile a workflow with the shared compiler (the same one admin and propeller use).

    Launch plans and reference entities the workflow calls are given to the compiler only
    as far as they are known here (references are resolved at registration).
    """
    from caddis_propeller.compiler import compile_workflow

    settings = settings or current_serialization_settings()
    ser = get_serializable(wf, settings=settings)
    primary = wf.to_template(settings)
    subs = [w for w in ser.workflows if w.id.name != primary.id.name]
    return compile_workflow(primary, ser.tasks, subs, ser.launch_plan_templates)


def entity_list(entities: Iterable[Entity]) -> list[str]:
    """Names of entities, for messages."""
    return [e.name for e in entities]
