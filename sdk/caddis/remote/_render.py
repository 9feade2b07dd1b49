"""Text views of executions and node trees for the CLI (plain text, no terminal library)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from caddis.remote._types import NodeTree, RemoteExecution, id_str


def fmt_duration(value: dt.timedelta | None) -> str:
    """``1.23s``, ``2m03s`` or ``-`` when unknown."""
    if value is None:
        return "-"
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def execution_duration(execution: RemoteExecution) -> dt.timedelta | None:
    """How long the execution has run, when admin reports it."""
    closure = execution.proto.closure
    if closure.HasField("duration"):
        return closure.duration.ToTimedelta()
    return None


def execution_table(executions: Iterable[RemoteExecution]) -> str:
    """One line per execution: name, phase, what it runs, when it started, duration."""
    rows = [("NAME", "PHASE", "LAUNCHED", "CREATED", "DURATION")]
    for e in executions:
        closure = e.proto.closure
        target = closure.launch_plan_id if closure.launch_plan_id.name else closure.workflow_id
        if not target.name:
            spec = e.proto.spec
            target = spec.launch_plan if spec.HasField("launch_plan") else spec.workflow
        created = (
            closure.created_at.ToDatetime(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            if closure.HasField("created_at")
            else "-"
        )
        rows.append(
            (
                e.name,
                e.phase,
                f"{target.name}@{target.version}" if target.name else "-",
                created,
                fmt_duration(execution_duration(e)),
            )
        )
    return _table(rows)


def node_tree_lines(trees: Iterable[NodeTree]) -> list[str]:
    """The node tree, indented by depth: id, phase, duration, cache status, error."""
    rows = [("NODE", "PHASE", "DURATION", "CACHE", "KIND")]
    errors: list[tuple[int, str]] = []
    for tree in trees:
        for depth, node in tree.walk():
            meta = node.node.metadata
            kind = (
                "dynamic"
                if meta.is_dynamic
                else "array"
                if meta.is_array
                else "parent"
                if meta.is_parent_node
                else ""
            )
            label = meta.node_name or meta.spec_node_id
            name = node.node_id + (f" ({label})" if label and label != node.node_id else "")
            rows.append(
                (
                    "  " * depth + name,
                    node.phase,
                    fmt_duration(node.duration),
                    node.cache_status or "-",
                    kind or "-",
                )
            )
            if node.error:
                errors.append((len(rows) - 1, node.error))
    lines = _table(rows).splitlines()
    # Errors go right under their node, so a failure reads in place.
    for index, message in reversed(errors):
        first = message.strip().splitlines()[0] if message.strip() else message
        lines.insert(index + 1, f"    error: {first}")
    return lines


def execution_summary(execution: RemoteExecution) -> list[str]:
    """Header lines of ``caddis get execution``."""
    closure = execution.proto.closure
    lines = [
        f"execution  {execution.id.project}/{execution.id.domain}/{execution.name}",
        f"phase      {execution.phase}",
    ]
    if closure.workflow_id.name:
        lines.append(f"workflow   {id_str(closure.workflow_id)}")
    if closure.launch_plan_id.name:
        lines.append(f"launchplan {id_str(closure.launch_plan_id)}")
    lines.append(f"duration   {fmt_duration(execution_duration(execution))}")
    if closure.queued_reason:
        lines.append(f"queued     {closure.queued_reason}")
    if execution.error:
        lines.append(f"error      {execution.error}")
    return lines


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


__all__ = [
    "execution_duration",
    "execution_summary",
    "execution_table",
    "fmt_duration",
    "node_tree_lines",
]
