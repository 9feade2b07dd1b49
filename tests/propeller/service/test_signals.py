"""Gate nodes through admin's SignalService: the execution waits until someone sets the signal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from caddis_idl.admin.v1 import signal_service_pb2, signal_service_pb2_grpc
from caddis_idl.core.v1 import identifier_pb2, literals_pb2
from tests.propeller.service import leftover_workflows as lw
from tests.propeller.service.admin_stack import DOMAIN, PROJECT, Stack, runs, start_stack
from tests.support import wait_until


@pytest.fixture
def stack(tmp_path: Path, storage: Any, make_config: Any, start_propeller: Any) -> Iterator[Stack]:
    yield from start_stack(tmp_path, storage, make_config, start_propeller)


def _signals(stub: Any, execution: str) -> dict[str, Any]:
    response = stub.ListSignals(
        signal_service_pb2.ListSignalsRequest(
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                project=PROJECT, domain=DOMAIN, name=execution
            )
        )
    )
    return {s.id.signal_id: s for s in response.signals}


def _set(stub: Any, execution: str, signal: str, value: literals_pb2.Literal) -> None:
    stub.SetSignal(
        signal_service_pb2.SetSignalRequest(
            id=identifier_pb2.SignalIdentifier(
                signal_id=signal,
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                    project=PROJECT, domain=DOMAIN, name=execution
                ),
            ),
            value=value,
        )
    )


def _int(v: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=v))
    )


def _bool(v: bool) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=v))
    )


def test_gates_wait_for_signals_set_in_admin(stack: Stack, markers: Path) -> None:
    stack.run(lw.gated, {"x": 1}, name="gated1")
    with grpc.insecure_channel(stack.admin.address) as channel:
        stub = signal_service_pb2_grpc.SignalServiceStub(channel)
        # Propeller asked admin for both signals (created, no value): the execution waits.
        wait_until(
            lambda: {"bonus", "go"} <= set(_signals(stub, "gated1")),
            timeout=30,
            message="both signals created by propeller",
        )
        assert stack.remote.fetch_execution("gated1").phase == "RUNNING"
        assert runs(markers, "total2") == 0
        _set(stub, "gated1", "bonus", _int(40))
        _set(stub, "gated1", "go", _bool(True))
        done = stack.wait("gated1")
    assert done.phase == "SUCCEEDED", done.error
    assert stack.remote.fetch_outputs(done) == {"o0": 42}  # (1 + 1) + 40
    assert runs(markers, "total2") == 1


def test_rejected_approval_fails_the_execution(stack: Stack) -> None:
    stack.run(lw.gated, {"x": 1}, name="gated2")
    with grpc.insecure_channel(stack.admin.address) as channel:
        stub = signal_service_pb2_grpc.SignalServiceStub(channel)
        wait_until(lambda: "go" in _signals(stub, "gated2"), timeout=30, message="signal go")
        _set(stub, "gated2", "go", _bool(False))
        done = stack.wait("gated2")
    assert done.phase == "FAILED"
    assert "rejected" in done.error
