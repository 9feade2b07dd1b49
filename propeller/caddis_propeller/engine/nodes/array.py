"""Array (map) nodes: one task run over the items of list inputs.

Items are not nodes: their phases, attempt counters, handles and cache statuses are packed
in ``ArrayState`` (one byte per item and field), and ``_ArrayRT`` keeps their resolved inputs
and in-memory outputs between rounds. A round checks the items in flight, starts due retries
and then fresh items within the array's parallelism and the round's budget, and, once every
item is done, gathers the outputs in item order (None for failed items).
"""

from __future__ import annotations

import contextlib

from caddis_idl.core.v1 import literals_pb2
from caddis_propeller.engine.cache_keys import CacheKey
from caddis_propeller.engine.core import (
    _CS,
    _SYSTEM,
    _TP,
    EngineCore,
    _answer,
    _Ctx,
    _GraphRT,
    make_error,
)
from caddis_propeller.engine.interfaces import (
    Dynamic,
    Failed,
    Running,
    Succeeded,
    TaskAttempt,
    TaskStatus,
)
from caddis_propeller.engine.plan import NONE_LITERAL, NodePlan
from caddis_propeller.engine.state import ArrayState, ItemPhase, NodePhase, NodeState


class _ArrayRT:
    """Transient runtime of an array node: its resolved inputs and in-memory item outputs.

    ``by_handle`` maps the runner handles of in-flight items back to item indexes (for a
    :class:`CompletionTracker`); built on first use from the persisted handles, then kept in
    step with them.
    """

    __slots__ = ("bound", "by_handle", "inputs", "looked_up", "mapped", "outputs", "to_put")

    def __init__(self, inputs: literals_pb2.LiteralMap, bound: frozenset[str], size: int) -> None:
        self.inputs = inputs
        self.bound = [(k, v) for k, v in inputs.literals.items() if k in bound]
        self.mapped = [
            (k, v.collection.literals) for k, v in inputs.literals.items() if k not in bound
        ]
        self.outputs: list[literals_pb2.LiteralMap | None] = [None] * size
        self.by_handle: dict[str, int] | None = None
        # Catalog answers of items looked up ahead of their start (batch lookups): (outputs
        # or None, CatalogCacheStatus) by item index, taken when the item's turn comes.
        self.looked_up: dict[int, tuple[literals_pb2.LiteralMap | None, int]] = {}
        # Results of items that finished this round, recorded in the catalog together at the
        # end of the round (batch puts): (item index, cache key, outputs).
        self.to_put: list[tuple[int, CacheKey, literals_pb2.LiteralMap]] = []


class ArrayNodes(EngineCore):
    """Evaluates array nodes (``NodeKind.ARRAY``)."""

    def _eval_array(
        self,
        ctx: _Ctx,
        rt: _GraphRT,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
    ) -> None:
        ap = np_.array
        assert ap is not None
        if ns.phase == NodePhase.NOT_STARTED:
            inputs = self._start_inputs(ctx, rt, np_, ns, path, parent)
            if inputs is None:
                return
            sizes = {
                k: len(v.collection.literals)
                for k, v in inputs.literals.items()
                if k not in ap.bound
            }
            bad = [
                k
                for k, v in inputs.literals.items()
                if k not in ap.bound and v.WhichOneof("value") != "collection"
            ]
            if bad or len(set(sizes.values())) > 1:
                detail = (
                    f"inputs {', '.join(sorted(bad))} are not lists"
                    if bad
                    else "mapped inputs have different lengths: "
                    + ", ".join(f"{k}={n}" for k, n in sorted(sizes.items()))
                )
                self._fail(ctx, np_, ns, make_error("InvalidArrayLength", detail), path, parent)
                return
            size = next(iter(sizes.values()), 0)
            ns.array = ArrayState(size, cache=self._cache_on(ctx, ap.sub))
            ns.rt = _ArrayRT(inputs, ap.bound, size)
            self._set(ctx, np_, ns, NodePhase.RUNNING, path, parent)
        if ns.phase != NodePhase.RUNNING:
            return
        a = ns.array
        assert a is not None
        art = ns.rt
        if not isinstance(art, _ArrayRT):
            art = _ArrayRT(self._inputs_of(ctx, path), ap.bound, a.size)
            ns.rt = art
        self._step_array(ctx, np_, ap.sub, ns, a, art, path)
        if art.to_put:
            self._put_items(a, art)
        need = ap.required_successes(a.size)
        done = a.n_succeeded + a.n_failed
        impossible = a.size - a.n_failed < need
        if impossible and not ap.run_all:
            self._abort_items(ctx, ap.sub, a, path, "array node can no longer succeed")
            done = a.size
        if done < a.size:
            return
        ns.rt = None
        if a.n_succeeded >= need:
            self._gather(ctx, np_, a, art, path)
            self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
        else:
            first = a.first_error.message if a.first_error is not None else "unknown error"
            err = make_error(
                "ArrayNodeFailed",
                f"{a.n_failed} of {a.size} items failed; {need} successes were required "
                f"(first error: {first})",
            )
            if a.first_error is not None:
                err.kind = a.first_error.kind
            self._fail(ctx, np_, ns, err, path, parent)

    def _item_inputs(self, art: _ArrayRT, i: int) -> literals_pb2.LiteralMap:
        lm = literals_pb2.LiteralMap()
        lits = lm.literals
        for k, coll in art.mapped:
            lits[k].CopyFrom(coll[i])
        for k, v in art.bound:
            lits[k].CopyFrom(v)
        return lm

    def _item_attempt(
        self,
        ctx: _Ctx,
        sub: NodePlan,
        a: ArrayState,
        art: _ArrayRT,
        path: str,
        i: int,
        inputs: literals_pb2.LiteralMap | None = None,
    ) -> TaskAttempt:
        assert sub.task is not None
        ipath = f"{path}/0/{i}"
        attempt = a.user_failures[i] + a.system_failures[i]
        if inputs is None:
            inputs = self._item_inputs(art, i)
        return TaskAttempt(
            execution_id=ctx.state.execution_id,
            node_path=ipath,
            node_id=sub.id,
            attempt=attempt,
            task=sub.task,
            inputs=inputs,
            inputs_key=f"{ctx.dp}/{ipath}/inputs.pb",
            output_prefix=f"{ctx.dp}/{ipath}/{attempt}",
            interruptible=self._interruptible(ctx, sub, attempt),
            timeout=sub.timeout,
            array_index=i,
        )

    def _step_array(
        self,
        ctx: _Ctx,
        np_: NodePlan,
        sub: NodePlan,
        ns: NodeState,
        a: ArrayState,
        art: _ArrayRT,
        path: str,
    ) -> None:
        budget = self.config.array_items_per_round
        ap = np_.array
        assert ap is not None
        # The in-flight window: the array's own parallelism, else (and at most) the round
        # budget, so that state size and per-round cost stay bounded for any array size.
        window = self.config.array_items_per_round
        parallelism = min(ap.parallelism, window) if ap.parallelism else window
        # 1. Observe items in flight (runners that returned Running): those the runner names
        # as needing a look (cost per completion), else all of them.
        if a.handles:
            for i in self._items_to_check(ctx, sub, a, art)[:budget]:
                budget -= 1
                att = self._item_attempt(ctx, sub, a, art, path, i)
                started = a.started.get(i, ctx.now)
                if sub.timeout is not None and ctx.now - started >= sub.timeout:
                    with contextlib.suppress(Exception):
                        self._runner.abort(att, a.handles[i], "timeout")
                    st: TaskStatus = Failed(
                        make_error(
                            "TimeoutExpired",
                            f"item {i} exceeded its timeout of {sub.timeout:g}s",
                            recoverable=True,
                        )
                    )
                else:
                    try:
                        st = self._runner.check(att, a.handles[i])
                    except Exception as exc:
                        st = Failed(make_error("RunnerCheckError", str(exc), kind=_SYSTEM))
                self._item_status(ctx, sub, a, art, path, att, st)
        # 2. Start retries that are due, then fresh items, within parallelism and budget.
        batch: list[TaskAttempt] = []
        cache_on = bool(a.cache)
        if a.retry_at:
            for i, t in list(a.retry_at.items()):
                if budget <= 0 or (parallelism and a.n_running + len(batch) >= parallelism):
                    break
                if t > ctx.now:
                    ctx.wake(t)
                    continue
                del a.retry_at[i]
                budget -= 1
                batch.append(self._item_attempt(ctx, sub, a, art, path, i))
        data_put = self._data.put
        dp = ctx.dp
        while a.next_index < a.size and budget > 0:
            if parallelism and a.n_running + len(batch) >= parallelism:
                break
            i = a.next_index
            a.next_index += 1
            budget -= 1
            if ctx.recovery is not None:
                # A recovered execution reuses the items that succeeded in the reference
                # even when the array node as a whole failed there.
                prior = self._prior(ctx, f"{path}/0/{i}")
                if prior is not None:
                    art.looked_up.pop(i, None)
                    data_put(f"{dp}/{path}/0/{i}/0/outputs.pb", prior)
                    art.outputs[i] = prior
                    a.phases[i] = ItemPhase.SUCCEEDED
                    a.n_succeeded += 1
                    continue
            inputs = self._item_inputs(art, i)
            # Item inputs are handed to the runner in the attempt and not written to the
            # DataStore (10,000 extra objects/blobs per map); a runner whose task processes
            # read inputs.pb writes ``attempt.inputs`` to ``attempt.inputs_key`` itself.
            if cache_on and not ctx.state.options.overwrite_cache:
                hit, status = self._item_lookup(sub, a, art, i, inputs, ahead=budget)
                a.cache[i] = status
                if hit is not None:
                    data_put(f"{dp}/{path}/0/{i}/0/outputs.pb", hit)
                    art.outputs[i] = hit
                    a.phases[i] = ItemPhase.SUCCEEDED
                    a.n_succeeded += 1
                    continue
            elif cache_on:
                a.cache[i] = _CS.CATALOG_CACHE_STATUS_SKIPPED
            batch.append(self._item_attempt(ctx, sub, a, art, path, i, inputs))
        if not batch:
            if a.n_running or a.retry_at:
                ctx.pending = ctx.pending or bool(a.n_running)
            if a.next_index < a.size:
                ctx.exhausted = True
            return
        ctx.changed = True
        if a.next_index < a.size or budget <= 0:
            ctx.exhausted = True
        if self._batch is not None:
            try:
                statuses = list(self._batch.start_batch(batch))
            except Exception as exc:
                err = make_error("RunnerStartError", str(exc), kind=_SYSTEM)
                statuses = [Failed(err)] * len(batch)
            for att, st in zip(batch, statuses, strict=True):
                self._item_status(ctx, sub, a, art, path, att, st)
        else:
            start = self._runner.start
            for att in batch:
                try:
                    st = start(att)
                except Exception as exc:
                    st = Failed(make_error("RunnerStartError", str(exc), kind=_SYSTEM))
                self._item_status(ctx, sub, a, art, path, att, st)

    def _item_cache_put(
        self,
        ctx: _Ctx,
        sub: NodePlan,
        a: ArrayState,
        art: _ArrayRT,
        i: int,
        inputs: literals_pb2.LiteralMap,
        outputs: literals_pb2.LiteralMap,
    ) -> None:
        """Record item ``i``'s outputs now, or with the round's other items (batch catalog)."""
        if self._batch_catalog is None or ctx.state.options.overwrite_cache:
            a.cache[i] = self._cache_put(ctx, sub, inputs, outputs)
            return
        # POPULATED until the round's batch says otherwise (see _put_items).
        a.cache[i] = _CS.CATALOG_CACHE_STATUS_POPULATED
        art.to_put.append((i, self._ck(sub, inputs), outputs))

    def _put_items(self, a: ArrayState, art: _ArrayRT) -> None:
        """Record the results of the items that finished this round in one batch."""
        batch_catalog = self._batch_catalog
        assert batch_catalog is not None
        pending, art.to_put = art.to_put, []
        try:
            recorded = list(batch_catalog.put_many([(key, out) for _, key, out in pending]))
            if len(recorded) != len(pending):
                raise ValueError(f"{len(recorded)} answers to {len(pending)} puts")
        except Exception:
            recorded = [False] * len(pending)
        for (i, _, _), ok in zip(pending, recorded, strict=True):
            if not ok:
                a.cache[i] = _CS.CATALOG_CACHE_STATUS_PUT_FAILURE

    def _item_lookup(
        self,
        sub: NodePlan,
        a: ArrayState,
        art: _ArrayRT,
        i: int,
        inputs: literals_pb2.LiteralMap,
        *,
        ahead: int,
    ) -> tuple[literals_pb2.LiteralMap | None, int]:
        """The catalog's answer for item ``i``: looked up ahead, alone, or with the next items.

        With a :class:`BatchCatalog`, item ``i`` is looked up together with the ``ahead``
        items after it (those the round may still start), and their answers are kept for
        when their turn comes: one call per batch instead of one per item.
        """
        found = art.looked_up.pop(i, None)
        if found is not None:
            return found
        batch_catalog = self._batch_catalog
        if batch_catalog is None or ahead <= 0 or i + 1 >= a.size:
            return self._lookup(self._ck(sub, inputs))
        indices = range(i, min(a.size, i + 1 + ahead))
        keys = [self._ck(sub, inputs if j == i else self._item_inputs(art, j)) for j in indices]
        looked_up = art.looked_up
        try:
            hits = batch_catalog.lookup_many(keys)
            if len(hits) != len(keys):
                raise ValueError(f"{len(hits)} answers to {len(keys)} lookups")
        except Exception:
            # As after a failed single lookup: these items run uncached. Remembering the
            # failure keeps a catalog that is down from being asked again for each item.
            failed = (None, _CS.CATALOG_CACHE_STATUS_LOOKUP_FAILURE)
            looked_up.update((j, failed) for j in indices)
        else:
            looked_up.update((j, _answer(hit)) for j, hit in zip(indices, hits, strict=True))
        return looked_up.pop(i)

    def _items_to_check(self, ctx: _Ctx, sub: NodePlan, a: ArrayState, art: _ArrayRT) -> list[int]:
        """In-flight items to check this round: the tracker's answer plus timed-out items."""
        handles = a.handles
        tracker = self._tracker
        named = None
        if tracker is not None:
            assert sub.task is not None
            try:
                named = tracker.needs_check(sub.task, handles.values())
            except Exception:
                named = None  # a tracker failure costs a full check, never an item
        if named is None:
            return list(handles)
        by_handle = art.by_handle
        if by_handle is None:
            by_handle = {h: i for i, h in handles.items()}
            if len(by_handle) != len(handles):
                return list(handles)  # handles shared between items: cannot map back
            art.by_handle = by_handle
        due = [i for h in named if (i := by_handle.get(h)) is not None]
        timeout = sub.timeout
        if timeout is not None and a.started:
            limit = ctx.now - timeout
            # One C-level min per round; the Python scan only when some item is overdue.
            if min(a.started.values()) <= limit:
                seen = set(due)
                due.extend(
                    i for i, t in a.started.items() if t <= limit and i not in seen and i in handles
                )
        return due

    def _item_status(
        self,
        ctx: _Ctx,
        sub: NodePlan,
        a: ArrayState,
        art: _ArrayRT,
        path: str,
        att: TaskAttempt,
        st: TaskStatus,
    ) -> None:
        i = att.array_index
        assert i is not None
        if type(st) is Succeeded and st.outputs is not None and a.phases[i] != ItemPhase.RUNNING:
            # Fast path (synchronous local items): keep the outputs in memory and in the store.
            fast = st.outputs
            self._data.put(f"{att.output_prefix}/outputs.pb", fast)
            art.outputs[i] = fast
            a.phases[i] = ItemPhase.SUCCEEDED
            a.n_succeeded += 1
            if a.cache:
                self._item_cache_put(ctx, sub, a, art, i, att.inputs, fast)
            if self._item_events:
                self._task_event(ctx, att, _TP.TASK_EXECUTION_PHASE_SUCCEEDED)
            return
        was_running = a.phases[i] == ItemPhase.RUNNING
        if isinstance(st, Running):
            if not was_running:
                a.phases[i] = ItemPhase.RUNNING
                a.n_running += 1
                a.started[i] = ctx.now
                self._task_event(ctx, att, st.phase, handle=st.handle, status=st)
            by_handle = art.by_handle
            if by_handle is not None:
                old = a.handles.get(i)
                if old is not None and old != st.handle:
                    by_handle.pop(old, None)
                if by_handle.setdefault(st.handle, i) != i:
                    art.by_handle = None  # shared handle: fall back to checking everything
            a.handles[i] = st.handle
            ctx.pending = True
            return
        if was_running:
            a.n_running -= 1
            old = a.handles.pop(i, None)
            a.started.pop(i, None)
            if old is not None and art.by_handle is not None:
                art.by_handle.pop(old, None)
        if isinstance(st, Succeeded):
            okey = f"{att.output_prefix}/outputs.pb"
            outputs: literals_pb2.LiteralMap | None = st.outputs
            if outputs is None:
                outputs = self._data.get(okey, literals_pb2.LiteralMap)
            else:
                self._data.put(okey, outputs)
            if outputs is not None:
                art.outputs[i] = outputs
                a.phases[i] = ItemPhase.SUCCEEDED
                a.n_succeeded += 1
                if a.cache and a.cache[i] != _CS.CATALOG_CACHE_STATUS_HIT:
                    self._item_cache_put(ctx, sub, a, art, i, att.inputs, outputs)
                if self._item_events:
                    self._task_event(ctx, att, _TP.TASK_EXECUTION_PHASE_SUCCEEDED, outputs_key=okey)
                return
            st = Failed(
                make_error(
                    "OutputsNotFound", f"no outputs at {okey}", kind=_SYSTEM, recoverable=True
                )
            )
        if isinstance(st, Dynamic):
            st = Failed(make_error("DynamicInArray", "array items cannot produce futures"))
        err = st.error
        if err.kind == _SYSTEM:
            a.system_failures[i] = min(255, a.system_failures[i] + 1)
            retry = a.system_failures[i] <= self.config.max_system_retries
        else:
            a.user_failures[i] = min(255, a.user_failures[i] + 1)
            retry = err.recoverable and a.user_failures[i] <= sub.retries
        if self._item_events:
            self._task_event(ctx, att, _TP.TASK_EXECUTION_PHASE_FAILED, error=err)
        if retry:
            a.phases[i] = ItemPhase.WAITING
            delay = self._backoff(a.user_failures[i] + a.system_failures[i])
            a.retry_at[i] = ctx.now + delay
            if delay:
                ctx.wake(ctx.now + delay)
            return
        a.phases[i] = ItemPhase.FAILED
        a.n_failed += 1
        if a.first_error is None:
            a.first_error = err

    def _abort_items(self, ctx: _Ctx, sub: NodePlan, a: ArrayState, path: str, reason: str) -> None:
        art = None
        for i, h in list(a.handles.items()):
            if art is None:
                art = _ArrayRT(self._inputs_of(ctx, path), frozenset(), a.size)
            with contextlib.suppress(Exception):
                self._runner.abort(self._item_attempt(ctx, sub, a, art, path, i), h, reason)
        for i in range(a.size):
            if a.phases[i] in (ItemPhase.NOT_STARTED, ItemPhase.WAITING, ItemPhase.RUNNING):
                a.phases[i] = ItemPhase.ABORTED
        a.handles.clear()
        a.started.clear()
        a.retry_at.clear()
        a.n_running = 0
        a.next_index = a.size
        a.n_failed = a.size - a.n_succeeded

    def _gather(self, ctx: _Ctx, np_: NodePlan, a: ArrayState, art: _ArrayRT, path: str) -> None:
        out = literals_pb2.LiteralMap()
        colls = []
        for var in np_.output_vars:
            lit = out.literals[var]
            lit.collection.SetInParent()
            colls.append((var, lit.collection.literals))
        phases = a.phases
        outputs = art.outputs
        succeeded = ItemPhase.SUCCEEDED
        for i in range(a.size):
            if phases[i] == succeeded:
                o = outputs[i]
                if o is None:
                    o = self._data.get(
                        f"{ctx.dp}/{path}/0/{i}/{a.attempt(i)}/outputs.pb", literals_pb2.LiteralMap
                    )
                if o is not None:
                    olits = o.literals
                    for var, coll in colls:
                        coll.append(olits[var])
                    continue
            for _var, coll in colls:
                coll.append(NONE_LITERAL)
        self._data.put(f"{ctx.dp}/{path}/0/outputs.pb", out)
