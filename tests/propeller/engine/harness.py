"""An in-test TaskRunner calling Python functions on literals, and an engine factory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from caddis_idl.core.v1 import dynamic_job_pb2, execution_pb2, identifier_pb2, literals_pb2
from caddis_propeller.compiler import compile_workflow
from caddis_propeller.engine import (
    CollectingEventSink,
    Dynamic,
    Engine,
    EngineConfig,
    ExecutionOptions,
    ExecutionState,
    Failed,
    InMemoryCatalog,
    InMemoryDataStore,
    ManualClock,
    Running,
    Succeeded,
    TaskAttempt,
    TaskStatus,
    make_error,
)
from tests.propeller.compiler.builders import lit, pymap

USER = execution_pb2.ErrorKind.ERROR_KIND_USER
SYSTEM = execution_pb2.ErrorKind.ERROR_KIND_SYSTEM


class UserError(Exception):
    def __init__(self, msg: str = "boom", recoverable: bool = True) -> None:
        super().__init__(msg)
        self.recoverable = recoverable


class SystemError_(Exception):
    pass


class Hang(Exception):
    """Raised by a function to make the attempt stay Running forever."""


@dataclass
class FuncRunner:
    """Runs task `name` by calling funcs[name](**python inputs) -> dict | DynamicJobSpec.

    async_checks: when > 0, start returns Running and the result arrives after that many checks.
    """

    funcs: dict[str, Callable[..., Any]]
    async_checks: int = 0
    calls: list[tuple[str, int]] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    pending: dict[str, tuple[int, TaskStatus]] = field(default_factory=dict)

    def _run(self, attempt: TaskAttempt) -> TaskStatus:
        name = attempt.task.id.name
        self.calls.append((attempt.node_path, attempt.attempt))
        kwargs = pymap(attempt.inputs)
        try:
            result = self.funcs[name](**kwargs)
        except Hang:
            return Running(handle=f"h-{attempt.node_path}-{attempt.attempt}")
        except UserError as exc:
            return Failed(make_error("USER", str(exc), kind=USER, recoverable=exc.recoverable))
        except SystemError_ as exc:
            return Failed(make_error("SYSTEM", str(exc), kind=SYSTEM, recoverable=True))
        if isinstance(result, dynamic_job_pb2.DynamicJobSpec):
            return Dynamic(result)
        out = literals_pb2.LiteralMap()
        for k, v in (result or {}).items():
            out.literals[k].CopyFrom(lit(v))
        return Succeeded(out)

    def start(self, attempt: TaskAttempt) -> TaskStatus:
        status = self._run(attempt)
        if self.async_checks and not isinstance(status, Running):
            handle = f"h-{attempt.node_path}-{attempt.attempt}"
            self.pending[handle] = (self.async_checks, status)
            return Running(handle=handle)
        return status

    def check(self, attempt: TaskAttempt, handle: str) -> TaskStatus:
        if handle not in self.pending:
            return Running(handle=handle)
        n, status = self.pending[handle]
        if n <= 1:
            del self.pending[handle]
            return status
        self.pending[handle] = (n - 1, status)
        return Running(handle=handle)

    def abort(self, attempt: TaskAttempt, handle: str, reason: str) -> None:
        self.aborted.append(attempt.node_path)
        self.pending.pop(handle, None)


@dataclass
class BatchFuncRunner(FuncRunner):
    batches: list[int] = field(default_factory=list)

    def start_batch(self, attempts: Sequence[TaskAttempt]) -> list[TaskStatus]:
        self.batches.append(len(attempts))
        return [self.start(a) for a in attempts]


EXEC_ID = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="e1")


@dataclass
class Env:
    runner: FuncRunner
    data: InMemoryDataStore
    clock: ManualClock
    catalog: InMemoryCatalog | None
    sink: CollectingEventSink
    engine: Engine

    def execute(
        self,
        wf: Any,
        tasks: Sequence[Any],
        inputs: dict[str, Any] | None = None,
        *,
        subworkflows: Sequence[Any] = (),
        launch_plans: Sequence[Any] = (),
        options: ExecutionOptions | None = None,
        recovery: Any = None,
        name: str = "e1",
        max_rounds: int = 10_000,
    ) -> tuple[ExecutionState, Any]:
        closure = compile_workflow(wf, tasks, subworkflows, launch_plans)
        plan = self.engine.prepare(closure)
        eid = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name=name)
        lm = literals_pb2.LiteralMap(literals={k: lit(v) for k, v in (inputs or {}).items()})
        state = self.engine.start(plan, lm, execution_id=eid, options=options)
        self.engine.run(
            plan, state, wait=self.clock.advance, recovery=recovery, max_rounds=max_rounds
        )
        return state, plan

    def outputs(self, state: ExecutionState) -> dict[str, Any] | None:
        out = self.engine.outputs(state)
        return None if out is None else pymap(out)


def make_env(
    funcs: dict[str, Callable[..., Any]],
    *,
    catalog: bool | InMemoryCatalog = False,
    config: EngineConfig | None = None,
    runner: FuncRunner | None = None,
    **kw: Any,
) -> Env:
    clock = ManualClock()
    data = InMemoryDataStore()
    r = runner or FuncRunner(funcs)
    if isinstance(catalog, InMemoryCatalog):
        cat: InMemoryCatalog | None = catalog
    else:
        cat = InMemoryCatalog(clock) if catalog else None
    sink = CollectingEventSink()
    engine = Engine(r, data, catalog=cat, events=sink, clock=clock, config=config, **kw)
    return Env(r, data, clock, cat, sink, engine)


def phases(env: Env, node_path: str) -> list[int]:
    from caddis_propeller.engine import NodeEvent

    return [
        e.phase for e in env.sink.events if isinstance(e, NodeEvent) and e.node_path == node_path
    ]
