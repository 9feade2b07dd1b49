"""Shape checks of incoming requests: what must be present, what may not be empty.

Each failure names the offending field, so that a caller sees exactly what to fix.
"""

from __future__ import annotations

import datetime as dt
import re

from google.protobuf import duration_pb2
from google.protobuf.message import Message

from caddis._serving.errors import InvalidArgumentError
from caddis_idl.datacatalog.v1 import datacatalog_pb2

_MAX_LEN = 255
# Control characters and slashes would make blob paths and log lines ambiguous.
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def require_message(parent: Message, name: str, path: str) -> None:
    """Fail unless the message field ``name`` of ``parent`` is set."""
    if not parent.HasField(name):
        raise InvalidArgumentError("is required", field=path)


def require_name(value: str, path: str, *, max_len: int = _MAX_LEN) -> str:
    """Fail unless ``value`` is a non-empty, reasonably short, printable string."""
    if not value:
        raise InvalidArgumentError("must not be empty", field=path)
    if len(value) > max_len:
        raise InvalidArgumentError(f"must be at most {max_len} characters", field=path)
    if _BAD_CHARS.search(value):
        raise InvalidArgumentError("must not contain control characters", field=path)
    return value


def dataset_id(parent: Message, name: str, path: str) -> datacatalog_pb2.DatasetID:
    """The ``DatasetID`` field ``name`` of ``parent``, with all four key parts present."""
    require_message(parent, name, path)
    value: datacatalog_pb2.DatasetID = getattr(parent, name)
    for part in ("project", "domain", "name", "version"):
        require_name(getattr(value, part), f"{path}.{part}")
    return value


def one_of(parent: Message, group: str, path_prefix: str) -> str:
    """The name of the set member of oneof ``group``; fails when none is set or it is empty."""
    which = parent.WhichOneof(group)
    if which is None:
        raise InvalidArgumentError("one of artifact_id or tag_name is required", field=group)
    require_name(getattr(parent, which), f"{path_prefix}{which}")
    return str(which)


def duration(value: duration_pb2.Duration, path: str) -> dt.timedelta:
    """A non-negative duration as a timedelta."""
    if value.seconds < 0 or value.nanos < 0:
        raise InvalidArgumentError("must not be negative", field=path)
    try:
        return value.ToTimedelta()
    except (OverflowError, ValueError) as exc:
        raise InvalidArgumentError(f"is out of range: {exc}", field=path) from None


def artifact_data(data: list[datacatalog_pb2.ArtifactData], path: str) -> None:
    """Data values must be named, uniquely, and carry a value."""
    seen: set[str] = set()
    for i, item in enumerate(data):
        require_name(item.name, f"{path}[{i}].name")
        if item.name in seen:
            raise InvalidArgumentError(
                f"duplicate data name {item.name!r}", field=f"{path}[{i}].name"
            )
        seen.add(item.name)
        require_message(item, "value", f"{path}[{i}].value")


__all__ = [
    "artifact_data",
    "dataset_id",
    "duration",
    "one_of",
    "require_message",
    "require_name",
]
