"""The cache lookup as one SQL statement, run straight on the driver connection.

GetArtifact by tag is the datacatalog's hot path (every cached node asks it). It reads the
dataset, the artifact, its data, partitions and tags in a single statement, so a lookup is one
round trip to the database, and one statement is a consistent snapshot on its own (no
``BEGIN``/``COMMIT`` around it). The statement is built with SQLAlchemy Core once per dialect
and compiled to the driver's SQL; executing it skips SQLAlchemy's per-execution machinery,
which cost more than the query itself.

The batch form (GetArtifactsByTag, the lookup of a map task's items) is the same statement
with the tag condition widened to a list, passed as one parameter (an array on PostgreSQL, a
JSON text read with ``json_each`` on SQLite) so that one compiled statement serves any batch
size; every row then also names the tag that found it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from caddis_datacatalog.repository.models import (
    ArtifactDataRow,
    ArtifactRow,
    DatasetRow,
    PartitionRow,
    TagRow,
)
from caddis_datacatalog.repository.views import ArtifactView, DatasetKey, DataView

# Row kinds of the lookup statement, in the order they are sorted.
_DATASET, _ARTIFACT, _DATA, _PARTITION, _TAG = range(5)

_PARAMS = ("project", "domain", "name", "version", "handle", "handles")

# How a statement finds the artifact: one tag, one artifact id, or a list of tags.
_BY_TAG, _BY_ID, _BY_TAGS = "tag", "id", "tags"


def _tags_condition(name: sa.ColumnElement[str], dialect: str) -> sa.ColumnElement[bool]:
    # One parameter for the whole list, so the statement text (and PostgreSQL's prepared plan)
    # is the same for every batch size.
    if dialect == "postgresql":
        return name == sa.any_(sa.bindparam("handles", type_=postgresql.ARRAY(sa.String)))
    values: sa.Select[Any] = sa.select(sa.literal_column("value")).select_from(
        sa.func.json_each(sa.bindparam("handles", type_=sa.String))
    )
    return name.in_(values.scalar_subquery())


def _statement(mode: str, dialect: str) -> sa.CompoundSelect[Any]:
    d, a, t = DatasetRow.__table__, ArtifactRow.__table__, TagRow.__table__
    dv, p = ArtifactDataRow.__table__, PartitionRow.__table__
    ds = (
        sa.select(d.c.id, d.c.uuid)
        .where(
            d.c.project == sa.bindparam("project"),
            d.c.domain == sa.bindparam("domain"),
            d.c.name == sa.bindparam("name"),
            d.c.version == sa.bindparam("version"),
        )
        .cte("ds")
    )
    head_columns = (a.c.id, a.c.artifact_id, a.c.metadata, a.c.source_execution, a.c.created_at)
    batch = mode == _BY_TAGS
    if mode == _BY_TAG or batch:
        by_tags = ds.join(t, t.c.dataset_id == ds.c.id).join(a, a.c.id == t.c.artifact_pk)
        if batch:
            hit = (
                sa.select(*head_columns, t.c.name.label("lookup"))
                .select_from(by_tags)
                .where(_tags_condition(t.c.name, dialect))
                .cte("hit")
            )
        else:
            hit = (
                sa.select(*head_columns)
                .select_from(by_tags)
                .where(t.c.name == sa.bindparam("handle"))
                .cte("hit")
            )
    else:
        hit = (
            sa.select(*head_columns)
            .select_from(ds.join(a, a.c.dataset_id == ds.c.id))
            .where(a.c.artifact_id == sa.bindparam("handle"))
            .cte("hit")
        )

    def const(value: int) -> sa.ColumnElement[int]:
        # Rendered inline: no bound parameter to supply per call.
        return sa.literal_column(str(value), sa.Integer)

    def null(like: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        # Typed NULLs, so that PostgreSQL can type every column of the UNION.
        return sa.cast(sa.null(), like.type)

    def lookup(of_hit: bool) -> tuple[sa.ColumnElement[Any], ...]:
        # The batch statement's last column names the tag a row was found by.
        if not batch:
            return ()
        return (hit.c.lookup,) if of_hit else (null(t.c.name).label("lookup"),)

    # Columns: kind, position, name, blob, text, metadata, created_at[, lookup].
    return sa.union_all(
        sa.select(
            const(_DATASET).label("kind"),
            null(dv.c.position).label("position"),
            null(a.c.artifact_id).label("name"),
            null(a.c.source_execution).label("blob"),
            sa.cast(ds.c.uuid, sa.Text).label("text"),
            null(a.c.metadata).label("metadata"),
            null(a.c.created_at).label("created_at"),
            *lookup(of_hit=False),
        ).select_from(ds),
        sa.select(
            const(_ARTIFACT),
            null(dv.c.position),
            hit.c.artifact_id,
            hit.c.source_execution,
            null(dv.c.location),
            hit.c.metadata,
            hit.c.created_at,
            *lookup(of_hit=True),
        ).select_from(hit),
        sa.select(
            const(_DATA),
            dv.c.position,
            dv.c.name,
            dv.c.inline_value,
            dv.c.location,
            null(a.c.metadata),
            null(a.c.created_at),
            *lookup(of_hit=True),
        ).select_from(hit.join(dv, dv.c.artifact_pk == hit.c.id)),
        sa.select(
            const(_PARTITION),
            null(dv.c.position),
            p.c.key,
            null(a.c.source_execution),
            sa.cast(p.c.value, sa.Text),
            null(a.c.metadata),
            null(a.c.created_at),
            *lookup(of_hit=True),
        ).select_from(hit.join(p, p.c.artifact_pk == hit.c.id)),
        sa.select(
            const(_TAG),
            null(dv.c.position),
            t.c.name,
            null(a.c.source_execution),
            null(dv.c.location),
            null(a.c.metadata),
            null(a.c.created_at),
            *lookup(of_hit=True),
        ).select_from(hit.join(t, t.c.artifact_pk == hit.c.id)),
    )


class LookupStatement:
    """The lookup statement compiled for one dialect, with its parameter order and decoding.

    Args:
        dialect: The engine's dialect (SQLite or PostgreSQL).
    """

    def __init__(self, dialect: Dialect) -> None:
        self._positional = bool(dialect.positional)
        self._array = dialect.name == "postgresql"
        self._sql: dict[str, tuple[str, tuple[str, ...]]] = {}
        for mode in (_BY_TAG, _BY_ID, _BY_TAGS):
            compiled = _statement(mode, str(dialect.name)).compile(dialect=dialect)
            order = (
                tuple(compiled.positiontup or ())
                if self._positional
                else tuple(name for name in _PARAMS if name in compiled.binds)
            )
            unknown = set(order) - set(_PARAMS)
            if unknown:
                raise AssertionError(f"lookup statement has unexpected parameters {unknown}")
            self._sql[mode] = (str(compiled), order)

    def sql(
        self, key: DatasetKey, handle: str, *, by_tag: bool
    ) -> tuple[str, Sequence[Any] | Mapping[str, Any]]:
        """The SQL text and the driver parameters of one lookup.

        Args:
            key: The dataset.
            handle: The tag name (``by_tag``) or the artifact id.
            by_tag: Whether ``handle`` is a tag name.

        Returns:
            ``(sql, parameters)`` for ``cursor.execute``.
        """
        return self._bind(_BY_TAG if by_tag else _BY_ID, key, handle=handle)

    def batch_sql(
        self, key: DatasetKey, tag_names: Sequence[str]
    ) -> tuple[str, Sequence[Any] | Mapping[str, Any]]:
        """The SQL text and the driver parameters of a lookup of many tags.

        Args:
            key: The dataset.
            tag_names: The tags to look up.

        Returns:
            ``(sql, parameters)`` for ``cursor.execute``.
        """
        names = list(tag_names)
        return self._bind(_BY_TAGS, key, handles=names if self._array else json.dumps(names))

    def _bind(
        self, mode: str, key: DatasetKey, *, handle: str = "", handles: Any = None
    ) -> tuple[str, Sequence[Any] | Mapping[str, Any]]:
        sql, order = self._sql[mode]
        values = {
            "project": key.project,
            "domain": key.domain,
            "name": key.name,
            "version": key.version,
            "handle": handle,
            "handles": handles,
        }
        if self._positional:
            return sql, tuple(values[name] for name in order)
        return sql, {name: values[name] for name in order}

    @staticmethod
    def decode(key: DatasetKey, rows: Sequence[Sequence[Any]]) -> tuple[bool, ArtifactView | None]:
        """Turn the statement's rows into the artifact.

        Args:
            key: The dataset looked in.
            rows: What the driver returned.

        Returns:
            ``(dataset exists, artifact or None)``.
        """
        dataset_uuid: str | None = None
        found = _Found()
        for row in rows:
            if row[0] == _DATASET:
                dataset_uuid = row[4]
            else:
                found.add(row)
        if dataset_uuid is None or found.head is None:
            return dataset_uuid is not None, None
        return True, found.view(key, dataset_uuid)

    @staticmethod
    def decode_batch(
        key: DatasetKey, rows: Sequence[Sequence[Any]]
    ) -> tuple[bool, dict[str, ArtifactView]]:
        """Turn the batch statement's rows into the artifacts found, by the tag that found each.

        Args:
            key: The dataset looked in.
            rows: What the driver returned.

        Returns:
            ``(dataset exists, {tag name: artifact})``; a tag with no artifact is absent.
        """
        dataset_uuid: str | None = None
        found: dict[str, _Found] = {}
        for row in rows:
            if row[0] == _DATASET:
                dataset_uuid = row[4]
                continue
            tag = row[7]
            per_tag = found.get(tag)
            if per_tag is None:
                per_tag = found[tag] = _Found()
            per_tag.add(row)
        if dataset_uuid is None:
            return False, {}
        return True, {
            tag: per_tag.view(key, dataset_uuid)
            for tag, per_tag in found.items()
            if per_tag.head is not None
        }


class _Found:
    """The rows read for one artifact, gathered before they become its view."""

    __slots__ = ("data", "head", "partitions", "tags")

    def __init__(self) -> None:
        self.head: Sequence[Any] | None = None
        self.data: list[tuple[int, DataView]] = []
        self.partitions: list[tuple[str, str]] = []
        self.tags: list[str] = []

    def add(self, row: Sequence[Any]) -> None:
        kind = row[0]
        if kind == _DATA:
            self.data.append((row[1], DataView(row[2], _bytes(row[3]), row[4])))
        elif kind == _ARTIFACT:
            self.head = row
        elif kind == _PARTITION:
            self.partitions.append((row[2], row[4]))
        else:
            self.tags.append(row[2])

    def view(self, key: DatasetKey, dataset_uuid: str) -> ArtifactView:
        head = self.head
        assert head is not None
        self.data.sort(key=lambda item: item[0])
        self.partitions.sort()
        self.tags.sort()
        metadata = head[5]
        created = head[6]
        if isinstance(created, str):  # SQLite keeps datetimes as ISO text
            created = dt.datetime.fromisoformat(created)
        return ArtifactView(
            artifact_id=head[2],
            dataset=key,
            dataset_uuid=dataset_uuid,
            metadata=json.loads(metadata) if isinstance(metadata, str | bytes) else metadata,
            source_execution=_bytes(head[3]) or b"",
            created_at=created.replace(tzinfo=dt.UTC),
            data=[view for _, view in self.data],
            partitions=self.partitions,
            tags=self.tags,
        )


def _bytes(value: Any) -> bytes | None:
    # psycopg may hand back memoryview for bytea; sqlite3 gives bytes.
    if value is None or isinstance(value, bytes):
        return value
    return bytes(value)


__all__ = ["LookupStatement"]
