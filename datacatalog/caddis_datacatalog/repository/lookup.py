"""The cache lookup as one SQL statement, run straight on the driver connection.

GetArtifact by tag is the datacatalog's hot path (every cached node asks it). It reads the
dataset, the artifact, its data, partitions and tags in a single statement, so a lookup is one
round trip to the database, and one statement is a consistent snapshot on its own (no
``BEGIN``/``COMMIT`` around it). The statement is built with SQLAlchemy Core once per dialect
and compiled to the driver's SQL; executing it skips SQLAlchemy's per-execution machinery,
which cost more than the query itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
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

_PARAMS = ("project", "domain", "name", "version", "handle")


def _statement(by_tag: bool) -> sa.CompoundSelect[Any]:
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
    if by_tag:
        hit = (
            sa.select(*head_columns)
            .select_from(ds.join(t, t.c.dataset_id == ds.c.id).join(a, a.c.id == t.c.artifact_pk))
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

    # Columns: kind, position, name, blob, text, metadata, created_at.
    return sa.union_all(
        sa.select(
            const(_DATASET).label("kind"),
            null(dv.c.position).label("position"),
            null(a.c.artifact_id).label("name"),
            null(a.c.source_execution).label("blob"),
            sa.cast(ds.c.uuid, sa.Text).label("text"),
            null(a.c.metadata).label("metadata"),
            null(a.c.created_at).label("created_at"),
        ).select_from(ds),
        sa.select(
            const(_ARTIFACT),
            null(dv.c.position),
            hit.c.artifact_id,
            hit.c.source_execution,
            null(dv.c.location),
            hit.c.metadata,
            hit.c.created_at,
        ).select_from(hit),
        sa.select(
            const(_DATA),
            dv.c.position,
            dv.c.name,
            dv.c.inline_value,
            dv.c.location,
            null(a.c.metadata),
            null(a.c.created_at),
        ).select_from(hit.join(dv, dv.c.artifact_pk == hit.c.id)),
        sa.select(
            const(_PARTITION),
            null(dv.c.position),
            p.c.key,
            null(a.c.source_execution),
            sa.cast(p.c.value, sa.Text),
            null(a.c.metadata),
            null(a.c.created_at),
        ).select_from(hit.join(p, p.c.artifact_pk == hit.c.id)),
        sa.select(
            const(_TAG),
            null(dv.c.position),
            t.c.name,
            null(a.c.source_execution),
            null(dv.c.location),
            null(a.c.metadata),
            null(a.c.created_at),
        ).select_from(hit.join(t, t.c.artifact_pk == hit.c.id)),
    )


class LookupStatement:
    """The lookup statement compiled for one dialect, with its parameter order and decoding.

    Args:
        dialect: The engine's dialect (SQLite or PostgreSQL).
    """

    def __init__(self, dialect: Dialect) -> None:
        self._positional = bool(dialect.positional)
        self._sql: dict[bool, tuple[str, tuple[str, ...]]] = {}
        for by_tag in (True, False):
            compiled = _statement(by_tag).compile(dialect=dialect)
            order = tuple(compiled.positiontup or ()) if self._positional else _PARAMS
            unknown = set(order) - set(_PARAMS)
            if unknown:
                raise AssertionError(f"lookup statement has unexpected parameters {unknown}")
            self._sql[by_tag] = (str(compiled), order)

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
        sql, order = self._sql[by_tag]
        values = {
            "project": key.project,
            "domain": key.domain,
            "name": key.name,
            "version": key.version,
            "handle": handle,
        }
        if self._positional:
            return sql, tuple(values[name] for name in order)
        return sql, values

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
        head: Sequence[Any] | None = None
        data: list[tuple[int, DataView]] = []
        partitions: list[tuple[str, str]] = []
        tags: list[str] = []
        for row in rows:
            kind = row[0]
            if kind == _DATA:
                data.append((row[1], DataView(row[2], _bytes(row[3]), row[4])))
            elif kind == _ARTIFACT:
                head = row
            elif kind == _DATASET:
                dataset_uuid = row[4]
            elif kind == _PARTITION:
                partitions.append((row[2], row[4]))
            else:
                tags.append(row[2])
        if dataset_uuid is None or head is None:
            return dataset_uuid is not None, None
        data.sort(key=lambda item: item[0])
        partitions.sort()
        tags.sort()
        metadata = head[5]
        created = head[6]
        if isinstance(created, str):  # SQLite keeps datetimes as ISO text
            created = dt.datetime.fromisoformat(created)
        return True, ArtifactView(
            artifact_id=head[2],
            dataset=key,
            dataset_uuid=dataset_uuid,
            metadata=json.loads(metadata) if isinstance(metadata, str | bytes) else metadata,
            source_execution=_bytes(head[3]) or b"",
            created_at=created.replace(tzinfo=dt.UTC),
            data=[view for _, view in data],
            partitions=partitions,
            tags=tags,
        )


def _bytes(value: Any) -> bytes | None:
    # psycopg may hand back memoryview for bytea; sqlite3 gives bytes.
    if value is None or isinstance(value, bytes):
        return value
    return bytes(value)


__all__ = ["LookupStatement"]
