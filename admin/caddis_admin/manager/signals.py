"""Signals: typed values from outside an execution that gate nodes wait for.

Propeller asks for a signal when a gate node (``wait_for_input``, ``approve``) starts, which
creates it without a value, and polls until it has one; users list the signals an execution
waits for and set them. A value is set once: the same value again is accepted, a different
one is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from caddis._serving.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from caddis_admin.manager.context import AdminContext, list_query, parse_time
from caddis_admin.manager.literals import describe_literal, describe_type, literal_matches
from caddis_admin.repository import transformers as tf
from caddis_admin.repository.models import SignalRow
from caddis_admin.repository.store import Repos
from caddis_idl.admin.v1 import common_pb2, signal_pb2
from caddis_idl.core.v1 import identifier_pb2, literals_pb2, types_pb2

SIGNAL_FILTERS: dict[str, Callable[[str], Any]] = {"created_at": parse_time, "set_at": parse_time}
# Descriptive parts of a type that do not change which values it accepts.
_DESCRIPTIVE_FIELDS = ("metadata", "annotation", "structure")


def _name(ident: identifier_pb2.SignalIdentifier) -> str:
    e = ident.execution_id
    return f"signal {ident.signal_id!r} of execution {e.project}/{e.domain}/{e.name}"


def _same_type(a: types_pb2.LiteralType, b: types_pb2.LiteralType) -> bool:
    def essential(t: types_pb2.LiteralType) -> types_pb2.LiteralType:
        copy = types_pb2.LiteralType()
        copy.CopyFrom(t)
        for field in _DESCRIPTIVE_FIELDS:
            copy.ClearField(field)  # type: ignore[arg-type]
        return copy

    return essential(a) == essential(b)


def _check_id(ident: identifier_pb2.SignalIdentifier) -> None:
    e = ident.execution_id
    missing = [
        f
        for f, v in (
            ("signal_id", ident.signal_id),
            ("execution_id.project", e.project),
            ("execution_id.domain", e.domain),
            ("execution_id.name", e.name),
        )
        if not v
    ]
    if missing:
        raise InvalidArgumentError(
            f"the signal identifier needs {', '.join(missing)}", field="id." + missing[0]
        )


def signal_to_proto(row: SignalRow) -> signal_pb2.Signal:
    """A Signal message from its row."""
    msg = signal_pb2.Signal(principal=row.principal)
    msg.id.signal_id = row.signal_id
    e = msg.id.execution_id
    e.project, e.domain, e.name = row.project, row.domain, row.execution_name
    msg.type.MergeFromString(row.type)
    if row.value is not None:
        msg.value.MergeFromString(row.value)
    msg.created_at.CopyFrom(tf.timestamp(row.created_at))
    if row.set_at is not None:
        msg.set_at.CopyFrom(tf.timestamp(row.set_at))
    return msg


class SignalManager:
    """Creates, lists and sets signals.

    Args:
        ctx: The shared admin context.
    """

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    def get_or_create(
        self, ident: identifier_pb2.SignalIdentifier, signal_type: types_pb2.LiteralType
    ) -> signal_pb2.Signal:
        """The signal, created without a value on first ask.

        Propeller calls this on every poll of a waiting gate node, so an existing signal
        costs one read and no write.

        Raises:
            InvalidArgumentError: The identifier is incomplete, no type is given, or the
                signal exists with another type.
        """
        _check_id(ident)
        if signal_type.WhichOneof("type") is None:
            raise InvalidArgumentError(f"{_name(ident)} needs a type", field="type")
        e = ident.execution_id
        key = (e.project, e.domain, e.name, ident.signal_id)
        with self.ctx.db.transaction(readonly=True) as repos:
            row = repos.signals.get(*key)
        if row is None:
            now = self.ctx.now_us()
            type_bytes = signal_type.SerializeToString(deterministic=True)

            def create(repos: Repos) -> SignalRow:
                # A fresh row per attempt: a retried transaction must not reuse the last one's.
                return repos.signals.add(
                    SignalRow(
                        project=e.project,
                        domain=e.domain,
                        execution_name=e.name,
                        signal_id=ident.signal_id,
                        type=type_bytes,
                        value=None,
                        principal="",
                        created_at=now,
                        set_at=None,
                    )
                )

            row = self.ctx.db.run(create)
        existing = types_pb2.LiteralType.FromString(row.type)
        if not _same_type(existing, signal_type):
            raise InvalidArgumentError(
                f"{_name(ident)} already exists with type {describe_type(existing)}; it was "
                f"asked for with type {describe_type(signal_type)}",
                field="type",
            )
        return signal_to_proto(row)

    def list_signals(
        self, execution: identifier_pb2.WorkflowExecutionIdentifier, options: common_pb2.ListOptions
    ) -> tuple[list[signal_pb2.Signal], str]:
        """A page of the signals of an execution (filter fields: signal_id, created_at, set_at)."""
        query = list_query(options, SIGNAL_FILTERS)
        with self.ctx.db.transaction(readonly=True) as repos:
            rows, token = repos.signals.page(
                execution.project, execution.domain, execution.name, query
            )
            return [signal_to_proto(r) for r in rows], token

    def set(
        self,
        ident: identifier_pb2.SignalIdentifier,
        value: literals_pb2.Literal,
        principal: str = "",
    ) -> signal_pb2.Signal:
        """Set a signal's value, once.

        Args:
            ident: Which signal.
            value: The value; must have the signal's type.
            principal: Who sets it.

        Returns:
            The signal with its value.

        Raises:
            NotFoundError: Nobody asked for the signal yet.
            InvalidArgumentError: The value does not have the signal's type.
            AlreadyExistsError: A different value was set before (the same value again
                succeeds without effect).
        """
        _check_id(ident)
        if value.WhichOneof("value") is None:
            raise InvalidArgumentError(f"a value for {_name(ident)} is required", field="value")
        e = ident.execution_id
        now = self.ctx.now_us()

        def work(repos: Repos) -> signal_pb2.Signal:
            row = repos.signals.get(e.project, e.domain, e.name, ident.signal_id, lock=True)
            if row is None:
                raise NotFoundError(
                    f"{_name(ident)} does not exist: nothing has asked for it yet (its gate node "
                    "has not started)"
                )
            declared = types_pb2.LiteralType.FromString(row.type)
            if not literal_matches(value, declared):
                raise InvalidArgumentError(
                    f"{_name(ident)} expects {describe_type(declared)}, received "
                    f"{describe_literal(value)}",
                    field="value",
                )
            if row.value is not None:
                current = literals_pb2.Literal.FromString(row.value)
                if current == value:
                    return signal_to_proto(row)
                raise AlreadyExistsError(
                    f"{_name(ident)} is already set to a different value; a signal is set once"
                )
            row.value = value.SerializeToString(deterministic=True)
            row.set_at = now
            row.principal = principal
            repos.signals.flush()
            return signal_to_proto(row)

        return self.ctx.db.run(work)
