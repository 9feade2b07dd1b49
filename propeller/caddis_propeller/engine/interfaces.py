"""The engine's contracts with the world: injected interfaces and the values they exchange.

Everything here is a ``typing.Protocol`` (structural: implement the methods, no base class
needed) or a small slotted value class. The engine never does I/O itself; it calls these.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from google.protobuf.message import Message

from caddis_idl.core.v1 import (
    dynamic_job_pb2,
    execution_pb2,
    identifier_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
    workflow_pb2,
)

if TYPE_CHECKING:
    from caddis_propeller.engine.cache_keys import CacheKey

M = TypeVar("M", bound=Message)

# --------------------------------------------------------------------------------------------
# Task runner
# --------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class TaskAttempt:
    """One attempt of one task, as handed to the :class:`TaskRunner`.

    Attributes:
        execution_id: The workflow execution.
        node_path: Unique path of the node within the execution (``n1``, ``sub/n0``,
            ``dyn/0/n2``, ``map/17`` for item 17 of array node ``map``). Stable across
            restarts: derive deterministic resource names from (execution, path, attempt).
        node_id: The node's id in its graph.
        attempt: 0-based retry attempt.
        task: The task template to run.
        inputs: The resolved inputs (already written to ``inputs_key``, except for array
            items: the engine does not write one inputs.pb per item; a runner whose task
            processes read inputs from storage writes ``inputs`` there itself).
        inputs_key: DataStore key of ``inputs.pb``.
        output_prefix: DataStore key prefix for this attempt: a process writes
            ``{output_prefix}/outputs.pb``, ``futures.pb`` or ``error.pb`` there.
        interruptible: Whether this attempt may run on preemptible capacity.
        timeout: Per-attempt timeout in seconds (the engine enforces it too), or None.
        array_index: Item index when the attempt is an array-node item, else None.
        overrides: Node-level overrides (resources, image) or None.
    """

    execution_id: identifier_pb2.WorkflowExecutionIdentifier
    node_path: str
    node_id: str
    attempt: int
    task: tasks_pb2.TaskTemplate
    inputs: literals_pb2.LiteralMap
    inputs_key: str
    output_prefix: str
    interruptible: bool
    timeout: float | None
    array_index: int | None = None
    overrides: workflow_pb2.TaskNodeOverrides | None = None


@dataclass(slots=True, frozen=True)
class Running:
    """The attempt is in flight; ``handle`` is persisted in the state and passed to check/abort.

    Attributes:
        handle: A JSON-safe string the runner can find the attempt by after a restart.
        phase: The TaskExecutionPhase to report (QUEUED, INITIALIZING, RUNNING, ...).
        phase_version: Bump to report a new event in the same phase (new logs, reasons).
        logs: Task logs to report in task events.
        reason: Human-readable status detail.
    """

    handle: str
    phase: int = execution_pb2.TaskExecutionPhase.TASK_EXECUTION_PHASE_RUNNING
    phase_version: int = 0
    logs: tuple[execution_pb2.TaskLog, ...] = ()
    reason: str = ""


@dataclass(slots=True, frozen=True)
class Succeeded:
    """The attempt produced outputs.

    Attributes:
        outputs: The outputs, or None when the task already wrote them to
            ``{output_prefix}/outputs.pb`` in the DataStore (the engine reads them there).
    """

    outputs: literals_pb2.LiteralMap | None = None


@dataclass(slots=True, frozen=True)
class Dynamic:
    """The attempt produced futures (a dynamic workflow) instead of outputs.

    Attributes:
        spec: The DynamicJobSpec, or None when the task wrote ``{output_prefix}/futures.pb``.
    """

    spec: dynamic_job_pb2.DynamicJobSpec | None = None


@dataclass(slots=True, frozen=True)
class Failed:
    """The attempt failed.

    ``error.kind`` picks the retry budget (USER: the node's retries; SYSTEM: the engine's
    system-retry budget) and ``error.recoverable`` says whether a retry may help at all.

    Attributes:
        error: The error; ``code``, ``message``, ``kind`` and ``recoverable`` are used.
    """

    error: execution_pb2.ExecutionError


TaskStatus = Running | Succeeded | Dynamic | Failed


class TaskRunner(Protocol):
    """Runs task attempts (local: in-process calls; propeller: plugins such as processes).

    ``start`` may finish the attempt synchronously and return a terminal status (the local
    fast path) or return :class:`Running`; the engine then calls ``check`` in later rounds.
    Implementations must be idempotent per (execution, node_path, attempt): after a crash the
    engine may call ``start`` again for an attempt that was already started.
    """

    def start(self, attempt: TaskAttempt) -> TaskStatus:
        """Start (or re-attach to) an attempt."""
        ...

    def check(self, attempt: TaskAttempt, handle: str) -> TaskStatus:
        """Report the status of an attempt started earlier."""
        ...

    def abort(self, attempt: TaskAttempt, handle: str, reason: str) -> None:
        """Stop an attempt (best effort, idempotent)."""
        ...


@runtime_checkable
class BatchTaskRunner(Protocol):
    """Optional extension of :class:`TaskRunner` for array-node items.

    When the runner has ``start_batch``, the engine starts array items through it: a list of
    attempts in, one status per attempt (same order) out. The local runner runs the items in a
    tight in-process loop; propeller's process plugin hands them to warm workers.
    """

    def start_batch(self, attempts: Sequence[TaskAttempt]) -> Sequence[TaskStatus]:
        """Start many item attempts at once."""
        ...


@runtime_checkable
class CompletionTracker(Protocol):
    """Optional extension of :class:`TaskRunner`: which in-flight array items need a check.

    Without it the engine calls ``check`` for every in-flight item of an array node every
    round (10,000 items in flight: 10,000 checks per round, each building the item's attempt).
    With it, a round asks once per array node and checks only the items named, so a round costs
    per completion, not per item in flight.

    The answer must be *conservative*: name every handle whose ``check`` could return anything
    but a plain "still running" (finished, failed, lost, unknown to this runner, e.g. after a
    restart). Naming a handle that is still running is harmless (it is checked and stays
    running). It must not consume anything: until ``check`` has returned a terminal status for a
    handle, the handle keeps being named (so a round that crashes before its state is persisted
    loses nothing). The engine still enforces item timeouts itself.
    """

    def needs_check(
        self, task: tasks_pb2.TaskTemplate, handles: Collection[str]
    ) -> Collection[str] | None:
        """Of ``handles`` (items of one array node in flight, all running ``task``), those to check.

        Args:
            task: The items' task (a runner over several plugins picks the plugin by it).
            handles: Handles of the in-flight items.

        Returns:
            The handles to check, or None to have the engine check them all.
        """
        ...


# --------------------------------------------------------------------------------------------
# Data store
# --------------------------------------------------------------------------------------------


class DataStore(Protocol):
    """Where inputs, outputs, futures, errors and compiled dynamic closures live, by key.

    Keys are relative paths such as ``{data_prefix}/n1/0/outputs.pb``; a blob-store
    implementation maps them to URIs under its bucket, the local implementation keeps the
    message objects in a dict (no serialization). Callers must treat returned messages as
    read-only (they may be shared).
    """

    def put(self, key: str, message: Message) -> None:
        """Store a message under ``key`` (overwrite allowed)."""
        ...

    def get(self, key: str, message_type: type[M]) -> M | None:
        """Return the message stored under ``key`` or None when absent."""
        ...


# --------------------------------------------------------------------------------------------
# Catalog (memoization)
# --------------------------------------------------------------------------------------------


class Catalog(Protocol):
    """The memoization service (datacatalog in propeller; a dict or local cache locally).

    Any exception raised here is caught by the engine: the task then runs uncached and the
    node reports CACHE_LOOKUP_FAILURE / CACHE_PUT_FAILURE. A catalog outage never fails a task.
    """

    def lookup(self, key: CacheKey) -> literals_pb2.LiteralMap | None:
        """Return cached outputs for ``key`` or None on a miss."""
        ...

    def put(self, key: CacheKey, outputs: literals_pb2.LiteralMap, *, overwrite: bool) -> None:
        """Record outputs for ``key`` (``overwrite``: replace an existing artifact)."""
        ...

    def get_or_extend_reservation(self, key: CacheKey, owner_id: str, heartbeat: float) -> bool:
        """Take or extend the reservation on ``key``; True when ``owner_id`` holds it."""
        ...

    def release_reservation(self, key: CacheKey, owner_id: str) -> None:
        """Release the reservation if ``owner_id`` holds it."""
        ...


@runtime_checkable
class BatchCatalog(Protocol):
    """Optional extension of :class:`Catalog`: many lookups, and many puts, in one call.

    When the catalog has these, an array node looks its items up in batches (the items a round
    may still start) instead of one call per item, and records the results of the items that
    finished in a round together; propeller's datacatalog client answers a batch with one
    GetArtifactsByTag or CreateArtifacts call. An exception fails the whole batch: its items
    run uncached (lookups) or report CACHE_PUT_FAILURE (puts), as after a single failure.
    """

    def lookup_many(self, keys: Sequence[CacheKey]) -> Sequence[literals_pb2.LiteralMap | None]:
        """Cached outputs (None for a miss) for each key, in the order of ``keys``."""
        ...

    def put_many(
        self, entries: Sequence[tuple[CacheKey, literals_pb2.LiteralMap]]
    ) -> Sequence[bool]:
        """Record outputs for each key without overwriting; True for each one recorded."""
        ...


# --------------------------------------------------------------------------------------------
# Launch plans, signals, recovery, clock, attribute access into binaries
# --------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class LaunchRequest:
    """A launch-plan node asking for a child execution.

    Attributes:
        execution_id: The parent execution.
        node_path: The launch-plan node's path (with ``execution_id``: a deterministic child
            execution name; see :attr:`child_name`).
        launch_plan: The launch plan's identifier.
        template: Its template from the closure, when the closure carries one.
        inputs: Resolved inputs of the node.
        attempt: The node's attempt.
    """

    execution_id: identifier_pb2.WorkflowExecutionIdentifier
    node_path: str
    launch_plan: identifier_pb2.Identifier
    template: workflow_pb2.LaunchPlanTemplate | None
    inputs: literals_pb2.LiteralMap
    attempt: int

    @property
    def child_name(self) -> str:
        """A deterministic, short child execution name for this node attempt."""
        import hashlib

        digest = hashlib.sha256(
            f"{self.execution_id.project}/{self.execution_id.domain}/{self.execution_id.name}/"
            f"{self.node_path}/{self.attempt}".encode()
        ).hexdigest()
        return f"c{digest[:19]}"


class LaunchPlanRunner(Protocol):
    """Runs launch-plan nodes as child executions (local: inline; propeller: through admin).

    Statuses are those of tasks minus :class:`Dynamic`.
    """

    def launch(self, request: LaunchRequest) -> TaskStatus:
        """Create (idempotently) the child execution."""
        ...

    def check(self, request: LaunchRequest, handle: str) -> TaskStatus:
        """Report the child's status."""
        ...

    def abort(self, request: LaunchRequest, handle: str, reason: str) -> None:
        """Abort the child."""
        ...


class SignalSource(Protocol):
    """Values of gate-node signals (approve / signal conditions)."""

    def get_signal(
        self,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        signal_id: str,
        signal_type: types_pb2.LiteralType,
    ) -> literals_pb2.Literal | None:
        """Return the signal's value, or None while it is not set (may create it first)."""
        ...


class PriorOutputs(Protocol):
    """Recovery: outputs of nodes that succeeded in an earlier execution of the same workflow."""

    def get(self, node_path: str) -> literals_pb2.LiteralMap | None:
        """Return the earlier outputs of ``node_path``, or None to run the node anew.

        The engine also asks for the items of an array node that did not succeed as a
        whole, by item path (``{array path}/0/{index}``), and reuses those that succeeded.
        """
        ...


class Clock(Protocol):
    """Time source (seconds since the epoch), injected so tests control timeouts and backoff."""

    def now(self) -> float:
        """The current time in seconds."""
        ...


class BinaryAttrResolver(Protocol):
    """Attribute access into a ``Binary`` literal (msgpack dataclasses; decoding needs msgpack).

    The engine resolves attribute paths itself through collections, maps and Struct
    (``generic``) values; for Binary it asks this hook, which the SDK provides. Without one, a
    promise with an attribute path into a Binary fails the node with a clear user error.
    """

    def __call__(
        self, binary: literals_pb2.Binary, path: Sequence[str | int]
    ) -> literals_pb2.Literal:
        """Return the literal at ``path`` inside the Binary value."""
        ...


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class WorkflowEvent:
    """A workflow phase change (light form; see ``engine.events.to_proto``).

    Attributes:
        phase: A ``WorkflowExecutionPhase`` value.
        occurred_at: Clock time.
        error: The error for FAILED.
        outputs_key: DataStore key of the outputs for SUCCEEDED.
    """

    phase: int
    occurred_at: float
    error: execution_pb2.ExecutionError | None = None
    outputs_key: str | None = None


@dataclass(slots=True)
class NodeEvent:
    """A node phase change.

    Attributes:
        node_path: Unique node path within the execution.
        node_id: The node's id in its graph.
        phase: A ``NodeExecutionPhase`` value.
        occurred_at: Clock time.
        attempt: The node's current attempt (0-based).
        parent_path: Path of the enclosing node (subworkflow, dynamic, branch), or None.
        inputs_key: DataStore key of the node's inputs, when resolved.
        outputs_key: DataStore key of the outputs on success.
        error: The error on failure.
        cache_status: A ``CatalogCacheStatus`` value.
        is_parent: The node runs child nodes (subworkflow, branch, dynamic, array).
        is_dynamic: The node ran a dynamic workflow.
        dynamic_closure_key: DataStore key of the compiled dynamic closure.
        array_index: Item index for array items (only when item events are enabled).
        node_name: NodeMetadata.name.
        target: The task, subworkflow or launch plan id the node runs, if any.
    """

    node_path: str
    node_id: str
    phase: int
    occurred_at: float
    attempt: int = 0
    parent_path: str | None = None
    inputs_key: str | None = None
    outputs_key: str | None = None
    error: execution_pb2.ExecutionError | None = None
    cache_status: int = 0
    is_parent: bool = False
    is_dynamic: bool = False
    dynamic_closure_key: str | None = None
    array_index: int | None = None
    node_name: str = ""
    target: identifier_pb2.Identifier | None = None


@dataclass(slots=True)
class TaskEvent:
    """A task attempt phase change.

    Attributes:
        node_path: The node's path.
        node_id: The node's id.
        task_id: The task's identifier.
        attempt: Retry attempt.
        phase: A ``TaskExecutionPhase`` value.
        occurred_at: Clock time.
        phase_version: Distinguishes repeated events in the same phase.
        handle: The runner's handle, if any.
        inputs_key: DataStore key of the inputs.
        outputs_key: DataStore key of the outputs on success.
        error: The error on failure.
        logs: Task logs from the runner.
        reason: Status detail.
        array_index: Item index for array items.
        task_type: The task's type (plugin selector).
    """

    node_path: str
    node_id: str
    task_id: identifier_pb2.Identifier
    attempt: int
    phase: int
    occurred_at: float
    phase_version: int = 0
    handle: str | None = None
    inputs_key: str | None = None
    outputs_key: str | None = None
    error: execution_pb2.ExecutionError | None = None
    logs: tuple[execution_pb2.TaskLog, ...] = ()
    reason: str = ""
    array_index: int | None = None
    task_type: str = ""


Event = WorkflowEvent | NodeEvent | TaskEvent


class EventSink(Protocol):
    """Receives events as they happen (propeller: converts and sends to admin; local: logs).

    Attributes:
        array_item_events: When True, the engine also reports node/task events for every
            array item (costly for large arrays; propeller may want them, local mode does not).
    """

    array_item_events: bool

    def emit(self, event: Event) -> None:
        """Accept one event. Must not raise (the engine does not catch)."""
        ...
