"""What every manager shares: configuration, database, blob store, clock and hooks."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from google.protobuf.message import Message

from caddis._serving.errors import InvalidArgumentError
from caddis.storage import BlobStore
from caddis_admin.config import AdminConfig
from caddis_admin.repository.db import Database
from caddis_admin.repository.query import Filter, ListQuery
from caddis_idl.admin.v1 import common_pb2


class Clock(Protocol):
    """Where managers read the time from (tests inject a controllable one)."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()


@dataclass
class Hooks:
    """Callbacks out of the managers (metrics, waking the dispatcher); no-ops by default."""

    wake_dispatcher: Callable[[], None] = lambda: None
    execution_phase: Callable[[str], None] = lambda phase: None
    scheduler_lag: Callable[[float], None] = lambda seconds: None


@dataclass
class AdminContext:
    """Shared state of one admin instance.

    Attributes:
        config: The configuration.
        db: The database.
        store: The blob store for ``config.resolved_metadata_prefix()``.
        clock: The clock.
        hooks: Callbacks for metrics and the dispatcher.
    """

    config: AdminConfig
    db: Database
    store: BlobStore
    clock: Clock = field(default_factory=SystemClock)
    hooks: Hooks = field(default_factory=Hooks)

    def now_us(self) -> int:
        """The clock's time in microseconds since the epoch."""
        return int(self.clock.now() * 1_000_000)

    def check_domain(self, project: str, domain: str) -> None:
        """Refuse an empty project or a domain that is not configured."""
        if not project:
            raise InvalidArgumentError("a project is required", field="project")
        if domain not in self.config.domains:
            raise InvalidArgumentError(
                f"domain {domain!r} does not exist; domains: {', '.join(self.config.domains)}",
                field="domain",
            )


def digest(msg: Message) -> str:
    """A stable content digest of a message (deterministic serialization, SHA-256)."""
    return hashlib.sha256(msg.SerializeToString(deterministic=True)).hexdigest()


def differences(old: Message, new: Message, prefix: str = "", limit: int = 10) -> list[str]:
    """Dotted paths of the fields whose values differ between two messages of one type."""
    out: list[str] = []
    names = {f.name for f, _ in old.ListFields()} | {f.name for f, _ in new.ListFields()}
    for name in sorted(names):
        fd = old.DESCRIPTOR.fields_by_name[name]
        a: Any = getattr(old, name)
        b: Any = getattr(new, name)
        path = f"{prefix}{name}"
        is_map = fd.message_type is not None and fd.message_type.GetOptions().map_entry
        if fd.message_type is not None and not is_map and not fd.is_repeated:
            if a != b:
                out.extend(differences(a, b, path + ".", limit - len(out)) or [path])
        elif a != b:
            out.append(path)
        if len(out) >= limit:
            break
    return out[:limit]


def to_datetime(micros: int) -> datetime:
    """A timezone-aware UTC datetime from microseconds since the epoch."""
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


_OPS = {
    common_pb2.FILTER_OPERATOR_EQ: "eq",
    common_pb2.FILTER_OPERATOR_NEQ: "ne",
    common_pb2.FILTER_OPERATOR_GT: "gt",
    common_pb2.FILTER_OPERATOR_GTE: "gte",
    common_pb2.FILTER_OPERATOR_LT: "lt",
    common_pb2.FILTER_OPERATOR_LTE: "lte",
    common_pb2.FILTER_OPERATOR_IN: "in",
    common_pb2.FILTER_OPERATOR_CONTAINS: "contains",
}


def parse_time(value: str) -> int:
    """Microseconds since the epoch from an RFC 3339 time or a number of epoch seconds."""
    try:
        return int(float(value) * 1_000_000)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidArgumentError(
            f"{value!r} is not a time: give RFC 3339 (2024-05-01T12:00:00Z) or epoch seconds",
            field="filters",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1_000_000)


def list_query(
    options: common_pb2.ListOptions,
    converters: dict[str, Callable[[str], Any]] | None = None,
    *,
    default_sort: str = "created_at",
) -> ListQuery:
    """Turn the IDL's ListOptions into a repository query, converting filter values.

    Args:
        options: Limit, token, filters and sort from the request.
        converters: Per field, how to turn a string value into the column's value (times,
            enum names); fields not listed keep strings. ``labels.<key>`` stays a string.
        default_sort: Sort key when the request names none.

    Returns:
        The query.
    """
    conv = converters or {}
    filters: list[Filter] = []
    for f in options.filters:
        op = _OPS.get(f.op)
        if op is None:
            raise InvalidArgumentError(f"filter on {f.field!r} has no operator", field="filters")
        if not f.values:
            raise InvalidArgumentError(f"filter on {f.field!r} has no value", field="filters")
        fn = conv.get(f.field, str)
        values = [fn(v) for v in f.values]
        filters.append(Filter(f.field, op, tuple(values) if op == "in" else values[0]))
    sort = options.sort_by
    return ListQuery(
        filters=tuple(filters),
        sort_key=sort.key or default_sort,
        ascending=sort.direction == common_pb2.SORT_DIRECTION_ASCENDING,
        limit=options.limit or 100,
        token=options.token,
    )


def enum_value(enum_type: Any, prefix: str) -> Callable[[str], int]:
    """A converter accepting an enum's value name (with or without ``prefix``) or number."""

    def convert(value: str) -> int:
        if value.isdigit():
            return int(value)
        name = value.upper()
        if not name.startswith(prefix):
            name = prefix + name
        try:
            return int(enum_type.Value(name))
        except ValueError as exc:
            names = [n.removeprefix(prefix) for n in enum_type.keys()]  # noqa: SIM118
            raise InvalidArgumentError(
                f"{value!r} is not one of {', '.join(names)}", field="filters"
            ) from exc

    return convert


def join_messages(problems: Iterable[str]) -> str:
    """One message from several problems, one per line."""
    items = list(problems)
    if len(items) == 1:
        return items[0]
    return f"{len(items)} problems:\n" + "\n".join(f"  - {p}" for p in items)
