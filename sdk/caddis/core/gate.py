"""Gate nodes: pause a workflow for a while, for a typed input, or for an approval.

Names and semantics follow flytekit's ``flytekit.core.gate``::

    from datetime import timedelta
    from caddis import approve, sleep, task, wait_for_input, workflow

    @workflow
    def wf(x: int) -> int:
        s = sleep(timedelta(seconds=10))           # nothing flows through a sleep
        factor = wait_for_input("factor", timeout=timedelta(hours=1), expected_type=int)
        y = scale(x=x, factor=factor)
        s >> factor                               # order with >> like any call
        return approve(y, "publish", timeout=timedelta(days=1))  # y, once approved

Each call records a node whose target is an IDL ``GateNode``: a ``SleepCondition``, a
``SignalCondition`` (signal id = ``name``, output ``o0`` of ``expected_type``) or an
``ApproveCondition`` (signal id = ``name``; the upstream value passes through as ``o0``). The
timeout of ``wait_for_input``/``approve`` is the node's ``NodeMetadata.timeout``; a gate not
satisfied in time fails its node with ``GateTimedOut``. Gates work in ``@workflow`` bodies and
in ``@dynamic`` bodies (they land in the dynamic job spec).

Local runs (``wf(x=1)`` on this machine) run gates on the same engine as a cluster, with
:class:`LocalGates` as its clock and signal source:

- ``sleep`` does not hold up the run: when nothing else in the run is working, the local
  clock jumps over the wait (flytekit mock-sleeps locally too). The order of nodes is kept.
- ``wait_for_input`` and ``approve`` take their values from :func:`local_signals`; a local
  run never prompts (flytekit prompts on stdin, which hangs tests and scripts). A signal
  that has no value raises :class:`MissingSignalError` at once, naming the signal, its type
  and how to provide it. An approval given as ``False`` rejects it: the run fails.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from caddis.core.base import Entity
from caddis.core.context import current_compilation_state
from caddis.core.errors import CaddisUserError, CompilationError, MissingTypeError
from caddis.core.interface import Interface
from caddis.core.promise import OutputsMixin, Promise, VoidPromise, contains_promise
from caddis.core.settings import SerializationSettings
from caddis_idl.core.v1 import identifier_pb2, literals_pb2, types_pb2, workflow_pb2

__all__ = [
    "GATE_OUTPUT",
    "Gate",
    "LocalGates",
    "MissingSignalError",
    "approve",
    "local_signals",
    "sleep",
    "wait_for_input",
]

#: Name of the output (and, for ``approve``, the input) of a gate node, as in flytekit.
GATE_OUTPUT = "o0"

_log = logging.getLogger("caddis")


class MissingSignalError(CaddisUserError, LookupError):
    """A local run reached a ``wait_for_input`` or ``approve`` gate that has no value.

    Attributes:
        signal_id: Name of the gate's signal.
        workflow: Name of the workflow being run.
    """

    def __init__(self, message: str, *, signal_id: str, workflow: str) -> None:
        super().__init__(message)
        self.signal_id = signal_id
        self.workflow = workflow


class Gate(Entity):
    """What a gate node runs: a sleep, a wait for a typed signal, or an approval.

    Made by :func:`sleep`, :func:`wait_for_input` and :func:`approve`; not called directly.

    Attributes:
        name: Signal id (``wait_for_input``/``approve``) or ``"sleep"``.
        condition: ``"sleep"``, ``"signal"`` or ``"approve"``.
        duration: How long a sleep lasts.
        timeout: How long a signal or approval may take.
        literal_type: IDL type of the value the gate outputs (None for a sleep).
    """

    kind = "gate"
    resource_type = identifier_pb2.RESOURCE_TYPE_UNSPECIFIED

    def __init__(
        self,
        name: str,
        condition: str,
        python_interface: Interface,
        *,
        duration: datetime.timedelta | None = None,
        timeout: datetime.timedelta | None = None,
        literal_type: types_pb2.LiteralType | None = None,
    ) -> None:
        super().__init__(name, python_interface)
        self.condition = condition
        self.duration = duration
        self.timeout = timeout
        self.literal_type = literal_type

    @property
    def short_name(self) -> str:
        """The gate's name (signal names may contain dots, so never split it)."""
        return self.name

    def describe(self) -> str:
        """``gate '<name>' (<condition>)``, for messages."""
        if self.condition == "sleep":
            return f"sleep gate ({_seconds(self.duration)})"
        what = "wait_for_input" if self.condition == "signal" else "approve"
        return f"{what} gate '{self.name}'"

    def dependencies(self) -> list[Any]:
        """Gates use no other entity."""
        return []

    def configure_node(self, node: Any) -> None:
        """The gate's timeout is the node's timeout (``NodeMetadata.timeout``)."""
        if self.timeout is not None:
            node.timeout = self.timeout

    def fill_node_target(
        self, out: workflow_pb2.Node, node: Any, settings: SerializationSettings
    ) -> None:
        """Make ``out`` a gate node (``Node.gate_node``)."""
        gate = out.gate_node
        if self.condition == "sleep":
            assert self.duration is not None
            gate.sleep.duration.FromTimedelta(self.duration)
        elif self.condition == "approve":
            gate.approve.signal_id = self.name
        else:
            assert self.literal_type is not None
            gate.signal.signal_id = self.name
            gate.signal.type.CopyFrom(self.literal_type)
            gate.signal.output_variable_name = GATE_OUTPUT

    def _local_execute(self, **inputs: Any) -> Any:
        raise CompilationError(
            f"{self.describe()} is a node of a workflow; it cannot be called on its own"
        )


# ---------------------------------------------------------------------- definition time
def _state_or_raise(what: str) -> Any:
    state = current_compilation_state()
    if state is None:
        raise CompilationError(
            f"{what} can only be used inside a @workflow or @dynamic body: it pauses a running "
            f"workflow. Inside a task, use time.sleep() or read the value from an input."
        )
    return state


def _duration(where: str, arg: str, value: Any, *, allow_zero: bool) -> datetime.timedelta:
    if isinstance(value, Promise | VoidPromise | OutputsMixin) or contains_promise(value):
        raise CompilationError(
            f"{where}: {arg} must be known when the workflow is defined, but it is a promise "
            f"(a value computed when the workflow runs). Pass a datetime.timedelta."
        )
    if isinstance(value, datetime.timedelta):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = datetime.timedelta(seconds=value)  # seconds, as task timeouts accept
    else:
        raise CompilationError(
            f"{where}: {arg} must be a datetime.timedelta (or seconds), got "
            f"{type(value).__name__} {value!r}"
        )
    if result < datetime.timedelta(0) or (result == datetime.timedelta(0) and not allow_zero):
        raise CompilationError(f"{where}: {arg} must be positive, got {result}")
    return result


def _check_name(owner: str, what: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise CompilationError(
            f"{owner}: {what} needs a non-empty str name (the id of the signal to send), "
            f"got {name!r}"
        )
    return name


def _check_same_signal(state: Any, gate: Gate) -> None:
    """One signal id carries one value per execution: its type must agree everywhere."""
    assert gate.literal_type is not None
    for node in state.nodes:
        other = node.entity
        if (
            isinstance(other, Gate)
            and other.condition != "sleep"
            and other.name == gate.name
            and other.literal_type != gate.literal_type
        ):
            raise CompilationError(
                f"{state.owner}: {gate.describe()} expects {_lt(gate.literal_type)} but node "
                f"{node.id} ({other.describe()}) uses the same signal name for "
                f"{_lt(other.literal_type)}. A signal has one value per execution; give the "
                f"gates different names."
            )


def _lt(lt: types_pb2.LiteralType | None) -> str:
    from caddis.core._types import describe_literal_type

    return "nothing" if lt is None else str(describe_literal_type(lt))


def _seconds(value: datetime.timedelta | None) -> str:
    return "?" if value is None else f"{value.total_seconds():g}s"


def _record(state: Any, gate: Gate, inputs: dict[str, Any]) -> Any:
    from caddis.core.node import create_and_link_node

    return create_and_link_node(gate, state, inputs)


def sleep(duration: datetime.timedelta) -> Any:
    """Pause the workflow for ``duration`` (a node that waits, then succeeds).

    Nothing flows through a sleep: order it with ``>>``
    (``t1(...) >> sleep(timedelta(minutes=5)) >> t2_node``).

    Args:
        duration: How long to wait (a timedelta, or seconds).

    Returns:
        A :class:`~caddis.core.promise.VoidPromise` standing for the gate node.

    Raises:
        CompilationError: Called outside a workflow or dynamic body, or ``duration`` is not
            a non-negative timedelta known at definition time.
    """
    state = _state_or_raise("sleep()")
    where = f"{state.owner}: sleep()"
    length = _duration(where, "duration", duration, allow_zero=True)
    iface = Interface(inputs={}, outputs={})
    gate = Gate("sleep", "sleep", iface, duration=length)
    return _record(state, gate, {})


def wait_for_input(name: str, timeout: datetime.timedelta, expected_type: type) -> Any:
    """Wait for a value of ``expected_type`` sent to the execution under ``name``.

    On a cluster, send it with ``caddis``' remote client (signal id ``name``); in a local run
    provide it with :func:`local_signals`.

    Args:
        name: Id of the signal (unique in the execution).
        timeout: How long to wait before the node fails with ``GateTimedOut``.
        expected_type: Python type of the value (any type caddis can pass between tasks).

    Returns:
        A :class:`~caddis.core.promise.Promise` of ``expected_type``.

    Raises:
        CompilationError: Called outside a workflow or dynamic body, an empty name, a
            timeout that is not a positive timedelta, the same name used with another
            type in the workflow.
        MissingTypeError: ``expected_type`` has no caddis type.
    """
    state = _state_or_raise(f"wait_for_input({name!r})")
    name = _check_name(state.owner, "wait_for_input()", name)
    where = f"{state.owner}: wait_for_input gate '{name}'"
    limit = _duration(where, "timeout", timeout, allow_zero=False)
    try:
        from caddis.core._types import literal_type_of

        lt = literal_type_of(expected_type)
    except Exception as exc:
        raise MissingTypeError(
            f"{where}: expected_type {expected_type!r} has no caddis type ({exc})"
        ) from exc
    iface = Interface(
        inputs={},
        outputs={GATE_OUTPUT: expected_type},
        output_literal_types={GATE_OUTPUT: lt},
    )
    gate = Gate(name, "signal", iface, timeout=limit, literal_type=lt)
    _check_same_signal(state, gate)
    return _record(state, gate, {})


def approve(upstream_item: Any, name: str, timeout: datetime.timedelta) -> Any:
    """Pass ``upstream_item`` on once someone approves it under ``name``.

    The gate waits for a boolean signal ``name``: ``True`` lets the value through (the
    returned promise), ``False`` rejects it and fails the node.

    Args:
        upstream_item: The promise to approve (an output of a call, or a workflow input).
        name: Id of the approval signal (unique in the execution).
        timeout: How long to wait before the node fails with ``GateTimedOut``.

    Returns:
        A :class:`~caddis.core.promise.Promise` of the same type as ``upstream_item``.

    Raises:
        CompilationError: Called outside a workflow or dynamic body, ``upstream_item`` is
            not a single promise (a call without outputs, several outputs, a constant), an
            empty name, or a timeout that is not a positive timedelta.
    """
    state = _state_or_raise(f"approve(..., {name!r})")
    name = _check_name(state.owner, "approve()", name)
    where = f"{state.owner}: approve gate '{name}'"
    if isinstance(upstream_item, VoidPromise):
        raise CompilationError(
            f"{where}: node {upstream_item.node.id} ({upstream_item.node.describe()}) has no "
            f"outputs, so there is nothing to approve. To wait for an approval before a "
            f"step, approve a value that step needs."
        )
    if isinstance(upstream_item, OutputsMixin):
        names = ", ".join(upstream_item._fields)  # type: ignore[attr-defined]
        raise CompilationError(
            f"{where}: received all outputs ({names}) of a call at once; approve one output "
            f"at a time, e.g. approve(result.{names.split(', ')[0]}, ...)"
        )
    if not isinstance(upstream_item, Promise):
        raise CompilationError(
            f"{where}: upstream_item must be a promise (the result of a call, or a workflow "
            f"input), got {type(upstream_item).__name__} {upstream_item!r}; a constant is "
            f"known already and needs no approval"
        )
    limit = _duration(where, "timeout", timeout, allow_zero=False)
    py_type, lt = upstream_item.python_type, upstream_item.literal_type
    iface = Interface(
        inputs={GATE_OUTPUT: py_type},
        outputs={GATE_OUTPUT: py_type},
        input_literal_types={GATE_OUTPUT: lt},
        output_literal_types={GATE_OUTPUT: lt},
    )
    gate = Gate(name, "approve", iface, timeout=limit, literal_type=_BOOL)
    _check_same_signal(state, gate)
    return _record(state, gate, {GATE_OUTPUT: upstream_item})


_BOOL = types_pb2.LiteralType(simple=types_pb2.SIMPLE_TYPE_BOOLEAN)


# ---------------------------------------------------------------------- local runs
_LOCAL_SIGNALS: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "caddis_local_signals", default=None
)


@contextlib.contextmanager
def local_signals(values: Mapping[str, Any] | None = None, /, **more: Any) -> Iterator[None]:
    """Provide the values of ``wait_for_input``/``approve`` gates to local runs.

    ::

        with local_signals({"factor": 3, "publish": True}):
            wf(x=1)

    Nested uses add to (and override) the outer values.

    Args:
        values: Signal name to Python value (an approval takes a bool).
        **more: More values, for names that are Python identifiers.
    """
    merged = {**(_LOCAL_SIGNALS.get() or {}), **(values or {}), **more}
    token = _LOCAL_SIGNALS.set(merged)
    try:
        yield
    finally:
        _LOCAL_SIGNALS.reset(token)


class LocalGates:
    """The engine's clock and signal source for a local run (see the module docstring).

    Args:
        workflow: Name of the workflow being run, for messages.
        busy: Tells whether work is in flight outside the engine (running task threads);
            the clock only jumps over waits when it is not.
        signals: Signal values; defaults to those of the enclosing :func:`local_signals`.
    """

    def __init__(
        self,
        workflow: str = "",
        *,
        busy: Callable[[], bool] | None = None,
        signals: Mapping[str, Any] | None = None,
    ) -> None:
        self.workflow = workflow
        self._busy = busy or (lambda: False)
        self._signals = dict(_LOCAL_SIGNALS.get() or {}) if signals is None else dict(signals)
        self._offset = 0.0
        self._missing: tuple[str, types_pb2.LiteralType] | None = None

    # ---------------------------------------------------------------- Clock
    def now(self) -> float:
        """Wall-clock time plus the waits skipped so far."""
        return time.time() + self._offset

    @property
    def skipped(self) -> float:
        """Seconds of waiting skipped so far."""
        return self._offset

    # ---------------------------------------------------------------- SignalSource
    def get_signal(
        self,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        signal_id: str,
        signal_type: types_pb2.LiteralType,
    ) -> literals_pb2.Literal | None:
        """The value given for ``signal_id`` as a literal; None (noted) when there is none.

        Raises:
            TypeError: The value does not fit ``signal_type`` (the engine retries, and the
                next wait raises :class:`MissingSignalError` with the reason).
        """
        if signal_id not in self._signals:
            self._missing = (signal_id, signal_type)
            return None
        value = self._signals[signal_id]
        if isinstance(value, literals_pb2.Literal):
            return value
        try:
            return _to_literal(value, signal_type)
        except Exception:
            self._missing = (signal_id, signal_type)
            raise

    # ---------------------------------------------------------------- wait callback
    def wait(self, seconds: float | None, fallback: Callable[[float | None], None]) -> None:
        """What the local driver does when a round made no progress.

        Raises :class:`MissingSignalError` when a gate waits for a signal without a value
        (nothing could ever provide it); skips ahead to the next timer when nothing else is
        in flight; otherwise calls ``fallback`` (the driver's real wait).

        Raises:
            MissingSignalError: A ``wait_for_input``/``approve`` gate has no local value.
        """
        if self._missing is not None:
            raise self._missing_error(*self._missing)
        if seconds is not None and seconds > 0 and not self._busy():
            self._offset += seconds
            _log.info("local run of %s: skipped a wait of %.3gs", self.workflow, seconds)
            # A timer may stand for a reservation held by another process (pending work
            # the engine does not report here): yield briefly so that case never hot-spins.
            time.sleep(0.001)
            return
        fallback(seconds)

    def _missing_error(self, signal_id: str, lt: types_pb2.LiteralType) -> MissingSignalError:
        where = f"workflow '{self.workflow}'" if self.workflow else "the local run"
        if signal_id in self._signals:
            value = self._signals[signal_id]
            reason = (
                f"the value given for it, {value!r} ({type(value).__name__}), does not fit "
                f"its type {_lt(lt)}"
            )
        else:
            reason = "no value was given for it, and local runs do not prompt for input"
        return MissingSignalError(
            f"{where} waits for signal '{signal_id}' ({_lt(lt)}) of a wait_for_input or "
            f"approve gate, but {reason}. Provide it: "
            f"`with caddis.core.gate.local_signals({{{signal_id!r}: value}}): ...` "
            f"(an approval takes True or False).",
            signal_id=signal_id,
            workflow=self.workflow,
        )


def _to_literal(value: Any, lt: types_pb2.LiteralType) -> literals_pb2.Literal:
    from caddis.core._types import to_literal
    from caddis.core.type_engine import TypeEngine

    if lt == _BOOL and not isinstance(value, bool):
        raise TypeError(f"an approval is True or False, got {value!r}")
    try:
        py_type = TypeEngine.guess_python_type(lt)
    except Exception:  # a type the engine cannot guess: convert by the value's own type
        py_type = type(value)
    return to_literal(value, py_type, lt)
