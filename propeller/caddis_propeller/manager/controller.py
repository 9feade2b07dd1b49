"""The control loop: leases, the ready queue, engine rounds, persistence and events.

Flow of one execution on one replica:

1. ``launch`` stores the request (idempotent by execution id; an inline closure is offloaded
   to the blob store first) and tries to lease it at once, so evaluation starts without
   waiting for the next scan.
2. A worker thread takes it from the :class:`~caddis_propeller.manager.queue.ReadyQueue`,
   loads (or keeps in memory) its plan and state, and runs up to ``max_streak`` engine rounds
   while they make progress. After every round that changed something, the state (compact
   bytes; offloaded when large) and the round's events go to the database in ONE transaction
   fenced by the lease token. A crash loses at most the round in flight, whose side effects
   are idempotent (deterministic attempt locations; the process plugin re-attaches).
3. It is re-queued when a task it waits on reports, when a timer of the engine fires, after a
   short adaptive poll while tasks run, and on the periodic resync.
4. A scanner thread renews this replica's leases, claims free or expired ones (a dead
   replica's executions), and picks up abort requests made through another replica.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from caddis._serving.errors import InvalidArgumentError, NotFoundError
from caddis.storage import BlobStore, locations
from caddis_idl.core.v1 import compiler_pb2, execution_pb2, identifier_pb2, literals_pb2
from caddis_idl.propeller.v1 import propeller_service_pb2
from caddis_propeller.config import PropellerConfig
from caddis_propeller.engine.executor import Engine, EngineConfig
from caddis_propeller.engine.interfaces import (
    Catalog,
    DataStore,
    Event,
    LaunchPlanRunner,
    NodeEvent,
    PriorOutputs,
    SignalSource,
    TaskRunner,
    WorkflowEvent,
)
from caddis_propeller.engine.plan import WorkflowPlan
from caddis_propeller.engine.state import ExecutionOptions, ExecutionState, GraphState, NodeState
from caddis_propeller.manager.events import RoundEvents
from caddis_propeller.manager.metrics import PropellerMetrics
from caddis_propeller.manager.queue import ReadyQueue
from caddis_propeller.repository.database import Database
from caddis_propeller.repository.repo import ExecutionKey, Lease, RoundWrite, StaleLeaseError

_log = logging.getLogger(__name__)

_WP = execution_pb2.WorkflowExecutionPhase
_SYSTEM = execution_pb2.ErrorKind.ERROR_KIND_SYSTEM
_USER = execution_pb2.ErrorKind.ERROR_KIND_USER


def default_replica_id() -> str:
    """``<host>-<pid>-<random>``: unique per process."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(eq=False)
class _Live:
    lease: Lease
    key: str
    execution_id: identifier_pb2.WorkflowExecutionIdentifier
    plan: WorkflowPlan
    state: ExecutionState
    version: int
    failed_rounds: int = 0
    idle_rounds: int = 0
    abort_cause: str | None = None
    recovery: PriorOutputs | None = None


class _SinkProxy:
    """The engine's EventSink for one worker: forwards to the current round's buffer."""

    array_item_events = False

    def __init__(self) -> None:
        self.current: RoundEvents | None = None

    def emit(self, event: Event) -> None:
        if self.current is not None:
            self.current.emit(event)


class Controller:
    """Evaluates the executions this replica leases.

    Args:
        config: Propeller settings.
        database: Executions, leases and the outbox.
        store: Blob store of closures, inputs, outputs and offloaded state.
        data: The engine's DataStore (keys are URIs under ``metadata_prefix``).
        runner: The engine's TaskRunner (the plugin runner).
        catalog: The datacatalog client, or None to disable caching.
        metrics: Series to record.
        metadata_prefix: Blob prefix of execution data.
        on_events: Called after events were committed to the outbox (wakes the sender).
        launch_plans: Runs launch-plan nodes as child executions (admin); None fails them.
        signals: Values of gate signals (admin); None fails approve/signal gates.
        recovery: Given a reference execution and its data prefix, the outputs of its
            succeeded nodes (used for executions launched in mode RECOVERED); None reruns
            everything.
    """

    def __init__(
        self,
        config: PropellerConfig,
        *,
        database: Database,
        store: BlobStore,
        data: DataStore,
        runner: TaskRunner,
        catalog: Catalog | None,
        metrics: PropellerMetrics,
        metadata_prefix: str,
        on_events: Callable[[], None] | None = None,
        launch_plans: LaunchPlanRunner | None = None,
        signals: SignalSource | None = None,
        recovery: Callable[[identifier_pb2.WorkflowExecutionIdentifier, str], PriorOutputs]
        | None = None,
    ) -> None:
        self.config = config
        self.database = database
        self.store = store
        self.data = data
        self.runner = runner
        self.catalog = catalog
        self.metrics = metrics
        self.metadata_prefix = metadata_prefix
        self.replica_id = config.replica_id or default_replica_id()
        self.producer_id = config.producer_id
        self._on_events = on_events
        self.launch_plans = launch_plans
        self.signals = signals
        self._recovery = recovery
        self.engine_config = EngineConfig(
            max_system_retries=config.max_system_retries,
            backoff_base=config.backoff_base_s,
            backoff_multiplier=config.backoff_multiplier,
            backoff_max=config.backoff_max_s,
            array_items_per_round=config.array_items_per_round,
            reservation_heartbeat=config.reservation_heartbeat_s,
        )
        self.queue = ReadyQueue()
        self._live: dict[int, _Live] = {}
        self._leases: dict[int, Lease] = {}
        self._by_key: dict[str, int] = {}
        self._lock = threading.Lock()
        self._plans: OrderedDict[str, WorkflowPlan] = OrderedDict()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._node_seen: dict[tuple[str, str], float] = {}

    # ================================================================ lifecycle
    def start(self) -> None:
        """Start the workers and the scanner."""
        for i in range(max(1, self.config.workers)):
            t = threading.Thread(target=self._work, name=f"propeller-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._scan_loop, name="propeller-scanner", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, release: bool = True) -> None:
        """Stop evaluating; ``release`` hands this replica's leases back at once."""
        self._stop.set()
        self.queue.close()
        for t in self._threads:
            t.join(timeout=10)
        if release:
            try:
                self.database.run(lambda r: r.release(self.replica_id))
            except Exception:
                _log.warning("could not release leases", exc_info=True)

    # ================================================================ API (rpc calls these)
    def launch(
        self, request: propeller_service_pb2.LaunchExecutionRequest
    ) -> propeller_service_pb2.LaunchExecutionResponse:
        """Accept an execution (idempotent by execution id) and start evaluating it."""
        eid = request.execution_id
        if not (eid.project and eid.domain and eid.name):
            raise InvalidArgumentError("execution_id needs project, domain and name")
        which = request.WhichOneof("closure")
        if which is None:
            raise InvalidArgumentError(
                f"execution {eid.project}/{eid.domain}/{eid.name}: set compiled_closure_uri "
                "or compiled_closure"
            )
        key = ExecutionKey(eid.project, eid.domain, eid.name)
        existing = self.database.run(lambda r: r.find(key), write=False)
        if existing is not None:
            return propeller_service_pb2.LaunchExecutionResponse(
                already_launched=True, producer_id=self.producer_id
            )
        stored = propeller_service_pb2.LaunchExecutionRequest()
        stored.CopyFrom(request)
        if which == "compiled_closure":
            # Large specs live in the blob store; the row keeps a reference.
            uri = self._exec_prefix(eid) + "/propeller/closure.pb"
            self.store.write_proto(uri, request.compiled_closure)
            stored.compiled_closure_uri = uri
        payload = stored.SerializeToString()
        now = time.time()

        def insert(r):  # type: ignore[no-untyped-def]
            row = r.find(key)
            if row is not None:
                return None
            return r.insert(key, payload, now).id

        exec_id = self.database.run(insert)
        if exec_id is None:
            return propeller_service_pb2.LaunchExecutionResponse(
                already_launched=True, producer_id=self.producer_id
            )
        self._try_claim(exec_id)
        return propeller_service_pb2.LaunchExecutionResponse(
            already_launched=False, producer_id=self.producer_id
        )

    def abort(self, eid: identifier_pb2.WorkflowExecutionIdentifier, cause: str) -> None:
        """Record an abort request durably; the owner aborts at its next round."""
        key = ExecutionKey(eid.project, eid.domain, eid.name)
        row = self.database.run(lambda r: r.request_abort(key, cause or "aborted"))
        if row is None:
            raise NotFoundError(f"execution {key} is not held by propeller")
        if row.terminal:
            return
        with self._lock:
            live = self._live.get(row.id)
            if live is not None:
                live.abort_cause = cause or "aborted"
            held = row.id in self._leases
        if held:
            self.queue.put(row.id)

    def get_state(
        self, eid: identifier_pb2.WorkflowExecutionIdentifier
    ) -> propeller_service_pb2.GetExecutionStateResponse:
        """Propeller's view of an execution."""
        key = ExecutionKey(eid.project, eid.domain, eid.name)
        row = self.database.run(lambda r: r.find(key), write=False)
        if row is None:
            raise NotFoundError(f"execution {key} is not held by propeller")
        response = propeller_service_pb2.GetExecutionStateResponse(
            phase=row.phase or _WP.WORKFLOW_EXECUTION_PHASE_QUEUED,  # type: ignore[arg-type]
            producer_id=self.producer_id,
        )
        response.launched_at.FromNanoseconds(int(row.launched_at * 1e9))
        if row.last_evaluated_at:
            response.last_evaluated_at.FromNanoseconds(int(row.last_evaluated_at * 1e9))
        if row.error:
            response.error.ParseFromString(row.error)
        data = row.state
        if data is None and row.state_uri:
            data = self.store.get_bytes(row.state_uri)
        if data:
            counts: dict[int, int] = {}
            _count_nodes(ExecutionState.from_bytes(data).root, counts)
            for phase, count in sorted(counts.items()):
                response.node_counts.add(phase=phase, count=count)  # type: ignore[arg-type]
        return response

    def notify(self, execution: str) -> None:
        """Something of ``project/domain/name`` changed outside the engine: evaluate soon."""
        with self._lock:
            exec_id = self._by_key.get(execution)
        if exec_id is not None:
            # A short delay lets a burst of completions (a warm batch) share one round.
            self.queue.put(exec_id, time.monotonic() + self.config.notify_delay_s)

    @property
    def active(self) -> int:
        """Executions this replica holds."""
        return len(self._leases)

    # ================================================================ leases
    def _try_claim(self, exec_id: int) -> None:
        now = time.time()
        ttl = self.config.lease_ttl_s

        def claim(r):  # type: ignore[no-untyped-def]
            return r.claim_one(exec_id, self.replica_id, now, ttl)

        lease = self.database.run(claim)
        if lease is not None:
            self._adopt(lease)

    def _adopt(self, lease: Lease) -> None:
        with self._lock:
            known = self._leases.get(lease.execution_id)
            if known is not None and known.token == lease.token:
                return
            self._leases[lease.execution_id] = lease
            self._live.pop(lease.execution_id, None)
        self.metrics.active.set(len(self._leases))
        self.queue.put(lease.execution_id)

    def _drop(self, exec_id: int, *, lost: bool) -> None:
        with self._lock:
            self._leases.pop(exec_id, None)
            live = self._live.pop(exec_id, None)
            if live is not None:
                self._by_key.pop(live.key, None)
        self.queue.discard(exec_id)
        self.metrics.active.set(len(self._leases))
        if lost:
            self.metrics.leases_lost.inc()

    def _scan_loop(self) -> None:
        interval = self.config.resync_interval_s
        renew_every = min(interval, self.config.lease_ttl_s / 3)
        last_scan = 0.0
        while not self._stop.is_set():
            try:
                self._renew()
                if time.monotonic() - last_scan >= interval:
                    last_scan = time.monotonic()
                    self._scan()
            except Exception:
                _log.warning("lease scan failed", exc_info=True)
            self._stop.wait(renew_every)

    def _renew(self) -> None:
        now = time.time()
        self.database.run(lambda r: r.renew(self.replica_id, now, self.config.lease_ttl_s))

    def _scan(self) -> None:
        now = time.time()
        ttl = self.config.lease_ttl_s

        def work(r):  # type: ignore[no-untyped-def]
            leases = r.claim(self.replica_id, now, ttl, 200)
            aborts = r.abort_requests(self.replica_id)
            return leases, aborts

        leases, aborts = self.database.run(work)
        claimed = {lease.execution_id for lease in leases}
        for lease in leases:
            self._adopt(lease)
        with self._lock:
            held = list(self._leases)
        for exec_id in held:
            if exec_id not in claimed:
                # Not returned by claim: terminal or taken by another replica.
                continue
            self.queue.put(exec_id)  # periodic resync
        for exec_id, cause in aborts:
            with self._lock:
                live = self._live.get(exec_id)
                if live is not None and live.abort_cause is None:
                    live.abort_cause = cause
            self.queue.put(exec_id)
        self.metrics.queue_depth.set(len(self.queue))

    # ================================================================ workers
    def _work(self) -> None:
        sink = _SinkProxy()
        engine = Engine(
            self.runner,
            self.data,
            catalog=self.catalog,
            events=sink,
            config=self.engine_config,
            launch_plans=self.launch_plans,
            signals=self.signals,
        )
        while not self._stop.is_set():
            exec_id = self.queue.get(timeout=0.5)
            if exec_id is None:
                continue
            try:
                self._process(engine, sink, exec_id)
            except Exception:
                _log.exception("evaluation of execution %d failed", exec_id)
            finally:
                self.queue.done(exec_id)
                self.metrics.queue_depth.set(len(self.queue))

    def _process(self, engine: Engine, sink: _SinkProxy, exec_id: int) -> None:
        with self._lock:
            lease = self._leases.get(exec_id)
            live = self._live.get(exec_id)
        if lease is None:
            return
        if live is None:
            try:
                live = self._load(engine, sink, lease)
            except StaleLeaseError:
                self._drop(exec_id, lost=True)
                return
            if live is None:
                return
        streak = 0
        result = None
        picked = time.perf_counter()
        while streak < self.config.max_streak and not self._stop.is_set():
            began = time.perf_counter()
            events = RoundEvents(live.execution_id, self.producer_id, self._observer(live.key))
            sink.current = events
            try:
                if live.abort_cause is not None and live.state.abort_reason is None:
                    engine.abort(live.plan, live.state, live.abort_cause)
                result = engine.round(live.plan, live.state, recovery=live.recovery)
            except Exception as exc:
                sink.current = None
                self._round_failed(live, exc)
                return
            finally:
                sink.current = None
            streak += 1
            changed = result.changed or bool(events.pending)
            if changed:
                try:
                    self._persist(live, result.done, events)
                except StaleLeaseError:
                    self._drop(exec_id, lost=True)
                    return
                except Exception:
                    # Unknown outcome: forget the in-memory state and reload from the database.
                    _log.warning("persisting execution %s failed", live.key, exc_info=True)
                    with self._lock:
                        self._live.pop(exec_id, None)
                    self.queue.put(exec_id, time.monotonic() + 0.5)
                    return
            self.metrics.round_latency.observe(time.perf_counter() - began)
            if result.done or not (result.changed or result.budget_exhausted):
                break
        self.metrics.streak.observe(streak)
        if result is None:
            return
        if result.done:
            self._drop(exec_id, lost=False)
            return
        now_m = time.monotonic()
        # A round over thousands of in-flight items is expensive: leave at least as long as
        # it took before the next one, so task processes on this machine get the CPU and
        # completions pile up into fewer rounds (cheap rounds, e.g. a chain, go on at once).
        spent = time.perf_counter() - picked
        pause = spent if spent > 0.05 else 0.0
        if result.changed or result.budget_exhausted:
            live.idle_rounds = 0
            self.queue.put(exec_id, now_m + pause)
            return
        live.idle_rounds += 1
        due = now_m + self.config.resync_interval_s
        if result.pending:
            # Poll quickly at first, then back off; task completions also notify directly.
            poll = self.config.poll_interval_s * (1.5 ** min(live.idle_rounds, 12))
            due = min(due, now_m + max(min(poll, 1.0), pause))
        if result.wake_at is not None:
            due = min(due, now_m + max(0.0, result.wake_at - time.time()))
        self.queue.put(exec_id, due)

    def _load(self, engine: Engine, sink: _SinkProxy, lease: Lease) -> _Live | None:
        row = self.database.run(lambda r: r.check_lease(lease), write=False)
        if row.terminal:
            self._drop(lease.execution_id, lost=False)
            return None
        request = propeller_service_pb2.LaunchExecutionRequest.FromString(row.request)
        eid = request.execution_id
        key = f"{eid.project}/{eid.domain}/{eid.name}"
        try:
            plan = self._plan(request)
        except Exception as exc:
            self._fail_unloadable(lease, eid, "ClosureUnreadable", f"{type(exc).__name__}: {exc}")
            return None
        data = row.state
        if data is None and row.state_uri:
            data = self.store.get_bytes(row.state_uri)
        live: _Live
        if data:
            state = ExecutionState.from_bytes(data)
            live = _Live(lease, key, eid, plan, state, row.state_version, row.failed_rounds)
        else:
            inputs = literals_pb2.LiteralMap()
            if request.inputs_uri:
                inputs = self.store.read_proto(request.inputs_uri, literals_pb2.LiteralMap)
            opts = request.options
            options = ExecutionOptions(
                max_parallelism=opts.max_parallelism,
                overwrite_cache=opts.overwrite_cache,
                skip_cache=opts.skip_cache,
                interruptible=opts.interruptible if opts.HasField("interruptible") else None,
            )
            events = RoundEvents(eid, self.producer_id, self._observer(key))
            sink.current = events
            try:
                state = engine.start(
                    plan,
                    inputs,
                    execution_id=eid,
                    data_prefix=self._exec_prefix(eid),
                    options=options,
                )
            except ValueError as exc:
                self._fail_unloadable(lease, eid, "InvalidInputs", str(exc), kind=_USER)
                return None
            finally:
                sink.current = None
            live = _Live(lease, key, eid, plan, state, row.state_version, row.failed_rounds)
            self._persist(live, False, events)
        if row.abort_requested:
            live.abort_cause = row.abort_cause or "aborted"
        live.recovery = self._prior_outputs(request)
        with self._lock:
            if self._leases.get(lease.execution_id) != lease:
                return None
            self._live[lease.execution_id] = live
            self._by_key[key] = lease.execution_id
        return live

    def _prior_outputs(
        self, request: propeller_service_pb2.LaunchExecutionRequest
    ) -> PriorOutputs | None:
        """The reference execution's outputs when ``request`` recovers one, else None."""
        opts = request.options
        if (
            self._recovery is None
            or opts.mode != propeller_service_pb2.EXECUTION_MODE_RECOVERED
            or not opts.HasField("reference_execution")
        ):
            return None
        ref = opts.reference_execution
        return self._recovery(ref, self._exec_prefix(ref))

    def _plan(self, request: propeller_service_pb2.LaunchExecutionRequest) -> WorkflowPlan:
        uri = request.compiled_closure_uri
        with self._lock:
            plan = self._plans.get(uri)
            if plan is not None:
                self._plans.move_to_end(uri)
                return plan
        closure = self.store.read_proto(uri, compiler_pb2.CompiledWorkflowClosure)
        plan = Engine.prepare(closure)
        with self._lock:
            self._plans[uri] = plan
            while len(self._plans) > 256:
                self._plans.popitem(last=False)
        return plan

    def _persist(self, live: _Live, done: bool, events: RoundEvents) -> None:
        state = live.state
        blob = state.to_bytes()
        state_uri: str | None = None
        inline: bytes | None = blob
        version = live.version + 1
        if len(blob) > self.config.inline_state_limit:
            # A fresh name per version: the row never points at a half-newer state.
            state_uri = f"{state.data_prefix}/propeller/state-{version}.bin"
            self.store.put_bytes(state_uri, blob)
            inline = None
        now = time.time()
        write = RoundWrite(
            phase=state.phase,
            terminal=done,
            state=inline,
            state_uri=state_uri,
            error=state.error.SerializeToString() if state.error is not None else None,
            node_counts={},
            next_eval_at=0.0,
            evaluated_at=now,
            failed_rounds=live.failed_rounds,
        )
        rows = events.drain()

        def work(r):  # type: ignore[no-untyped-def]
            r.save_round(live.lease, write)
            if rows:
                r.append_events(live.key, rows, now)
            return r.abort_cause_of(live.lease.execution_id)

        cause = self.database.run(work)
        live.version = version
        if cause is not None and live.abort_cause is None and not done:
            live.abort_cause = cause
            self.queue.put(live.lease.execution_id)
        if rows and self._on_events is not None:
            self._on_events()

    def _round_failed(self, live: _Live, exc: Exception) -> None:
        self.metrics.round_errors.inc()
        live.failed_rounds += 1
        _log.warning(
            "round of %s failed (%d/%d)",
            live.key,
            live.failed_rounds,
            self.config.max_workflow_retries,
            exc_info=exc,
        )
        exec_id = live.lease.execution_id
        with self._lock:
            # The state may be half-mutated: reload the last persisted one.
            self._live.pop(exec_id, None)
        if live.failed_rounds >= self.config.max_workflow_retries:
            self._fail_unloadable(
                live.lease,
                live.execution_id,
                "SystemRoundFailure",
                f"{live.failed_rounds} evaluation rounds failed; last: {type(exc).__name__}: {exc}",
            )
            return
        try:
            self.database.run(lambda r: r.set_failed_rounds(live.lease, live.failed_rounds))
        except StaleLeaseError:
            self._drop(exec_id, lost=True)
            return
        delay = min(10.0, 0.1 * 2**live.failed_rounds)
        self.queue.put(exec_id, time.monotonic() + delay)

    def _fail_unloadable(
        self,
        lease: Lease,
        eid: identifier_pb2.WorkflowExecutionIdentifier,
        code: str,
        message: str,
        kind: int = _SYSTEM,
    ) -> None:
        """Fail an execution the engine cannot evaluate (unreadable closure, bad inputs)."""
        error = execution_pb2.ExecutionError(code=code, message=message, kind=kind)  # type: ignore[arg-type]
        events = RoundEvents(eid, self.producer_id)
        now = time.time()
        events.emit(WorkflowEvent(_WP.WORKFLOW_EXECUTION_PHASE_FAILED, now, error=error))
        rows = events.drain()
        key = f"{eid.project}/{eid.domain}/{eid.name}"
        write = RoundWrite(
            phase=_WP.WORKFLOW_EXECUTION_PHASE_FAILED,
            terminal=True,
            state=None,
            state_uri=None,
            error=error.SerializeToString(),
            node_counts={},
            next_eval_at=0.0,
            evaluated_at=now,
        )

        def work(r):  # type: ignore[no-untyped-def]
            row = r.check_lease(lease)
            write.state, write.state_uri = row.state, row.state_uri
            r.save_round(lease, write)
            r.append_events(key, rows, now)

        with contextlib.suppress(StaleLeaseError):
            self.database.run(work)
        self._drop(lease.execution_id, lost=False)
        if self._on_events is not None:
            self._on_events()

    def _exec_prefix(self, eid: identifier_pb2.WorkflowExecutionIdentifier) -> str:
        return locations.execution_prefix(
            self.metadata_prefix, eid.project, eid.domain, eid.name
        ).rstrip("/")

    # ================================================================ metrics from events
    def _observer(self, key: str) -> Callable[[Event], None]:
        def observe(event: Event) -> None:
            if not isinstance(event, NodeEvent):
                return
            name = execution_pb2.NodeExecutionPhase.Name(event.phase).removeprefix(  # type: ignore[arg-type]
                "NODE_EXECUTION_PHASE_"
            )
            seen = (key, event.node_path)
            with self._lock:
                prev = self._node_seen.get(seen)
                if len(self._node_seen) > 100_000:
                    self._node_seen.clear()
                self._node_seen[seen] = event.occurred_at
            if prev is not None:
                self.metrics.node_transition.labels(name).observe(
                    max(0.0, event.occurred_at - prev)
                )

        return observe


def _count_nodes(gs: GraphState, counts: dict[int, int]) -> None:
    from caddis_propeller.engine.core import NODE_EVENT_PHASE

    for ns in gs.nodes[2:] if len(gs.nodes) > 2 else []:
        if ns is None:
            continue
        _count_node(ns, counts, NODE_EVENT_PHASE)


def _count_node(ns: NodeState, counts: dict[int, int], mapping: Mapping[Any, Any]) -> None:
    phase = mapping.get(ns.phase, 0)
    if phase:
        counts[phase] = counts.get(phase, 0) + 1
    if isinstance(ns.child, GraphState):
        _count_nodes(ns.child, counts)
    elif isinstance(ns.child, NodeState):
        _count_node(ns.child, counts, mapping)


__all__ = ["Controller", "default_replica_id"]
