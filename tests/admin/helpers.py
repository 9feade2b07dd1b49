"""Builders of tasks, workflows and literals, a fake propeller and a controllable clock."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from caddis_idl.core.v1 import (
    identifier_pb2,
    interface_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
    workflow_pb2,
)
from caddis_idl.propeller.v1 import propeller_service_pb2 as prop
from caddis_idl.propeller.v1 import propeller_service_pb2_grpc

P, D = "proj", "development"
INT = types_pb2.LiteralType(simple=types_pb2.SIMPLE_TYPE_INTEGER)
STR = types_pb2.LiteralType(simple=types_pb2.SIMPLE_TYPE_STRING)
DATETIME = types_pb2.LiteralType(simple=types_pb2.SIMPLE_TYPE_DATETIME)


def ident(kind: int, name: str, version: str = "v1", project: str = P, domain: str = D):
    return identifier_pb2.Identifier(
        resource_type=kind, project=project, domain=domain, name=name, version=version
    )


def task_id(name: str, version: str = "v1"):
    return ident(identifier_pb2.RESOURCE_TYPE_TASK, name, version)


def wf_id(name: str, version: str = "v1"):
    return ident(identifier_pb2.RESOURCE_TYPE_WORKFLOW, name, version)


def lp_id(name: str, version: str = "v1"):
    return ident(identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN, name, version)


def variables(**types: types_pb2.LiteralType) -> interface_pb2.VariableMap:
    return interface_pb2.VariableMap(
        variables={k: interface_pb2.Variable(type=t) for k, t in types.items()}
    )


def task_template(name: str, version: str = "v1", image: str = "python:3.11", **inputs):
    inputs = inputs or {"x": INT}
    return tasks_pb2.TaskTemplate(
        id=task_id(name, version),
        type="python-task",
        interface=interface_pb2.TypedInterface(
            inputs=variables(**inputs), outputs=variables(o=INT)
        ),
        metadata=tasks_pb2.TaskMetadata(),
    )


def promise(node: str, var: str) -> literals_pb2.BindingData:
    return literals_pb2.BindingData(promise=literals_pb2.OutputReference(node_id=node, var=var))


def workflow_template(name: str, task: str = "t1", task_version: str = "v1", **inputs):
    """start -> n0 (task(x)) -> end, with workflow inputs ``inputs`` (x:int by default)."""
    inputs = inputs or {"x": INT}
    return workflow_pb2.WorkflowTemplate(
        id=wf_id(name),
        interface=interface_pb2.TypedInterface(
            inputs=variables(**inputs), outputs=variables(o=INT)
        ),
        nodes=[
            workflow_pb2.Node(
                id="n0",
                inputs=[literals_pb2.Binding(var="x", binding=promise("start-node", "x"))],
                task_node=workflow_pb2.TaskNode(reference_id=task_id(task, task_version)),
            )
        ],
        outputs=[literals_pb2.Binding(var="o", binding=promise("n0", "o"))],
    )


def int_lit(v: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=v))
    )


def str_lit(v: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=v))
    )


def lmap(**lits: literals_pb2.Literal) -> literals_pb2.LiteralMap:
    return literals_pb2.LiteralMap(literals=lits)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float) -> None:
        self._t = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def set(self, t: float) -> None:
        with self._lock:
            self._t = t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds


@dataclass
class FakePropeller(propeller_service_pb2_grpc.PropellerServiceServicer):
    """A real PropellerService on 127.0.0.1 that records launches and aborts."""

    launches: list[prop.LaunchExecutionRequest] = field(default_factory=list)
    aborts: list[prop.AbortExecutionRequest] = field(default_factory=list)
    port: int = 0
    server: grpc.Server | None = None
    # When set, LaunchExecution answers with this status and message instead of launching.
    refuse: tuple[grpc.StatusCode, str] | None = None
    refused: list[str] = field(default_factory=list)

    def LaunchExecution(self, request, context):
        if self.refuse is not None:
            self.refused.append(request.execution_id.name)
            context.abort(*self.refuse)
        already = any(r.execution_id == request.execution_id for r in self.launches)
        if not already:
            self.launches.append(request)
        return prop.LaunchExecutionResponse(already_launched=already, producer_id="fake")

    def AbortExecution(self, request, context):
        self.aborts.append(request)
        return prop.AbortExecutionResponse()

    def start(self) -> FakePropeller:
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)]
        )
        propeller_service_pb2_grpc.add_PropellerServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(0).wait()
            self.server = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def launched_names(self) -> list[str]:
        return [r.execution_id.name for r in self.launches]
