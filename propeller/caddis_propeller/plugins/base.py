"""The plugin interface and the runner that hands engine task attempts to plugins."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol, runtime_checkable

from caddis_idl.core.v1 import execution_pb2, tasks_pb2
from caddis_propeller.engine.interfaces import (
    Failed,
    Running,
    TaskAttempt,
    TaskStatus,
)

_log = logging.getLogger(__name__)

_SYSTEM = execution_pb2.ErrorKind.ERROR_KIND_SYSTEM


def system_error(code: str, message: str, *, recoverable: bool = True) -> Failed:
    """A :class:`Failed` status charged to the system retry budget."""
    return Failed(
        execution_pb2.ExecutionError(
            code=code, message=message, kind=_SYSTEM, recoverable=recoverable
        )
    )


class Plugin(Protocol):
    """Runs task attempts of some task types.

    Every method must be idempotent per attempt (same execution, node path and attempt):
    after a crash propeller calls ``start`` again for an attempt it may already have started,
    and a plugin must then re-attach rather than run it twice. ``handle`` is the JSON-safe
    string returned in :class:`Running`, persisted with the execution state.
    """

    name: str

    def start(self, attempt: TaskAttempt) -> TaskStatus:
        """Start, or re-attach to, an attempt."""
        ...

    def check(self, attempt: TaskAttempt, handle: str) -> TaskStatus:
        """Status of an attempt started earlier."""
        ...

    def abort(self, attempt: TaskAttempt, handle: str, reason: str) -> None:
        """Stop the attempt (best effort, idempotent)."""
        ...

    def finalize(self, attempt: TaskAttempt, handle: str) -> None:
        """Release what the attempt held once it is terminal (slots, files, processes)."""
        ...


@runtime_checkable
class BatchPlugin(Protocol):
    """A plugin that starts many array items at once (warm workers take them in batches)."""

    def start_batch(self, attempts: Sequence[TaskAttempt]) -> Sequence[TaskStatus]:
        """Start many attempts; one status per attempt, same order."""
        ...


@runtime_checkable
class TrackingPlugin(Protocol):
    """A plugin that knows which of its in-flight attempts need a check.

    See :class:`~caddis_propeller.engine.interfaces.CompletionTracker` for the contract.
    """

    def needs_check(self, handles: Collection[str]) -> Collection[str]:
        """Of ``handles`` (attempts in flight), those whose ``check`` may not say "running"."""
        ...


StartObserver = Callable[[TaskAttempt, float], None]


class PluginRunner:
    """The engine's ``TaskRunner`` (and ``BatchTaskRunner``, ``CompletionTracker``) over plugins.

    Args:
        plugins: Plugins by task type.
        default: The plugin for task types not in ``plugins``.
        on_terminal: Called with (attempt, status) when an attempt reaches a terminal status
            (metrics, timing split); must not raise.
    """

    def __init__(
        self,
        plugins: dict[str, Plugin],
        default: Plugin,
        on_terminal: Callable[[TaskAttempt, TaskStatus, str | None], None] | None = None,
    ) -> None:
        self._plugins = plugins
        self._default = default
        self._on_terminal = on_terminal
        self.start_latency: Callable[[float], None] | None = None

    def plugin_for(self, attempt: TaskAttempt) -> Plugin:
        """The plugin that runs ``attempt``'s task type."""
        return self._plugins.get(attempt.task.type, self._default)

    def _done(
        self, plugin: Plugin, attempt: TaskAttempt, status: TaskStatus, handle: str | None
    ) -> TaskStatus:
        if isinstance(status, Running):
            return status
        if handle is not None:
            try:
                plugin.finalize(attempt, handle)
            except Exception:
                _log.warning("finalize of %s failed", attempt.node_path, exc_info=True)
        if self._on_terminal is not None:
            self._on_terminal(attempt, status, handle)
        return status

    def start(self, attempt: TaskAttempt) -> TaskStatus:
        """Start an attempt through its plugin; plugin exceptions become system errors."""
        plugin = self.plugin_for(attempt)
        began = time.perf_counter()
        try:
            status = plugin.start(attempt)
        except Exception as exc:
            _log.warning(
                "plugin %s could not start %s", plugin.name, attempt.node_path, exc_info=True
            )
            return system_error("PluginStartFailed", f"{plugin.name}: {type(exc).__name__}: {exc}")
        if self.start_latency is not None:
            self.start_latency(time.perf_counter() - began)
        handle = status.handle if isinstance(status, Running) else None
        return self._done(plugin, attempt, status, handle)

    def start_batch(self, attempts: Sequence[TaskAttempt]) -> Sequence[TaskStatus]:
        """Start array items, through ``start_batch`` when their plugin has one."""
        if not attempts:
            return []
        plugin = self.plugin_for(attempts[0])
        if not isinstance(plugin, BatchPlugin) or any(
            self.plugin_for(a) is not plugin for a in attempts
        ):
            return [self.start(a) for a in attempts]
        try:
            statuses = plugin.start_batch(attempts)
        except Exception as exc:
            _log.warning("plugin %s could not start a batch", plugin.name, exc_info=True)
            err = system_error("PluginStartFailed", f"{plugin.name}: {type(exc).__name__}: {exc}")
            return [err for _ in attempts]
        return [
            self._done(plugin, a, s, s.handle if isinstance(s, Running) else None)
            for a, s in zip(attempts, statuses, strict=True)
        ]

    def needs_check(
        self, task: tasks_pb2.TaskTemplate, handles: Collection[str]
    ) -> Collection[str] | None:
        """In-flight array items that need a check, from the task's plugin (None: all of them)."""
        plugin = self._plugins.get(task.type, self._default)
        if not isinstance(plugin, TrackingPlugin):
            return None
        return plugin.needs_check(handles)

    def check(self, attempt: TaskAttempt, handle: str) -> TaskStatus:
        """Check an attempt; plugin exceptions keep it running (checked again next round)."""
        plugin = self.plugin_for(attempt)
        try:
            status = plugin.check(attempt, handle)
        except Exception:
            _log.warning(
                "plugin %s could not check %s", plugin.name, attempt.node_path, exc_info=True
            )
            return Running(handle)
        return self._done(plugin, attempt, status, handle)

    def abort(self, attempt: TaskAttempt, handle: str, reason: str) -> None:
        """Abort through the plugin, then finalize."""
        plugin = self.plugin_for(attempt)
        try:
            plugin.abort(attempt, handle, reason)
        finally:
            plugin.finalize(attempt, handle)


__all__ = ["BatchPlugin", "Plugin", "PluginRunner", "TrackingPlugin", "system_error"]
