"""CreateArtifact's edges: skipped inserts, taken tags, nothing written on failure, races."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from caddis._serving.errors import AlreadyExistsError
from caddis.storage import BlobStore, StorageConfig, get_store
from caddis_datacatalog.manager.catalog import (
    ArtifactHandle,
    CatalogManager,
    CatalogSettings,
    PageRequest,
)
from caddis_datacatalog.repository.database import Database
from caddis_idl.datacatalog.v1 import datacatalog_pb2 as dc
from tests.datacatalog.helpers import artifact, create_dataset_request, dataset_id

_RACERS = 6


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return get_store(f"file://{tmp_path / 'blobs'}", StorageConfig(local_root=str(tmp_path)))


@pytest.fixture
def manager(database: Database, tmp_path: Path, store: BlobStore) -> CatalogManager:
    settings = CatalogSettings(data_prefix=f"file://{tmp_path / 'blobs'}", inline_limit_bytes=64)
    manager = CatalogManager(settings, store, clock=lambda: dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    database.run(lambda r: manager.create_dataset(r, create_dataset_request().dataset))
    return manager


def _create(database: Database, manager: CatalogManager, art: dc.Artifact) -> None:
    database.run(lambda r: manager.create_artifact(r, art))


def _owner(database: Database, manager: CatalogManager, tag: str) -> str:
    handle = ArtifactHandle(tag_name=tag)
    return database.run(lambda r: manager.get_artifact(r, dataset_id(), handle), write=False).id


def _artifacts(database: Database, manager: CatalogManager) -> dict[str, list[str]]:
    page = PageRequest(limit=100, token="", ascending=True)
    listed, _ = database.run(lambda r: manager.list_artifacts(r, dataset_id(), [], page))
    return {a.id: sorted(t.name for t in a.tags) for a in listed}


def test_identical_recreate_adds_the_missing_tags(
    database: Database, manager: CatalogManager
) -> None:
    _create(database, manager, artifact("a1", tags=("h1",)))
    _create(database, manager, artifact("a1", tags=("h1", "h2", "h3", "h2")))
    assert _artifacts(database, manager) == {"a1": ["h1", "h2", "h3"]}
    _create(database, manager, artifact("a1"))  # no tags: nothing to add
    assert _artifacts(database, manager) == {"a1": ["h1", "h2", "h3"]}


def test_identical_recreate_with_a_tag_of_another_artifact_writes_nothing(
    database: Database, manager: CatalogManager
) -> None:
    _create(database, manager, artifact("a1", tags=("h1",)))
    _create(database, manager, artifact("a2", value=2, tags=("x",)))
    with pytest.raises(AlreadyExistsError, match=r"tag 'x' .* already points at artifact 'a2'"):
        _create(database, manager, artifact("a1", tags=("h4", "x", "h5")))
    # h4 was inserted before x was found taken: rolled back with the rest.
    assert _artifacts(database, manager) == {"a1": ["h1"], "a2": ["x"]}


def test_new_artifact_with_a_taken_tag_writes_nothing(
    database: Database, manager: CatalogManager, store: BlobStore, tmp_path: Path
) -> None:
    prefix = f"file://{tmp_path / 'blobs'}"
    _create(database, manager, artifact("a1", big="x" * 500, tags=("h",)))
    blobs = list(store.list(prefix))
    assert len(blobs) == 1
    taken = artifact("a2", value=2, big="y" * 500, tags=("new", "h"))
    with pytest.raises(AlreadyExistsError, match=r"tag 'h' .* already points at artifact 'a1'"):
        _create(database, manager, taken)
    assert _artifacts(database, manager) == {"a1": ["h"]}
    assert list(store.list(prefix)) == blobs  # the loser's value was never offloaded
    # The failed call left nothing behind that stops a correct one.
    _create(database, manager, artifact("a2", value=2, big="y" * 500, tags=("new",)))
    assert _artifacts(database, manager) == {"a1": ["h"], "a2": ["new"]}


def _race(work: Callable[[int], None]) -> list[BaseException | None]:
    start = threading.Barrier(_RACERS)
    outcome: list[BaseException | None] = [None] * _RACERS

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as error:  # recorded for the assertions
            outcome[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(_RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcome


def test_racing_creators_of_one_tag_exactly_one_owns_it(
    database: Database, manager: CatalogManager
) -> None:
    outcome = _race(lambda i: _create(database, manager, artifact(f"a{i}", value=i, tags=("t",))))
    winners = [i for i, error in enumerate(outcome) if error is None]
    assert len(winners) == 1, outcome
    assert all(isinstance(e, AlreadyExistsError) for e in outcome if e is not None), outcome
    assert _owner(database, manager, "t") == f"a{winners[0]}"
    # The losers' artifacts were rolled back with their failed tags.
    assert _artifacts(database, manager) == {f"a{winners[0]}": ["t"]}


def test_racing_identical_creators_all_succeed_with_one_artifact(
    database: Database, manager: CatalogManager
) -> None:
    outcome = _race(
        lambda i: _create(database, manager, artifact("a1", big="z" * 500, tags=("t", f"u{i}")))
    )
    assert outcome == [None] * _RACERS
    tags = sorted(["t"] + [f"u{i}" for i in range(_RACERS)])
    assert _artifacts(database, manager) == {"a1": tags}
    assert _owner(database, manager, "u3") == "a1"


def test_racing_add_tag_to_different_artifacts_exactly_one_wins(
    database: Database, manager: CatalogManager
) -> None:
    for i in range(_RACERS):
        _create(database, manager, artifact(f"a{i}", value=i))

    def add(i: int) -> None:
        tag = dc.Tag(name="t", artifact_id=f"a{i}", dataset=dataset_id())
        database.run(lambda r: manager.add_tag(r, tag))

    outcome = _race(add)
    winners = [i for i, error in enumerate(outcome) if error is None]
    assert len(winners) == 1, outcome
    assert all(isinstance(e, AlreadyExistsError) for e in outcome if e is not None), outcome
    assert _owner(database, manager, "t") == f"a{winners[0]}"
    # Repointing moves it; adding it again to its artifact is a no-op.
    other = (winners[0] + 1) % _RACERS
    moved = dc.Tag(name="t", artifact_id=f"a{other}", dataset=dataset_id())
    database.run(lambda r: manager.add_tag(r, moved, repoint=True))
    database.run(lambda r: manager.add_tag(r, moved))
    assert _owner(database, manager, "t") == f"a{other}"
    assert sum(tags == ["t"] for tags in _artifacts(database, manager).values()) == 1


def test_update_artifact_replaces_values_keeps_the_rest_and_moves_the_digest(
    database: Database, manager: CatalogManager, store: BlobStore, tmp_path: Path
) -> None:
    prefix = f"file://{tmp_path / 'blobs'}"
    database.run(lambda r: manager.delete_dataset(r, dataset_id()))
    request = create_dataset_request(partition_keys=("region",))
    database.run(lambda r: manager.create_dataset(r, request.dataset))
    _create(
        database, manager, artifact("a1", big="x" * 500, tags=("h",), partitions={"region": "eu"})
    )
    old_blobs = list(store.list(prefix))
    new = artifact("a1", value=5, big="n" * 500, tags=("h",), partitions={"region": "eu"})
    handle = ArtifactHandle(tag_name="h")
    updated = database.run(
        lambda r: manager.update_artifact(r, dataset_id(), handle, new.data, None)
    )
    assert updated == "a1"
    got = database.run(lambda r: manager.get_artifact(r, dataset_id(), handle), write=False)
    assert list(got.data) == list(new.data)
    assert got.metadata.key_map == {"who": "test"}  # kept: none given
    assert [(p.key, p.value) for p in got.partitions] == [("region", "eu")]
    blobs = list(store.list(prefix))
    assert len(blobs) == 1 and blobs != old_blobs  # the replaced value's blob is gone
    # The digest follows the new content: re-creating it is idempotent, the old one conflicts.
    _create(database, manager, new)
    with pytest.raises(AlreadyExistsError, match="different content"):
        _create(database, manager, artifact("a1", big="x" * 500, partitions={"region": "eu"}))


def test_racing_updates_of_one_artifact_leave_one_of_them(
    database: Database, manager: CatalogManager, store: BlobStore, tmp_path: Path
) -> None:
    _create(database, manager, artifact("a1", big="x" * 500, tags=("h",)))
    handle = ArtifactHandle(artifact_id="a1")

    def update(i: int) -> None:
        data = artifact("a1", value=i, big=f"{i}" * 500).data
        database.run(lambda r: manager.update_artifact(r, dataset_id(), handle, data, None))

    assert _race(update) == [None] * _RACERS
    got = database.run(lambda r: manager.get_artifact(r, dataset_id(), handle), write=False)
    i = got.data[0].value.scalar.primitive.integer
    assert list(got.data) == list(artifact("a1", value=i, big=f"{i}" * 500).data)
    assert len(list(store.list(f"file://{tmp_path / 'blobs'}"))) == 1
