"""The mutable state of one execution: small, self-contained, and cheap to persist.

Only what changes lives here (phases, attempt counters, runner handles, timestamps, errors);
the static spec is in the plan, and data (inputs/outputs) is in the DataStore under keys
derived from node paths. ``ExecutionState.to_bytes()`` gives a compact, versioned encoding
(zlib-compressed JSON; array items as packed byte strings) for the driver to persist after
every round; ``ExecutionState.from_bytes()`` restores it.

Array items keep one byte each for phase, user failures, system failures (and cache status
when caching is on), plus dict entries only for items currently in flight or waiting to
retry: 100,000 items take a few hundred kilobytes before compression.
"""

from __future__ import annotations

import base64
import json
import zlib
from enum import IntEnum
from typing import Any

from caddis_idl.core.v1 import execution_pb2, identifier_pb2

STATE_FORMAT_VERSION = 1


class NodePhase(IntEnum):
    """Internal node phases (persisted; mapped to NodeExecutionPhase for events)."""

    NOT_STARTED = 0
    QUEUED = 1
    RUNNING = 2
    DYNAMIC_RUNNING = 3
    SUCCEEDED = 4
    FAILED = 5
    SKIPPED = 6
    TIMED_OUT = 7
    ABORTED = 8
    RECOVERED = 9


TERMINAL_PHASES = frozenset(
    {
        NodePhase.SUCCEEDED,
        NodePhase.FAILED,
        NodePhase.SKIPPED,
        NodePhase.TIMED_OUT,
        NodePhase.ABORTED,
        NodePhase.RECOVERED,
    }
)
DONE_OK_PHASES = frozenset({NodePhase.SUCCEEDED, NodePhase.RECOVERED})


class GraphPhase(IntEnum):
    """Phases of a graph (the workflow itself or a nested subworkflow / dynamic graph)."""

    RUNNING = 0
    FAILING = 1
    SUCCEEDED = 2
    FAILED = 3
    ABORTED = 4


class ItemPhase(IntEnum):
    """Phases of one array item (one byte each in :class:`ArrayState`)."""

    NOT_STARTED = 0
    WAITING = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    ABORTED = 5


def _err_out(err: execution_pb2.ExecutionError | None) -> str | None:
    if err is None:
        return None
    return base64.b64encode(err.SerializeToString()).decode()


def _err_in(data: str | None) -> execution_pb2.ExecutionError | None:
    if data is None:
        return None
    return execution_pb2.ExecutionError.FromString(base64.b64decode(data))


def _b(data: bytes | bytearray) -> str:
    return base64.b64encode(bytes(data)).decode()


def _ub(data: str) -> bytearray:
    return bytearray(base64.b64decode(data))


class ArrayState:
    """Per-item state of an array node, packed.

    Attributes:
        size: Number of items.
        phases: One :class:`ItemPhase` byte per item.
        user_failures: Failed attempts charged to the user budget, per item (saturates at 255).
        system_failures: Failed attempts charged to the system budget, per item.
        cache: One CatalogCacheStatus byte per item (empty when caching is off).
        handles: Runner handles of items in flight.
        started: Start times of items in flight (for timeouts).
        retry_at: Items waiting for a retry, with the time they may start.
        next_index: Items below this index have been started at least once.
        n_running: Items in flight.
        n_succeeded: Items succeeded.
        n_failed: Items failed for good.
        first_error: The first permanent item error (reported when the node fails).
    """

    __slots__ = (
        "cache",
        "first_error",
        "handles",
        "n_failed",
        "n_running",
        "n_succeeded",
        "next_index",
        "phases",
        "retry_at",
        "size",
        "started",
        "system_failures",
        "user_failures",
    )

    def __init__(self, size: int, cache: bool = False) -> None:
        self.size = size
        self.phases = bytearray(size)
        self.user_failures = bytearray(size)
        self.system_failures = bytearray(size)
        self.cache = bytearray(size) if cache else bytearray()
        self.handles: dict[int, str] = {}
        self.started: dict[int, float] = {}
        self.retry_at: dict[int, float] = {}
        self.next_index = 0
        self.n_running = 0
        self.n_succeeded = 0
        self.n_failed = 0
        self.first_error: execution_pb2.ExecutionError | None = None

    def attempt(self, i: int) -> int:
        """The current attempt number of item ``i``."""
        return self.user_failures[i] + self.system_failures[i]

    def to_obj(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "n": self.size,
            "ph": _b(self.phases),
            "uf": _b(self.user_failures),
            "sf": _b(self.system_failures),
            "ca": _b(self.cache),
            "h": [[i, h] for i, h in self.handles.items()],
            "st": [[i, t] for i, t in self.started.items()],
            "ra": [[i, t] for i, t in self.retry_at.items()],
            "ni": self.next_index,
            "nr": self.n_running,
            "ns": self.n_succeeded,
            "nf": self.n_failed,
            "fe": _err_out(self.first_error),
        }

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> ArrayState:
        """Inverse of :meth:`to_obj`."""
        a = cls(0)
        a.size = obj["n"]
        a.phases = _ub(obj["ph"])
        a.user_failures = _ub(obj["uf"])
        a.system_failures = _ub(obj["sf"])
        a.cache = _ub(obj["ca"])
        a.handles = {int(i): h for i, h in obj["h"]}
        a.started = {int(i): t for i, t in obj["st"]}
        a.retry_at = {int(i): t for i, t in obj["ra"]}
        a.next_index = obj["ni"]
        a.n_running = obj["nr"]
        a.n_succeeded = obj["ns"]
        a.n_failed = obj["nf"]
        a.first_error = _err_in(obj["fe"])
        return a


# NodeState.flags bits
FLAG_RESERVED = 1  # holds a cache reservation
FLAG_DYNAMIC = 2  # the task produced futures; ``child`` is the dynamic graph
FLAG_COUNTED = 4  # counted against max_parallelism


class NodeState:
    """Mutable state of one node.

    Attributes:
        phase: :class:`NodePhase`.
        user_failures: Failed attempts charged to the user (node/task retries) budget.
        system_failures: Failed attempts charged to the system budget.
        handle: Runner / launch-plan handle of the attempt in flight.
        started_at: Start time of the current attempt (timeouts; gate sleeps).
        retry_at: Earliest start of the next attempt (backoff), or 0.
        cache_status: CatalogCacheStatus value.
        error: The node's error once it failed.
        child: Nested state: a GraphState (subworkflow, dynamic) or the taken case's
            NodeState (branch).
        branch_case: Index of the taken branch case (len(cases) = else), -1 before deciding.
        array: Array items, for array nodes.
        flags: FLAG_* bits.
        rt: Transient runtime cache (never persisted).
    """

    __slots__ = (
        "array",
        "branch_case",
        "cache_status",
        "child",
        "error",
        "flags",
        "handle",
        "phase",
        "retry_at",
        "rt",
        "started_at",
        "system_failures",
        "user_failures",
    )

    def __init__(self) -> None:
        self.rt: Any = None  # transient: in-flight attempt / array runtime; never persisted
        self.phase = NodePhase.NOT_STARTED
        self.user_failures = 0
        self.system_failures = 0
        self.handle: str | None = None
        self.started_at = 0.0
        self.retry_at = 0.0
        self.cache_status = 0
        self.error: execution_pb2.ExecutionError | None = None
        self.child: GraphState | NodeState | None = None
        self.branch_case = -1
        self.array: ArrayState | None = None
        self.flags = 0

    @property
    def attempt(self) -> int:
        """The current (0-based) attempt number."""
        return self.user_failures + self.system_failures

    def to_obj(self) -> dict[str, Any]:
        """JSON-ready form (defaults omitted to stay small)."""
        o: dict[str, Any] = {"p": int(self.phase)}
        if self.user_failures:
            o["u"] = self.user_failures
        if self.system_failures:
            o["s"] = self.system_failures
        if self.handle is not None:
            o["h"] = self.handle
        if self.started_at:
            o["t"] = self.started_at
        if self.retry_at:
            o["r"] = self.retry_at
        if self.cache_status:
            o["c"] = self.cache_status
        if self.error is not None:
            o["e"] = _err_out(self.error)
        if isinstance(self.child, GraphState):
            o["g"] = self.child.to_obj()
        elif isinstance(self.child, NodeState):
            o["n"] = self.child.to_obj()
        if self.branch_case != -1:
            o["b"] = self.branch_case
        if self.array is not None:
            o["a"] = self.array.to_obj()
        if self.flags:
            o["f"] = self.flags
        return o

    @classmethod
    def from_obj(cls, o: dict[str, Any]) -> NodeState:
        """Inverse of :meth:`to_obj`."""
        ns = cls()
        ns.phase = NodePhase(o["p"])
        ns.user_failures = o.get("u", 0)
        ns.system_failures = o.get("s", 0)
        ns.handle = o.get("h")
        ns.started_at = o.get("t", 0.0)
        ns.retry_at = o.get("r", 0.0)
        ns.cache_status = o.get("c", 0)
        ns.error = _err_in(o.get("e"))
        if "g" in o:
            ns.child = GraphState.from_obj(o["g"])
        elif "n" in o:
            ns.child = NodeState.from_obj(o["n"])
        ns.branch_case = o.get("b", -1)
        if "a" in o:
            ns.array = ArrayState.from_obj(o["a"])
        ns.flags = o.get("f", 0)
        return ns


class GraphState:
    """Mutable state of one graph: its phase and its nodes' states (by plan index).

    Attributes:
        phase: :class:`GraphPhase`.
        nodes: NodeState per plan index; None until the node is touched.
        error: The first error of the graph, once failing.
        failure_node: State of the failure node, once it runs.
        failed_node: Path of the node whose failure failed the graph.
        rt: Transient runtime caches (ready set, counters); never persisted.
    """

    __slots__ = ("error", "failed_node", "failure_node", "nodes", "phase", "rt")

    def __init__(self, size: int = 0) -> None:
        self.phase = GraphPhase.RUNNING
        self.nodes: list[NodeState | None] = [None] * size
        self.error: execution_pb2.ExecutionError | None = None
        self.failure_node: NodeState | None = None
        self.failed_node = ""
        self.rt: Any = None

    def to_obj(self) -> dict[str, Any]:
        """JSON-ready form."""
        o: dict[str, Any] = {
            "p": int(self.phase),
            "n": [None if ns is None else ns.to_obj() for ns in self.nodes],
        }
        if self.error is not None:
            o["e"] = _err_out(self.error)
        if self.failure_node is not None:
            o["f"] = self.failure_node.to_obj()
        if self.failed_node:
            o["fn"] = self.failed_node
        return o

    @classmethod
    def from_obj(cls, o: dict[str, Any]) -> GraphState:
        """Inverse of :meth:`to_obj`."""
        g = cls()
        g.phase = GraphPhase(o["p"])
        g.nodes = [None if x is None else NodeState.from_obj(x) for x in o["n"]]
        g.error = _err_in(o.get("e"))
        if "f" in o:
            g.failure_node = NodeState.from_obj(o["f"])
        g.failed_node = o.get("fn", "")
        return g


class ExecutionOptions:
    """Per-execution options (persisted with the state).

    Attributes:
        max_parallelism: Most task / launch-plan / array nodes running at once (0 = no limit).
        overwrite_cache: Run cacheable tasks even on a hit and overwrite the cached outputs.
        skip_cache: Neither look up nor populate the cache.
        interruptible: Overrides every node's interruptible flag when not None.
    """

    __slots__ = ("interruptible", "max_parallelism", "overwrite_cache", "skip_cache")

    def __init__(
        self,
        max_parallelism: int = 0,
        overwrite_cache: bool = False,
        skip_cache: bool = False,
        interruptible: bool | None = None,
    ) -> None:
        self.max_parallelism = max_parallelism
        self.overwrite_cache = overwrite_cache
        self.skip_cache = skip_cache
        self.interruptible = interruptible

    def to_obj(self) -> list[Any]:
        """JSON-ready form."""
        return [self.max_parallelism, self.overwrite_cache, self.skip_cache, self.interruptible]

    @classmethod
    def from_obj(cls, o: list[Any]) -> ExecutionOptions:
        """Inverse of :meth:`to_obj`."""
        return cls(*o)


class ExecutionState:
    """Everything mutable about one execution; the driver persists it between rounds.

    Attributes:
        execution_id: The execution.
        data_prefix: Prefix of every DataStore key of this execution.
        options: Execution options.
        root: The primary graph's state.
        phase: A WorkflowExecutionPhase value.
        error: The execution's error, when it failed.
        abort_reason: Set when an abort was requested.
        rounds: Number of rounds evaluated (diagnostics).
    """

    __slots__ = (
        "abort_reason",
        "data_prefix",
        "error",
        "execution_id",
        "n_running",
        "options",
        "phase",
        "root",
        "rounds",
    )

    def __init__(
        self,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        data_prefix: str,
        options: ExecutionOptions | None = None,
        root: GraphState | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.data_prefix = data_prefix
        self.options = options or ExecutionOptions()
        self.root = root or GraphState()
        self.phase: int = execution_pb2.WorkflowExecutionPhase.WORKFLOW_EXECUTION_PHASE_QUEUED
        self.error: execution_pb2.ExecutionError | None = None
        self.abort_reason: str | None = None
        self.rounds = 0
        # Transient: nodes counted against max_parallelism; rebuilt after from_bytes.
        self.n_running = -1

    @property
    def done(self) -> bool:
        """True once the execution reached a terminal phase."""
        wp = execution_pb2.WorkflowExecutionPhase
        return self.phase in (
            wp.WORKFLOW_EXECUTION_PHASE_SUCCEEDED,
            wp.WORKFLOW_EXECUTION_PHASE_FAILED,
            wp.WORKFLOW_EXECUTION_PHASE_ABORTED,
            wp.WORKFLOW_EXECUTION_PHASE_TIMED_OUT,
        )

    @property
    def inputs_key(self) -> str:
        """DataStore key of the execution's inputs."""
        return f"{self.data_prefix}/inputs.pb"

    @property
    def outputs_key(self) -> str:
        """DataStore key of the execution's outputs (written on success)."""
        return f"{self.data_prefix}/outputs.pb"

    def to_bytes(self) -> bytes:
        """Compact, versioned encoding for the driver to persist."""
        obj = {
            "v": STATE_FORMAT_VERSION,
            "id": [self.execution_id.project, self.execution_id.domain, self.execution_id.name],
            "dp": self.data_prefix,
            "o": self.options.to_obj(),
            "p": self.phase,
            "e": _err_out(self.error),
            "ab": self.abort_reason,
            "r": self.rounds,
            "g": self.root.to_obj(),
        }
        return zlib.compress(json.dumps(obj, separators=(",", ":")).encode(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> ExecutionState:
        """Restore a state written by :meth:`to_bytes`."""
        obj = json.loads(zlib.decompress(data))
        if obj.get("v") != STATE_FORMAT_VERSION:
            raise ValueError(f"unsupported execution state version {obj.get('v')!r}")
        project, domain, name = obj["id"]
        st = cls(
            identifier_pb2.WorkflowExecutionIdentifier(project=project, domain=domain, name=name),
            obj["dp"],
            ExecutionOptions.from_obj(obj["o"]),
            GraphState.from_obj(obj["g"]),
        )
        st.phase = obj["p"]
        st.error = _err_in(obj["e"])
        st.abort_reason = obj["ab"]
        st.rounds = obj["r"]
        return st
