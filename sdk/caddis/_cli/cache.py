"""``caddis cache info`` / ``caddis cache clear``: the local execution cache."""

from __future__ import annotations

import click

__all__ = ["cache"]


@click.group("cache")
def cache() -> None:
    """Inspect or clear the local execution cache (a SQLite file in the user's cache dir)."""


@cache.command("info")
def info() -> None:
    """Show where the local cache is, how many results it holds and for which tasks."""
    from caddis._local.cache import LocalCache

    lc = LocalCache()
    data = lc.info()
    lc.close()
    click.echo(f"location: {data['path']}")
    click.echo(f"entries:  {data['entries']}")
    click.echo(f"size:     {data['bytes']} bytes")
    for name, count in data["tasks"]:
        click.echo(f"  {name}: {count}")


@cache.command("clear")
@click.option("--task", "task_name", default=None, help="Only clear results of this task name.")
def clear(task_name: str | None) -> None:
    """Delete cached results (all of them, or one task's)."""
    from caddis._local.cache import LocalCache

    lc = LocalCache()
    n = lc.clear(task_name)
    lc.close()
    click.echo(f"removed {n} cached result(s) from {lc.path}")
