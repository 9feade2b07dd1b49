"""The examples run remotely through the real services and give the same outputs as locally.

Each example is imported as a fresh copy (a new module name, so new task names and cache
keys), run locally, then registered and launched on the sandbox.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.e2e.conftest import Sandbox, require_services, start_sandbox

pytestmark = pytest.mark.slow

TIMEOUT = 180


def _run_remote(sandbox: Sandbox, entity: Any, inputs: dict[str, Any]) -> Any:
    execution = sandbox.remote.execute(entity, inputs, wait=True, timeout=TIMEOUT)
    assert execution.is_successful, f"{execution.phase}: {execution.error}"
    return execution.outputs["o0"]


def _digest(file: Any) -> str:
    with open(file, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def test_count_characters(
    sandbox: Sandbox, load_program: Callable[..., ModuleType], local_cache: Path
) -> None:
    mod = load_program(example="count_characters")
    local = mod.wf(s1="Pear", s2="Earth")
    assert local == 3
    assert _run_remote(sandbox, mod.wf, {"s1": "Pear", "s2": "Earth"}) == local


def test_cached_pipeline(
    sandbox: Sandbox, load_program: Callable[..., ModuleType], local_cache: Path
) -> None:
    mod = load_program(example="cached_pipeline")
    for style in ("long", "short"):
        local = mod.pipeline(n=200, report_style=style)
        assert _run_remote(sandbox, mod.pipeline, {"n": 200, "report_style": style}) == local


def test_image_augmentation(
    sandbox: Sandbox, load_program: Callable[..., ModuleType], local_cache: Path
) -> None:
    mod = load_program(example="image_augmentation")
    local = mod.wf(count=2, seed=3)
    remote = _run_remote(sandbox, mod.wf, {"count": 2, "seed": 3})
    assert len(local) == len(remote) == 2 * mod.AUGMENTATIONS_PER_IMAGE
    # Augmentations are seeded by image content: the same bytes both ways, in order.
    assert [_digest(f) for f in remote] == [_digest(f) for f in local]


def test_knn_model_selection_shrunken(
    sandbox: Sandbox, load_program: Callable[..., ModuleType], local_cache: Path
) -> None:
    pytest.importorskip("sklearn")
    mod = load_program(example="knn_model_selection")
    inputs = {"n_samples": 120, "n_repeats": 1, "n_jobs": 1}
    local = mod.wf(**inputs)
    assert len(local) == 6
    assert _run_remote(sandbox, mod.wf, inputs) == local


@pytest.mark.postgres
@pytest.mark.s3
def test_count_characters_on_postgres_and_s3(
    tmp_path: Path,
    load_program: Callable[..., ModuleType],
    local_cache: Path,
    postgres_url: str,
    s3_endpoint: Any,
    s3_bucket: str,
) -> None:
    require_services()
    mod = load_program(example="count_characters")
    for sandbox in start_sandbox(
        tmp_path / "sandbox",
        db=postgres_url,
        storage=f"s3://{s3_bucket}/caddis",
        s3_endpoint=s3_endpoint.url,
        s3_access_key=s3_endpoint.access_key,
        s3_secret_key=s3_endpoint.secret_key,
    ):
        assert _run_remote(sandbox, mod.wf, {"s1": "Pear", "s2": "Earth"}) == 3
        # The blobs went to the bucket, not to the local directory.
        names = [
            o.object_name for o in s3_endpoint.client().list_objects(s3_bucket, recursive=True)
        ]
        assert any(n.startswith("caddis/") for n in names)
