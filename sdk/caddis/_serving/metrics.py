"""Prometheus series shared by every caddis gRPC server.

Each :class:`~caddis._serving.server.GrpcServer` owns its own
:class:`prometheus_client.CollectorRegistry`, so several servers (tests start many in one
process) never collide on metric names. Services register their own series on
:attr:`ServerMetrics.registry`.
"""

from __future__ import annotations

import threading
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

# Loopback RPCs take well under a millisecond; the buckets resolve that range and still
# cover slow database calls.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class ServerMetrics:
    """The RPC series recorded by the server interceptor.

    Series:
        ``caddis_grpc_requests_total{service, method, code}``: finished RPCs by status code.
        ``caddis_grpc_request_duration_seconds{service, method}``: handling latency.

    Args:
        registry: Registry to create the series in; a fresh one when ``None``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "caddis_grpc_requests",
            "gRPC requests handled, by service, method and status code.",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "caddis_grpc_request_duration_seconds",
            "Time spent handling a gRPC request, by service and method.",
            ["service", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # labels() costs a lock and a tuple hash per call; children per label set are cached.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def record(self, service: str, method: str, code: str, seconds: float) -> None:
        """Count one finished RPC and observe its latency."""
        key = (service, method, code)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(service, method, code),
                self.latency.labels(service, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class MetricsHttpServer:
    """A ``/metrics`` HTTP endpoint for one registry, serving from a daemon thread.

    Args:
        registry: What to expose.
        host: Interface to bind.
        port: Port to bind; ``0`` picks a free one, see :attr:`port`.
    """

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        server, thread = start_http_server(port, addr=host, registry=registry)
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.host = host
        self.port: int = int(server.server_address[1])

    @property
    def url(self) -> str:
        """The scrape URL, e.g. ``http://127.0.0.1:9090/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


__all__ = ["LATENCY_BUCKETS", "MetricsHttpServer", "ServerMetrics"]
