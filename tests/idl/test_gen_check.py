"""`scripts/gen_protos.py --check` passes on the checkout and catches every kind of drift."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_protos.py"
PROTOS = ROOT / "protos"
OWN_AREAS = ["--area", "core", "--area", "event"]

pytestmark = [
    pytest.mark.skipif(shutil.which("buf") is None, reason="buf is not installed (buf-bin)"),
    pytest.mark.skipif(
        importlib.util.find_spec("grpc_tools") is None, reason="grpcio-tools is not installed"
    ),
]


def _gen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def protos_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "protos"
    shutil.copytree(PROTOS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_checkout_is_up_to_date() -> None:
    # Only the areas this suite owns: the other areas are checked by their own suites and by
    # `make gen-check` (all areas) in CI, so a half-written admin proto does not fail this test.
    proc = _gen("--check", *OWN_AREAS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_reports_a_hand_edited_generated_file(protos_copy: Path) -> None:
    target = protos_copy / "caddis_idl/core/v1/literals_pb2.py"
    target.write_text(target.read_text() + "# edited by hand\n")
    proc = _gen("--check", "--protos", str(protos_copy), *OWN_AREAS)
    assert proc.returncode == 1
    assert "differs: caddis_idl/core/v1/literals_pb2.py" in proc.stderr
    assert "# edited by hand" in proc.stderr


def test_check_reports_missing_and_stale_files(protos_copy: Path) -> None:
    (protos_copy / "caddis_idl/core/v1/types_pb2.pyi").unlink()
    (protos_copy / "caddis_idl/core/v1/types_pb2_grpc.py").write_text("")
    (protos_copy / "caddis_idl/core/v1/gone_pb2.py").write_text("")
    proc = _gen("--check", "--protos", str(protos_copy), *OWN_AREAS)
    assert proc.returncode == 1
    assert "missing: caddis_idl/core/v1/types_pb2.pyi" in proc.stderr
    assert "stale" in proc.stderr and "caddis_idl/core/v1/types_pb2_grpc.py" in proc.stderr
    assert "caddis_idl/core/v1/gone_pb2.py" in proc.stderr


def test_check_reports_an_unformatted_proto(protos_copy: Path) -> None:
    source = protos_copy / "caddis_idl/core/v1/identifier.proto"
    source.write_text(source.read_text().replace("  string project = 2;", "string   project=2;"))
    proc = _gen("--check", "--protos", str(protos_copy), *OWN_AREAS)
    assert proc.returncode == 1
    assert "not buf-formatted: caddis_idl/core/v1/identifier.proto" in proc.stderr


def test_lint_failure_stops_generation(protos_copy: Path) -> None:
    source = protos_copy / "caddis_idl/core/v1/identifier.proto"
    source.write_text(source.read_text() + "\nmessage undocumented_thing {}\n")
    before = (protos_copy / "caddis_idl/core/v1/identifier_pb2.py").read_bytes()
    proc = _gen("--protos", str(protos_copy), *OWN_AREAS)
    assert proc.returncode == 1
    assert "buf lint failed" in proc.stderr
    assert (protos_copy / "caddis_idl/core/v1/identifier_pb2.py").read_bytes() == before


def test_generation_is_idempotent(protos_copy: Path) -> None:
    assert _gen("--protos", str(protos_copy), *OWN_AREAS).returncode == 0
    proc = _gen("--check", "--protos", str(protos_copy), *OWN_AREAS)
    assert proc.returncode == 0, proc.stderr
