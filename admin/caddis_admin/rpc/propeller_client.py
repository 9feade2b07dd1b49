"""The gRPC client through which the outbox hands executions to propeller."""

from __future__ import annotations

import grpc

from caddis_admin.manager.outbox import DeliveryError
from caddis_idl.propeller.v1 import propeller_service_pb2 as prop
from caddis_idl.propeller.v1 import propeller_service_pb2_grpc

# Codes after which the same request may succeed later; the rest mean propeller refused it.
_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
}


class GrpcPropellerClient:
    """Delivers outbox messages with PropellerService's LaunchExecution / AbortExecution.

    Args:
        address: ``host:port`` of propeller.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.insecure_channel(address)
        self._stub = propeller_service_pb2_grpc.PropellerServiceStub(self._channel)

    def deliver(self, kind: str, payload: bytes, timeout: float) -> None:
        """Send one message; raise DeliveryError (permanent when propeller refused it)."""
        try:
            if kind == "launch":
                self._stub.LaunchExecution(
                    prop.LaunchExecutionRequest.FromString(payload), timeout=timeout
                )
            elif kind == "abort":
                self._stub.AbortExecution(
                    prop.AbortExecutionRequest.FromString(payload), timeout=timeout
                )
            else:
                raise DeliveryError(f"unknown outbox message kind {kind!r}", permanent=True)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            detail = exc.details() if hasattr(exc, "details") else str(exc)
            raise DeliveryError(
                f"propeller at {self.address}: {code.name}: {detail}",
                permanent=code not in _RETRYABLE,
                code=code.name,
            ) from exc

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()
