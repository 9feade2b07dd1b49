"""``caddis sandbox start|status|stop``: all services on this machine, in the background."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["sandbox"]


@click.group("sandbox")
def sandbox() -> None:
    """Start, inspect or stop admin, propeller and datacatalog on this machine."""


@sandbox.command("start")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Sandbox directory (default: $CADDIS_SANDBOX_DIR or ~/.caddis/sandbox).",
)
@click.option("--db", default="", help="postgresql://user:pw@host/name (default: SQLite files).")
@click.option("--storage", default="", help="s3://bucket/prefix (default: a local directory).")
@click.option("--s3-endpoint", default="", envvar="CADDIS_STORAGE_ENDPOINT", help="S3 host:port.")
@click.option("--s3-access-key", default="", envvar="CADDIS_STORAGE_ACCESS_KEY", help="S3 key.")
@click.option("--s3-secret-key", default="", envvar="CADDIS_STORAGE_SECRET_KEY", help="S3 secret.")
@click.option("--admin-port", default=30080, show_default=True, help="admin's gRPC port.")
@click.option("--propeller-port", default=30088, show_default=True, help="propeller's port.")
@click.option("--datacatalog-port", default=30089, show_default=True, help="datacatalog's port.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to become healthy.")
def start(
    state_dir: Path | None,
    db: str,
    storage: str,
    s3_endpoint: str,
    s3_access_key: str,
    s3_secret_key: str,
    admin_port: int,
    propeller_port: int,
    datacatalog_port: int,
    timeout: float,
) -> None:
    """Start the services in the background and wait until they are healthy.

    Metrics of each service listen on its port + 10.
    """
    from caddis._sandbox import processes as p

    opts = p.SandboxOptions(
        state_dir=(state_dir or p.default_state_dir()).expanduser().absolute(),
        db=db,
        storage=storage,
        s3_endpoint=s3_endpoint,
        s3_access_key=s3_access_key,
        s3_secret_key=s3_secret_key,
        ports={"admin": admin_port, "propeller": propeller_port, "datacatalog": datacatalog_port},
    )
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        started = p.start(opts, timeout=timeout, echo=click.echo)
    except p.SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    if "admin" in started:
        click.echo("")
        click.echo(f"admin endpoint: {started['admin'].address}")
        click.echo(f"client config:  {opts.state_dir / 'client.yaml'} (found automatically)")
        click.echo("try: caddis run --remote FILE.py WORKFLOW --INPUT VALUE --wait")


@sandbox.command("status")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Sandbox directory (default: $CADDIS_SANDBOX_DIR or ~/.caddis/sandbox).",
)
def status(state_dir: Path | None) -> None:
    """Show each service's pid, address and health."""
    from caddis._sandbox import processes as p

    states = p.status((state_dir or p.default_state_dir()).expanduser())
    if not states:
        click.echo("the sandbox is not running (`caddis sandbox start`)")
        raise SystemExit(1)
    for name, (state, health) in states.items():
        click.echo(f"{name:<12} {health:<12} pid {state.pid:<8} {state.address}  log {state.log}")
    if any(h != "SERVING" for _, h in states.values()):
        raise SystemExit(1)


@sandbox.command("stop")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Sandbox directory (default: $CADDIS_SANDBOX_DIR or ~/.caddis/sandbox).",
)
def stop(state_dir: Path | None) -> None:
    """Stop the services started by `caddis sandbox start`."""
    from caddis._sandbox import processes as p

    if not p.stop((state_dir or p.default_state_dir()).expanduser(), echo=click.echo):
        click.echo("nothing was running")
