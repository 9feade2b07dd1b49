"""caddis.storage.locations: deterministic paths; keys that would escape are refused."""

from __future__ import annotations

import pytest

from caddis.storage import PathEscapeError, locations

BASE = "s3://bkt/metadata"


def test_deterministic_layout() -> None:
    execution = locations.execution_prefix(BASE, "proj", "development", "abc123")
    assert execution == "s3://bkt/metadata/proj/development/abc123/"
    node = locations.node_prefix(execution, "n0/dn1/3")
    assert node == execution + "nodes/n0/dn1/3/"
    assert locations.node_prefix(execution, ["n0", "dn1", 3]) == node
    attempt = locations.attempt_prefix(node, 2)
    assert attempt == node + "attempt-2/"
    assert locations.join(attempt, locations.OUTPUTS) == attempt + "outputs.pb"
    assert locations.join(attempt, locations.CHECKPOINT_DIR) == attempt + "checkpoint/"
    assert locations.join(attempt, locations.CHECKPOINT_DIR, "x") == attempt + "checkpoint/x"
    assert {locations.INPUTS, locations.FUTURES, locations.ERROR, locations.DECK} == {
        "inputs.pb",
        "futures.pb",
        "error.pb",
        "deck.html",
    }
    raw = locations.raw_data_prefix("file:///data/raw/", "proj", "development", "abc123", "n1", 0)
    assert raw == "file:///data/raw/proj/development/abc123/n1/attempt-0/"
    assert locations.raw_data_prefix("/r", "p", "d", "e") == "/r/p/d/e/"


@pytest.mark.parametrize(
    "segment",
    [
        "..",
        "a/../b",
        "../../etc/passwd",
        "/etc/passwd",
        "a//b",
        "",
        ".",
        "a\\b",
        "..\\x",
        "a\x00b",
        "x/./y",
    ],
)
def test_escaping_segments_are_refused(segment: str) -> None:
    with pytest.raises(PathEscapeError):
        locations.join(BASE, "ok", segment)


def test_identifiers_must_be_single_components() -> None:
    with pytest.raises(PathEscapeError, match="project 'a/b' must not contain '/'"):
        locations.execution_prefix(BASE, "a/b", "d", "e")
    with pytest.raises(PathEscapeError):
        locations.execution_prefix(BASE, "p", "..", "e")
    with pytest.raises(PathEscapeError, match="reserved for attempt directories"):
        locations.node_prefix(BASE + "/", "n0/attempt-1")
    with pytest.raises(PathEscapeError):
        locations.node_prefix(BASE + "/", "")
    with pytest.raises(ValueError, match="non-negative"):
        locations.attempt_prefix(BASE + "/", -1)


def test_error_names_the_offending_segment() -> None:
    with pytest.raises(PathEscapeError, match=r"'\.\.' in 'a/\.\./b'"):
        locations.join(BASE, "a/../b")
