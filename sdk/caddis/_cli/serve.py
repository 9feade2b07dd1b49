"""``caddis serve <admin|propeller|datacatalog> [--config FILE]``: run one service.

Each service exposes ``<package>.server.main(config_path)``; it is imported only when chosen,
so the command costs nothing for services that are not installed or not asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

# service name -> module with a main(config_path) function
SERVICES: dict[str, str] = {
    "admin": "caddis_admin.server",
    "propeller": "caddis_propeller.server",
    "datacatalog": "caddis_datacatalog.server",
}


@click.command(name="serve")
@click.argument("service", type=click.Choice(sorted(SERVICES)))
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML or TOML config file (default: $CADDIS_CONFIG). CADDIS_* variables override it.",
)
def serve(service: str, config_path: Path | None) -> None:
    """Start SERVICE in the foreground and print the address it listens on.

    Stops gracefully on Ctrl-C or SIGTERM.
    """
    module_name = SERVICES[service]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"the {service} service is not available ({exc}); "
            "install the server extra: pip install 'caddis[server]'"
        ) from exc
    main: Callable[[Any], None] = module.main
    main(config_path)


__all__ = ["SERVICES", "serve"]
