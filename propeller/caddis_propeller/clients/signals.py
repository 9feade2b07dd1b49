"""Gate signals (approve, wait_for_input) from admin's SignalService.

The engine polls :meth:`AdminSignalSource.get_signal` while a gate waits. The first call
creates the signal in admin (GetOrCreateSignal), so users can list what an execution waits for
and set it; later calls read it back until it has a value. Once seen, a value is remembered:
a set signal never changes (admin refuses a different value), so the gate needs no more calls.
"""

from __future__ import annotations

import threading

import grpc

from caddis_idl.admin.v1 import signal_service_pb2, signal_service_pb2_grpc
from caddis_idl.core.v1 import identifier_pb2, literals_pb2, types_pb2


class AdminSignalSource:
    """The engine's ``SignalSource`` over admin's SignalService.

    Args:
        channel: A gRPC channel to admin.
        timeout: Deadline of one call in seconds.
    """

    def __init__(self, channel: grpc.Channel, *, timeout: float = 5.0) -> None:
        self._stub = signal_service_pb2_grpc.SignalServiceStub(channel)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str, str, str], literals_pb2.Literal] = {}

    def get_signal(
        self,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        signal_id: str,
        signal_type: types_pb2.LiteralType,
    ) -> literals_pb2.Literal | None:
        """Return the signal's value, or None while nobody set it (creating it on first ask).

        Args:
            execution_id: The execution whose gate waits.
            signal_id: The gate's signal name.
            signal_type: The type the value must have.

        Returns:
            The value once set, else None.

        Raises:
            grpc.RpcError: Admin failed; the engine treats that as "not yet" and asks again.
        """
        key = (execution_id.project, execution_id.domain, execution_id.name, signal_id)
        with self._lock:
            known = self._values.get(key)
        if known is not None:
            return known
        response = self._stub.GetOrCreateSignal(
            signal_service_pb2.GetOrCreateSignalRequest(
                id=identifier_pb2.SignalIdentifier(signal_id=signal_id, execution_id=execution_id),
                type=signal_type,
            ),
            timeout=self._timeout,
        )
        if not response.signal.HasField("value"):
            return None
        value = response.signal.value
        with self._lock:
            if len(self._values) > 10_000:
                self._values.clear()
            self._values[key] = value
        return value


__all__ = ["AdminSignalSource"]
