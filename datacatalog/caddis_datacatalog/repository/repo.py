"""Queries and writes of the datacatalog, bound to one session (one transaction).

Methods may ``flush`` but never commit: the transaction belongs to the caller
(:meth:`caddis_datacatalog.repository.database.Database.run`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from caddis_datacatalog.repository.lookup import LookupStatement
from caddis_datacatalog.repository.models import (
    ArtifactDataRow,
    ArtifactRow,
    DatasetRow,
    PartitionRow,
    ReservationRow,
    TagRow,
)
from caddis_datacatalog.repository.pagination import PageCursor
from caddis_datacatalog.repository.views import (
    ArtifactState,
    ArtifactView,
    DataRecord,
    DatasetKey,
    DatasetRef,
    DataView,
    ReservationView,
    TagOwner,
)

# SQLite allows 32766 bound parameters; stay far below it in IN (...) lists.
_CHUNK = 500

RawExecute = Callable[[str, Any], Sequence[Sequence[Any]]]
"""Runs one driver-level statement outside any transaction and returns its rows."""

# The write path of CreateArtifact runs Core statements on the session's connection: no unit
# of work, no identity map, no ORM loading (which cost most of its time). Built once; their
# compiled forms are cached by the engine.
_DATASETS = cast(sa.Table, DatasetRow.__table__)
_ARTIFACTS = cast(sa.Table, ArtifactRow.__table__)
_DATA = cast(sa.Table, ArtifactDataRow.__table__)
_PARTITIONS = cast(sa.Table, PartitionRow.__table__)
_TAGS = cast(sa.Table, TagRow.__table__)

_SELECT_DATASET_REF = sa.select(_DATASETS.c.id, _DATASETS.c.partition_keys).where(
    _DATASETS.c.project == sa.bindparam("project"),
    _DATASETS.c.domain == sa.bindparam("domain"),
    _DATASETS.c.name == sa.bindparam("name"),
    _DATASETS.c.version == sa.bindparam("version"),
)
_SELECT_ARTIFACT_DIGEST = sa.select(_ARTIFACTS.c.id, _ARTIFACTS.c.content_digest).where(
    _ARTIFACTS.c.dataset_id == sa.bindparam("dataset_id"),
    _ARTIFACTS.c.artifact_id == sa.bindparam("artifact_id"),
)
_SELECT_TAG_OWNERS = (
    sa.select(_TAGS.c.name, _TAGS.c.artifact_pk, _ARTIFACTS.c.artifact_id)
    .join_from(_TAGS, _ARTIFACTS, _TAGS.c.artifact_pk == _ARTIFACTS.c.id)
    .where(
        _TAGS.c.dataset_id == sa.bindparam("dataset_id"),
        _TAGS.c.name.in_(sa.bindparam("names", expanding=True)),
    )
)
_RESERVATIONS = cast(sa.Table, ReservationRow.__table__)
_RESERVATION_KEY = (
    _RESERVATIONS.c.project == sa.bindparam("b_project"),
    _RESERVATIONS.c.domain == sa.bindparam("b_domain"),
    _RESERVATIONS.c.name == sa.bindparam("b_name"),
    _RESERVATIONS.c.version == sa.bindparam("b_version"),
    _RESERVATIONS.c.tag_name == sa.bindparam("b_tag_name"),
)
# Takes the row over when the caller owns it or the lease lapsed; the WHERE is re-checked on
# the locked row, so of racing callers exactly one takes over a lapsed lease.
_TAKE_RESERVATION = (
    sa.update(_RESERVATIONS)
    .where(
        *_RESERVATION_KEY,
        sa.or_(
            _RESERVATIONS.c.owner_id == sa.bindparam("b_owner_id"),
            _RESERVATIONS.c.expires_at < sa.bindparam("b_now"),
        ),
    )
    .values(
        owner_id=sa.bindparam("b_owner_id"),
        heartbeat_ms=sa.bindparam("b_heartbeat_ms"),
        expires_at=sa.bindparam("b_expires_at"),
    )
    .returning(*_RESERVATIONS.c)
)
_SELECT_RESERVATION = sa.select(*_RESERVATIONS.c).where(*_RESERVATION_KEY)
_ARTIFACT_STATE_COLUMNS = (
    _ARTIFACTS.c.id,
    _ARTIFACTS.c.artifact_id,
    _ARTIFACTS.c.metadata,
    _ARTIFACTS.c.source_execution,
)
_SELECT_ARTIFACT_STATE_BY_ID = sa.select(*_ARTIFACT_STATE_COLUMNS).where(
    _ARTIFACTS.c.dataset_id == sa.bindparam("dataset_id"),
    _ARTIFACTS.c.artifact_id == sa.bindparam("handle"),
)
_SELECT_ARTIFACT_STATE_BY_TAG = (
    sa.select(*_ARTIFACT_STATE_COLUMNS)
    .join_from(_TAGS, _ARTIFACTS, _TAGS.c.artifact_pk == _ARTIFACTS.c.id)
    .where(_TAGS.c.dataset_id == sa.bindparam("dataset_id"), _TAGS.c.name == sa.bindparam("handle"))
)
_SELECT_PARTITIONS = sa.select(_PARTITIONS.c.key, _PARTITIONS.c.value).where(
    _PARTITIONS.c.artifact_pk == sa.bindparam("artifact_pk")
)
# Locks the artifact's row first, so that concurrent replacements of its values queue.
_SET_ARTIFACT_DIGEST = (
    sa.update(_ARTIFACTS)
    .where(_ARTIFACTS.c.id == sa.bindparam("b_pk"))
    .values(content_digest=sa.bindparam("b_digest"))
)
_SET_ARTIFACT_DIGEST_AND_METADATA = _SET_ARTIFACT_DIGEST.values(
    metadata=sa.bindparam("b_metadata", type_=_ARTIFACTS.c.metadata.type)
)
_DELETE_DATA = (
    sa.delete(_DATA)
    .where(_DATA.c.artifact_pk == sa.bindparam("artifact_pk"))
    .returning(_DATA.c.location)
)
_INSERT_DATA = sa.insert(_DATA)
_INSERT_PARTITIONS = sa.insert(_PARTITIONS)
_INSERT_TAGS = sa.insert(_TAGS)
_REPOINT_TAG = (
    sa.update(_TAGS)
    .where(
        _TAGS.c.dataset_id == sa.bindparam("b_dataset_id"),
        _TAGS.c.name == sa.bindparam("b_name"),
    )
    .values(artifact_pk=sa.bindparam("b_artifact_pk"), created_at=sa.bindparam("b_created_at"))
)


@dataclass(frozen=True)
class EvictionResult:
    """What a deletion removed.

    Attributes:
        artifacts: Number of artifacts deleted.
        tags: Number of tags deleted with them.
        locations: Blob URIs of the deleted artifacts' offloaded values.
    """

    artifacts: int
    tags: int
    locations: list[str]


class CatalogRepository:
    """Datacatalog persistence over one transaction (or one read).

    Args:
        session: A session inside an open transaction, or a callable that opens one when it is
            first needed (reads that may never need one: the cache lookup does not).
        after_commit: Where :meth:`after_commit` callbacks are collected; the transaction
            owner runs them once the transaction committed.
        lookup: The cache-lookup statement compiled for this database.
        raw: Runs the single-statement lookup straight on a driver connection, outside a
            transaction; ``None`` runs it on the session's connection.
    """

    def __init__(
        self,
        session: Session | Callable[[], Session],
        after_commit: list[Callable[[], None]],
        *,
        lookup: LookupStatement,
        raw: RawExecute | None = None,
    ) -> None:
        if isinstance(session, Session):
            self._session: Session | None = session
            self._open: Callable[[], Session] | None = None
        else:
            self._session = None
            self._open = session
        self._after_commit = after_commit
        self._lookup = lookup
        self._raw = raw

    @property
    def _s(self) -> Session:
        session = self._session
        if session is None:
            assert self._open is not None
            session = self._session = self._open()
        return session

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the transaction that an exception rolls back alone (a SAVEPOINT).

        Used to record many artifacts in one transaction, each succeeding or failing on its
        own. The exception propagates; the transaction goes on.
        """
        with self._s.begin_nested():
            yield

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the transaction commits (never if it rolls back).

        Used for side effects outside the database, such as deleting blobs of evicted
        artifacts, that must not happen when the deletion itself is rolled back.
        """
        self._after_commit.append(callback)

    # ---------------------------------------------------------------- datasets

    def get_dataset(self, key: DatasetKey) -> DatasetRow | None:
        """The dataset with this key, or ``None``."""
        stmt = sa.select(DatasetRow).where(
            DatasetRow.project == key.project,
            DatasetRow.domain == key.domain,
            DatasetRow.name == key.name,
            DatasetRow.version == key.version,
        )
        return self._s.execute(stmt).scalar_one_or_none()

    def add_dataset(self, row: DatasetRow) -> DatasetRow:
        """Insert a dataset (flushes, so a duplicate key fails here)."""
        self._s.add(row)
        self._s.flush()
        return row

    def list_datasets(
        self,
        *,
        equals: dict[str, str],
        limit: int,
        cursor: PageCursor | None,
        ascending: bool,
    ) -> list[DatasetRow]:
        """Datasets matching every ``column == value`` in ``equals``, one page.

        Args:
            equals: Conditions on ``project``, ``domain``, ``name``, ``version``.
            limit: Page size.
            cursor: Where the previous page ended, or ``None`` for the first page.
            ascending: Oldest first instead of newest first.

        Returns:
            Up to ``limit`` rows in (created_at, id) order.
        """
        stmt = sa.select(DatasetRow)
        for column, value in equals.items():
            stmt = stmt.where(getattr(DatasetRow, column) == value)
        stmt = _page(stmt, DatasetRow.created_at, DatasetRow.id, cursor, ascending, limit)
        return list(self._s.execute(stmt).scalars())

    def delete_dataset(self, dataset: DatasetRow) -> EvictionResult:
        """Delete a dataset with its artifacts, tags and reservations."""
        pks = list(
            self._s.execute(
                sa.select(ArtifactRow.id).where(ArtifactRow.dataset_id == dataset.id)
            ).scalars()
        )
        result = self._delete_artifacts(pks)
        self._s.execute(
            sa.delete(ReservationRow).where(
                ReservationRow.project == dataset.project,
                ReservationRow.domain == dataset.domain,
                ReservationRow.name == dataset.name,
                ReservationRow.version == dataset.version,
            )
        )
        self._s.execute(sa.delete(DatasetRow).where(DatasetRow.id == dataset.id))
        self._s.expunge(dataset)
        return result

    # ---------------------------------------------------------------- artifacts

    def get_artifact(self, dataset_id: int, artifact_id: str) -> ArtifactRow | None:
        """The artifact with this id in the dataset, or ``None``."""
        stmt = sa.select(ArtifactRow).where(
            ArtifactRow.dataset_id == dataset_id, ArtifactRow.artifact_id == artifact_id
        )
        return self._s.execute(stmt).scalar_one_or_none()

    def get_artifact_by_tag(self, dataset_id: int, tag_name: str) -> ArtifactRow | None:
        """The artifact the tag points at, or ``None`` when the tag does not exist."""
        stmt = (
            sa.select(ArtifactRow)
            .join(TagRow, TagRow.artifact_pk == ArtifactRow.id)
            .where(TagRow.dataset_id == dataset_id, TagRow.name == tag_name)
        )
        return self._s.execute(stmt).scalar_one_or_none()

    def lookup_artifact(
        self, key: DatasetKey, *, artifact_id: str | None = None, tag_name: str | None = None
    ) -> tuple[bool, ArtifactView | None]:
        """The artifact with this id or tag in the dataset, read in one statement.

        This is the cache lookup's hot path: one round trip reads the dataset, the artifact,
        its data, partitions and tags (see :mod:`caddis_datacatalog.repository.lookup`).

        Returns:
            Whether the dataset exists, and the artifact (``None`` when it does not exist).
        """
        by_tag = tag_name is not None
        sql, params = self._lookup.sql(
            key, (tag_name if by_tag else artifact_id) or "", by_tag=by_tag
        )
        if self._raw is not None:
            rows = self._raw(sql, params)
        else:
            rows = self._s.connection().exec_driver_sql(sql, params).all()
        return LookupStatement.decode(key, rows)

    def lookup_artifacts_by_tag(
        self, key: DatasetKey, tag_names: Sequence[str]
    ) -> tuple[bool, dict[str, ArtifactView]]:
        """The artifacts many tags of the dataset point at, read in one statement.

        The batch form of :meth:`lookup_artifact` (a map task's item lookups).

        Returns:
            Whether the dataset exists, and the artifacts found by tag name (a tag without an
            artifact is absent).
        """
        sql, params = self._lookup.batch_sql(key, tag_names)
        if self._raw is not None:
            rows = self._raw(sql, params)
        else:
            rows = self._s.connection().exec_driver_sql(sql, params).all()
        return LookupStatement.decode_batch(key, rows)

    def get_dataset_ref(self, key: DatasetKey) -> DatasetRef | None:
        """The row id and partition keys of the dataset with this key, or ``None``."""
        row = (
            self._s.connection()
            .execute(
                _SELECT_DATASET_REF,
                {
                    "project": key.project,
                    "domain": key.domain,
                    "name": key.name,
                    "version": key.version,
                },
            )
            .first()
        )
        return None if row is None else DatasetRef(row[0], list(row[1] or ()))

    def insert_artifact(
        self,
        dataset_id: int,
        artifact_id: str,
        *,
        metadata: dict[str, str],
        source_execution: bytes,
        content_digest: str,
        created_at: dt.datetime,
    ) -> int | None:
        """Insert an artifact row unless one with this id exists in the dataset.

        One ``INSERT ... ON CONFLICT (dataset_id, artifact_id) DO NOTHING RETURNING id``: on
        PostgreSQL a concurrent insert of the same id waits for the other transaction and
        yields to it when it commits.

        Returns:
            The new row's id, or ``None`` when the artifact already exists.
        """
        row = (
            self._s.connection()
            .execute(
                _statements(self._dialect()).insert_artifact,
                {
                    "dataset_id": dataset_id,
                    "artifact_id": artifact_id,
                    "metadata": metadata,
                    "source_execution": source_execution,
                    "content_digest": content_digest,
                    "created_at": created_at,
                },
            )
            .first()
        )
        return None if row is None else int(row[0])

    def get_artifact_digest(self, dataset_id: int, artifact_id: str) -> tuple[int, str] | None:
        """The row id and content digest of an artifact, or ``None`` when it does not exist."""
        row = (
            self._s.connection()
            .execute(
                _SELECT_ARTIFACT_DIGEST, {"dataset_id": dataset_id, "artifact_id": artifact_id}
            )
            .first()
        )
        return None if row is None else (int(row[0]), str(row[1]))

    def insert_artifact_values(
        self,
        artifact_pk: int,
        data: Sequence[DataRecord],
        partitions: Sequence[tuple[str, str]],
    ) -> None:
        """Insert the values and partitions of a new artifact (one statement each)."""
        conn = self._s.connection()
        if data:
            conn.execute(
                _INSERT_DATA,
                [
                    {
                        "artifact_pk": artifact_pk,
                        "name": d.name,
                        "position": d.position,
                        "inline_value": d.inline_value,
                        "location": d.location,
                        "size_bytes": d.size_bytes,
                    }
                    for d in data
                ],
            )
        if partitions:
            conn.execute(
                _INSERT_PARTITIONS,
                [{"artifact_pk": artifact_pk, "key": k, "value": v} for k, v in partitions],
            )

    def get_artifact_state(
        self, dataset_id: int, *, artifact_id: str | None = None, tag_name: str | None = None
    ) -> ArtifactState | None:
        """The artifact with this id (or that this tag points at), or ``None``."""
        by_tag = tag_name is not None
        conn = self._s.connection()
        row = conn.execute(
            _SELECT_ARTIFACT_STATE_BY_TAG if by_tag else _SELECT_ARTIFACT_STATE_BY_ID,
            {"dataset_id": dataset_id, "handle": (tag_name if by_tag else artifact_id) or ""},
        ).first()
        if row is None:
            return None
        pk = int(row[0])
        partitions = [(k, v) for k, v in conn.execute(_SELECT_PARTITIONS, {"artifact_pk": pk})]
        return ArtifactState(pk, row[1], dict(row[2] or {}), bytes(row[3] or b""), partitions)

    def replace_artifact_data(
        self,
        artifact_pk: int,
        data: Sequence[DataRecord],
        metadata: dict[str, str] | None,
        content_digest: str,
    ) -> list[str]:
        """Replace all values (and optionally metadata) of an artifact.

        Returns:
            Blob locations of the replaced values (for deletion after commit).
        """
        conn = self._s.connection()
        params: dict[str, Any] = {"b_pk": artifact_pk, "b_digest": content_digest}
        if metadata is None:
            conn.execute(_SET_ARTIFACT_DIGEST, params)
        else:
            conn.execute(_SET_ARTIFACT_DIGEST_AND_METADATA, {**params, "b_metadata": metadata})
        old = [loc for (loc,) in conn.execute(_DELETE_DATA, {"artifact_pk": artifact_pk}) if loc]
        self.insert_artifact_values(artifact_pk, data, ())
        return old

    def list_artifacts(
        self,
        dataset_id: int,
        *,
        tag_names: Iterable[str] = (),
        partitions: Iterable[tuple[str, str]] = (),
        artifact_ids: Iterable[str] = (),
        limit: int,
        cursor: PageCursor | None,
        ascending: bool,
    ) -> list[ArtifactRow]:
        """Artifacts of a dataset matching all conditions, one page.

        Args:
            dataset_id: Row id of the dataset.
            tag_names: Each must be a tag pointing at the artifact.
            partitions: Each (key, value) must be a partition of the artifact.
            artifact_ids: Each must equal the artifact id.
            limit: Page size.
            cursor: Where the previous page ended, or ``None``.
            ascending: Oldest first instead of newest first.

        Returns:
            Up to ``limit`` rows in (created_at, id) order.
        """
        stmt = sa.select(ArtifactRow).where(ArtifactRow.dataset_id == dataset_id)
        for tag in tag_names:
            stmt = stmt.where(
                sa.exists().where(
                    TagRow.artifact_pk == ArtifactRow.id,
                    TagRow.dataset_id == dataset_id,
                    TagRow.name == tag,
                )
            )
        for key, value in partitions:
            stmt = stmt.where(
                sa.exists().where(
                    PartitionRow.artifact_pk == ArtifactRow.id,
                    PartitionRow.key == key,
                    PartitionRow.value == value,
                )
            )
        for artifact_id in artifact_ids:
            stmt = stmt.where(ArtifactRow.artifact_id == artifact_id)
        stmt = _page(stmt, ArtifactRow.created_at, ArtifactRow.id, cursor, ascending, limit)
        return list(self._s.execute(stmt).scalars())

    def delete_artifact(self, artifact: ArtifactRow) -> EvictionResult:
        """Delete one artifact with its data, partitions and tags."""
        pk = artifact.id
        self._s.expunge(artifact)
        return self._delete_artifacts([pk])

    def evict_artifacts(
        self,
        created_before: dt.datetime,
        *,
        dataset_id: int | None = None,
        project: str | None = None,
        domain: str | None = None,
    ) -> EvictionResult:
        """Delete every artifact created before ``created_before`` within the given scope."""
        stmt = sa.select(ArtifactRow.id).where(ArtifactRow.created_at < created_before)
        if dataset_id is not None:
            stmt = stmt.where(ArtifactRow.dataset_id == dataset_id)
        elif project is not None or domain is not None:
            datasets = sa.select(DatasetRow.id)
            if project is not None:
                datasets = datasets.where(DatasetRow.project == project)
            if domain is not None:
                datasets = datasets.where(DatasetRow.domain == domain)
            stmt = stmt.where(ArtifactRow.dataset_id.in_(datasets))
        return self._delete_artifacts(list(self._s.execute(stmt).scalars()))

    def _delete_artifacts(self, pks: list[int]) -> EvictionResult:
        tags = 0
        locations: list[str] = []
        for start in range(0, len(pks), _CHUNK):
            chunk = pks[start : start + _CHUNK]
            locations.extend(
                loc
                for loc in self._s.execute(
                    sa.select(ArtifactDataRow.location).where(
                        ArtifactDataRow.artifact_pk.in_(chunk),
                        ArtifactDataRow.location.is_not(None),
                    )
                ).scalars()
                if loc
            )
            # Explicit deletes rather than relying on ON DELETE CASCADE alone: counts are
            # reported, and a SQLite connection without foreign keys still ends up clean.
            tags += _rowcount(
                self._s.execute(sa.delete(TagRow).where(TagRow.artifact_pk.in_(chunk)))
            )
            self._s.execute(sa.delete(PartitionRow).where(PartitionRow.artifact_pk.in_(chunk)))
            self._s.execute(
                sa.delete(ArtifactDataRow).where(ArtifactDataRow.artifact_pk.in_(chunk))
            )
            self._s.execute(sa.delete(ArtifactRow).where(ArtifactRow.id.in_(chunk)))
        # Rows loaded earlier in this session may describe deleted artifacts.
        self._s.expire_all()
        return EvictionResult(artifacts=len(pks), tags=tags, locations=locations)

    # ---------------------------------------------------------------- tags

    def insert_tags(
        self,
        dataset_id: int,
        names: Sequence[str],
        artifact_pk: int,
        created_at: dt.datetime,
        *,
        if_absent: bool = True,
    ) -> set[str]:
        """Insert tags pointing at an artifact, in one statement.

        Args:
            dataset_id: Row id of the dataset.
            names: The tag names (distinct).
            artifact_pk: Row id of the artifact they point at.
            created_at: Their creation time.
            if_absent: Skip the names that exist (``ON CONFLICT DO NOTHING``); otherwise an
                existing name fails the statement with an integrity error.

        Returns:
            The names inserted.
        """
        if not names:
            return set()
        params = [
            {
                "dataset_id": dataset_id,
                "name": n,
                "artifact_pk": artifact_pk,
                "created_at": created_at,
            }
            for n in names
        ]
        conn = self._s.connection()
        if not if_absent:
            conn.execute(_INSERT_TAGS, params)
            return set(names)
        stmt = _statements(self._dialect()).insert_tags
        return {r[0] for r in conn.execute(stmt, params)}

    def get_tag_owners(self, dataset_id: int, names: Sequence[str]) -> dict[str, TagOwner]:
        """The artifacts these tags point at, by tag name (absent tags are left out)."""
        if not names:
            return {}
        rows = self._s.connection().execute(
            _SELECT_TAG_OWNERS, {"dataset_id": dataset_id, "names": list(names)}
        )
        return {r[0]: TagOwner(int(r[1]), str(r[2])) for r in rows}

    def _dialect(self) -> str:
        return str(self._s.get_bind().dialect.name)

    def repoint_tag(
        self, dataset_id: int, name: str, artifact_pk: int, created_at: dt.datetime
    ) -> None:
        """Point an existing tag at another artifact of the same dataset."""
        self._s.connection().execute(
            _REPOINT_TAG,
            {
                "b_dataset_id": dataset_id,
                "b_name": name,
                "b_artifact_pk": artifact_pk,
                "b_created_at": created_at,
            },
        )

    # ---------------------------------------------------------------- reservations

    def get_or_extend_reservation(
        self,
        key: DatasetKey,
        tag_name: str,
        owner_id: str,
        *,
        heartbeat_ms: int,
        now: dt.datetime,
        expires_at: dt.datetime,
    ) -> ReservationView:
        """Grant, extend or report the reservation of one tag, safely under concurrency.

        One conditional ``UPDATE ... RETURNING`` takes the row over when the caller already
        owns it or the lease expired; otherwise an ``INSERT ... ON CONFLICT DO NOTHING
        RETURNING`` creates it when it does not exist. When neither wrote (someone else holds
        a live lease), the row is read. The primary key makes concurrent inserts collide, and the
        ``WHERE`` of the update re-checks the condition on the locked row, so exactly one
        caller is granted a free reservation.

        Returns:
            The reservation as it stands; its ``owner_id`` tells whether the caller holds it.
        """
        conn = self._s.connection()
        params = {
            "b_project": key.project,
            "b_domain": key.domain,
            "b_name": key.name,
            "b_version": key.version,
            "b_tag_name": tag_name,
            "b_owner_id": owner_id,
            "b_heartbeat_ms": heartbeat_ms,
            "b_expires_at": expires_at,
            "b_now": now,
        }
        for _ in range(3):
            row = conn.execute(_TAKE_RESERVATION, params).first()
            if row is None:
                row = conn.execute(
                    _statements(self._dialect()).insert_reservation,
                    {
                        "project": key.project,
                        "domain": key.domain,
                        "name": key.name,
                        "version": key.version,
                        "tag_name": tag_name,
                        "owner_id": owner_id,
                        "heartbeat_ms": heartbeat_ms,
                        "expires_at": expires_at,
                        "metadata": {},
                    },
                ).first()
            if row is None:
                # Someone else holds a live lease: report it.
                row = conn.execute(_SELECT_RESERVATION, params).first()
            if row is not None:
                return _reservation_view(row)
            # Released between our insert attempt and the read: try again.
        raise RuntimeError("reservation kept disappearing under concurrent release")

    def release_reservation(self, key: DatasetKey, tag_name: str, owner_id: str) -> bool:
        """Delete the reservation if ``owner_id`` holds it; True when something was deleted."""
        result = self._s.execute(
            sa.delete(ReservationRow).where(
                ReservationRow.project == key.project,
                ReservationRow.domain == key.domain,
                ReservationRow.name == key.name,
                ReservationRow.version == key.version,
                ReservationRow.tag_name == tag_name,
                ReservationRow.owner_id == owner_id,
            )
        )
        return _rowcount(result) > 0


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _reservation_view(row: Any) -> ReservationView:
    m = row._mapping
    return ReservationView(
        project=m["project"],
        domain=m["domain"],
        name=m["name"],
        version=m["version"],
        tag_name=m["tag_name"],
        owner_id=m["owner_id"],
        heartbeat_ms=int(m["heartbeat_ms"]),
        expires_at=m["expires_at"],
        metadata_json=dict(m["metadata"] or {}),
    )


@dataclass(frozen=True)
class _Statements:
    insert_artifact: Any
    insert_tags: Any
    insert_reservation: Any


@functools.cache
def _statements(dialect: str) -> _Statements:
    insert = _insert(dialect)
    return _Statements(
        insert_artifact=insert(_ARTIFACTS)
        .on_conflict_do_nothing(index_elements=["dataset_id", "artifact_id"])
        .returning(_ARTIFACTS.c.id),
        insert_tags=insert(_TAGS)
        .on_conflict_do_nothing(index_elements=["dataset_id", "name"])
        .returning(_TAGS.c.name),
        insert_reservation=insert(_RESERVATIONS)
        .on_conflict_do_nothing()
        .returning(*_RESERVATIONS.c),
    )


def _insert(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"datacatalog does not support the {dialect} database")


def _page(
    stmt: Any,
    created: Any,
    row_id: Any,
    cursor: PageCursor | None,
    ascending: bool,
    limit: int,
) -> Any:
    # Keyset pagination: stable under concurrent inserts, and O(page) however deep.
    if cursor is not None:
        if ascending:
            stmt = stmt.where(
                sa.or_(
                    created > cursor.created_at,
                    sa.and_(created == cursor.created_at, row_id > cursor.row_id),
                )
            )
        else:
            stmt = stmt.where(
                sa.or_(
                    created < cursor.created_at,
                    sa.and_(created == cursor.created_at, row_id < cursor.row_id),
                )
            )
    order = (created.asc(), row_id.asc()) if ascending else (created.desc(), row_id.desc())
    return stmt.order_by(*order).limit(limit)


__all__ = [
    "ArtifactView",
    "CatalogRepository",
    "DataRecord",
    "DataView",
    "DatasetKey",
    "DatasetRef",
    "EvictionResult",
    "RawExecute",
    "ReservationView",
    "TagOwner",
]
