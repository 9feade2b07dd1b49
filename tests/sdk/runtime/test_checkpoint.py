from __future__ import annotations

import io

from caddis.core.type_engine import TypeEngine
from caddis.runtime import AttemptContext, SyncCheckpoint, execute_task
from tests.sdk.runtime import sample_tasks as st


def test_read_write_across_attempts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a0 = SyncCheckpoint(str(tmp_path / "a0"))
    assert a0.read() is None and not a0.prev_exists()
    a0.write(b"one")
    a1 = SyncCheckpoint(str(tmp_path / "a1"), str(tmp_path / "a0"))
    assert a1.prev_exists() and a1.read() == b"one"


def test_save_and_restore_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "state"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "w.bin").write_bytes(b"weights")
    a0 = SyncCheckpoint((tmp_path / "a0").as_uri())
    a0.save(src)
    a0.save(io.BytesIO(b"stream"))
    a1 = SyncCheckpoint((tmp_path / "a1").as_uri(), (tmp_path / "a0").as_uri())
    restored = a1.restore(tmp_path / "restored")
    assert restored is not None
    assert (restored / "sub" / "w.bin").read_bytes() == b"weights"
    assert a1.read() == b"stream"


def test_task_resumes_from_previous_attempt(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lm = TypeEngine.dict_to_literal_map({"x": 5}, {"x": int})
    prev = None
    for attempt in range(3):
        dest = str(tmp_path / f"attempt-{attempt}")
        ctx = AttemptContext(attempt=attempt, checkpoint=SyncCheckpoint(dest, prev))
        r = execute_task(st.resumes, lm, ctx)
        prev = dest
        if attempt < 2:
            assert r.error is not None and "checkpoint" in r.error.error.message
    assert r.outputs is not None
    assert r.outputs.literals["o0"].scalar.primitive.integer == 7
