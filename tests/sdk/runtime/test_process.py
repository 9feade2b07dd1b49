"""The task process contract, through ``python -m caddis.runtime`` in a subprocess."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from caddis.core.type_engine import TypeEngine
from caddis_idl.core.v1 import errors_pb2, literals_pb2

ROOT = Path(__file__).resolve().parents[3]


def run_process(tmp: Path, module: str, name: str, values: dict, *extra: str):  # type: ignore[no-untyped-def,type-arg]
    inputs = tmp / "inputs.pb"
    inputs.write_bytes(
        TypeEngine.dict_to_literal_map(
            values, {k: type(v) for k, v in values.items()}
        ).SerializeToString()
    )
    out = tmp / "out"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "caddis.runtime",
            "execute",
            "--inputs",
            inputs.as_uri(),
            "--output-prefix",
            out.as_uri(),
            "--raw-output-prefix",
            (tmp / "raw").as_uri(),
            "--module",
            module,
            "--name",
            name,
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp),
        timeout=120,
    )
    return proc, out


def written(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if p.name.endswith(".pb")}


def test_outputs_pb(tmp_path: Path) -> None:
    proc, out = run_process(tmp_path, "tests.sdk.runtime.sample_tasks", "add_one", {"x": 1})
    assert proc.returncode == 0, proc.stderr
    assert written(out) == {"outputs.pb"}
    lm = literals_pb2.LiteralMap.FromString((out / "outputs.pb").read_bytes())
    assert lm.literals["o0"].scalar.primitive.integer == 2
    assert not (out / "timings.json").exists()  # opt-in


def test_timings_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CADDIS_RUNTIME_TIMINGS", "1")
    proc, out = run_process(tmp_path, "tests.sdk.runtime.sample_tasks", "add_one", {"x": 1})
    assert proc.returncode == 0, proc.stderr
    import json

    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {"input_seconds", "user_seconds", "output_seconds"}


def test_error_pb_exit_zero(tmp_path: Path) -> None:
    proc, out = run_process(tmp_path, "tests.sdk.runtime.sample_tasks", "fails", {"x": 1})
    assert proc.returncode == 0, proc.stderr
    assert written(out) == {"error.pb"}
    doc = errors_pb2.ErrorDocument.FromString((out / "error.pb").read_bytes())
    assert doc.error.code == "USER:ValueError"
    assert doc.error.kind == errors_pb2.ContainerError.KIND_RECOVERABLE


def test_non_recoverable_error_pb(tmp_path: Path) -> None:
    proc, out = run_process(tmp_path, "tests.sdk.runtime.sample_tasks", "fails_for_good", {"x": 1})
    assert proc.returncode == 0, proc.stderr
    doc = errors_pb2.ErrorDocument.FromString((out / "error.pb").read_bytes())
    assert doc.error.code == "USER:NonRecoverableError"
    assert doc.error.kind == errors_pb2.ContainerError.KIND_NON_RECOVERABLE


def test_unknown_module_is_system_recoverable(tmp_path: Path) -> None:
    proc, out = run_process(tmp_path, "no_such_module_xyz", "t", {"x": 1})
    assert proc.returncode == 0, proc.stderr
    doc = errors_pb2.ErrorDocument.FromString((out / "error.pb").read_bytes())
    assert doc.error.code.startswith("SYSTEM:")
    assert doc.error.kind == errors_pb2.ContainerError.KIND_RECOVERABLE


def test_deck_html(tmp_path: Path) -> None:
    proc, out = run_process(tmp_path, "tests.sdk.runtime.sample_tasks", "with_deck", {"x": 1})
    assert proc.returncode == 0, proc.stderr
    assert "hello deck" in (out / "deck.html").read_text()


def test_checkpoint_args(tmp_path: Path) -> None:
    prev = tmp_path / "cp0"
    prev.mkdir()
    (prev / "_checkpoint.bin").write_bytes(b"2")
    proc, out = run_process(
        tmp_path,
        "tests.sdk.runtime.sample_tasks",
        "resumes",
        {"x": 1},
        "--checkpoint-path",
        (tmp_path / "cp1").as_uri(),
        "--prev-checkpoint",
        prev.as_uri(),
    )
    assert proc.returncode == 0, proc.stderr
    lm = literals_pb2.LiteralMap.FromString((out / "outputs.pb").read_bytes())
    assert lm.literals["o0"].scalar.primitive.integer == 3
    assert (tmp_path / "cp1" / "_checkpoint.bin").read_bytes() == b"3"


def _bundle(tmp: Path) -> tuple[Path, str]:
    src = tmp / "src"
    (src / "bundled_pkg").mkdir(parents=True)
    (src / "bundled_pkg" / "__init__.py").write_text("")
    (src / "bundled_pkg" / "wf.py").write_text(
        "from caddis.core.task import task\n\n@task\ndef triple(x: int) -> int:\n    return 3 * x\n"
    )
    archive = tmp / "bundle.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src / "bundled_pkg", arcname="bundled_pkg")
    return archive, "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()


def test_code_bundle(tmp_path: Path) -> None:
    archive, digest = _bundle(tmp_path)
    cache = tmp_path / "bundles"
    proc, out = run_process(
        tmp_path,
        "bundled_pkg.wf",
        "triple",
        {"x": 5},
        "--code-bundle-uri",
        archive.as_uri(),
        "--code-bundle-digest",
        digest,
        "--code-bundle-cache",
        str(cache),
    )
    assert proc.returncode == 0, proc.stderr
    lm = literals_pb2.LiteralMap.FromString((out / "outputs.pb").read_bytes())
    assert lm.literals["o0"].scalar.primitive.integer == 15
    assert (cache / digest.split(":")[1] / ".complete").exists()


def test_code_bundle_digest_mismatch(tmp_path: Path) -> None:
    from caddis.runtime.bundle import BundleError, fetch_bundle

    archive, _ = _bundle(tmp_path)
    with pytest.raises(BundleError, match="expected"):
        fetch_bundle(str(archive), "sha256:" + "0" * 64, str(tmp_path / "c"))


def test_dynamic_writes_futures_with_registered_ids(tmp_path: Path) -> None:
    from caddis_idl.core.v1 import dynamic_job_pb2

    proc, out = run_process(
        tmp_path,
        "tests.sdk.runtime.sample_tasks",
        "fan_out",
        {"n": 2},
        "--project",
        "p",
        "--domain",
        "d",
        "--version",
        "v1",
    )
    assert proc.returncode == 0, proc.stderr
    assert written(out) == {"futures.pb"}
    spec = dynamic_job_pb2.DynamicJobSpec.FromString((out / "futures.pb").read_bytes())
    assert len(spec.nodes) == 2
    tid = spec.tasks[0].id
    assert (tid.project, tid.domain, tid.version) == ("p", "d", "v1")


def test_execute_named_loads_once() -> None:
    from caddis.runtime import execute_named

    lm = TypeEngine.dict_to_literal_map({"x": 1}, {"x": int})
    r = execute_named("tests.sdk.runtime.sample_tasks", "add_one", lm)
    assert r.outputs is not None and r.outputs.literals["o0"].scalar.primitive.integer == 2
    r = execute_named("no_such_mod_q", "x", lm)
    assert r.error is not None and r.error.error.code.startswith("SYSTEM:")


def test_switching_bundles_reimports_modules(tmp_path: Path) -> None:
    """A warm worker running two registrations in turn sees each bundle's own code."""
    import importlib

    from caddis.runtime.bundle import fetch_bundle

    def make(version: int) -> tuple[Path, str]:
        src = tmp_path / f"src{version}" / "swap_pkg_q"
        src.mkdir(parents=True)
        (src / "__init__.py").write_text(f"VERSION = {version}\n")
        archive = tmp_path / f"b{version}.tar.gz"
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(src, arcname="swap_pkg_q")
        return archive, "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()

    cache = str(tmp_path / "cache")
    a1, d1 = make(1)
    a2, d2 = make(2)
    try:
        fetch_bundle(str(a1), d1, cache)
        assert importlib.import_module("swap_pkg_q").VERSION == 1
        fetch_bundle(str(a2), d2, cache)
        assert importlib.import_module("swap_pkg_q").VERSION == 2
    finally:
        sys.modules.pop("swap_pkg_q", None)
        for p in [p for p in sys.path if p.startswith(str(Path(cache).resolve()))]:
            sys.path.remove(p)
