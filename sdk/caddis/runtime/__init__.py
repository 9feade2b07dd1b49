"""The caddis task runtime: how a task attempt runs, in a process or in this one.

- ``python -m caddis.runtime execute --inputs URI --output-prefix URI --raw-output-prefix URI
  [--checkpoint-path URI --prev-checkpoint URI] --module M --name N
  [--code-bundle-uri URI --code-bundle-digest sha256:HEX]`` runs one attempt per the task
  process contract (see :mod:`caddis.runtime.entrypoint`).
- :func:`execute_task` does the same on in-memory literals: local execution and warm worker
  processes call it directly. It returns a :class:`TaskResult` with exactly one of outputs,
  futures (a dynamic task's DynamicJobSpec) or an error document, and the timing split.
- :func:`current_context` gives a running task its execution parameters (execution id,
  working directory, logging, raw output prefix, checkpoint, decks); :class:`Deck` adds an
  HTML page to the attempt's deck; :func:`execute_named` loads a task by module and name once
  per process (for warm workers); :class:`SyncCheckpoint` is the checkpoint implementation.
- :class:`RecoverableError` / :class:`NonRecoverableError` (and flytekit's names) are
  re-exported from :mod:`caddis.exceptions`: every user exception is retried within the
  task's ``retries`` unless it is a NonRecoverableError.

Names are loaded lazily so that ``import caddis.runtime`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caddis.core.context import current_context
    from caddis.exceptions import (
        FlyteNonRecoverableException,
        FlyteRecoverableException,
        NonRecoverableError,
        RecoverableError,
        is_recoverable,
    )
    from caddis.runtime._execute import (
        AttemptContext,
        TaskResult,
        error_document,
        execute_batch,
        execute_named,
        execute_task,
    )
    from caddis.runtime.checkpoint import Checkpoint, SyncCheckpoint
    from caddis.runtime.deck import Deck

__all__ = [
    "AttemptContext",
    "Checkpoint",
    "Deck",
    "FlyteNonRecoverableException",
    "FlyteRecoverableException",
    "NonRecoverableError",
    "RecoverableError",
    "SyncCheckpoint",
    "TaskResult",
    "current_context",
    "error_document",
    "execute_batch",
    "execute_named",
    "execute_task",
    "is_recoverable",
]

_WHERE = {
    "AttemptContext": "caddis.runtime._execute",
    "FlyteNonRecoverableException": "caddis.exceptions",
    "FlyteRecoverableException": "caddis.exceptions",
    "NonRecoverableError": "caddis.exceptions",
    "RecoverableError": "caddis.exceptions",
    "TaskResult": "caddis.runtime._execute",
    "error_document": "caddis.runtime._execute",
    "execute_task": "caddis.runtime._execute",
    "execute_named": "caddis.runtime._execute",
    "execute_batch": "caddis.runtime._execute",
    "is_recoverable": "caddis.exceptions",
    "Checkpoint": "caddis.runtime.checkpoint",
    "SyncCheckpoint": "caddis.runtime.checkpoint",
    "Deck": "caddis.runtime.deck",
    "current_context": "caddis.core.context",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'caddis.runtime' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
