"""Where the SDK is: compiling a workflow body, compiling a dynamic body, or running a task.

Three pieces of ambient state, each in a ``ContextVar`` so that threads and asyncio tasks do
not see each other's:

- the :class:`CompilationState` of the workflow (or dynamic, or branch) body being traced,
  which makes calls of tasks return promises and record nodes instead of running;
- the :class:`ExecutionParameters` of the running task (``current_context()``), installed by
  the task runtime or local execution;
- the serialization settings a dynamic body compiles with (see ``caddis.core.translator``).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caddis.core.node import Node

__all__ = [
    "CompilationState",
    "ExecutionParameters",
    "FlyteContext",
    "FlyteContextManager",
    "compilation_state",
    "current_compilation_state",
    "current_context",
    "execution_parameters",
]


class CompilationState:
    """The nodes recorded while a workflow, dynamic or branch body is traced.

    Attributes:
        owner: What is being compiled, for error messages (``workflow 'pkg.wf'``).
        mode: ``"workflow"``, ``"dynamic"`` or ``"branch"``.
        prefix: Prepended to node ids (``"n3-"`` inside the branch node ``n3``).
        nodes: Nodes in call order.
    """

    def __init__(self, owner: str, mode: str = "workflow", prefix: str = "") -> None:
        self.owner = owner
        self.mode = mode
        self.prefix = prefix
        self.nodes: list[Node] = []
        # conditional() sections opened in this body and not yet closed by else_().
        self.open_sections: list[Any] = []
        self._next = 0

    def next_node_id(self) -> str:
        """Reserve the next node id: ``n0``, ``n1``, ... (with the prefix)."""
        node_id = f"{self.prefix}n{self._next}"
        self._next += 1
        return node_id

    def add_node(self, node: Node) -> None:
        """Record a node (in call order)."""
        self.nodes.append(node)


_COMPILATION: contextvars.ContextVar[CompilationState | None] = contextvars.ContextVar(
    "caddis_compilation_state", default=None
)


def current_compilation_state() -> CompilationState | None:
    """The state of the body being traced, or None when calls should run for real."""
    return _COMPILATION.get()


@contextlib.contextmanager
def compilation_state(state: CompilationState | None) -> Iterator[CompilationState | None]:
    """Trace calls into ``state`` (None: run calls for real) for the duration of the block."""
    token = _COMPILATION.set(state)
    try:
        yield state
    finally:
        _COMPILATION.reset(token)


@dataclass
class ExecutionParameters:
    """What a running task can learn about its execution (``caddis.current_context()``).

    The task runtime and local execution install one per task attempt with
    :func:`execution_parameters`; outside of them a default with a temporary working
    directory is returned, so that task functions can also be called as plain functions.

    Attributes:
        execution_id: Identifier of the workflow execution (``project:domain:name``), or a
            local placeholder.
        task_id: Identifier of the running task, when known.
        working_directory: A scratch directory private to this attempt.
        raw_output_prefix: Where offloaded outputs (files, dataframes) are written.
        checkpoint: The attempt's checkpoint object (None when checkpointing is unavailable).
        logging: A logger for user code.
        execution_date: When the execution started.
        attempt_number: Zero-based retry attempt.
        decks: Decks rendered for this attempt.
        environment: Extra values set by the runtime (secrets, node id, ...).
    """

    execution_id: str = "local"
    task_id: str = ""
    working_directory: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="caddis-"))
    raw_output_prefix: str = ""
    checkpoint: Any = None
    logging: logging.Logger = field(default_factory=lambda: logging.getLogger("caddis.user"))
    execution_date: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC)
    )
    attempt_number: int = 0
    decks: list[Any] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def default_deck(self) -> Any:
        """The deck named "default", created on first use."""
        from caddis.core.deck import Deck

        for deck in self.decks:
            if deck.name == "default":
                return deck
        return Deck("default")

    def get(self, key: str) -> str | None:
        """A runtime-provided value, falling back to the process environment."""
        return self.environment.get(key, os.environ.get(key))


_EXECUTION: contextvars.ContextVar[ExecutionParameters | None] = contextvars.ContextVar(
    "caddis_execution_parameters", default=None
)
_DEFAULT_PARAMS: list[ExecutionParameters] = []


def current_context() -> ExecutionParameters:
    """The execution parameters of the running task (flytekit's ``current_context()``).

    Returns:
        The parameters installed by the runtime, or a process-wide default (with a temporary
        working directory) when the task function is called directly.
    """
    params = _EXECUTION.get()
    if params is not None:
        return params
    if not _DEFAULT_PARAMS:
        _DEFAULT_PARAMS.append(ExecutionParameters())
    return _DEFAULT_PARAMS[0]


@contextlib.contextmanager
def execution_parameters(params: ExecutionParameters) -> Iterator[ExecutionParameters]:
    """Install ``params`` as ``current_context()`` for the duration of the block."""
    token = _EXECUTION.set(params)
    try:
        yield params
    finally:
        _EXECUTION.reset(token)


@dataclass
class FlyteContext:
    """A snapshot of the ambient state, under flytekit's name.

    Attributes:
        compilation_state: The body being traced, if any.
        user_space_params: The running task's execution parameters.
    """

    compilation_state: CompilationState | None
    user_space_params: ExecutionParameters


class FlyteContextManager:
    """Access to the ambient state, under flytekit's name."""

    @staticmethod
    def current_context() -> FlyteContext:
        """The current :class:`FlyteContext`."""
        return FlyteContext(current_compilation_state(), current_context())
