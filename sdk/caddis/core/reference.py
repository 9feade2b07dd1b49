"""Reference entities: tasks, workflows and launch plans registered elsewhere, used by id.

::

    @reference_task(project="p", domain="d", name="pkg.clean", version="v3")
    def clean(raw: str) -> str: ...

    norm = reference_task("p", "d", "pkg.norm", "v1", inputs=kwtypes(x=float),
                          outputs=kwtypes(o0=float))

Nodes calling them reference the given identifier; nothing of theirs is registered with
the caller. They run only on a caddis cluster: calling one locally raises RemoteOnlyError.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from caddis.core.base import Entity
from caddis.core.errors import RemoteOnlyError
from caddis.core.interface import Interface, transform_function_to_interface
from caddis.core.node import Node
from caddis.core.settings import SerializationSettings
from caddis_idl.core.v1 import identifier_pb2, workflow_pb2

__all__ = [
    "ReferenceEntity",
    "ReferenceLaunchPlan",
    "ReferenceTask",
    "ReferenceWorkflow",
    "reference_launch_plan",
    "reference_task",
    "reference_workflow",
]


class ReferenceEntity(Entity):
    """An entity registered elsewhere, known by its full identifier and interface.

    Attributes:
        project: Project of the referenced entity.
        domain: Domain of the referenced entity.
        version: Version of the referenced entity.
    """

    def __init__(
        self, project: str, domain: str, name: str, version: str, interface: Interface
    ) -> None:
        super().__init__(name, interface)
        self.project = project
        self.domain = domain
        self.version = version

    def id(self, settings: SerializationSettings | None = None) -> identifier_pb2.Identifier:
        """The referenced identifier (independent of the settings)."""
        return identifier_pb2.Identifier(
            resource_type=self.resource_type,  # type: ignore[arg-type]
            project=self.project,
            domain=self.domain,
            name=self.name,
            version=self.version,
        )

    def describe(self) -> str:
        """``reference <kind> 'project/domain/name@version'``."""
        return f"reference {self.kind} '{self.project}/{self.domain}/{self.name}@{self.version}'"

    def dependencies(self) -> list[Any]:
        """Nothing: the referenced entity is registered already."""
        return []

    def _local_execute(self, **inputs: Any) -> Any:
        raise RemoteOnlyError(
            f"{self.describe()} is registered on a caddis cluster and cannot run locally; "
            f"run the calling workflow remotely (or mock this reference in tests)"
        )


class ReferenceTask(ReferenceEntity):
    """A task registered elsewhere."""

    kind = "task"
    resource_type = identifier_pb2.RESOURCE_TYPE_TASK

    def fill_node_target(
        self, out: workflow_pb2.Node, node: Node, settings: SerializationSettings
    ) -> None:
        """A task node referencing the task."""
        out.task_node.reference_id.CopyFrom(self.id(settings))
        if node.container_image:
            out.task_node.overrides.container_image = node.container_image


class ReferenceWorkflow(ReferenceEntity):
    """A workflow registered elsewhere (run as a subworkflow)."""

    kind = "workflow"
    resource_type = identifier_pb2.RESOURCE_TYPE_WORKFLOW

    def fill_node_target(
        self, out: workflow_pb2.Node, node: Node, settings: SerializationSettings
    ) -> None:
        """A subworkflow node referencing the workflow."""
        out.workflow_node.sub_workflow_ref.CopyFrom(self.id(settings))


class ReferenceLaunchPlan(ReferenceEntity):
    """A launch plan registered elsewhere (run as a child execution)."""

    kind = "launch plan"
    resource_type = identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN
    binds_defaults = False

    def fill_node_target(
        self, out: workflow_pb2.Node, node: Node, settings: SerializationSettings
    ) -> None:
        """A launch-plan node referencing the launch plan."""
        out.workflow_node.launchplan_ref.CopyFrom(self.id(settings))


def _make(
    cls: type[ReferenceEntity],
    project: str,
    domain: str,
    name: str,
    version: str,
    inputs: Mapping[str, Any] | None,
    outputs: Mapping[str, Any] | None,
) -> Any:
    owner = f"reference {cls.kind} '{name}'"
    if inputs is not None or outputs is not None:
        iface = Interface.build(
            dict(inputs or {}), dict(outputs or {}), owner=owner, outputs_are_tuple=None
        )
        return cls(project, domain, name, version, iface)

    def decorator(fn: Callable[..., Any]) -> ReferenceEntity:
        if not inspect.isfunction(fn):
            raise TypeError(f"{owner}: decorates a function stub, got {fn!r}")
        return cls(project, domain, name, version, transform_function_to_interface(fn, owner))

    return decorator


def reference_task(
    project: str,
    domain: str,
    name: str,
    version: str,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
) -> Any:
    """Reference a registered task by identifier.

    With ``inputs``/``outputs`` (name to type, e.g. ``kwtypes(x=int)``) it returns the
    :class:`ReferenceTask`; without, it is a decorator over a function stub whose signature
    gives the interface.
    """
    return _make(ReferenceTask, project, domain, name, version, inputs, outputs)


def reference_workflow(
    project: str,
    domain: str,
    name: str,
    version: str,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
) -> Any:
    """Reference a registered workflow by identifier (see :func:`reference_task`)."""
    return _make(ReferenceWorkflow, project, domain, name, version, inputs, outputs)


def reference_launch_plan(
    project: str,
    domain: str,
    name: str,
    version: str,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
) -> Any:
    """Reference a registered launch plan by identifier (see :func:`reference_task`)."""
    return _make(ReferenceLaunchPlan, project, domain, name, version, inputs, outputs)
