"""The shared gRPC scaffolding: errors to status codes, survival, health, reflection, metrics."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caddis._serving import errors
from caddis._serving.config import ServerConfig
from caddis._serving.server import GrpcServer

SERVICE = "caddis.test.Echo"


def _identity(data: bytes) -> bytes:
    return data


def _strict(data: bytes) -> bytes:
    if data.startswith(b"garbage"):
        raise ValueError("not a message")
    return data


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    text = request.decode()
    if text == "missing":
        raise errors.NotFoundError("thing 'x' does not exist")
    if text == "bad":
        raise errors.InvalidArgumentError("must not be empty", field="dataset.name")
    if text == "boom":
        raise RuntimeError("kaboom")
    if text == "abort":
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")
    return request


def _add(servicer: Any, server: grpc.Server) -> None:
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_echo, _strict, _identity),
            "Stream": grpc.unary_stream_rpc_method_handler(
                lambda req, ctx: iter([req, req]), _identity, _identity
            ),
        },
    )
    server.add_generic_rpc_handlers((handler,))


@pytest.fixture
def server() -> Iterator[GrpcServer]:
    srv = GrpcServer(ServerConfig(port=0, metrics_port=0, max_workers=4), name="test")
    srv.add_service(SERVICE, _add, None)
    with srv:
        yield srv


def _call(server: GrpcServer, payload: bytes, method: str = "Echo") -> bytes:
    with grpc.insecure_channel(server.address) as channel:
        stub = channel.unary_unary(f"/{SERVICE}/{method}")
        return stub(payload, timeout=5)  # type: ignore[no-any-return]


def _code(server: GrpcServer, payload: bytes) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        _call(server, payload)
    err: Any = info.value
    return err.code(), err.details()


def test_binds_a_free_port_and_echoes(server: GrpcServer) -> None:
    assert server.port > 0
    assert server.address == f"127.0.0.1:{server.port}"
    assert _call(server, b"hello") == b"hello"


def test_domain_errors_map_to_status_codes(server: GrpcServer) -> None:
    assert _code(server, b"missing") == (grpc.StatusCode.NOT_FOUND, "thing 'x' does not exist")
    code, details = _code(server, b"bad")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("dataset.name:")
    assert _code(server, b"abort") == (grpc.StatusCode.PERMISSION_DENIED, "no")


def test_unexpected_exception_is_internal_and_server_survives(
    server: GrpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        code, details = _code(server, b"boom")
        assert code == grpc.StatusCode.INTERNAL
        assert "kaboom" in details
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)
    assert _call(server, b"still here") == b"still here"


def test_unparsable_request_is_invalid_argument(server: GrpcServer) -> None:
    code, details = _code(server, b"garbage!")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be parsed" in details
    assert _call(server, b"ok") == b"ok"


def test_health_and_reflection(server: GrpcServer) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE):
            resp = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


def test_metrics_endpoint_counts_by_code(server: GrpcServer) -> None:
    _call(server, b"a")
    _code(server, b"missing")
    _code(server, b"boom")
    assert server.metrics_url is not None
    with urllib.request.urlopen(server.metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    assert f'caddis_grpc_requests_total{{code="OK",method="Echo",service="{SERVICE}"}} 1.0' in text
    assert 'code="NOT_FOUND",method="Echo"' in text
    assert 'code="INTERNAL",method="Echo"' in text
    assert "caddis_grpc_request_duration_seconds_bucket" in text


def test_two_servers_in_one_process_have_separate_registries() -> None:
    a = GrpcServer(ServerConfig(metrics_port=None), name="a").start()
    b = GrpcServer(ServerConfig(metrics_port=None), name="b").start()
    try:
        assert a.port != b.port
        assert a.registry is not b.registry
        assert a.metrics_url is None
    finally:
        a.stop()
        b.stop()
    a.stop()  # idempotent


def test_stop_reports_not_serving() -> None:
    srv = GrpcServer(ServerConfig(), name="t")
    srv.start()
    srv.stop()
    assert srv.wait(0)
