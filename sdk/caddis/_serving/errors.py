"""Domain errors that service managers raise; the rpc edge maps them to gRPC status codes.

Pure Python on purpose: a manager imports this module without importing grpc, and the
mapping to :class:`grpc.StatusCode` happens in :mod:`caddis._serving.server` by the name in
:attr:`ServiceError.status`.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors a service reports to its caller with a specific status code.

    Attributes:
        status: Name of the :class:`grpc.StatusCode` member this error maps to.
        message: What went wrong and, where possible, what to do about it.
    """

    status: str = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(ServiceError):
    """The named entity does not exist (``NOT_FOUND``)."""

    status = "NOT_FOUND"


class AlreadyExistsError(ServiceError):
    """An entity with the same identity exists with different content (``ALREADY_EXISTS``)."""

    status = "ALREADY_EXISTS"


class InvalidArgumentError(ServiceError):
    """The request is malformed or a field has a bad value (``INVALID_ARGUMENT``).

    Args:
        message: What is wrong with the value.
        field: Dotted path of the offending request field; prefixed to the message so that the
            caller sees which field to fix.
    """

    status = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class FailedPreconditionError(ServiceError):
    """The system is not in a state that allows the operation (``FAILED_PRECONDITION``)."""

    status = "FAILED_PRECONDITION"


class AbortedError(ServiceError):
    """A concurrent change won; the caller may retry the whole operation (``ABORTED``)."""

    status = "ABORTED"


class PermissionDeniedError(ServiceError):
    """The caller may not perform this operation (``PERMISSION_DENIED``)."""

    status = "PERMISSION_DENIED"


class ResourceExhaustedError(ServiceError):
    """A quota or size limit was exceeded (``RESOURCE_EXHAUSTED``)."""

    status = "RESOURCE_EXHAUSTED"


class UnavailableError(ServiceError):
    """A dependency (database, blob store, other service) is unreachable (``UNAVAILABLE``)."""

    status = "UNAVAILABLE"


class UnimplementedError(ServiceError):
    """The operation is not supported by this server (``UNIMPLEMENTED``)."""

    status = "UNIMPLEMENTED"


class InternalError(ServiceError):
    """An invariant was broken inside the service (``INTERNAL``)."""

    status = "INTERNAL"


__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "ServiceError",
    "UnavailableError",
    "UnimplementedError",
]
