"""Every example runs with ``python file.py`` and with ``caddis run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    yield dict(
        os.environ,
        CADDIS_LOCAL_CACHE_DIR=str(tmp_path / "cache"),
        TMPDIR=str(tmp),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )


def run(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        list(args), capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=240
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def caddis(env: dict[str, str], *args: str) -> str:
    return run(env, sys.executable, "-c", "from caddis._cli.main import main; main()", *args)


def test_count_characters(env: dict[str, str]) -> None:
    assert run(env, sys.executable, str(EXAMPLES / "count_characters.py")).strip() == "3"
    out = caddis(env, "run", "examples/count_characters.py", "wf", "--s1", "Pear", "--s2", "Earth")
    assert json.loads(out) == 3
    # A local run leaves no temporary directories behind.
    assert os.listdir(env["TMPDIR"]) == []


def test_cached_pipeline_reruns_only_the_last_step(env: dict[str, str]) -> None:
    out = run(env, sys.executable, str(EXAMPLES / "cached_pipeline.py"))
    assert "{'load': 1, 'clean': 1, 'features': 1, 'report': 2}" in out
    # A second process finds everything in the local cache: no step runs.
    out = run(env, sys.executable, str(EXAMPLES / "cached_pipeline.py"))
    assert "step executions in this process: {}" in out
    out = caddis(env, "run", "examples/cached_pipeline.py", "pipeline", "--report_style", "short")
    assert json.loads(out).startswith("n=")
    info = caddis(env, "cache", "info")
    assert "examples.cached_pipeline.report" in info or "cached_pipeline.report" in info


def test_cached_pipeline_in_process(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CADDIS_LOCAL_CACHE_DIR", env["CADDIS_LOCAL_CACHE_DIR"])
    from examples import cached_pipeline as cp

    cp.EXECUTIONS.clear()
    first = cp.pipeline(n=500, report_style="long")
    assert dict(cp.EXECUTIONS) == {"load": 1, "clean": 1, "features": 1, "report": 1}
    assert cp.pipeline(n=500, report_style="long") == first
    assert dict(cp.EXECUTIONS) == {"load": 1, "clean": 1, "features": 1, "report": 1}
    short = cp.pipeline(n=500, report_style="short")
    assert short.startswith("n=") and short != first
    assert dict(cp.EXECUTIONS) == {"load": 1, "clean": 1, "features": 1, "report": 2}


def test_image_augmentation(env: dict[str, str]) -> None:
    out = run(env, sys.executable, str(EXAMPLES / "image_augmentation.py"))
    paths = out.split()
    assert len(paths) == 15 and all(p.endswith(".jpeg") for p in paths)
    out = caddis(env, "run", "examples/image_augmentation.py", "wf", "--count", "2")
    files = json.loads(out)
    assert len(files) == 6
    from PIL import Image

    for f in files:
        path = f["path"].removeprefix("file://") if isinstance(f, dict) else f
        with Image.open(path) as im:
            assert im.size == (96, 96)


def test_knn_model_selection(env: dict[str, str]) -> None:
    small = dict(env, KNN_N_SAMPLES="300", KNN_N_REPEATS="1", KNN_N_JOBS="1")
    out = run(small, sys.executable, str(EXAMPLES / "knn_model_selection.py"))
    assert "model-k2.joblib.dat" in out and "model-k7.joblib.dat" in out
    out = caddis(
        small,
        "run",
        "examples/knn_model_selection.py",
        "wf",
        "--n_samples",
        "300",
        "--n_repeats",
        "1",
        "--n_jobs",
        "1",
    )
    rows = json.loads(out)
    assert [r[0] for r in rows] == [f"model-k{k}.joblib.dat" for k in range(2, 8)]
    assert all(0.5 < float(r[1]) <= 1.0 for r in rows)
