"""The remote CLI commands against an in-process admin."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from click.testing import CliRunner

from caddis._cli.main import cli


def _opts(admin: Any) -> list[str]:
    return ["--endpoint", admin.address, "--project", "proj", "--domain", "development"]


def test_register_get_terminate_relaunch_and_launchplan(
    admin: Any, flows: ModuleType, storage: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CADDIS_STORAGE_LOCAL_ROOT", storage.local_root)
    runner = CliRunner()
    r = runner.invoke(cli, ["register", flows.__file__, *_opts(admin)])
    assert r.exit_code == 0, r.output
    assert f"registered workflow    {flows.pipeline.name}@" in r.output
    version = r.output.strip().rsplit(" ", 1)[1]

    from caddis.remote import CaddisRemote

    with CaddisRemote(admin.address, "proj", "development", storage=storage) as remote:
        execution = remote.execute(remote.fetch_workflow(flows.pipeline.name), {"x": 2})

    r = runner.invoke(cli, ["get", "executions", *_opts(admin)])
    assert r.exit_code == 0, r.output
    assert execution.name in r.output and f"{flows.pipeline.name}@{version}" in r.output

    r = runner.invoke(cli, ["get", "execution", execution.name, *_opts(admin)])
    assert r.exit_code == 0, r.output
    assert f"execution  proj/development/{execution.name}" in r.output

    r = runner.invoke(cli, ["relaunch", execution.name, *_opts(admin)])
    assert r.exit_code == 0 and f"relaunched {execution.name} as " in r.output, r.output
    r = runner.invoke(cli, ["terminate", execution.name, *_opts(admin)])
    assert r.exit_code == 0, r.output

    lp = flows.pipeline_lp.name
    r = runner.invoke(cli, ["launchplan", "activate", lp, version, *_opts(admin)])
    assert r.exit_code == 0 and "activated" in r.output, r.output
    r = runner.invoke(cli, ["launchplan", "deactivate", lp, version, *_opts(admin)])
    assert r.exit_code == 0 and "deactivated" in r.output, r.output


def test_get_missing_execution_is_a_clean_error(admin: Any) -> None:
    r = CliRunner().invoke(cli, ["get", "execution", "nope", *_opts(admin)])
    assert r.exit_code == 1 and "Error:" in r.output and "Traceback" not in r.output


def test_run_remote_launches(admin: Any, flows: ModuleType, storage: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("CADDIS_STORAGE_LOCAL_ROOT", storage.local_root)
    monkeypatch.setenv("CADDIS_REMOTE_ENDPOINT", admin.address)
    monkeypatch.setenv("CADDIS_REMOTE_PROJECT", "proj")
    # Without --wait and without following, it only registers and launches.
    from caddis._cli.executions import run_remote

    run_remote(flows.pipeline, {"x": 4}, follow=False)
    from caddis.remote import CaddisRemote

    with CaddisRemote(admin.address, "proj", "development", storage=storage) as remote:
        (execution,) = remote.list_executions()
        data = remote.fetch_inputs_literals(execution)
    assert data.literals["x"].scalar.primitive.integer == 4


def test_register_empty_path_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("x = 1\n")
    r = CliRunner().invoke(cli, ["register", str(tmp_path / "empty.py"), "--endpoint", "x:1"])
    assert r.exit_code == 2 and "no tasks, workflows or launch plans" in r.output
