"""``caddis terminate|relaunch|recover NAME`` and the remote path of ``caddis run --remote``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from caddis.remote._cli_support import connect, remote_options, reports_remote_errors

__all__ = ["recover", "relaunch", "run_remote", "terminate"]


@click.command("terminate")
@click.argument("name")
@click.option("--cause", default="terminated from the command line", help="Why.")
@remote_options
@reports_remote_errors
def terminate(name: str, cause: str, **options: Any) -> None:
    """Terminate running execution NAME."""
    with connect(options) as remote:
        remote.terminate(name, cause=cause)
    click.echo(f"terminating execution {name}")


@click.command("relaunch")
@click.argument("name")
@click.option("--overwrite-cache", is_flag=True, help="Rerun cached tasks.")
@remote_options
@reports_remote_errors
def relaunch(name: str, overwrite_cache: bool, **options: Any) -> None:
    """Launch execution NAME again with the same launch plan version and inputs."""
    with connect(options) as remote:
        execution = remote.relaunch(name, overwrite_cache=overwrite_cache)
    click.echo(f"relaunched {name} as {execution.name}")


@click.command("recover")
@click.argument("name")
@remote_options
@reports_remote_errors
def recover(name: str, **options: Any) -> None:
    """Recover failed execution NAME: nodes that succeeded are reused, the rest rerun."""
    with connect(options) as remote:
        execution = remote.recover(name)
    click.echo(f"recovering {name} as {execution.name}")


def run_remote(
    entity: Any,
    inputs: dict[str, Any],
    *,
    wait: bool = False,
    follow: bool = True,
    config_file: str | None = None,
    endpoint: str | None = None,
    project: str | None = None,
    domain: str | None = None,
) -> None:
    """The remote path of ``caddis run --remote``: register, launch, follow, print outputs.

    Prints the execution's name at once; with ``follow`` prints node phase changes
    (duration, cache status) until the execution ends; with ``wait`` prints the outputs as
    JSON at the end and fails (exit status 1) when the execution did not succeed.

    Args:
        entity: The local task, workflow or launch plan.
        inputs: Inputs as Python values.
        wait: Wait for the end and print the outputs.
        follow: Show node progress while waiting.
        config_file: Config file with a ``remote`` section.
        endpoint: admin's ``host:port`` (overrides config).
        project: Project (overrides config).
        domain: Domain (overrides config).

    Raises:
        click.ClickException: Admin is unreachable, registration failed, or the execution
            failed while waiting.
    """
    from caddis.remote import RemoteError

    options: dict[str, Any] = {
        "config_file": config_file,
        "endpoint": endpoint,
        "project": project,
        "domain": domain,
    }
    try:
        with connect(options) as remote:
            execution = remote.execute(entity, inputs)
            click.echo(
                f"launched {execution.id.project}/{execution.id.domain}/{execution.name} "
                f"({remote.config.endpoint}); see it with `caddis get execution {execution.name}`"
            )
            if not (wait or follow):
                return
            if follow:
                _live_view(remote, execution)
            else:
                remote.wait(execution)
            click.echo(f"execution {execution.name} {execution.phase}")
            if not execution.is_successful:
                raise click.ClickException(
                    f"execution {execution.name} ended {execution.phase}: {execution.error}"
                )
            if wait:
                outputs = remote.fetch_outputs(execution)
                click.echo(json.dumps(outputs, indent=2, default=repr))
    except RemoteError as exc:
        raise click.ClickException(str(exc)) from exc


def _live_view(remote: Any, execution: Any) -> None:
    """Print each node's phase changes (with duration and cache status) as they happen."""
    from caddis.remote._render import fmt_duration

    last: dict[str, str] = {}
    for current in remote.follow(execution, poll_interval=0.5):
        for tree in remote.node_executions(current):
            for depth, node in tree.walk():
                state = f"{node.phase}/{node.cache_status}"
                if last.get(node.node_id) == state:
                    continue
                last[node.node_id] = state
                extra = []
                if node.duration is not None and node.phase not in ("QUEUED", "RUNNING"):
                    extra.append(fmt_duration(node.duration))
                if node.cache_status and node.cache_status != "DISABLED":
                    extra.append(f"cache {node.cache_status}")
                if node.error:
                    extra.append(node.error.strip().splitlines()[0])
                suffix = f"  ({', '.join(extra)})" if extra else ""
                click.echo(f"  {'  ' * depth}{node.node_id:<24} {node.phase}{suffix}")
        sys.stdout.flush()
