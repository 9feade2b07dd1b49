from __future__ import annotations

import pytest

from caddis.core.type_engine import TypeEngine
from caddis.runtime import AttemptContext, execute_task
from caddis_idl.core.v1 import errors_pb2, execution_pb2
from tests.sdk.runtime import sample_tasks as st


def lm(**values: object):  # type: ignore[no-untyped-def]
    return TypeEngine.dict_to_literal_map(values, {k: type(v) for k, v in values.items()})


def test_success_outputs_and_timings() -> None:
    r = execute_task(st.add_one, lm(x=41))
    assert r.error is None and r.futures is None
    assert r.outputs is not None
    assert r.outputs.literals["o0"].scalar.primitive.integer == 42
    assert set(r.timings) == {"input_seconds", "user_seconds", "output_seconds"}
    assert all(v >= 0 for v in r.timings.values())


def test_defaults_and_tuple_outputs() -> None:
    r = execute_task(st.pair, lm(a=3))
    assert r.outputs is not None
    assert r.outputs.literals["o0"].scalar.primitive.integer == 6
    assert r.outputs.literals["o1"].scalar.primitive.string_value == "B"


def test_user_error_is_user_and_recoverable() -> None:
    # Every user exception may be retried (within the task's retries budget).
    r = execute_task(st.fails, lm(x=1))
    assert r.outputs is None and r.error is not None
    ce = r.error.error
    assert ce.code == "USER:ValueError"
    assert ce.kind == errors_pb2.ContainerError.KIND_RECOVERABLE
    assert ce.origin == execution_pb2.ERROR_KIND_USER
    assert "no good: 1" in ce.message and "sample_tasks.py" in ce.message
    assert isinstance(r.exception, ValueError)
    err = r.execution_error()
    assert err is not None and err.kind == execution_pb2.ERROR_KIND_USER and err.recoverable


def test_explicitly_recoverable_user_error() -> None:
    r = execute_task(st.fails_recoverably, lm(x=1))
    assert r.error is not None
    assert r.error.error.kind == errors_pb2.ContainerError.KIND_RECOVERABLE
    assert r.error.error.origin == execution_pb2.ERROR_KIND_USER


@pytest.mark.parametrize("name", ["fails_for_good", "fails_flytekit_style"])
def test_non_recoverable_error_is_not_retryable(name: str) -> None:
    r = execute_task(getattr(st, name), lm(x=1))
    assert r.error is not None
    ce = r.error.error
    assert ce.kind == errors_pb2.ContainerError.KIND_NON_RECOVERABLE
    assert ce.origin == execution_pb2.ERROR_KIND_USER
    assert ce.code in ("USER:NonRecoverableError", "USER:FlyteNonRecoverableException")
    err = r.execution_error()
    assert err is not None and not err.recoverable


def test_wrong_number_of_outputs_is_a_user_error() -> None:
    r = execute_task(st.wrong_arity, lm(x=1))
    assert r.error is not None
    assert r.error.error.code == "USER:OutputError"
    assert "declares 2 outputs" in r.error.error.message


def test_bad_input_is_system_recoverable() -> None:
    r = execute_task(st.add_one, lm(y=1))
    assert r.error is not None
    assert r.error.error.origin == execution_pb2.ERROR_KIND_SYSTEM
    assert r.error.error.kind == errors_pb2.ContainerError.KIND_RECOVERABLE
    assert "'y'" in r.error.error.message


def test_dynamic_returns_futures() -> None:
    r = execute_task(st.fan_out, lm(n=3))
    assert r.futures is not None and r.outputs is None
    assert len(r.futures.nodes) == 3
    assert [t.id.name for t in r.futures.tasks] == ["tests.sdk.runtime.sample_tasks.add_one"]


def test_deck_written_beside_outputs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = execute_task(st.with_deck, lm(x=2), AttemptContext(output_prefix=str(tmp_path)))
    assert r.deck_html is not None
    page = (tmp_path / "deck.html").read_text()
    assert "hello deck" in page and "Inputs" in page and "Outputs" in page and "20" in page


def test_no_deck_unless_enabled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = execute_task(st.add_one, lm(x=2), AttemptContext(output_prefix=str(tmp_path)))
    assert r.deck_html is None
    assert not (tmp_path / "deck.html").exists()


def test_working_directory_is_lazy_and_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    wd = tmp_path / "wd"
    execute_task(st.add_one, lm(x=1), AttemptContext(working_directory=str(wd)))
    assert not wd.exists()  # never asked for: never created
