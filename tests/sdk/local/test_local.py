from __future__ import annotations

import os
from pathlib import Path

import pytest

from caddis._local import LocalExecutionError
from tests.sdk.local import wfs


@pytest.fixture(autouse=True)
def reset_calls() -> None:
    wfs.CALLS.clear()


def test_static_chain() -> None:
    assert wfs.chain(x=1) == 6


def test_task_called_alone() -> None:
    assert wfs.inc(x=41) == 42


def test_defaults_and_named_outputs() -> None:
    out = wfs.two_outputs(x=1)
    assert tuple(out) == (2, "v")
    assert wfs.two_outputs(x=1, label="w")[1] == "w"


def test_seed_dynamic_count_characters() -> None:
    assert wfs.count_wf(s1="Pear", s2="Earth") == 3
    assert wfs.count_characters(s1="Pear", s2="Earth") == 3


def test_map_task() -> None:
    assert wfs.mapped(xs=[1, 2, 3]) == [2, 3, 4]
    assert wfs.mapped(xs=[]) == []


def test_min_success_ratio() -> None:
    assert wfs.tolerant(xs=[1, 2, 3, 4]) == [None, 2, None, 4]
    with pytest.raises(LocalExecutionError):
        wfs.intolerant(xs=[1, 2, 3, 4])


def test_branches() -> None:
    assert wfs.branching(x=3) == 6
    assert wfs.branching(x=-3) == -2


def test_subworkflow_and_launch_plan() -> None:
    assert wfs.parent(x=1) == 4
    assert wfs.uses_lp(a=1) == 101
    assert wfs.add_lp(a=2) == 102


def test_recoverable_errors_are_retried() -> None:
    assert wfs.flaky_wf(x=7) == 7
    assert wfs.CALLS["flaky"] == 3


def test_plain_user_errors_are_retried() -> None:
    assert wfs.flaky_plain(x=4) == 4
    assert wfs.CALLS["flaky_plain"] == 2


def test_user_errors_use_the_retry_budget_then_are_named() -> None:
    with pytest.raises(ValueError, match="broken input 5") as info:
        wfs.broken_wf(x=5)
    assert wfs.CALLS["broken"] == 4  # the first attempt and retries=3
    err = info.value
    assert isinstance(err, LocalExecutionError)
    assert err.workflow == "tests.sdk.local.wfs.broken_wf"
    assert err.node == "n0"
    assert err.task == "tests.sdk.local.wfs.broken"
    assert isinstance(err.error, ValueError)
    for part in ("broken_wf", "n0", "tests.sdk.local.wfs.broken", "broken input 5"):
        assert part in str(err)


def test_non_recoverable_errors_are_not_retried() -> None:
    from caddis.exceptions import NonRecoverableError

    with pytest.raises(NonRecoverableError, match="hopeless input 1") as info:
        wfs.doomed_wf(x=1)
    assert wfs.CALLS["doomed"] == 1
    assert info.value.task == "tests.sdk.local.wfs.doomed"  # type: ignore[attr-defined]


def test_timeout_abandons_the_attempt() -> None:
    import time

    t0 = time.monotonic()
    with pytest.raises(LocalExecutionError) as info:
        wfs.slow_wf(x=1)
    assert time.monotonic() - t0 < 1.5
    assert info.value.node == "n0" and "timeout" in str(info.value).lower()


def test_retry_resumes_from_checkpoint() -> None:
    assert wfs.resume_wf(x=10) == 12


def test_map_items_retried_independently() -> None:
    assert wfs.map_retry(xs=[1, 2]) == [1, 2]


def test_cache_hits_and_versions(isolated_local_run: Path) -> None:
    assert wfs.cached_square(x=3) == 9
    assert wfs.cached_square(x=3) == 9
    assert wfs.CALLS["cached_square"] == 1
    assert wfs.cached_square(x=4) == 16
    assert wfs.CALLS["cached_square"] == 2
    cache_file = Path(os.environ["CADDIS_LOCAL_CACHE_DIR"]) / "local-cache.sqlite"
    assert cache_file.exists()


def test_cache_ignore_input_vars() -> None:
    assert wfs.cached_ignoring(x=1, note="a") == 1
    assert wfs.cached_ignoring(x=1, note="b") == 1
    assert wfs.CALLS["cached_ignoring"] == 1


def test_map_items_cached_one_by_one() -> None:
    assert wfs.cached_map(xs=[1, 2, 3]) == [1, 4, 9]
    assert wfs.CALLS["cached_square"] == 3
    assert wfs.cached_map(xs=[1, 2, 5]) == [1, 4, 25]
    assert wfs.CALLS["cached_square"] == 4


def test_cache_version_bump_recomputes(monkeypatch: pytest.MonkeyPatch) -> None:
    from caddis import task

    def make(version: str):  # type: ignore[no-untyped-def]
        @task(cache=True, cache_version=version, name="tests.versioned")
        def versioned(x: int) -> int:
            wfs.bump("versioned")
            return x

        return versioned

    make("1")(x=1)
    make("1")(x=1)
    assert wfs.CALLS["versioned"] == 1
    make("2")(x=1)
    assert wfs.CALLS["versioned"] == 2


def test_no_stray_temporary_directories(isolated_local_run: Path, tmp_path: Path) -> None:
    from caddis.types.file import FlyteFile

    assert wfs.chain(x=1) == 6
    given = tmp_path / "given.txt"
    given.write_text("from the caller")
    assert wfs.read_file(f=FlyteFile(str(given))) == "from the caller"
    assert wfs.file_roundtrip(text="hello") == "hello"
    assert wfs.count_wf(s1="ab", s2="b") == 1
    assert sorted(os.listdir(isolated_local_run)) == []


def test_referenced_outputs_are_kept(isolated_local_run: Path) -> None:
    f = wfs.file_out(text="kept")
    with open(f) as fh:
        assert fh.read() == "kept"
    kept = os.listdir(isolated_local_run)
    assert len(kept) == 1 and kept[0].startswith("caddis-run-")
    # Only the referenced upload stays: no working directories, no other uploads.
    root = isolated_local_run / kept[0]
    assert "work" not in os.listdir(root)


def test_deck_is_written_and_its_path_reported(
    isolated_local_run: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from caddis._local import last_run_decks

    with caplog.at_level("INFO", logger="caddis"):
        assert wfs.decked(x=1) == 1
    pages = list(isolated_local_run.glob("caddis-run-*/decks/**/deck.html"))
    assert len(pages) == 1
    text = pages[0].read_text()
    assert "deck body" in text and "Inputs" in text
    assert last_run_decks() == [str(pages[0])]
    assert f"deck written: {pages[0]}" in caplog.text
    # A run without decks replaces the list.
    assert wfs.inc(x=1) == 2
    assert last_run_decks() == []


def test_cache_cli(isolated_local_run: Path) -> None:
    from click.testing import CliRunner

    from caddis._cli.main import cli

    wfs.cached_square(x=2)
    from caddis._local import local_cache

    local_cache().flush()
    r = CliRunner().invoke(cli, ["cache", "info"])
    assert r.exit_code == 0, r.output
    assert "entries:  1" in r.output and "cached_square" in r.output
    r = CliRunner().invoke(cli, ["cache", "clear"])
    assert r.exit_code == 0 and "removed 1" in r.output
    wfs.cached_square(x=2)
    assert wfs.CALLS["cached_square"] == 2


def test_files_inside_dataclass_outputs_are_kept() -> None:
    r = wfs.report_wf(text="inside")
    with open(r.data) as fh:
        assert fh.read() == "inside"


def test_map_items_get_their_own_context() -> None:
    out = wfs.map_contexts(xs=[1, 2, 3])
    dirs = [o.split("|")[0] for o in out]
    ckpts = [o.split("|")[2] for o in out]
    assert len(set(dirs)) == 3 and len(set(ckpts)) == 3
    assert all(o.split("|")[1] == "0" for o in out)


def test_execute_batch_matches_execute_task() -> None:
    from caddis.core.type_engine import TypeEngine
    from caddis.runtime import AttemptContext, execute_batch, execute_task

    lms = [TypeEngine.dict_to_literal_map({"x": i}, {"x": int}) for i in range(4)]
    batch = execute_batch(wfs.odd_fails, lms, AttemptContext())
    single = [execute_task(wfs.odd_fails, lm) for lm in lms]
    assert [r.outputs for r in batch] == [r.outputs for r in single]
    assert [r.error is None for r in batch] == [True, False, True, False]


def test_cache_overwrite_and_disable(monkeypatch: pytest.MonkeyPatch) -> None:
    wfs.cached_square(x=7)
    monkeypatch.setenv("CADDIS_LOCAL_CACHE_OVERWRITE", "1")
    wfs.cached_square(x=7)
    assert wfs.CALLS["cached_square"] == 2
    monkeypatch.delenv("CADDIS_LOCAL_CACHE_OVERWRITE")
    wfs.cached_square(x=7)
    assert wfs.CALLS["cached_square"] == 2
    monkeypatch.setenv("CADDIS_LOCAL_CACHE", "0")
    wfs.cached_square(x=7)
    assert wfs.CALLS["cached_square"] == 3


def test_execution_id_has_flytekit_attributes() -> None:
    project, domain, name = wfs.whoami().split("/")
    assert (project, domain) == ("local", "development") and name.startswith("local-")
