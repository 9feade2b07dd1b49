"""What the remote client returns: registered entities, executions and node trees."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from caddis_idl.admin.v1 import execution_pb2, node_execution_pb2
from caddis_idl.core.v1 import execution_pb2 as core_execution_pb2
from caddis_idl.core.v1 import identifier_pb2, interface_pb2

_WF_TERMINAL = {
    core_execution_pb2.WORKFLOW_EXECUTION_PHASE_SUCCEEDED,
    core_execution_pb2.WORKFLOW_EXECUTION_PHASE_FAILED,
    core_execution_pb2.WORKFLOW_EXECUTION_PHASE_ABORTED,
    core_execution_pb2.WORKFLOW_EXECUTION_PHASE_TIMED_OUT,
}


def workflow_phase_name(phase: int) -> str:
    """``SUCCEEDED`` for ``WORKFLOW_EXECUTION_PHASE_SUCCEEDED``."""
    return core_execution_pb2.WorkflowExecutionPhase.Name(phase).removeprefix(  # type: ignore[arg-type]
        "WORKFLOW_EXECUTION_PHASE_"
    )


def node_phase_name(phase: int) -> str:
    """``RUNNING`` for ``NODE_EXECUTION_PHASE_RUNNING``."""
    return core_execution_pb2.NodeExecutionPhase.Name(phase).removeprefix(  # type: ignore[arg-type]
        "NODE_EXECUTION_PHASE_"
    )


def cache_status_name(status: int) -> str:
    """``HIT`` for ``CATALOG_CACHE_STATUS_HIT``; empty for unspecified."""
    if not status:
        return ""
    return core_execution_pb2.CatalogCacheStatus.Name(status).removeprefix(  # type: ignore[arg-type]
        "CATALOG_CACHE_STATUS_"
    )


def id_str(ident: identifier_pb2.Identifier) -> str:
    """``project/domain/name@version``."""
    return f"{ident.project}/{ident.domain}/{ident.name}@{ident.version}"


@dataclass
class RemoteEntity:
    """A task, workflow or launch plan registered with admin.

    Attributes:
        id: Its identifier.
        interface: Its typed interface (a launch plan's expected inputs and outputs).
        python_interface: The local entity's interface when it came from local code, used to
            convert inputs and outputs to the declared Python types.
        launch_target: What an execution of it launches (a wrapper workflow for a task).
    """

    id: identifier_pb2.Identifier
    interface: interface_pb2.TypedInterface
    python_interface: Any = None
    launch_target: identifier_pb2.Identifier | None = None

    @property
    def name(self) -> str:
        """The entity's name."""
        return self.id.name

    @property
    def version(self) -> str:
        """The entity's version."""
        return self.id.version


@dataclass
class NodeTree:
    """One node execution and the node executions it spawned (dynamic, array, subworkflow).

    Attributes:
        node: The node execution as admin reports it.
        children: Its child node executions, in start order.
    """

    node: node_execution_pb2.NodeExecution
    children: list[NodeTree] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        """The node's id within its execution."""
        return self.node.id.node_id

    @property
    def phase(self) -> str:
        """Phase name (``SUCCEEDED``)."""
        return node_phase_name(self.node.closure.phase)

    @property
    def duration(self) -> dt.timedelta | None:
        """How long it ran, when known."""
        if not self.node.closure.HasField("duration"):
            return None
        return self.node.closure.duration.ToTimedelta()

    @property
    def cache_status(self) -> str:
        """Catalog status (``HIT``, ``MISS``, ``POPULATED``, ...) or empty."""
        return cache_status_name(self.node.closure.cache_status)

    @property
    def error(self) -> str:
        """The error message, when the node failed."""
        if self.node.closure.HasField("error"):
            return str(self.node.closure.error.message)
        return ""

    def walk(self, depth: int = 0) -> list[tuple[int, NodeTree]]:
        """This node and every descendant with its depth, depth first."""
        out = [(depth, self)]
        for child in self.children:
            out.extend(child.walk(depth + 1))
        return out


@dataclass
class RemoteExecution:
    """One execution of a launch plan or workflow on admin.

    Attributes:
        id: Its identifier (project, domain, name).
        proto: The last state fetched from admin.
        entity: What was launched, when known (used to type the outputs).
        outputs: Outputs as Python values, once fetched by :meth:`CaddisRemote.wait` or
            :meth:`CaddisRemote.fetch_outputs` of a succeeded execution.
    """

    id: identifier_pb2.WorkflowExecutionIdentifier
    proto: execution_pb2.Execution
    entity: RemoteEntity | None = None
    outputs: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The execution's name."""
        return self.id.name

    @property
    def phase(self) -> str:
        """Phase name (``RUNNING``, ``SUCCEEDED``, ...)."""
        return workflow_phase_name(self.proto.closure.phase)

    @property
    def is_done(self) -> bool:
        """True once the execution is in a terminal phase."""
        return self.proto.closure.phase in _WF_TERMINAL

    @property
    def is_successful(self) -> bool:
        """True when it succeeded."""
        return self.proto.closure.phase == core_execution_pb2.WORKFLOW_EXECUTION_PHASE_SUCCEEDED

    @property
    def error(self) -> str:
        """The failure message (or abort cause), when there is one."""
        closure = self.proto.closure
        if closure.HasField("error"):
            return str(closure.error.message)
        if closure.HasField("abort_metadata"):
            return f"aborted: {closure.abort_metadata.cause}"
        return ""


__all__ = [
    "NodeTree",
    "RemoteEntity",
    "RemoteExecution",
    "cache_status_name",
    "id_str",
    "node_phase_name",
    "workflow_phase_name",
]
