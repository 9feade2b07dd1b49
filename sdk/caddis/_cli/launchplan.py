"""``caddis launchplan activate|deactivate NAME VERSION``."""

from __future__ import annotations

from typing import Any

import click

from caddis.remote._cli_support import connect, remote_options, reports_remote_errors

__all__ = ["launchplan"]


@click.group("launchplan")
def launchplan() -> None:
    """Activate or deactivate launch plans (an active launch plan's schedule runs)."""


@launchplan.command("activate")
@click.argument("name")
@click.argument("version")
@remote_options
@reports_remote_errors
def activate(name: str, version: str, **options: Any) -> None:
    """Activate launch plan NAME at VERSION (deactivating its other versions)."""
    with connect(options) as remote:
        remote.set_launch_plan_state(name, version, True)
    click.echo(f"activated launch plan {name}@{version}")


@launchplan.command("deactivate")
@click.argument("name")
@click.argument("version")
@remote_options
@reports_remote_errors
def deactivate(name: str, version: str, **options: Any) -> None:
    """Deactivate launch plan NAME at VERSION (its schedule stops)."""
    with connect(options) as remote:
        remote.set_launch_plan_state(name, version, False)
    click.echo(f"deactivated launch plan {name}@{version}")
