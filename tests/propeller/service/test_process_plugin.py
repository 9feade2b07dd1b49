"""The process plugin on its own: adoption of finished results, the attempt-directory claim."""

from __future__ import annotations

from pathlib import Path

from caddis.storage import StorageConfig, get_store
from caddis_idl.core.v1 import identifier_pb2, literals_pb2
from caddis_propeller.config import ProcessPluginConfig
from caddis_propeller.engine.interfaces import Running, Succeeded, TaskAttempt
from caddis_propeller.plugins import attempt_dir as ad
from caddis_propeller.plugins.process import ProcessPlugin
from tests.propeller.service import workflows as w
from tests.propeller.service.conftest import compile_closure
from tests.support import wait_until


def _plugin(tmp_path: Path, storage: StorageConfig, warm: int = 0) -> ProcessPlugin:
    prefix = storage.resolved_metadata_prefix()
    return ProcessPlugin(
        ProcessPluginConfig(work_dir=str(tmp_path / "attempts"), warm_workers=warm, cpu=2),
        store=get_store(prefix, storage),
        locate=lambda key: key,
        raw_prefix=lambda a: prefix + "raw/",
    )


def _attempt(storage: StorageConfig, name: str, x: int) -> TaskAttempt:
    closure = compile_closure(w.counting)
    task = closure.tasks[0].template
    prefix = f"{storage.resolved_metadata_prefix()}p/d/{name}/n0"
    inputs = literals_pb2.LiteralMap()
    inputs.literals["text"].scalar.primitive.string_value = "x" * x
    get_store(prefix, storage).write_proto(f"{prefix}/inputs.pb", inputs)
    return TaskAttempt(
        execution_id=identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name=name),
        node_path="n0",
        node_id="n0",
        attempt=0,
        task=task,
        inputs=inputs,
        inputs_key=f"{prefix}/inputs.pb",
        output_prefix=f"{prefix}/0",
        interruptible=False,
        timeout=None,
    )


def test_finished_result_is_adopted_not_rerun(tmp_path: Path, storage: StorageConfig) -> None:
    plugin = _plugin(tmp_path, storage)
    attempt = _attempt(storage, "adopt", 3)
    # Another machine ran it: the result is in the shared store, no local attempt directory.
    outputs = literals_pb2.LiteralMap()
    outputs.literals["o0"].scalar.primitive.integer = 3
    plugin.store.write_proto(f"{attempt.output_prefix}/outputs.pb", outputs)
    assert isinstance(plugin.start(attempt), Succeeded)
    assert not any((tmp_path / "attempts").rglob("claimed"))
    plugin.close()


def test_restarted_plugin_reattaches(tmp_path: Path, storage: StorageConfig, markers: Path) -> None:
    first = _plugin(tmp_path, storage)
    attempt = _attempt(storage, "reattach", 5)
    status = first.start(attempt)
    assert isinstance(status, Running)
    # "Restart": a new plugin instance over the same attempt directories.
    second = _plugin(tmp_path, storage)
    again = second.start(attempt)
    final = wait_until(
        lambda: not isinstance(s := second.check(attempt, again.handle), Running) and s,  # type: ignore[union-attr]
        timeout=30,
        message="attempt finished",
    )
    assert isinstance(final, Succeeded)
    runs = [f for f in markers.iterdir() if f.name.split("|")[3] == "count"]
    assert len(runs) == 1
    directory = tmp_path / "attempts" / status.handle  # type: ignore[union-attr]
    assert ad.read_claim(directory) is not None
    # The process wrote its result first and then exits, releasing the attempt's lock.
    wait_until(lambda: not ad.is_running(directory), message="task process exited")
    first.close()
    second.close()
