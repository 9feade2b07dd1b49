"""Options and helpers shared by the remote CLI commands (register, get, terminate, ...)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def remote_options(fn: F) -> F:
    """Add ``--endpoint``, ``--project``, ``--domain``, ``--config`` and ``--insecure/--tls``."""
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="Config file with a `remote` section (default: $CADDIS_CONFIG, else the "
            "sandbox's client config).",
        ),
        click.option(
            "--endpoint",
            default=None,
            help="admin's host:port (default: config / $CADDIS_REMOTE_ENDPOINT).",
        ),
        click.option("--project", "-p", default=None, help="Project (default: config)."),
        click.option("--domain", "-d", default=None, help="Domain (default: config)."),
        click.option(
            "--insecure/--tls", default=None, help="Plain-text gRPC or TLS (default: config)."
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def connect(kwargs: dict[str, Any]) -> Any:
    """Pop the remote options out of ``kwargs`` and open a :class:`CaddisRemote`."""
    from caddis.remote import CaddisRemote

    return CaddisRemote(
        kwargs.pop("endpoint", None),
        kwargs.pop("project", None),
        kwargs.pop("domain", None),
        insecure=kwargs.pop("insecure", None),
        config_file=kwargs.pop("config_file", None),
    )


def reports_remote_errors(fn: F) -> F:
    """Turn :class:`caddis.remote.RemoteError` into a one-line CLI error (exit status 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from caddis.remote import RemoteError

        try:
            return fn(*args, **kwargs)
        except RemoteError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


__all__ = ["connect", "remote_options", "reports_remote_errors"]
