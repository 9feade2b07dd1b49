"""SignalService through the gRPC API: get-or-create, typed set once, listing."""

from __future__ import annotations

import grpc
import pytest

from caddis_idl.admin.v1 import common_pb2
from caddis_idl.admin.v1 import signal_service_pb2 as ss
from caddis_idl.core.v1 import identifier_pb2, literals_pb2, types_pb2
from tests.admin.helpers import INT, STR, int_lit, str_lit
from tests.admin.test_executions import exec_id

BOOL = types_pb2.LiteralType(simple=types_pb2.SIMPLE_TYPE_BOOLEAN)


def sig_id(signal, execution="e1"):
    return identifier_pb2.SignalIdentifier(signal_id=signal, execution_id=exec_id(execution))


def bool_lit(v: bool) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=v))
    )


def get_or_create(stubs, signal, t, execution="e1"):
    return stubs.signals.GetOrCreateSignal(
        ss.GetOrCreateSignalRequest(id=sig_id(signal, execution), type=t)
    ).signal


def set_signal(stubs, signal, value, execution="e1"):
    stubs.signals.SetSignal(ss.SetSignalRequest(id=sig_id(signal, execution), value=value))


def code_and_details(fn):
    with pytest.raises(grpc.RpcError) as err:
        fn()
    return err.value.code(), err.value.details()


def test_get_or_create_then_set_once(stubs):
    created = get_or_create(stubs, "approve-n1", BOOL)
    assert created.id.signal_id == "approve-n1"
    assert created.id.execution_id.name == "e1"
    assert created.type == BOOL
    assert not created.HasField("value") and not created.HasField("set_at")
    assert created.created_at.seconds > 0
    # Asking again (propeller polling) returns the same signal, still without a value.
    again = get_or_create(stubs, "approve-n1", BOOL)
    assert again.created_at == created.created_at and not again.HasField("value")

    # A value of another type names both types.
    code, details = code_and_details(lambda: set_signal(stubs, "approve-n1", str_lit("yes")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "expects boolean" in details and "received string" in details
    assert "approve-n1" in details

    set_signal(stubs, "approve-n1", bool_lit(True))
    got = get_or_create(stubs, "approve-n1", BOOL)
    assert got.value == bool_lit(True) and got.HasField("set_at")
    # The same value again is accepted; a different one is refused.
    set_signal(stubs, "approve-n1", bool_lit(True))
    code, details = code_and_details(lambda: set_signal(stubs, "approve-n1", bool_lit(False)))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert "already set" in details
    assert get_or_create(stubs, "approve-n1", BOOL).value == bool_lit(True)

    # Asking for the same signal with another type is refused, naming both.
    code, details = code_and_details(lambda: get_or_create(stubs, "approve-n1", INT))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "type boolean" in details and "type integer" in details


def test_set_unknown_and_invalid_requests(stubs):
    code, details = code_and_details(lambda: set_signal(stubs, "nobody-asked", int_lit(1)))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "nobody-asked" in details
    code, details = code_and_details(
        lambda: stubs.signals.GetOrCreateSignal(
            ss.GetOrCreateSignalRequest(id=identifier_pb2.SignalIdentifier(signal_id="s"), type=INT)
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "execution_id.project" in details
    code, _ = code_and_details(lambda: get_or_create(stubs, "untyped", types_pb2.LiteralType()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    get_or_create(stubs, "n", INT)
    code, _ = code_and_details(lambda: set_signal(stubs, "n", literals_pb2.Literal()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_list_signals_pages_and_filters(stubs):
    for i in range(5):
        get_or_create(stubs, f"s{i}", STR)
    get_or_create(stubs, "other", STR, execution="e2")
    set_signal(stubs, "s3", str_lit("v"))

    seen, token = [], ""
    while True:
        resp = stubs.signals.ListSignals(
            ss.ListSignalsRequest(
                execution_id=exec_id("e1"),
                options=common_pb2.ListOptions(
                    limit=2,
                    token=token,
                    sort_by=common_pb2.Sort(
                        key="signal_id", direction=common_pb2.SORT_DIRECTION_ASCENDING
                    ),
                ),
            )
        )
        seen.extend(s.id.signal_id for s in resp.signals)
        token = resp.next_token
        if not token:
            break
    assert seen == ["s0", "s1", "s2", "s3", "s4"]

    only = stubs.signals.ListSignals(
        ss.ListSignalsRequest(
            execution_id=exec_id("e1"),
            options=common_pb2.ListOptions(
                filters=[
                    common_pb2.Filter(
                        field="signal_id", op=common_pb2.FILTER_OPERATOR_EQ, values=["s3"]
                    )
                ]
            ),
        )
    ).signals
    assert [(s.id.signal_id, s.value.scalar.primitive.string_value) for s in only] == [("s3", "v")]
    none = stubs.signals.ListSignals(ss.ListSignalsRequest(execution_id=exec_id("missing")))
    assert list(none.signals) == []
