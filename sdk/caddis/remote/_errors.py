"""Errors of the remote client."""

from __future__ import annotations


class RemoteError(Exception):
    """A call to admin failed; the message says which call, why, and what to do."""


class AdminUnreachableError(RemoteError):
    """Admin does not answer at the configured endpoint."""

    def __init__(self, endpoint: str, detail: str = "") -> None:
        message = (
            f"cannot reach admin at {endpoint}: start it with `caddis sandbox start`, or point "
            f"CADDIS_REMOTE_ENDPOINT (or --endpoint) at a running admin"
        )
        if detail:
            message += f" ({detail})"
        super().__init__(message)
        self.endpoint = endpoint


class EntityNotFoundError(RemoteError):
    """The task, workflow, launch plan or execution is not registered with admin."""


class ExecutionTimeoutError(RemoteError):
    """:meth:`caddis.remote.CaddisRemote.wait` ran out of time."""


class ExecutionFailedError(RemoteError):
    """The execution ended in a phase other than SUCCEEDED when its outputs were asked for."""


__all__ = [
    "AdminUnreachableError",
    "EntityNotFoundError",
    "ExecutionFailedError",
    "ExecutionTimeoutError",
    "RemoteError",
]
