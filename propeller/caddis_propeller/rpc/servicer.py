"""The PropellerService servicer: one controller call per RPC.

Domain errors raised by the controller (:mod:`caddis._serving.errors`) are mapped to status
codes by the server's interceptor.
"""

from __future__ import annotations

import grpc

from caddis._serving.errors import InvalidArgumentError
from caddis_idl.propeller.v1 import propeller_service_pb2, propeller_service_pb2_grpc
from caddis_propeller.manager.controller import Controller

pb = propeller_service_pb2

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["PropellerService"].full_name
"""Full protobuf name of the service (for health and reflection)."""


def _check_id(request: pb.AbortExecutionRequest | pb.GetExecutionStateRequest) -> None:
    eid = request.execution_id
    if not (eid.project and eid.domain and eid.name):
        raise InvalidArgumentError("execution_id needs project, domain and name")


class PropellerServicer(propeller_service_pb2_grpc.PropellerServiceServicer):
    """Serves LaunchExecution, AbortExecution and GetExecutionState.

    Args:
        controller: The control loop that owns executions.
    """

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def LaunchExecution(
        self, request: pb.LaunchExecutionRequest, context: grpc.ServicerContext
    ) -> pb.LaunchExecutionResponse:
        """Accept an execution; a repeated launch reports ``already_launched``."""
        return self.controller.launch(request)

    def AbortExecution(
        self, request: pb.AbortExecutionRequest, context: grpc.ServicerContext
    ) -> pb.AbortExecutionResponse:
        """Record an abort; the execution ends ABORTED asynchronously."""
        _check_id(request)
        self.controller.abort(request.execution_id, request.cause)
        return pb.AbortExecutionResponse()

    def GetExecutionState(
        self, request: pb.GetExecutionStateRequest, context: grpc.ServicerContext
    ) -> pb.GetExecutionStateResponse:
        """Propeller's view of an execution."""
        _check_id(request)
        return self.controller.get_state(request.execution_id)


__all__ = ["SERVICE_NAME", "PropellerServicer"]
