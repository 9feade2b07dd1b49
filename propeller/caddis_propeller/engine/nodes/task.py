"""Task nodes: attempts, the cache lookup and serialization before them, their outcome.

A task node looks up the catalog before it queues (cacheable tasks), takes a catalog
reservation first when the task is ``cache_serializable``, starts an attempt through the
``TaskRunner``, checks it each round while it runs (timeouts included), and applies its
outcome: outputs, a retry or a failure, or futures (handed to the dynamic handler).
"""

from __future__ import annotations

import contextlib

from caddis_idl.core.v1 import literals_pb2
from caddis_propeller.engine.cache_keys import reservation_owner
from caddis_propeller.engine.core import _CS, _SYSTEM, _TP, _Ctx, _GraphRT, make_error
from caddis_propeller.engine.interfaces import (
    Dynamic,
    Failed,
    Running,
    Succeeded,
    TaskAttempt,
    TaskStatus,
)
from caddis_propeller.engine.nodes.dynamic import DynamicNodes
from caddis_propeller.engine.plan import NodeKind, NodePlan
from caddis_propeller.engine.state import FLAG_RESERVED, NodePhase, NodeState


class TaskNodes(DynamicNodes):
    """Evaluates task nodes (``NodeKind.TASK``).

    A task attempt that returns futures goes on as a dynamic node (:class:`DynamicNodes`).
    """

    def _attempt(
        self,
        ctx: _Ctx,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        inputs: literals_pb2.LiteralMap | None,
    ) -> TaskAttempt:
        cached = ns.rt
        if (
            isinstance(cached, TaskAttempt)
            and cached.attempt == ns.attempt
            and cached.node_path == path
        ):
            return cached
        if inputs is None:
            inputs = self._inputs_of(ctx, path)
        assert np_.task is not None
        att = TaskAttempt(
            execution_id=ctx.state.execution_id,
            node_path=path,
            node_id=np_.id,
            attempt=ns.attempt,
            task=np_.task,
            inputs=inputs,
            inputs_key=f"{ctx.dp}/{path}/inputs.pb",
            output_prefix=f"{ctx.dp}/{path}/{ns.attempt}",
            interruptible=self._interruptible(ctx, np_, ns.attempt),
            timeout=np_.timeout,
            overrides=np_.node.task_node.overrides
            if np_.node.task_node.HasField("overrides")
            else None,
        )
        return att

    def _eval_task(
        self,
        ctx: _Ctx,
        rt: _GraphRT,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
    ) -> None:
        inputs: literals_pb2.LiteralMap | None = None
        # The plan whose tasks / subworkflows a dynamic spec produced here may reference.
        self._current_wp = rt.wp
        if ns.phase == NodePhase.NOT_STARTED:
            inputs = self._start_inputs(ctx, rt, np_, ns, path, parent)
            if inputs is None:
                return
            if self._cache_on(ctx, np_):
                if ctx.state.options.overwrite_cache:
                    ns.cache_status = _CS.CATALOG_CACHE_STATUS_SKIPPED
                else:
                    hit, ns.cache_status = self._lookup(self._ck(np_, inputs))
                    if hit is not None:
                        self._data.put(f"{ctx.dp}/{path}/0/outputs.pb", hit)
                        self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
                        return
            self._set(ctx, np_, ns, NodePhase.QUEUED, path, parent)
        if ns.phase == NodePhase.QUEUED:
            self._start_task(ctx, np_, ns, path, parent, inputs)
        elif ns.phase == NodePhase.RUNNING:
            self._check_task(ctx, np_, ns, path, parent)
        elif ns.phase == NodePhase.DYNAMIC_RUNNING:
            self._eval_dynamic(ctx, rt, np_, ns, path, parent)

    def _start_task(
        self,
        ctx: _Ctx,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
        inputs: literals_pb2.LiteralMap | None,
    ) -> None:
        if not self._may_start(ctx, ns):
            return
        if (
            np_.cache_serializable
            and self._cache_on(ctx, np_)
            and not ctx.state.options.overwrite_cache
            and not ns.flags & FLAG_RESERVED
        ):
            if inputs is None:
                inputs = self._inputs_of(ctx, path)
            if not self._reserve(ctx, np_, ns, path, parent, inputs):
                return
        att = self._attempt(ctx, np_, ns, path, inputs)
        try:
            status = self._runner.start(att)
        except Exception as exc:
            status = Failed(
                make_error("RunnerStartError", f"{type(exc).__name__}: {exc}", kind=_SYSTEM)
            )
        ns.started_at = ctx.now
        ns.retry_at = 0.0
        if self._events is not None:
            self._task_event(ctx, att, _TP.TASK_EXECUTION_PHASE_QUEUED)
            if not isinstance(status, Running) and ns.phase != NodePhase.RUNNING:
                # A synchronous attempt still ran: report RUNNING before its outcome.
                self._set(ctx, np_, ns, NodePhase.RUNNING, path, parent)
        self._apply_status(ctx, np_, ns, path, parent, att, status)

    def _reserve(
        self,
        ctx: _Ctx,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
        inputs: literals_pb2.LiteralMap,
    ) -> bool:
        """Cache serialization: True when this node may run now."""
        assert self._catalog is not None
        key = self._ck(np_, inputs)
        owner = reservation_owner(ctx.state.execution_id.name, path, ns.attempt)
        try:
            got = self._catalog.get_or_extend_reservation(
                key, owner, self.config.reservation_heartbeat
            )
        except Exception:
            return True  # catalog down: run uncached rather than wait forever
        if got:
            ns.flags |= FLAG_RESERVED
            # The previous holder may have populated the cache meanwhile: check once more.
            if ns.cache_status == _CS.CATALOG_CACHE_STATUS_MISS:
                hit, status = self._lookup(key)
                if hit is not None:
                    self._release_slot(ctx, ns)
                    self._release_reservation(ctx, np_, ns, path)
                    ns.cache_status = status
                    self._data.put(f"{ctx.dp}/{path}/0/outputs.pb", hit)
                    self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
                    return False
            return True
        # Another execution computes the same outputs: wait for them to land in the cache.
        hit, status = self._lookup(key)
        if hit is not None:
            self._release_slot(ctx, ns)
            ns.cache_status = status
            self._data.put(f"{ctx.dp}/{path}/0/outputs.pb", hit)
            self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
            return False
        self._release_slot(ctx, ns)
        ctx.pending = True
        ctx.wake(ctx.now + self.config.reservation_heartbeat)
        return False

    def _check_task(
        self, ctx: _Ctx, np_: NodePlan, ns: NodeState, path: str, parent: str | None
    ) -> None:
        att = self._attempt(ctx, np_, ns, path, None)
        handle = ns.handle or ""
        if np_.timeout is not None and ctx.now - ns.started_at >= np_.timeout:
            with contextlib.suppress(Exception):
                self._runner.abort(att, handle, "timeout")
            err = make_error(
                "TimeoutExpired",
                f"task attempt {att.attempt} of node {path} exceeded its timeout of "
                f"{np_.timeout:g}s",
                recoverable=True,
            )
            self._task_event(ctx, att, _TP.TASK_EXECUTION_PHASE_FAILED, error=err)
            ns.rt = None
            self._retry_or_fail(ctx, np_, ns, err, path, parent, timed_out=True)
            return
        if ns.flags & FLAG_RESERVED and self._catalog is not None:
            with contextlib.suppress(Exception):
                self._catalog.get_or_extend_reservation(
                    self._ck(np_, att.inputs),
                    reservation_owner(ctx.state.execution_id.name, path, ns.attempt),
                    self.config.reservation_heartbeat,
                )
        try:
            status = self._runner.check(att, handle)
        except Exception as exc:
            status = Failed(
                make_error("RunnerCheckError", f"{type(exc).__name__}: {exc}", kind=_SYSTEM)
            )
        self._apply_status(ctx, np_, ns, path, parent, att, status)

    def _apply_status(
        self,
        ctx: _Ctx,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
        att: TaskAttempt,
        status: TaskStatus,
    ) -> None:
        if isinstance(status, Running):
            first = ns.phase != NodePhase.RUNNING or ns.handle != status.handle
            ns.handle = status.handle
            ns.rt = att
            if ns.phase != NodePhase.RUNNING:
                self._set(ctx, np_, ns, NodePhase.RUNNING, path, parent)
            if first or status.phase_version:
                self._task_event(ctx, att, status.phase, handle=status.handle, status=status)
            ctx.pending = True
            if np_.timeout is not None:
                ctx.wake(ns.started_at + np_.timeout)
            return
        ns.rt = None
        if isinstance(status, Succeeded):
            okey = f"{att.output_prefix}/outputs.pb"
            outputs = status.outputs
            if outputs is None:
                outputs = self._data.get(okey, literals_pb2.LiteralMap)
                if outputs is None:
                    err = make_error(
                        "OutputsNotFound",
                        f"task reported success but wrote no outputs at {okey}",
                        kind=_SYSTEM,
                        recoverable=True,
                    )
                    self._task_event(ctx, att, _TP.TASK_EXECUTION_PHASE_FAILED, error=err)
                    self._retry_or_fail(ctx, np_, ns, err, path, parent)
                    return
            else:
                self._data.put(okey, outputs)
            missing = [v for v in np_.output_vars if v not in outputs.literals]
            if missing:
                err = make_error(
                    "OutputsMissing",
                    f"task {att.task.id.name} did not produce declared outputs: "
                    + ", ".join(missing),
                )
                self._task_event(ctx, att, _TP.TASK_EXECUTION_PHASE_FAILED, error=err)
                self._retry_or_fail(ctx, np_, ns, err, path, parent)
                return
            self._release_slot(ctx, ns)
            if self._cache_on(ctx, np_) and np_.kind == NodeKind.TASK:
                ns.cache_status = self._cache_put(ctx, np_, att.inputs, outputs)
            self._release_reservation(ctx, np_, ns, path)
            self._task_event(ctx, att, _TP.TASK_EXECUTION_PHASE_SUCCEEDED, outputs_key=okey)
            self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
            return
        if isinstance(status, Dynamic):
            self._release_slot(ctx, ns)
            self._task_event(ctx, att, _TP.TASK_EXECUTION_PHASE_SUCCEEDED)
            self._begin_dynamic(ctx, np_, ns, path, parent, att, status)
            return
        self._task_event(
            ctx,
            att,
            _TP.TASK_EXECUTION_PHASE_RETRYABLE_FAILED
            if status.error.recoverable or status.error.kind == _SYSTEM
            else _TP.TASK_EXECUTION_PHASE_FAILED,
            error=status.error,
        )
        self._retry_or_fail(ctx, np_, ns, status.error, path, parent)
