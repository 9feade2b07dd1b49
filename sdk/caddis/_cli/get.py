"""``caddis get executions`` and ``caddis get execution NAME``."""

from __future__ import annotations

from typing import Any

import click

from caddis.remote._cli_support import connect, remote_options, reports_remote_errors

__all__ = ["get"]


@click.group("get")
def get() -> None:
    """Show executions registered with admin."""


@get.command("executions")
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
@remote_options
@reports_remote_errors
def get_executions(limit: int, **options: Any) -> None:
    """List the newest executions of the project and domain."""
    from caddis.remote._render import execution_table

    with connect(options) as remote:
        executions = remote.list_executions(limit=limit)
    if not executions:
        click.echo(f"no executions in {remote.project}/{remote.domain}")
        return
    click.echo(execution_table(executions))


@get.command("execution")
@click.argument("name")
@click.option("--outputs/--no-outputs", default=True, help="Print the outputs of a success.")
@remote_options
@reports_remote_errors
def get_execution(name: str, outputs: bool, **options: Any) -> None:
    """Show execution NAME: phase, node tree (with dynamic and array children), errors."""
    from caddis.remote._render import execution_summary, node_tree_lines

    with connect(options) as remote:
        execution = remote.fetch_execution(name)
        for line in execution_summary(execution):
            click.echo(line)
        trees = remote.node_executions(execution)
        if trees:
            click.echo("")
            for line in node_tree_lines(trees):
                click.echo(line)
        if outputs and execution.is_successful:
            click.echo("")
            click.echo("outputs:")
            for key, value in remote.fetch_outputs(execution).items():
                click.echo(f"  {key} = {value!r}")
