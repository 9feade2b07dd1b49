"""Gate nodes: sleep (on the clock), approve and signal (polled from the SignalSource)."""

from __future__ import annotations

from caddis_idl.core.v1 import literals_pb2, types_pb2
from caddis_propeller.engine.core import _SYSTEM, EngineCore, _Ctx, _GraphRT, make_error
from caddis_propeller.engine.plan import NodePlan
from caddis_propeller.engine.state import NodePhase, NodeState

# An approval is a boolean signal.
_BOOL = types_pb2.LiteralType(simple=types_pb2.SimpleType.SIMPLE_TYPE_BOOLEAN)


class GateNodes(EngineCore):
    """Evaluates gate nodes (``NodeKind.GATE``)."""

    def _eval_gate(
        self,
        ctx: _Ctx,
        rt: _GraphRT,
        np_: NodePlan,
        ns: NodeState,
        path: str,
        parent: str | None,
    ) -> None:
        gate = np_.node.gate_node
        if ns.phase == NodePhase.NOT_STARTED:
            if self._start_inputs(ctx, rt, np_, ns, path, parent) is None:
                return
            ns.started_at = ctx.now
            self._set(ctx, np_, ns, NodePhase.RUNNING, path, parent)
        kind = gate.WhichOneof("condition")
        if kind == "sleep":
            sd = gate.sleep.duration
            until = ns.started_at + sd.seconds + sd.nanos / 1e9
            if ctx.now >= until:
                self._data.put(f"{ctx.dp}/{path}/0/outputs.pb", self._inputs_of(ctx, path))
                self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
            else:
                ctx.wake(until)
            return
        if np_.timeout is not None and ctx.now - ns.started_at >= np_.timeout:
            err = make_error("GateTimedOut", f"gate {path} was not satisfied in {np_.timeout:g}s")
            self._fail(ctx, np_, ns, err, path, parent, NodePhase.TIMED_OUT)
            return
        if self._signals is None:
            err = make_error(
                "NoSignalSource", "this engine has no signal source for gate nodes", kind=_SYSTEM
            )
            self._fail(ctx, np_, ns, err, path, parent)
            return
        sig_id = gate.approve.signal_id if kind == "approve" else gate.signal.signal_id
        sig_type = _BOOL if kind == "approve" else gate.signal.type
        try:
            value = self._signals.get_signal(ctx.state.execution_id, sig_id, sig_type)
        except Exception:
            value = None  # treat as "not yet": the source is polled again next round
        if value is None:
            ctx.pending = True
            if np_.timeout is not None:
                ctx.wake(ns.started_at + np_.timeout)
            return
        if kind == "approve":
            sc = value.scalar
            if sc.WhichOneof("value") == "primitive" and sc.primitive.boolean:
                self._data.put(f"{ctx.dp}/{path}/0/outputs.pb", self._inputs_of(ctx, path))
                self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
            else:
                err = make_error("GateRejected", f"approval '{sig_id}' was rejected")
                self._fail(ctx, np_, ns, err, path, parent)
            return
        out = literals_pb2.LiteralMap()
        out.literals[gate.signal.output_variable_name].CopyFrom(value)
        self._data.put(f"{ctx.dp}/{path}/0/outputs.pb", out)
        self._set(ctx, np_, ns, NodePhase.SUCCEEDED, path, parent, outputs=True)
