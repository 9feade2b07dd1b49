"""Resource slots: CPU, memory and GPU of the machine, handed to attempts as they start.

An attempt that does not fit waits (its plugin reports it QUEUED / waiting for resources) so
the machine is never oversubscribed. Admission is first come, first served among waiters
that have asked before, so a large request is not starved by a stream of small ones.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from caddis_idl.core.v1 import tasks_pb2

_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")
_SUFFIX = {
    "": 1,
    "k": 10**3,
    "m": 10**6,  # memory "m" is ambiguous in Kubernetes (milli); for bytes we read mega
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def parse_cpu(value: str) -> float:
    """``"500m"`` -> 0.5, ``"2"`` -> 2.0."""
    value = value.strip()
    if value.endswith("m"):
        return float(value[:-1]) / 1000
    return float(value)


def parse_bytes(value: str) -> int:
    """``"512Mi"`` -> 536870912; plain numbers are bytes."""
    match = _QUANTITY.match(value)
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(f"not a memory quantity: {value!r} (use e.g. 512Mi, 2Gi)")
    return int(float(match.group(1)) * _SUFFIX[match.group(2)])


@dataclass(frozen=True, slots=True)
class Request:
    """What one attempt takes while it runs."""

    cpu: float
    memory: int
    gpu: int


def machine_memory() -> int:
    """Physical memory of the machine in bytes (a generous default when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def request_of(
    resources: tasks_pb2.Resources | None, default_cpu: float, default_memory: int
) -> Request:
    """The slots a task asks for: its requests, else its limits, else the defaults."""
    cpu, memory, gpu = default_cpu, default_memory, 0
    if resources is not None:
        names = tasks_pb2.ResourceName
        for entries in (resources.limits, resources.requests):  # requests win over limits
            for entry in entries:
                if not entry.value:
                    continue
                if entry.name == names.RESOURCE_NAME_CPU:
                    cpu = parse_cpu(entry.value)
                elif entry.name == names.RESOURCE_NAME_MEMORY:
                    memory = parse_bytes(entry.value)
                elif entry.name == names.RESOURCE_NAME_GPU:
                    gpu = int(float(entry.value))
    return Request(cpu, memory, gpu)


class Slots:
    """Thread-safe accounting of the machine's CPU, memory and GPU.

    Args:
        cpu: CPU slots.
        memory: Memory slots in bytes.
        gpu: GPU slots.
    """

    def __init__(self, cpu: float, memory: int, gpu: int) -> None:
        self.capacity = Request(cpu, memory, gpu)
        self._lock = threading.Lock()
        self._held: dict[str, Request] = {}
        self._used = [0.0, 0, 0]
        self._waiting: OrderedDict[str, Request] = OrderedDict()

    def _fits(self, req: Request) -> bool:
        cap = self.capacity
        used_cpu, used_mem, used_gpu = self._used
        # A request larger than the whole machine still runs, alone.
        idle = not self._held
        return idle or (
            used_cpu + req.cpu <= cap.cpu + 1e-9
            and used_mem + req.memory <= cap.memory
            and used_gpu + req.gpu <= cap.gpu
        )

    def try_acquire(self, key: str, req: Request) -> bool:
        """Take slots for ``key`` if they are free and no earlier waiter is ahead of it."""
        with self._lock:
            if key in self._held:
                return True
            if self._waiting and next(iter(self._waiting)) != key:
                # Earlier waiters first; but do not block behind one that can never fit
                # while others are running (it will get its turn when the machine drains).
                head = next(iter(self._waiting.values()))
                if self._fits(head):
                    self._waiting.setdefault(key, req)
                    return False
            if not self._fits(req):
                self._waiting.setdefault(key, req)
                return False
            self._waiting.pop(key, None)
            self._take(key, req)
            return True

    def force(self, key: str, req: Request) -> None:
        """Account for an attempt that already runs (adopted after a restart)."""
        with self._lock:
            self._waiting.pop(key, None)
            if key not in self._held:
                self._take(key, req)

    def _take(self, key: str, req: Request) -> None:
        self._held[key] = req
        self._used[0] += req.cpu
        self._used[1] += req.memory
        self._used[2] += req.gpu

    def release(self, key: str) -> None:
        """Give back ``key``'s slots (no-op when it holds none)."""
        with self._lock:
            self._waiting.pop(key, None)
            req = self._held.pop(key, None)
            if req is not None:
                self._used[0] -= req.cpu
                self._used[1] -= req.memory
                self._used[2] -= req.gpu

    def in_use(self) -> Request:
        """Slots currently held."""
        with self._lock:
            return Request(self._used[0], int(self._used[1]), int(self._used[2]))

    @property
    def waiting(self) -> int:
        """Attempts waiting for slots."""
        return len(self._waiting)


__all__ = ["Request", "Slots", "machine_memory", "parse_bytes", "parse_cpu", "request_of"]
