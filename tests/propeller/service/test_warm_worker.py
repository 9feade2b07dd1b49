"""The warm worker's per-job protocol: claim in the lock file, output files only when used."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from caddis_propeller.plugins import _worker
from caddis_propeller.plugins import attempt_dir as ad


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "mods"
    root.mkdir()
    # fd-level writes: in a worker sys.stdout is fd 1, under pytest it is a capture object.
    (root / "loud_task.py").write_text(
        "import os\nos.write(1, b'hello out\\n')\nos.write(2, b'oops err\\n')\n"
    )
    (root / "quiet_task.py").write_text("x = 1\n")
    (root / "failing_task.py").write_text("import os, sys\nos.write(2, b'bad\\n')\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in ("loud_task", "quiet_task", "failing_task"):
        sys.modules.pop(name, None)


def _job(work: Path, node: str, module: str) -> dict[str, object]:
    directory = ad.attempt_dir(work, "p/d/e", node, 0)
    directory.mkdir(parents=True)
    return {"dir": str(directory), "module": module, "args": [], "env": {"CADDIS_X": "1"}}


def test_claim_lives_in_the_lock_and_output_is_copied_only_when_written(
    tmp_path: Path, modules: Path
) -> None:
    work = tmp_path / "attempts"
    loud = _job(work, "loud", "loud_task")
    quiet = _job(work, "quiet", "quiet_task")
    failing = _job(work, "failing", "failing_task")
    try:
        assert _worker.run_job(loud) == "done"
        assert _worker.run_job(quiet) == "done"
        assert _worker.run_job(failing) == "exit:3"
        loud_dir, quiet_dir, failing_dir = (Path(str(j["dir"])) for j in (loud, quiet, failing))
        assert (loud_dir / ad.STDOUT).read_text() == "hello out\n"
        assert "oops err" in (loud_dir / ad.STDERR).read_text()
        # Nothing written: no files created (and the previous job's output did not leak).
        assert not (quiet_dir / ad.STDOUT).exists() and not (quiet_dir / ad.STDERR).exists()
        assert ad.stderr_tail(failing_dir).strip() == "bad"
        for d in (loud_dir, quiet_dir, failing_dir):
            claim = ad.read_claim(d)
            assert claim is not None and claim["mode"] == "warm"
            assert not (d / ad.CLAIMED).exists()
            assert not ad.is_running(d)
        # Claimed attempts never run again.
        assert _worker.run_job(loud) == "already"
        assert (loud_dir / ad.STDOUT).read_text() == "hello out\n"
    finally:
        for scratch in _worker._scratch.values():
            scratch.remove()
        _worker._scratch.clear()


def test_unclaimed_and_lost_attempts(tmp_path: Path) -> None:
    directory = ad.attempt_dir(tmp_path, "p/d/e", "n", 0)
    assert ad.read_claim(directory) is None
    fd = ad.try_lock(directory)
    assert fd is not None
    # Locked but not yet claimed (empty lock file): still unclaimed.
    assert ad.read_claim(directory) is None and ad.is_running(directory)
    scratch = tmp_path / "scratch.stderr"
    scratch.write_text("worker died here\n")
    ad.write_claim(directory, {"pid": 1, "stderr": str(scratch)}, lock_fd=fd)
    ad.release(fd)
    # The worker died mid-task: claimed, not running, and its scratch stderr is the tail.
    assert ad.read_claim(directory) == {"pid": 1, "stderr": str(scratch)}
    assert not ad.is_running(directory)
    assert ad.stderr_tail(directory) == "worker died here\n"
