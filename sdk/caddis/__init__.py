"""caddis: typed, versioned, memoized workflows for data and machine learning.

The public SDK follows flytekit's names and semantics, so a Flyte program runs after
replacing ``flytekit`` with ``caddis``::

    from caddis import task, workflow

    @task
    def double(x: int) -> int:
        return 2 * x

    @workflow
    def wf(x: int) -> int:
        return double(x=double(x=x))

Authoring: ``task``, ``workflow``, ``dynamic``, ``map_task``, ``conditional``,
``create_node``, ``Resources``, ``TaskMetadata``, ``Cache``, ``Secret``,
``WorkflowFailurePolicy``. Gates: ``sleep``, ``wait_for_input``, ``approve``.
Launching: ``LaunchPlan``, ``CronSchedule``, ``FixedRate``, ``Labels``, ``Annotations``.
References: ``reference_task``, ``reference_workflow``,
``reference_launch_plan``. Run time: ``current_context``, ``ExecutionParameters``,
``Deck``, ``FlyteContext``, ``FlyteContextManager``. Types: ``FlyteFile``,
``FlyteDirectory``, ``StructuredDataset``, ``kwtypes``. Errors: ``caddis.exceptions``
(``NonRecoverableError`` fails a task without retrying; every other exception is retried
within ``retries``).

Importing ``caddis`` is cheap: each name is imported on first use (task processes pay
start-up time per task).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> module defining it. Resolved lazily by __getattr__ (PEP 562).
_EXPORTS: dict[str, str] = {
    "Annotations": "caddis.core.launch_plan",
    "Cache": "caddis.core.metadata",
    "CronSchedule": "caddis.core.schedule",
    "Deck": "caddis.core.deck",
    "ExecutionParameters": "caddis.core.context",
    "FixedRate": "caddis.core.schedule",
    "FlyteContext": "caddis.core.context",
    "FlyteContextManager": "caddis.core.context",
    "FlyteDirectory": "caddis.types.directory",
    "FlyteFile": "caddis.types.file",
    "Labels": "caddis.core.launch_plan",
    "LaunchPlan": "caddis.core.launch_plan",
    "Promise": "caddis.core.promise",
    "PythonFunctionTask": "caddis.core.task",
    "Resources": "caddis.core.resources",
    "Secret": "caddis.core.metadata",
    "StructuredDataset": "caddis.types.structured",
    "TaskMetadata": "caddis.core.metadata",
    "TaskPlugins": "caddis.core.task",
    "WorkflowFailurePolicy": "caddis.core.workflow",
    "approve": "caddis.core.gate",
    "conditional": "caddis.core.condition",
    "create_node": "caddis.core.node",
    "current_context": "caddis.core.context",
    "dynamic": "caddis.core.dynamic",
    "kwtypes": "caddis.core.interface",
    "map_task": "caddis.core.map_task",
    "reference_launch_plan": "caddis.core.reference",
    "reference_task": "caddis.core.reference",
    "reference_workflow": "caddis.core.reference",
    "sleep": "caddis.core.gate",
    "task": "caddis.core.task",
    "wait_for_input": "caddis.core.gate",
    "workflow": "caddis.core.workflow",
}

__all__ = [
    "Annotations",
    "Cache",
    "CronSchedule",
    "Deck",
    "ExecutionParameters",
    "FixedRate",
    "FlyteContext",
    "FlyteContextManager",
    "FlyteDirectory",
    "FlyteFile",
    "Labels",
    "LaunchPlan",
    "Promise",
    "PythonFunctionTask",
    "Resources",
    "Secret",
    "StructuredDataset",
    "TaskMetadata",
    "TaskPlugins",
    "WorkflowFailurePolicy",
    "approve",
    "conditional",
    "create_node",
    "current_context",
    "dynamic",
    "kwtypes",
    "map_task",
    "reference_launch_plan",
    "reference_task",
    "reference_workflow",
    "sleep",
    "task",
    "wait_for_input",
    "workflow",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'caddis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from caddis.core.condition import conditional
    from caddis.core.context import (
        ExecutionParameters,
        FlyteContext,
        FlyteContextManager,
        current_context,
    )
    from caddis.core.deck import Deck
    from caddis.core.dynamic import dynamic
    from caddis.core.gate import approve, sleep, wait_for_input
    from caddis.core.interface import kwtypes
    from caddis.core.launch_plan import Annotations, Labels, LaunchPlan
    from caddis.core.map_task import map_task
    from caddis.core.metadata import Cache, Secret, TaskMetadata
    from caddis.core.node import create_node
    from caddis.core.promise import Promise
    from caddis.core.reference import reference_launch_plan, reference_task, reference_workflow
    from caddis.core.resources import Resources
    from caddis.core.schedule import CronSchedule, FixedRate
    from caddis.core.task import PythonFunctionTask, TaskPlugins, task
    from caddis.core.workflow import WorkflowFailurePolicy, workflow
    from caddis.types.directory import FlyteDirectory
    from caddis.types.file import FlyteFile
    from caddis.types.structured import StructuredDataset
