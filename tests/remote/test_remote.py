"""CaddisRemote against a real admin (in-process, SQLite, file:// store)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from caddis_idl.core.v1 import identifier_pb2


def test_import_caddis_does_not_import_grpc() -> None:
    code = "import sys, caddis; caddis.task; assert 'grpc' not in sys.modules, 'grpc imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unreachable_admin_says_how_to_start_it() -> None:
    from caddis.remote import AdminUnreachableError, CaddisRemote, RemoteConfig
    from tests.support import free_port

    port = free_port()
    remote = CaddisRemote(config=RemoteConfig(endpoint=f"127.0.0.1:{port}", connect_timeout_s=0.3))
    with pytest.raises(AdminUnreachableError) as info:
        remote.list_executions()
    assert f"cannot reach admin at 127.0.0.1:{port}: start it with `caddis sandbox start`" in str(
        info.value
    )


def test_config_from_file_and_env(tmp_path: Path) -> None:
    from caddis.remote import RemoteConfig

    path = tmp_path / "c.yaml"
    path.write_text("remote:\n  endpoint: example:1\n  project: p\n")
    cfg = RemoteConfig.load(path, env={"CADDIS_REMOTE_DOMAIN": "staging"})
    assert (cfg.endpoint, cfg.project, cfg.domain) == ("example:1", "p", "staging")


def test_bundle_is_reproducible_and_skips_caches(tmp_path: Path) -> None:
    from caddis.remote import build_bundle, source_root

    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "wf.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "__pycache__" / "wf.cpython-311.pyc").write_bytes(b"junk")
    first = build_bundle(tmp_path)
    (tmp_path / "pkg" / "wf.py").touch()  # a new mtime must not change the digest
    second = build_bundle(tmp_path)
    assert first.digest == second.digest and first.digest.startswith("sha256:")
    assert first.files == ("pkg/__init__.py", "pkg/wf.py")
    with tarfile.open(fileobj=io.BytesIO(first.data)) as tar:
        assert sorted(tar.getnames()) == ["pkg/__init__.py", "pkg/wf.py"]
    assert source_root(tmp_path / "pkg" / "wf.py") == tmp_path.resolve()
    (tmp_path / "pkg" / "wf.py").write_text("x = 2\n")
    assert build_bundle(tmp_path).digest != first.digest


def test_register_uploads_bundle_and_versions_by_code_digest(
    remote: Any, flows: ModuleType, storage: Any
) -> None:
    result = remote.register(flows.pipeline, flows.pipeline_lp, flows.greet)
    assert result.bundle is not None
    assert result.version == result.bundle.short_digest
    assert Path(result.bundle_uri.removeprefix("file://")).read_bytes() == result.bundle.data
    names = {i.name for i in result.all_ids()}
    assert {
        flows.double.name,
        flows.pipeline.name,
        flows.pipeline_lp.name,
        flows.greet.name,
    } <= names
    # Registering the same code again is a no-op with the same version.
    assert remote.register(flows.pipeline).version == result.version

    task = remote.fetch_task(flows.double.name)
    assert task.version == result.version
    assert list(task.interface.inputs.variables) == ["x"]
    wf = remote.fetch_workflow(flows.pipeline.name, result.version)
    assert wf.id.resource_type == identifier_pb2.RESOURCE_TYPE_WORKFLOW
    lp = remote.fetch_launch_plan(flows.pipeline_lp.name)
    assert lp.version == result.version and "x" in lp.interface.inputs.variables


def test_execute_creates_execution_and_manages_it(remote: Any, flows: ModuleType) -> None:
    from caddis.remote import ExecutionFailedError, RemoteError

    execution = remote.execute(flows.pipeline, inputs={"x": 3}, name="exec-one")
    assert execution.name == "exec-one"
    assert not execution.is_done
    listed = remote.list_executions()
    assert [e.name for e in listed] == ["exec-one"]
    inputs = remote.fetch_inputs_literals(execution)
    assert inputs.literals["x"].scalar.primitive.integer == 3
    with pytest.raises(RemoteError, match="has no input"):
        remote.execute(flows.pipeline, inputs={"y": 1})

    relaunched = remote.relaunch(execution)
    assert relaunched.name != execution.name
    assert remote.fetch_inputs_literals(relaunched).literals["x"].scalar.primitive.integer == 3

    remote.terminate(execution, cause="test")
    execution = remote.sync(execution)
    with pytest.raises(ExecutionFailedError):
        remote.fetch_outputs(execution)
    assert remote.node_executions(execution) == [] or all(
        t.node_id for t in remote.node_executions(execution)
    )


def test_execute_workflow_fills_its_python_defaults(remote: Any, flows: ModuleType) -> None:
    # The workflow's default input travels in its default launch plan, so leaving it out
    # remotely works as it does locally.
    execution = remote.execute(flows.with_default, inputs={})
    assert remote.fetch_inputs_literals(execution).literals["x"].scalar.primitive.integer == 7
    assert execution.proto.closure.workflow_id.name == flows.with_default.name


def test_execute_task_through_wrapper_workflow(remote: Any, flows: ModuleType) -> None:
    execution = remote.execute(flows.greet, inputs={"name": "caddis", "times": 2})
    wf = remote.fetch_workflow(flows.greet.name)
    assert wf.version == execution.entity.version
    assert execution.proto.closure.workflow_id.name == flows.greet.name


def test_launch_plan_activation(remote: Any, flows: ModuleType) -> None:
    from caddis_idl.admin.v1 import launch_plan_pb2

    result = remote.register(flows.pipeline_lp)
    remote.set_launch_plan_state(flows.pipeline_lp.name, result.version, True)
    proto = remote._launch_plan_proto(flows.pipeline_lp.name, result.version, None, None)
    assert proto.closure.state == launch_plan_pb2.LAUNCH_PLAN_STATE_ACTIVE
    remote.set_launch_plan_state(flows.pipeline_lp.name, result.version, False)
    proto = remote._launch_plan_proto(flows.pipeline_lp.name, result.version, None, None)
    assert proto.closure.state == launch_plan_pb2.LAUNCH_PLAN_STATE_INACTIVE


def test_fetch_missing_entity_is_not_found(remote: Any) -> None:
    from caddis.remote import EntityNotFoundError

    with pytest.raises(EntityNotFoundError):
        remote.fetch_task("nope", "v1")
    with pytest.raises(EntityNotFoundError):
        remote.fetch_workflow("nope")


_REGISTRATION_RPCS = {
    "CreateUploadLocation": "caddis_idl.admin.v1.CodeBundleService",
    "RegisterCodeBundle": "caddis_idl.admin.v1.CodeBundleService",
    "CreateTask": "caddis_idl.admin.v1.TaskService",
    "CreateWorkflow": "caddis_idl.admin.v1.WorkflowService",
    "CreateLaunchPlan": "caddis_idl.admin.v1.LaunchPlanService",
    "CreateExecution": "caddis_idl.admin.v1.ExecutionService",
}


def _rpc_counts(admin: Any) -> dict[str, int]:
    """How many times admin served each registration RPC (its request metric)."""
    counts = {}
    for method, service in _REGISTRATION_RPCS.items():
        value = admin.grpc.registry.get_sample_value(
            "caddis_grpc_request_duration_seconds_count", {"method": method, "service": service}
        )
        counts[method] = int(value or 0)
    return counts


def test_second_execute_of_unchanged_code_registers_nothing(
    remote: Any, flows: ModuleType, admin: Any
) -> None:
    first = remote.execute(flows.pipeline, inputs={"x": 1})
    before = _rpc_counts(admin)
    assert before["RegisterCodeBundle"] == 1 and before["CreateTask"] >= 1
    second = remote.execute(flows.pipeline, inputs={"x": 2})
    after = _rpc_counts(admin)
    assert after == {**before, "CreateExecution": before["CreateExecution"] + 1}
    assert second.entity.id == first.entity.id
    assert second.proto.closure.launch_plan_id == first.proto.closure.launch_plan_id
    # Registering explicitly is answered from the same memory, with the same result.
    result = remote.register(flows.pipeline)
    assert result.version == first.entity.version and _rpc_counts(admin) == after
    # Another client knows nothing, so it repeats the (idempotent) calls and gets the same.
    from caddis.remote import CaddisRemote

    with CaddisRemote(config=remote.config, storage=remote.storage) as other:
        assert other.register(flows.pipeline).version == result.version
    assert _rpc_counts(admin)["RegisterCodeBundle"] == after["RegisterCodeBundle"] + 1


def test_changed_source_file_registers_a_new_version(
    remote: Any, flows: ModuleType, admin: Any
) -> None:
    first = remote.execute(flows.pipeline, inputs={"x": 1})
    path = Path(flows.__file__)
    # Same size, written within the timestamp tick of the first build where the file system
    # is coarse: the bundle is rebuilt all the same (a just-modified file is never trusted).
    text = path.read_text()
    path.write_text(text.replace("2 * x", "x * 2"))
    before = _rpc_counts(admin)
    second = remote.execute(flows.pipeline, inputs={"x": 1})
    assert second.entity.version != first.entity.version
    after = _rpc_counts(admin)
    assert after["RegisterCodeBundle"] == before["RegisterCodeBundle"] + 1
    assert after["CreateTask"] > before["CreateTask"]
    assert remote.fetch_task(flows.double.name).version == second.entity.version


def test_execute_registers_again_when_admin_forgot(
    remote: Any, flows: ModuleType, tmp_path: Path, storage: Any
) -> None:
    # A client outliving its admin's database (a sandbox started afresh) re-registers.
    from caddis._serving.config import DatabaseConfig, ServerConfig
    from caddis.remote._client import AdminClient, make_channel
    from caddis_admin.config import AdminConfig
    from caddis_admin.server import serve

    remote.execute(flows.pipeline, inputs={"x": 1})
    fresh = serve(
        AdminConfig(
            server=ServerConfig(port=0, metrics_port=None),
            database=DatabaseConfig(url=f"sqlite:///{tmp_path / 'fresh.db'}"),
            state_dir=str(tmp_path / "fresh"),
            storage=storage,
        )
    )
    try:
        import dataclasses

        remote.client.close()
        remote.config = dataclasses.replace(remote.config, endpoint=fresh.address)
        remote.client = AdminClient(make_channel(remote.config), endpoint=fresh.address)
        execution = remote.execute(flows.pipeline, inputs={"x": 4})
        assert remote.fetch_inputs_literals(execution).literals["x"].scalar.primitive.integer == 4
        assert _rpc_counts(fresh)["RegisterCodeBundle"] == 1
    finally:
        fresh.stop()


def test_bundle_cache_skips_unchanged_trees(tmp_path: Path, monkeypatch: Any) -> None:
    from caddis.remote import _bundle

    (tmp_path / "wf.py").write_text("x = 1\n")
    cache = _bundle.BundleCache()
    first = cache.build(tmp_path)
    # Files written just now are not trusted: the tree is packed again (same digest).
    assert cache.build(tmp_path).digest == first.digest and cache.builds == 2
    # Old enough files are: no packing at all.
    monkeypatch.setattr(_bundle, "_RACY_WINDOW_S", 0.0)
    cache.build(tmp_path)
    assert cache.build(tmp_path) is not None and (cache.builds, cache.hits) == (3, 1)
    (tmp_path / "wf.py").write_text("x = 22\n")
    changed = cache.build(tmp_path)
    assert (
        changed.digest != first.digest and changed.digest == _bundle.build_bundle(tmp_path).digest
    )
    (tmp_path / "new.py").write_text("")
    assert "new.py" in cache.build(tmp_path).files


def test_follow_polls_fast_at_first_then_a_tenth_of_the_time_waited(
    remote: Any, monkeypatch: Any
) -> None:
    # A fake clock: an execution that ends after 60 s of sleeping, polled by follow().
    from caddis.remote import RemoteExecution
    from caddis.remote import _remote as module
    from caddis_idl.admin.v1 import execution_pb2
    from caddis_idl.core.v1 import execution_pb2 as core_execution_pb2

    clock = [1000.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(module.time, "sleep", sleep)
    execution = RemoteExecution(
        id=identifier_pb2.WorkflowExecutionIdentifier(name="e"), proto=execution_pb2.Execution()
    )

    def sync(ex: Any) -> Any:
        if clock[0] >= 1060.0:
            ex.proto.closure.phase = core_execution_pb2.WORKFLOW_EXECUTION_PHASE_SUCCEEDED
        return ex

    monkeypatch.setattr(remote, "sync", sync)
    polls = list(remote.follow(execution, poll_interval=1.0))
    assert polls[-1].is_done
    assert pauses[0] == pytest.approx(0.02) and max(pauses) == pytest.approx(1.0)
    assert pauses == sorted(pauses)
    # Seen done soon after it ended: within a tenth of the time waited (the pause cap here).
    assert clock[0] - 1060.0 <= 1.0
    # ...at a bounded cost: a few dozen polls in the first 10 s, then one per poll_interval.
    assert 60 < len(polls) < 60 + 60
    # A pause never exceeds a tenth of the time waited before it (beyond the 20 ms floor).
    waited = 0.0
    for pause in pauses:
        assert pause <= max(0.02, waited * 0.1) + 1e-9
        waited += pause
