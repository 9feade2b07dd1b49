"""Entry point of the ``caddis`` command.

Subcommands are imported only when they are invoked, so ``caddis --help`` and ``caddis run``
do not pay for the server dependencies that ``caddis serve`` needs.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

# name -> "module:attribute" of a click command. Each component adds its own line.
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("caddis._cli.run", "Run a task or workflow from a Python file (locally or remotely)."),
    "serve": ("caddis._cli.serve", "Start one of the services: admin, propeller, datacatalog."),
    "cache": ("caddis._cli.cache", "Inspect or clear the local execution cache."),
    "sandbox": ("caddis._cli.sandbox", "Start, inspect or stop all services on this machine."),
    "register": ("caddis._cli.register", "Register tasks, workflows and launch plans with admin."),
    "get": ("caddis._cli.get", "Show executions and entities registered with admin."),
    "terminate": ("caddis._cli.executions", "Terminate a running execution."),
    "relaunch": ("caddis._cli.executions", "Relaunch an execution with the same inputs."),
    "recover": ("caddis._cli.executions", "Recover a failed execution, reusing what succeeded."),
    "launchplan": ("caddis._cli.launchplan", "Activate or deactivate launch plans."),
}


class _LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (module, _) in _SUBCOMMANDS.items() if _exists(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _SUBCOMMANDS.get(cmd_name)
        if entry is None or not _exists(entry[0]):
            return None
        module = importlib.import_module(entry[0])
        command: Any = getattr(module, cmd_name.replace("-", "_"))
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above, without importing every subcommand for --help.
        rows = [(name, _SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@click.group(cls=_LazyGroup)
@click.version_option(package_name="caddis")
def cli() -> None:
    """caddis: typed, versioned, memoized workflows for data and machine learning."""


def main() -> None:
    """Run the ``caddis`` command line."""
    cli()
