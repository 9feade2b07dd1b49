"""Launch plans: a workflow with some inputs defaulted or fixed, a schedule and labels.

A launch plan is what starts executions. ``LaunchPlan.get_or_create(wf)`` is the default
launch plan of a workflow (same name, the workflow's own defaults); named launch plans fix
or default inputs and may run on a schedule. Calling a launch plan inside a workflow records
a node that starts a separate child execution.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from caddis.core._types import to_literal, type_name
from caddis.core.base import Entity
from caddis.core.errors import CompilationError
from caddis.core.interface import Interface
from caddis.core.node import Node
from caddis.core.schedule import CronSchedule, FixedRate
from caddis.core.settings import SerializationSettings, current_serialization_settings
from caddis_idl.admin.v1 import common_pb2, launch_plan_pb2
from caddis_idl.core.v1 import identifier_pb2, interface_pb2, literals_pb2, workflow_pb2

__all__ = ["Annotations", "Labels", "LaunchPlan"]


@dataclass(frozen=True)
class Labels:
    """Key/value labels attached to executions (flytekit's ``Labels``).

    Attributes:
        values: The labels.
    """

    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Annotations:
    """Key/value annotations attached to executions (flytekit's ``Annotations``).

    Attributes:
        values: The annotations.
    """

    values: dict[str, str] = field(default_factory=dict)


def _kv(value: Any, what: str, owner: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Labels | Annotations):
        value = value.values
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise CompilationError(f"{owner}: {what} must map str to str, got {value!r}")
    return dict(value)


class LaunchPlan(Entity):
    """A named way to launch a workflow (flytekit's ``LaunchPlan``).

    Attributes:
        workflow: The workflow launched.
        default_inputs: Input name to default value (the workflow's defaults, overlaid).
        fixed_inputs: Input name to value that callers cannot change.
        schedule: When to launch automatically, if ever.
        labels: Labels of executions.
        annotations: Annotations of executions.
        max_parallelism: Most nodes of an execution running at once.
    """

    kind = "launch plan"
    resource_type = identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN
    # The launched execution applies the launch plan's own defaults.
    binds_defaults = False

    _CACHE: ClassVar[dict[str, LaunchPlan]] = {}

    def __init__(
        self,
        name: str,
        workflow: Any,
        *,
        default_inputs: Mapping[str, Any] | None = None,
        fixed_inputs: Mapping[str, Any] | None = None,
        schedule: CronSchedule | FixedRate | None = None,
        labels: Labels | Mapping[str, str] | None = None,
        annotations: Annotations | Mapping[str, str] | None = None,
        max_parallelism: int | None = None,
        notifications: Any = None,
        raw_output_data_config: str | None = None,
        overwrite_cache: bool | None = None,
        interruptible: bool | None = None,
    ) -> None:
        from caddis.core.workflow import WorkflowBase

        owner = f"launch plan '{name}'"
        if not isinstance(workflow, WorkflowBase):
            raise CompilationError(f"{owner}: launches a workflow, got {workflow!r}")
        wf_iface: Interface = workflow.python_interface
        default_inputs = dict(default_inputs or {})
        fixed_inputs = dict(fixed_inputs or {})
        for what, given in (("default_inputs", default_inputs), ("fixed_inputs", fixed_inputs)):
            unknown = [k for k in given if k not in wf_iface.inputs]
            if unknown:
                raise CompilationError(
                    f"{owner}: {what} names {', '.join(repr(u) for u in unknown)}, not an "
                    f"input of {workflow.describe()} (inputs: "
                    f"{', '.join(wf_iface.inputs) or 'none'})"
                )
        both = sorted(set(default_inputs) & set(fixed_inputs))
        if both:
            raise CompilationError(
                f"{owner}: {', '.join(both)} cannot be both a default and a fixed input"
            )
        self.fixed_literals = {
            k: self._literal(owner, wf_iface, k, v) for k, v in fixed_inputs.items()
        }
        defaults = {k: v for k, v in wf_iface.defaults.items() if k not in fixed_inputs}
        defaults.update(default_inputs)
        self.default_literals = {
            k: self._literal(owner, wf_iface, k, v) for k, v in defaults.items()
        }
        iface = wf_iface.remove_inputs(fixed_inputs)
        iface.defaults = defaults
        super().__init__(name, iface)
        self.workflow = workflow
        self.default_inputs = defaults
        self.fixed_inputs = fixed_inputs
        self.schedule = self._check_schedule(owner, wf_iface, schedule, fixed_inputs)
        self.labels = _kv(labels, "labels", owner)
        self.annotations = _kv(annotations, "annotations", owner)
        if max_parallelism is not None and (
            isinstance(max_parallelism, bool)
            or not isinstance(max_parallelism, int)
            or max_parallelism < 0
        ):
            raise CompilationError(
                f"{owner}: max_parallelism must be an int >= 0, got {max_parallelism!r}"
            )
        self.max_parallelism = max_parallelism
        self.notifications = list(notifications or [])
        self.raw_output_data_config = raw_output_data_config
        self.overwrite_cache = overwrite_cache
        self.interruptible = interruptible

    @staticmethod
    def _literal(owner: str, iface: Interface, name: str, value: Any) -> literals_pb2.Literal:
        py_type = iface.inputs[name]
        try:
            return to_literal(value, py_type, iface.input_literal_types[name])
        except Exception as exc:
            raise CompilationError(
                f"{owner}: input '{name}' expects {type_name(py_type)}, got {value!r}: {exc}"
            ) from exc

    @staticmethod
    def _check_schedule(
        owner: str, iface: Interface, schedule: Any, fixed: Mapping[str, Any]
    ) -> CronSchedule | FixedRate | None:
        if schedule is None:
            return None
        if not isinstance(schedule, CronSchedule | FixedRate):
            raise CompilationError(
                f"{owner}: schedule must be a CronSchedule or FixedRate, got {schedule!r}"
            )
        arg = schedule.kickoff_time_input_arg
        if arg:
            if arg not in iface.inputs:
                raise CompilationError(
                    f"{owner}: kickoff_time_input_arg '{arg}' is not an input of the workflow"
                )
            if iface.inputs[arg] is not datetime.datetime:
                raise CompilationError(
                    f"{owner}: kickoff_time_input_arg '{arg}' must be a datetime input, it is "
                    f"{type_name(iface.inputs[arg])}"
                )
            if arg in fixed:
                raise CompilationError(
                    f"{owner}: kickoff_time_input_arg '{arg}' cannot be a fixed input"
                )
        return schedule

    # ------------------------------------------------------------------ creation
    def _signature(self) -> tuple[Any, ...]:
        def lits(m: Mapping[str, literals_pb2.Literal]) -> tuple[tuple[str, bytes], ...]:
            return tuple(sorted((k, v.SerializeToString(deterministic=True)) for k, v in m.items()))

        return (
            self.workflow.name,
            lits(self.default_literals),
            lits(self.fixed_literals),
            self.schedule,
            tuple(sorted(self.labels.items())),
            tuple(sorted(self.annotations.items())),
            self.max_parallelism,
            self.raw_output_data_config,
            self.overwrite_cache,
            self.interruptible,
        )

    @classmethod
    def get_default_launch_plan(cls, ctx: Any, workflow: Any) -> LaunchPlan:
        """The default launch plan of ``workflow`` (flytekit's signature; ``ctx`` unused)."""
        return cls.get_or_create(workflow)

    @classmethod
    def get_or_create(
        cls,
        workflow: Any,
        name: str | None = None,
        default_inputs: Mapping[str, Any] | None = None,
        fixed_inputs: Mapping[str, Any] | None = None,
        schedule: CronSchedule | FixedRate | None = None,
        notifications: Any = None,
        labels: Labels | Mapping[str, str] | None = None,
        annotations: Annotations | Mapping[str, str] | None = None,
        raw_output_data_config: str | None = None,
        max_parallelism: int | None = None,
        overwrite_cache: bool | None = None,
        interruptible: bool | None = None,
    ) -> LaunchPlan:
        """Create a launch plan, or return the one created earlier with the same name.

        Args:
            workflow: The workflow to launch.
            name: Launch plan name; None gives the workflow's default launch plan (which
                takes no other option).
            default_inputs: Defaults callers may override.
            fixed_inputs: Values callers cannot change.
            schedule: ``CronSchedule`` or ``FixedRate``.
            notifications: Notifications on execution phases.
            labels: Labels of executions.
            annotations: Annotations of executions.
            raw_output_data_config: Prefix for the raw outputs of executions.
            max_parallelism: Most nodes of an execution running at once.
            overwrite_cache: Recompute cached results.
            interruptible: Default interruptible of the executions' nodes.

        Raises:
            CompilationError: A launch plan of that name exists with different settings,
                options are given without a name, or an input is unknown or mistyped.
        """
        options = {
            "default_inputs": default_inputs,
            "fixed_inputs": fixed_inputs,
            "schedule": schedule,
            "notifications": notifications,
            "labels": labels,
            "annotations": annotations,
            "raw_output_data_config": raw_output_data_config,
            "max_parallelism": max_parallelism,
            "overwrite_cache": overwrite_cache,
            "interruptible": interruptible,
        }
        if name is None:
            given = sorted(k for k, v in options.items() if v is not None)
            if given:
                raise CompilationError(
                    f"the default launch plan of {workflow.describe()} takes no options "
                    f"({', '.join(given)}); give the launch plan a name"
                )
            name = workflow.name
        assert name is not None
        candidate = cls(name, workflow, **options)
        existing = cls._CACHE.get(name)
        if existing is not None:
            if existing._signature() != candidate._signature():
                raise CompilationError(
                    f"launch plan '{name}' already exists with different settings; use "
                    f"another name (launch plans are immutable once created)"
                )
            return existing
        cls._CACHE[name] = candidate
        return candidate

    # ------------------------------------------------------------------ IDL
    def parameters(self) -> interface_pb2.ParameterMap:
        """The launch inputs: required, or with their default."""
        pm = interface_pb2.ParameterMap()
        for name in self.python_interface.inputs:
            param = pm.parameters[name]
            param.var.type.CopyFrom(self.python_interface.input_literal_types[name])
            param.var.description = self.python_interface.input_descriptions.get(name, "")
            if name in self.default_literals:
                param.default.CopyFrom(self.default_literals[name])
            else:
                param.required = True
        return pm

    def fixed_inputs_literal_map(self) -> literals_pb2.LiteralMap:
        """The fixed inputs as literals."""
        return literals_pb2.LiteralMap(literals=self.fixed_literals)

    def to_spec(
        self, settings: SerializationSettings | None = None
    ) -> launch_plan_pb2.LaunchPlanSpec:
        """The admin ``LaunchPlanSpec``."""
        settings = settings or current_serialization_settings()
        spec = launch_plan_pb2.LaunchPlanSpec(
            workflow_id=self.workflow.id(settings),
            default_inputs=self.parameters(),
            fixed_inputs=self.fixed_inputs_literal_map(),
            labels=common_pb2.Labels(values=self.labels),
            annotations=common_pb2.Annotations(values=self.annotations),
            max_parallelism=self.max_parallelism or 0,
            overwrite_cache=bool(self.overwrite_cache),
        )
        if self.schedule is not None:
            spec.schedule.CopyFrom(self.schedule.to_idl())
        if self.raw_output_data_config:
            spec.raw_output_data_config.output_location_prefix = self.raw_output_data_config
        if self.interruptible is not None:
            spec.interruptible = self.interruptible
        for notification in self.notifications:
            spec.notifications.append(notification.to_idl())
        return spec

    def to_idl(self, settings: SerializationSettings | None = None) -> launch_plan_pb2.LaunchPlan:
        """The admin ``LaunchPlan`` (id and spec) to register."""
        settings = settings or current_serialization_settings()
        return launch_plan_pb2.LaunchPlan(id=self.id(settings), spec=self.to_spec(settings))

    def to_template(
        self, settings: SerializationSettings | None = None
    ) -> workflow_pb2.LaunchPlanTemplate:
        """The compiler's ``LaunchPlanTemplate`` (interface without the fixed inputs)."""
        settings = settings or current_serialization_settings()
        return workflow_pb2.LaunchPlanTemplate(
            id=self.id(settings),
            interface=self.python_interface.typed_interface(),
            fixed_inputs=self.fixed_inputs_literal_map(),
        )

    def dependencies(self) -> list[Any]:
        """The launched workflow."""
        return [self.workflow]

    def fill_node_target(
        self, out: workflow_pb2.Node, node: Node, settings: SerializationSettings
    ) -> None:
        """Make ``out`` a launch-plan node (a child execution)."""
        out.workflow_node.launchplan_ref.CopyFrom(self.id(settings))

    def _local_execute(self, **inputs: Any) -> Any:
        """Run the workflow locally with the launch plan's defaults and fixed inputs."""
        merged = {**self.default_inputs, **inputs, **self.fixed_inputs}
        return self.workflow(**merged)
