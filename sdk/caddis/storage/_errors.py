"""Errors raised by the storage layer."""

from __future__ import annotations

__all__ = ["InvalidURIError", "NotFoundError", "PathEscapeError", "StorageError"]


class StorageError(Exception):
    """A storage operation failed.

    Attributes:
        uri: The object or prefix the operation was about.
        operation: What was attempted (``"get_bytes"``, ``"put_stream"``, ...).
        attempts: How many times it was tried (more than one when transient failures were
            retried).
    """

    def __init__(self, message: str, *, uri: str, operation: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.uri = uri
        self.operation = operation
        self.attempts = attempts


class NotFoundError(StorageError):
    """The object (or its bucket) does not exist. Never retried."""


class InvalidURIError(StorageError, ValueError):
    """A URI has an unsupported scheme or is malformed (an s3:// URI without a bucket, ...)."""


class PathEscapeError(ValueError):
    """A key segment would leave its prefix (``..``, an absolute path, an empty segment, ...)."""
