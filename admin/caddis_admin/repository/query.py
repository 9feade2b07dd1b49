"""Filters, sort orders and page tokens, in terms the manager can build without SQLAlchemy."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from caddis._serving.errors import InvalidArgumentError

OPERATORS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "contains"})


@dataclass(frozen=True)
class Filter:
    """One condition: ``field op value``; ``in`` takes a tuple of values.

    ``field`` names a column of the listed entity; ``labels.<key>`` matches a label of an
    execution.
    """

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class ListQuery:
    """What a list call asks for: conditions, one sort key, a page size and where to resume.

    Attributes:
        filters: Conditions that all hold.
        sort_key: The column to sort by (``created_at`` when empty).
        ascending: Sort direction; newest first by default.
        limit: Page size.
        token: Opaque token from the previous page, empty for the first.
    """

    filters: tuple[Filter, ...] = field(default_factory=tuple)
    sort_key: str = "created_at"
    ascending: bool = False
    limit: int = 100
    token: str = ""


def encode_token(sort_key: str, value: Any, row_id: int) -> str:
    """Encode where the next page starts: the last row's sort value and id (the tie-break)."""
    raw = json.dumps([sort_key, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, sort_key: str) -> tuple[Any, int]:
    """Decode a page token made by :func:`encode_token` for the same sort key.

    Raises:
        InvalidArgument: The token is malformed or was made for another sort order.
    """
    try:
        padded = token + "=" * (-len(token) % 4)
        key, value, row_id = json.loads(base64.urlsafe_b64decode(padded))
    except Exception as exc:
        raise InvalidArgumentError(
            f"page token {token!r} is not a token this service issued"
        ) from exc
    if key != sort_key or not isinstance(row_id, int):
        raise InvalidArgumentError(
            f"page token {token!r} was issued for sort key {key!r}, not {sort_key!r}; "
            "start again without a token when changing the sort order"
        )
    return value, row_id
