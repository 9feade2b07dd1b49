"""caddis sandbox start/status/stop with real service processes (SQLite, local blob dir)."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from caddis._cli.main import cli
from caddis._sandbox import processes as p
from tests.support import free_port


def test_sandbox_start_status_stop(tmp_path: Path) -> None:
    state = tmp_path / "sandbox"
    ports = {s: free_port() for s in p.SERVICES}
    args = [f"--{s}-port={ports[s]}" for s in p.SERVICES]
    runner = CliRunner()
    try:
        r = runner.invoke(cli, ["sandbox", "start", "--state-dir", str(state), *args])
        assert r.exit_code == 0, r.output
        assert f"admin endpoint: 127.0.0.1:{ports['admin']}" in r.output
        assert f"datacatalog: serving on 127.0.0.1:{ports['datacatalog']}" in r.output
        client = yaml.safe_load((state / "client.yaml").read_text())
        assert client["remote"]["endpoint"] == f"127.0.0.1:{ports['admin']}"
        assert (state / "db" / "admin.db").exists()

        r = runner.invoke(cli, ["sandbox", "status", "--state-dir", str(state)])
        assert r.exit_code == 0, r.output
        assert "admin" in r.output and "SERVING" in r.output

        # Starting twice is refused, naming the running services.
        r = runner.invoke(cli, ["sandbox", "start", "--state-dir", str(state), *args])
        assert r.exit_code == 1 and "already running" in r.output

        # The SDK finds the sandbox through its client config.
        from caddis.remote import CaddisRemote

        with CaddisRemote(config_file=state / "client.yaml") as remote:
            assert remote.list_executions() == []
    finally:
        r = runner.invoke(cli, ["sandbox", "stop", "--state-dir", str(state)])
    assert r.exit_code == 0 and "admin: stopped" in r.output, r.output
    assert p.read_state(state) == {}
    r = runner.invoke(cli, ["sandbox", "status", "--state-dir", str(state)])
    assert r.exit_code == 1 and "not running" in r.output


def test_sandbox_reports_a_service_that_dies(tmp_path: Path) -> None:
    state = tmp_path / "sandbox"
    taken = free_port()
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", taken))
        sock.listen()
        opts = p.SandboxOptions(
            state_dir=state,
            ports={"admin": free_port(), "propeller": free_port(), "datacatalog": taken},
        )
        state.mkdir()
        try:
            p.start(opts, timeout=30, echo=lambda _m: None)
        except p.SandboxError as exc:
            assert "datacatalog" in str(exc)
        else:
            raise AssertionError("start should fail when datacatalog cannot bind its port")
    assert p.read_state(state) == {}
