"""Compute resources a task asks for (``Resources``) and their IDL form."""

from __future__ import annotations

from dataclasses import dataclass, fields

from caddis_idl.core.v1 import tasks_pb2

__all__ = ["Resources", "resources_to_idl"]

_ResourceValue = str | int | float | None

# Field of Resources -> IDL resource name. The order fixes the order of entries in the IDL so
# that serializing the same task twice yields byte-identical templates (and digests).
_IDL_NAMES: dict[str, int] = {
    "cpu": tasks_pb2.RESOURCE_NAME_CPU,
    "gpu": tasks_pb2.RESOURCE_NAME_GPU,
    "mem": tasks_pb2.RESOURCE_NAME_MEMORY,
    "ephemeral_storage": tasks_pb2.RESOURCE_NAME_EPHEMERAL_STORAGE,
}


@dataclass(frozen=True)
class Resources:
    """Amounts of compute for a task, as requests or limits.

    Values use Kubernetes quantity syntax: ``cpu="500m"`` or ``cpu=2``, ``mem="600Mi"``,
    ``gpu=1``, ``ephemeral_storage="10Gi"``. Unset fields are left to the platform default.

    Attributes:
        cpu: CPU cores.
        mem: Memory.
        gpu: Number of GPUs.
        ephemeral_storage: Local disk.
    """

    cpu: _ResourceValue = None
    mem: _ResourceValue = None
    gpu: _ResourceValue = None
    ephemeral_storage: _ResourceValue = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            # bool is an int subclass; `cpu=True` is a mistake, not one core.
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ValueError(
                    f"Resources.{f.name} must be a string like '500m' / '600Mi' or a number, "
                    f"got {value!r} of type {type(value).__name__}"
                )
            if isinstance(value, str) and not value.strip():
                raise ValueError(f"Resources.{f.name} must not be an empty string")

    def entries(self) -> list[tasks_pb2.ResourceEntry]:
        """The set fields as IDL resource entries, in a fixed order."""
        out = []
        for name, idl_name in _IDL_NAMES.items():
            value = getattr(self, name)
            if value is not None:
                out.append(tasks_pb2.ResourceEntry(name=idl_name, value=str(value)))  # type: ignore[arg-type]
        return out

    def is_empty(self) -> bool:
        """True when no field is set."""
        return all(getattr(self, f.name) is None for f in fields(self))


def resources_to_idl(
    requests: Resources | None, limits: Resources | None
) -> tasks_pb2.Resources | None:
    """Build the IDL ``Resources`` from requests and limits; None when both are empty."""
    req = requests.entries() if requests is not None else []
    lim = limits.entries() if limits is not None else []
    if not req and not lim:
        return None
    return tasks_pb2.Resources(requests=req, limits=lim)
