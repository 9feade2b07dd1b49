"""The caddis evaluation engine: one engine for local runs and for propeller.

Pure: imports the IDL, protobuf and the standard library only, never does I/O itself, starts
no threads. Everything it needs from the world is injected (``interfaces``).

How a driver uses it
====================

::

    from caddis_propeller.compiler import compile_workflow
    from caddis_propeller.engine import Engine, ExecutionOptions, ExecutionState

    closure = compile_workflow(wf_template, tasks, subworkflows, launch_plans)
    engine = Engine(runner, data_store, catalog=catalog, events=sink, clock=clock,
                    launch_plans=lp_runner, signals=signal_source)
    plan = engine.prepare(closure)                   # static index; cache it per closure
    state = engine.start(plan, inputs, execution_id=exec_id,
                         data_prefix="metadata/p-d-exec", options=ExecutionOptions())

    # Local driver (SDK): in-memory store, in-process runner; one call.
    engine.run(plan, state, wait=time.sleep_or_block)  # loops rounds until done
    outputs = engine.outputs(state)                  # LiteralMap, or None unless SUCCEEDED

    # Service driver (propeller): one round per wake-up, persist after each changed round.
    result = engine.round(plan, state, recovery=prior_outputs_or_None)
    if result.changed:
        save(state.to_bytes())                       # compact bytes; restore with from_bytes
    requeue_after(result)                            # done / budget_exhausted (again now) /
                                                     # wake_at (timer) / pending (poll later)
    engine.abort(plan, state, "reason")              # stops everything, marks ABORTED

Rounds are *level-triggered* and idempotent: after a crash, load the last persisted state and
call ``round`` again; in-flight attempts are found again through their persisted runner
handles, and every side effect uses deterministic names (node path + attempt). A round only
touches the active nodes (ready, running, waiting); finished nodes cost nothing. Work per
round is bounded by ``EngineConfig`` (``max_node_evaluations_per_round``,
``array_items_per_round``); when a bound stops a round, ``RoundResult.budget_exhausted`` is set.

State and data
==============

``ExecutionState`` holds only what changes (phases, attempt counters, handles, timestamps,
errors; array items packed one byte per item and field) and never the static spec; the plan is
rebuilt from the closure. Inputs and outputs live in the ``DataStore`` under keys derived from
node paths::

    {data_prefix}/inputs.pb, {data_prefix}/outputs.pb            the execution
    {data_prefix}/{path}/inputs.pb                                a node's inputs
    {data_prefix}/{path}/{attempt}/outputs.pb | futures.pb | error.pb
    {data_prefix}/{path}/{attempt}/dynamic_compiled.pb            compiled dynamic workflow

Node paths: ``n1`` (top level); nested graphs live under their node's attempt directory:
``sub/0/n0`` (subworkflow), ``dyn/2/n0`` (dynamic, attempt 2), ``br/0/case_node`` (branch),
``map/0/17`` (array item 17). Local mode keeps the protobuf objects in a dict
(``InMemoryDataStore``): nothing is serialized.

Semantics
=========

- Task attempts: ``TaskRunner.start`` may finish synchronously (local) or return ``Running``
  (then ``check`` each round). ``Failed(error)``: ``error.kind == SYSTEM`` is charged to
  ``EngineConfig.max_system_retries``; USER errors retry only when ``error.recoverable`` and
  the node's retries (node metadata, else task metadata) allow. Backoff between attempts is
  ``EngineConfig.backoff_*`` (0 by default). Per-attempt timeouts abort the attempt and count
  as a recoverable user failure; with no retries left the node ends TIMED_OUT. Interruptible
  attempts: all but the last possible one (or per ``interruptible_failure_threshold``).
- Caching: cacheable tasks look up ``cache_keys.cache_key(task, inputs)`` before queueing and
  populate after success; ``cache_serializable`` takes a catalog reservation first and, when
  someone else holds it, waits for their result. Catalog errors never fail a node
  (CACHE_LOOKUP_FAILURE / CACHE_PUT_FAILURE). ``ExecutionOptions.overwrite_cache`` runs and
  overwrites; ``skip_cache`` bypasses the catalog.
- Dynamic: a task returning ``Dynamic(spec)`` has its futures compiled (same compiler),
  stored at ``dynamic_compiled.pb`` and run as a nested graph; its end outputs become the
  node's outputs. Nested dynamics work the same way. A retry re-runs the task.
- Branches evaluate conditions over the branch node's inputs; untaken cases are reported
  SKIPPED; no match takes ``else`` or fails with the declared error.
- Array nodes: mapped inputs (not in ``bound_inputs``) must be equal-length lists; items run
  with ``parallelism`` (0 = unlimited), per-item retries and caching, through
  ``BatchTaskRunner.start_batch`` when the runner has it, and looked up in the catalog in
  batches through ``BatchCatalog.lookup_many`` when the catalog has it; success needs
  ``min_successes`` / ``ceil(min_success_ratio * n)``; failed items yield None; results keep
  item order. A runner that is also a ``CompletionTracker`` tells the engine which in-flight
  items need a ``check`` (``needs_check``), so a round costs per completion instead of per
  item in flight; without it every in-flight item is checked every round.
- Gates: sleep uses the clock; approve/signal poll ``SignalSource``.
- Launch plans run through ``LaunchPlanRunner`` (local: inline child; propeller: admin).
- Failure policy: FAIL_IMMEDIATELY aborts running nodes on the first failure; otherwise
  runnable nodes finish first. Then the failure node runs (its ``err`` input, when declared
  and unbound, receives an ``Error`` literal) and the workflow is FAILED.
- Attribute paths on promises traverse collections, maps, unions and Struct values; Binary
  (msgpack) values need the injected ``binary_attr`` hook (the SDK supplies one, as decoding
  msgpack needs a third-party package).
- Recovery: ``round(recovery=...)`` asks ``PriorOutputs.get(node_path)`` before running a
  node and marks it RECOVERED when earlier outputs exist.
- Events (``EventSink.emit``) are light dataclasses; ``events.to_proto`` converts them to
  ``caddis_idl.event.v1`` messages. Per-item array events only when
  ``EventSink.array_item_events`` is True.
"""

from caddis_propeller.engine.cache_keys import (
    CacheKey,
    cache_key,
    hash_inputs,
    hash_literal,
    interface_signature,
    reservation_owner,
)
from caddis_propeller.engine.executor import Engine, EngineConfig, RoundResult, make_error
from caddis_propeller.engine.interfaces import (
    BatchCatalog,
    BatchTaskRunner,
    BinaryAttrResolver,
    Catalog,
    Clock,
    CompletionTracker,
    DataStore,
    Dynamic,
    Event,
    EventSink,
    Failed,
    LaunchPlanRunner,
    LaunchRequest,
    NodeEvent,
    PriorOutputs,
    Running,
    SignalSource,
    Succeeded,
    TaskAttempt,
    TaskEvent,
    TaskRunner,
    TaskStatus,
    WorkflowEvent,
)
from caddis_propeller.engine.memory import (
    CollectingEventSink,
    InMemoryCatalog,
    InMemoryDataStore,
    ManualClock,
)
from caddis_propeller.engine.plan import WorkflowPlan
from caddis_propeller.engine.state import (
    ArrayState,
    ExecutionOptions,
    ExecutionState,
    GraphPhase,
    GraphState,
    ItemPhase,
    NodePhase,
    NodeState,
)

__all__ = [
    "ArrayState",
    "BatchCatalog",
    "BatchTaskRunner",
    "BinaryAttrResolver",
    "CacheKey",
    "Catalog",
    "Clock",
    "CollectingEventSink",
    "CompletionTracker",
    "DataStore",
    "Dynamic",
    "Engine",
    "EngineConfig",
    "Event",
    "EventSink",
    "ExecutionOptions",
    "ExecutionState",
    "Failed",
    "GraphPhase",
    "GraphState",
    "InMemoryCatalog",
    "InMemoryDataStore",
    "ItemPhase",
    "LaunchPlanRunner",
    "LaunchRequest",
    "ManualClock",
    "NodeEvent",
    "NodePhase",
    "NodeState",
    "PriorOutputs",
    "RoundResult",
    "Running",
    "SignalSource",
    "Succeeded",
    "TaskAttempt",
    "TaskEvent",
    "TaskRunner",
    "TaskStatus",
    "WorkflowEvent",
    "WorkflowPlan",
    "cache_key",
    "hash_inputs",
    "hash_literal",
    "interface_signature",
    "make_error",
    "reservation_owner",
]
