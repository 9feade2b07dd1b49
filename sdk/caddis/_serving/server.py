"""A sync gRPC server with what every caddis service needs around its own servicers.

Usage, from a service's ``server`` module::

    server = GrpcServer(config.server, name="datacatalog")
    hits = Counter("caddis_datacatalog_cache_hits", "...", registry=server.registry)
    server.add_service(
        SERVICE_FULL_NAME, datacatalog_service_pb2_grpc.add_DataCatalogServiceServicer_to_server,
        servicer,
    )
    server.start()          # binds; server.port is the bound port
    ...
    server.stop()

What it adds:

- health (``grpc.health.v1.Health``) reporting SERVING for ``""`` and every added service, and
  NOT_SERVING once :meth:`GrpcServer.stop` begins;
- reflection for the added services, health and reflection itself;
- an interceptor that maps :class:`caddis._serving.errors.ServiceError` to its status code,
  turns any other exception into ``INTERNAL`` with the traceback logged (the server keeps
  serving), answers a request that cannot be parsed with ``INVALID_ARGUMENT``, and records
  request counts and latency in :class:`caddis._serving.metrics.ServerMetrics`;
- a Prometheus ``/metrics`` HTTP endpoint on its own port, over a registry owned by this
  server instance.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from caddis._serving.config import ServerConfig
from caddis._serving.errors import InvalidArgumentError, ServiceError
from caddis._serving.metrics import MetricsHttpServer, ServerMetrics

_log = logging.getLogger(__name__)

S = TypeVar("S")


if TYPE_CHECKING:
    _InterceptorBase = grpc.ServerInterceptor[Any, Any]
else:  # the runtime class is not generic; only grpc-stubs' is
    _InterceptorBase = grpc.ServerInterceptor


class _Malformed:
    """Stands in for a request whose bytes did not parse, so the handler can say so."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    # gRPC answers a deserialization failure with a bare INTERNAL; the caller sent garbage,
    # so it deserves INVALID_ARGUMENT and a message that says so.
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:
            return _Malformed(exc)

    return parse


def _check(request: Any) -> Any:
    if isinstance(request, _Malformed):
        raise InvalidArgumentError(f"the request message could not be parsed: {request.error}")
    return request


def _split_method(full_method: str) -> tuple[str, str]:
    # "/caddis_idl.datacatalog.v1.DataCatalogService/GetArtifact"
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or full_method


class _Outcome:
    """Tracks the status code an RPC ends with and records it once."""

    __slots__ = ("_method", "_metrics", "_service", "_start", "code")

    def __init__(self, metrics: ServerMetrics, service: str, method: str) -> None:
        self._metrics = metrics
        self._service = service
        self._method = method
        self._start = time.perf_counter()
        self.code = "OK"

    def fail(self, context: grpc.ServicerContext, exc: BaseException) -> None:
        """Turn ``exc`` into a status on ``context`` (always raises, as ``abort`` does)."""
        if isinstance(exc, ServiceError):
            self.code = exc.status
            context.abort(grpc.StatusCode[exc.status], exc.message)
        existing = _context_code(context)
        if existing is not None and existing != grpc.StatusCode.OK:
            # The handler aborted on its own with a chosen code; keep it.
            self.code = existing.name
            raise exc
        self.code = "INTERNAL"
        _log.error("unexpected error in %s/%s", self._service, self._method, exc_info=exc)
        context.abort(
            grpc.StatusCode.INTERNAL,
            f"internal error in {self._method}: {type(exc).__name__}: {exc}",
        )

    def finish(self, context: grpc.ServicerContext) -> None:
        """Record the RPC in the request counter and latency histogram."""
        if self.code == "OK":
            code = _context_code(context)
            if code is not None:
                self.code = code.name
        self._metrics.record(
            self._service, self._method, self.code, time.perf_counter() - self._start
        )


def _context_code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    getter = getattr(context, "code", None)
    if getter is None:
        return None
    code = getter()
    return code if isinstance(code, grpc.StatusCode) else None


class ServingInterceptor(_InterceptorBase):
    """Maps errors to status codes, survives unexpected exceptions and records metrics.

    Args:
        metrics: Where request counts and latencies go.
    """

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics
        # gRPC asks for the handler on every call; the wrapper depends only on the method and
        # the handler found for it, so it is built once per method (handler identity checked,
        # in case an inner interceptor hands out a different handler) instead of per call.
        self._wrapped: dict[
            str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]
        ] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the handler of one RPC (called by gRPC for every call)."""
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        full_method = handler_call_details.method
        cached = self._wrapped.get(full_method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, full_method)
        # A plain dict store is atomic under the GIL; a lost race only builds one wrapper more.
        self._wrapped[full_method] = (handler, wrapped)
        return wrapped

    def _wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], full_method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        service, method = _split_method(full_method)
        metrics = self._metrics
        deserializer = _tolerant(handler.request_deserializer)
        serializer = handler.response_serializer

        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            def unary_unary(request: Any, context: grpc.ServicerContext) -> Any:
                outcome = _Outcome(metrics, service, method)
                try:
                    return inner_uu(_check(request), context)
                except Exception as exc:
                    outcome.fail(context, exc)
                finally:
                    outcome.finish(context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, serializer)

        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                outcome = _Outcome(metrics, service, method)
                try:
                    yield from inner_us(_check(request), context)
                except Exception as exc:
                    outcome.fail(context, exc)
                finally:
                    outcome.finish(context)

            return grpc.unary_stream_rpc_method_handler(unary_stream, deserializer, serializer)

        if handler.stream_unary is not None:
            inner_su = handler.stream_unary

            def stream_unary(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
                outcome = _Outcome(metrics, service, method)
                try:
                    return inner_su((_check(r) for r in requests), context)
                except Exception as exc:
                    outcome.fail(context, exc)
                finally:
                    outcome.finish(context)

            return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)

        inner_ss = handler.stream_stream
        assert inner_ss is not None

        def stream_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            outcome = _Outcome(metrics, service, method)
            try:
                yield from inner_ss((_check(r) for r in requests), context)
            except Exception as exc:
                outcome.fail(context, exc)
            finally:
                outcome.finish(context)

        return grpc.stream_stream_rpc_method_handler(stream_stream, deserializer, serializer)


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 host."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


class GrpcServer:
    """A sync gRPC server with health, reflection, metrics and error mapping.

    Create it, add services and service-specific metrics, then :meth:`start`. Usable as a
    context manager (starts on enter, stops on exit).

    Args:
        config: Bind addresses, thread pool size and options.
        name: Component name (``"datacatalog"``), used in logs.
        interceptors: Extra server interceptors, run inside the serving interceptor (so their
            exceptions are mapped too).
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        name: str,
        interceptors: tuple[grpc.ServerInterceptor[Any, Any], ...] = (),
    ) -> None:
        self.config = config
        self.name = name
        self.metrics = ServerMetrics()
        self.registry = self.metrics.registry
        self._executor = futures.ThreadPoolExecutor(
            max_workers=config.max_workers, thread_name_prefix=f"{name}-rpc"
        )
        self.server: grpc.Server = grpc.server(
            self._executor,
            interceptors=[ServingInterceptor(self.metrics), *interceptors],
            # Without this a second server could bind a port already in use and share it.
            options=[("grpc.so_reuseport", 0)],
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._service_names: list[str] = []
        self._metrics_http: MetricsHttpServer | None = None
        self._port: int | None = None
        self._stop_lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()

    def add_service(
        self,
        full_name: str,
        add_to_server: Callable[[S, grpc.Server], None],
        servicer: S,
    ) -> None:
        """Register a servicer before :meth:`start`.

        Args:
            full_name: The service's full protobuf name (for health and reflection), e.g.
                ``datacatalog_service_pb2.DESCRIPTOR.services_by_name["DataCatalogService"]
                .full_name``.
            add_to_server: The generated ``add_XServicer_to_server`` function.
            servicer: The servicer instance.
        """
        if self._port is not None:
            raise RuntimeError(f"{self.name}: add services before start()")
        add_to_server(servicer, self.server)
        self._service_names.append(full_name)

    def start(self) -> GrpcServer:
        """Bind the gRPC port and the metrics port and start serving.

        Returns:
            ``self``, so that ``server = GrpcServer(...).start()`` reads naturally.

        Raises:
            RuntimeError: When the configured port cannot be bound.
        """
        if self._port is not None:
            raise RuntimeError(f"{self.name}: already started")
        if self.config.reflection:
            reflection.enable_server_reflection(
                (
                    *self._service_names,
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME,
                ),
                self.server,
            )
        address = format_address(self.config.host, self.config.port)
        try:
            port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise RuntimeError(f"{self.name}: cannot bind gRPC address {address}: {exc}") from exc
        if port == 0:
            raise RuntimeError(f"{self.name}: cannot bind gRPC address {address}")
        self._port = port
        if self.config.metrics_port is not None:
            self._metrics_http = MetricsHttpServer(
                self.registry, self.config.metrics_host, self.config.metrics_port
            )
        self.server.start()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        for service in self._service_names:
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        _log.info("%s listening on %s (metrics: %s)", self.name, self.address, self.metrics_url)
        return self

    @property
    def port(self) -> int:
        """The bound gRPC port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError(f"{self.name}: not started")
        return self._port

    @property
    def address(self) -> str:
        """``host:port`` that clients dial, e.g. ``127.0.0.1:40123``."""
        return format_address(self.config.host, self.port)

    @property
    def metrics_port(self) -> int | None:
        """The bound metrics port, or ``None`` when metrics are disabled."""
        return self._metrics_http.port if self._metrics_http else None

    @property
    def metrics_url(self) -> str | None:
        """The ``/metrics`` URL, or ``None`` when metrics are disabled."""
        return self._metrics_http.url if self._metrics_http else None

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting RPCs, let in-flight ones finish within ``grace`` seconds, shut down.

        Args:
            grace: Seconds to wait for in-flight RPCs; ``config.grace_period_s`` when ``None``.
        """
        with self._stop_lock:
            first = not self._stopping
            self._stopping = True
        if not first:
            # Another thread (a signal handler's) is stopping it; return once it is done.
            self._stopped.wait()
            return
        try:
            self.health.enter_graceful_shutdown()
            self.server.stop(self.config.grace_period_s if grace is None else grace).wait()
            self._executor.shutdown(wait=False, cancel_futures=True)
            if self._metrics_http is not None:
                self._metrics_http.stop()
        finally:
            self._stopped.set()
        _log.info("%s stopped", self.name)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops.

        Args:
            timeout: Seconds to wait at most; forever when ``None``.

        Returns:
            True when the server has stopped.
        """
        return self._stopped.wait(timeout)

    def __enter__(self) -> GrpcServer:
        if self._port is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_until_signalled(server: GrpcServer, *, on_stop: Callable[[], None] | None = None) -> None:
    """Run a started server in the foreground until SIGINT or SIGTERM, then stop it gracefully.

    Meant for a service's ``main()``; must be called from the main thread.

    Args:
        server: A started server.
        on_stop: Called after the server stopped (close database engines and the like).
    """

    def handle(signum: int, frame: FrameType | None) -> None:
        _log.info("%s: received signal %d, stopping", server.name, signum)
        # Stopping from the signal handler itself would block it; a thread keeps it short.
        threading.Thread(target=server.stop, name=f"{server.name}-stop", daemon=True).start()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not server.wait(timeout=1.0):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        server.stop()
        if on_stop is not None:
            on_stop()


__all__ = ["GrpcServer", "ServingInterceptor", "format_address", "serve_until_signalled"]
