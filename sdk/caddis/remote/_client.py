"""The gRPC channel to admin and one typed stub per admin service, with errors translated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from caddis.remote._config import RemoteConfig
from caddis.remote._errors import AdminUnreachableError, EntityNotFoundError, RemoteError
from caddis_idl.admin.v1 import (
    code_bundle_service_pb2_grpc,
    execution_service_pb2_grpc,
    launch_plan_service_pb2_grpc,
    node_execution_service_pb2_grpc,
    project_service_pb2_grpc,
    signal_service_pb2_grpc,
    task_execution_service_pb2_grpc,
    task_service_pb2_grpc,
    workflow_service_pb2_grpc,
)

R = TypeVar("R")


def make_channel(config: RemoteConfig) -> grpc.Channel:
    """Open a channel to ``config.endpoint`` (plain text when ``insecure``, else TLS).

    Args:
        config: Endpoint, TLS settings and message size limit.

    Returns:
        The channel (not yet connected; gRPC connects on first use).
    """
    size = config.max_message_mb * 1024 * 1024
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", size),
        ("grpc.max_send_message_length", size),
    ]
    if config.insecure:
        return grpc.insecure_channel(config.endpoint, options=options)
    root = None
    if config.ca_cert:
        with open(config.ca_cert, "rb") as handle:
            root = handle.read()
    if config.server_name:
        options.append(("grpc.ssl_target_name_override", config.server_name))
    credentials = grpc.ssl_channel_credentials(root_certificates=root)
    return grpc.secure_channel(config.endpoint, credentials, options=options)


class AdminClient:
    """Typed stubs over one channel, each call with a deadline and translated errors.

    Args:
        channel: The channel to admin (tests inject one to an in-process server).
        endpoint: ``host:port`` shown in error messages.
        timeout_s: Deadline of each call.
        connect_timeout_s: Wait for the channel to become ready before the first call.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        endpoint: str,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.channel = channel
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._ready = False
        self.projects = project_service_pb2_grpc.ProjectServiceStub(channel)
        self.tasks = task_service_pb2_grpc.TaskServiceStub(channel)
        self.workflows = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
        self.launch_plans = launch_plan_service_pb2_grpc.LaunchPlanServiceStub(channel)
        self.executions = execution_service_pb2_grpc.ExecutionServiceStub(channel)
        self.node_executions = node_execution_service_pb2_grpc.NodeExecutionServiceStub(channel)
        self.task_executions = task_execution_service_pb2_grpc.TaskExecutionServiceStub(channel)
        self.code_bundles = code_bundle_service_pb2_grpc.CodeBundleServiceStub(channel)
        self.signals = signal_service_pb2_grpc.SignalServiceStub(channel)

    def ensure_ready(self) -> None:
        """Wait until the channel connects, or raise :class:`AdminUnreachableError`."""
        if self._ready:
            return
        try:
            grpc.channel_ready_future(self.channel).result(timeout=self.connect_timeout_s)
        except grpc.FutureTimeoutError:
            raise AdminUnreachableError(
                self.endpoint, f"no connection within {self.connect_timeout_s:g}s"
            ) from None
        self._ready = True

    def call(self, method: Callable[..., R], request: Any, *, what: str) -> R:
        """Call one RPC with the configured deadline.

        Args:
            method: A stub method, e.g. ``client.tasks.GetTask``.
            request: Its request message.
            what: What is being done, for error messages ("fetch task t1 v1").

        Returns:
            The response.

        Raises:
            AdminUnreachableError: Admin is not there.
            EntityNotFoundError: Admin answered NOT_FOUND.
            RemoteError: Any other failure, with admin's message.
        """
        self.ensure_ready()
        try:
            return method(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            detail = exc.details() if hasattr(exc, "details") else str(exc)
            if code == grpc.StatusCode.UNAVAILABLE:
                raise AdminUnreachableError(self.endpoint, str(detail)) from None
            if code == grpc.StatusCode.NOT_FOUND:
                raise EntityNotFoundError(f"{what}: {detail}") from None
            name = code.name if code is not None else "UNKNOWN"
            raise RemoteError(f"{what} failed ({name}): {detail}") from None

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


__all__ = ["AdminClient", "make_channel"]
