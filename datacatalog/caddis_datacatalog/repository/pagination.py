"""Opaque, stable page tokens for keyset pagination over (created_at, row id)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass

from caddis._serving.errors import InvalidArgumentError

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class PageCursor:
    """Position after the last item of a page: items strictly beyond it come next.

    Attributes:
        created_at: ``created_at`` of the last item returned.
        row_id: Row id of the last item returned (breaks ties between equal timestamps).
        ascending: The order the token was issued for; a token is only valid for that order.
    """

    created_at: dt.datetime
    row_id: int
    ascending: bool

    def encode(self) -> str:
        """The token handed to the client."""
        raw = json.dumps(
            {
                "t": (self.created_at - _EPOCH) // dt.timedelta(microseconds=1),
                "i": self.row_id,
                "a": self.ascending,
            },
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, *, ascending: bool, field: str = "pagination.token") -> PageCursor:
        """Parse a token from a client.

        Args:
            token: What the client sent.
            ascending: The order of the current request.
            field: Request field named in errors.

        Returns:
            The cursor.

        Raises:
            InvalidArgumentError: When the token is not one we issued or was issued for the
                other sort order.
        """
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            micros = int(data["t"])
            row_id = int(data["i"])
            token_ascending = bool(data["a"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise InvalidArgumentError(
                "not a page token issued by this server; pass next_token from the previous "
                "response, or an empty token for the first page",
                field=field,
            ) from None
        if token_ascending != ascending:
            raise InvalidArgumentError("the token was issued for the other sort order", field=field)
        created = _EPOCH + dt.timedelta(microseconds=micros)
        return cls(created, row_id, ascending)


__all__ = ["PageCursor"]
