"""The datacatalog's logic: datasets, artifacts, tags, reservations and eviction.

Every method takes the :class:`CatalogRepository` of the caller's transaction as its first
argument and raises :mod:`caddis._serving.errors` for the caller to map to status codes.
Requests reaching here are already validated for presence and shape by the rpc layer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from caddis._serving.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from caddis.storage import BlobStore
from caddis_datacatalog.repository import transformers
from caddis_datacatalog.repository.models import ArtifactRow, DatasetRow
from caddis_datacatalog.repository.pagination import PageCursor
from caddis_datacatalog.repository.repo import (
    ArtifactView,
    CatalogRepository,
    DataRecord,
    DatasetKey,
    DatasetRef,
)
from caddis_idl.core.v1 import literals_pb2
from caddis_idl.datacatalog.v1 import datacatalog_pb2, datacatalog_service_pb2


@dataclass(frozen=True)
class CatalogSettings:
    """The manager's knobs (from :class:`caddis_datacatalog.config.DataCatalogConfig`).

    Attributes:
        data_prefix: Blob prefix for offloaded artifact values.
        inline_limit_bytes: Values up to this serialized size stay in the database.
        max_heartbeat_interval: Cap on a reservation's heartbeat interval.
        heartbeat_grace_multiplier: Heartbeats a reservation survives without extension.
        default_page_size: Page size when a list request gives none.
        max_page_size: Largest page a list request may ask for.
        max_batch_size: Most tags one batch lookup may ask for.
        batch_response_bytes: A batch lookup's answer stops after the result that reaches
            this size (the caller asks again for the rest), well below gRPC's 4 MiB message
            limit.
    """

    data_prefix: str
    inline_limit_bytes: int = 16 * 1024
    max_heartbeat_interval: dt.timedelta = dt.timedelta(seconds=10)
    heartbeat_grace_multiplier: float = 3.0
    default_page_size: int = 100
    max_page_size: int = 1000
    max_batch_size: int = 1000
    batch_response_bytes: int = 2 * 1024 * 1024


@dataclass(frozen=True)
class PageRequest:
    """Decoded pagination options of a list request."""

    limit: int
    token: str
    ascending: bool


@dataclass(frozen=True)
class ArtifactHandle:
    """Finds an artifact by id or by tag name (exactly one is set)."""

    artifact_id: str | None = None
    tag_name: str | None = None

    def describe(self) -> str:
        """For error messages: ``artifact 'x'`` or ``tag 'y'``."""
        if self.tag_name is not None:
            return f"tag {self.tag_name!r}"
        return f"artifact {self.artifact_id!r}"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def describe_dataset(key: DatasetKey) -> str:
    """``project/domain/name@version``, how datasets are named in messages."""
    return f"{key.project}/{key.domain}/{key.name}@{key.version}"


class CatalogManager:
    """Datacatalog operations over a repository and a blob store.

    Args:
        settings: Limits and the blob prefix.
        store: The blob store serving ``settings.data_prefix``.
        clock: Returns the current aware UTC time (injectable for tests).
    """

    def __init__(
        self,
        settings: CatalogSettings,
        store: BlobStore,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        self._store = store
        self._clock = clock

    # ------------------------------------------------------------ datasets

    def create_dataset(
        self, repo: CatalogRepository, dataset: datacatalog_pb2.Dataset
    ) -> datacatalog_pb2.Dataset:
        """Register a dataset.

        Raises:
            AlreadyExistsError: When a dataset with the same key exists.
        """
        key = transformers.dataset_key(dataset.id)
        if repo.get_dataset(key) is not None:
            raise AlreadyExistsError(f"dataset {describe_dataset(key)} already exists")
        row = repo.add_dataset(
            DatasetRow(
                uuid=str(uuid.uuid4()),
                project=key.project,
                domain=key.domain,
                name=key.name,
                version=key.version,
                metadata_json=dict(dataset.metadata.key_map),
                partition_keys=list(dataset.partition_keys),
                created_at=self._clock(),
            )
        )
        return transformers.dataset_proto(row)

    def get_dataset(
        self, repo: CatalogRepository, dataset_id: datacatalog_pb2.DatasetID
    ) -> datacatalog_pb2.Dataset:
        """Fetch a dataset.

        Raises:
            NotFoundError: When it does not exist.
        """
        return transformers.dataset_proto(self._dataset(repo, dataset_id))

    def list_datasets(
        self, repo: CatalogRepository, equals: dict[str, str], page: PageRequest
    ) -> tuple[list[datacatalog_pb2.Dataset], str]:
        """One page of datasets matching every ``column == value``.

        Returns:
            The datasets and the next page's token (empty on the last page).
        """
        limit = self._limit(page)
        rows = repo.list_datasets(
            equals=equals,
            limit=limit + 1,
            cursor=self._cursor(page),
            ascending=page.ascending,
        )
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            next_token = PageCursor(rows[-1].created_at, rows[-1].id, page.ascending).encode()
        return [transformers.dataset_proto(r) for r in rows], next_token

    def delete_dataset(
        self, repo: CatalogRepository, dataset_id: datacatalog_pb2.DatasetID
    ) -> None:
        """Evict a dataset with its artifacts, tags and reservations.

        Raises:
            NotFoundError: When it does not exist.
        """
        result = repo.delete_dataset(self._dataset(repo, dataset_id))
        self._delete_blobs_after_commit(repo, result.locations)

    # ------------------------------------------------------------ artifacts

    def create_artifact(self, repo: CatalogRepository, artifact: datacatalog_pb2.Artifact) -> None:
        """Record an artifact with its tags.

        Creating an artifact that exists with identical content (data, metadata, partitions,
        source) succeeds, adding any of the listed tags that are missing, so that a retried
        call is harmless.

        Raises:
            NotFoundError: When the dataset does not exist.
            InvalidArgumentError: When a partition key is not one of the dataset's.
            AlreadyExistsError: When the id exists with different content, or a listed tag
                points at another artifact.
        """
        key = transformers.dataset_key(artifact.dataset)
        dataset = _dataset_ref(repo, key)
        allowed = set(dataset.partition_keys)
        for i, partition in enumerate(artifact.partitions):
            if partition.key not in allowed:
                raise InvalidArgumentError(
                    f"partition key {partition.key!r} is not declared by dataset "
                    f"{describe_dataset(key)} (declared: {sorted(allowed)})",
                    field=f"artifact.partitions[{i}].key",
                )
        partitions = [(p.key, p.value) for p in artifact.partitions]
        source = (
            _serialize(artifact.source_execution) if artifact.HasField("source_execution") else b""
        )
        digest = _content_digest(artifact.data, artifact.metadata.key_map, partitions, source)
        tag_names = list(dict.fromkeys(t.name for t in artifact.tags))
        now = self._clock()
        for _ in range(3):
            # Optimistic: the artifact is usually new, and inserting it is what tells.
            pk = repo.insert_artifact(
                dataset.id,
                artifact.id,
                metadata=dict(artifact.metadata.key_map),
                source_execution=source,
                content_digest=digest,
                created_at=now,
            )
            if pk is not None:
                # Tags before values: a tag pointing at another artifact fails the call (and
                # rolls the transaction back) before any blob is written.
                self._add_tags(repo, dataset.id, key, pk, tag_names, now)
                data = self._store_data(key, artifact.id, artifact.data)
                repo.insert_artifact_values(pk, data, partitions)
                return
            existing = repo.get_artifact_digest(dataset.id, artifact.id)
            if existing is not None:
                existing_pk, existing_digest = existing
                if existing_digest != digest:
                    raise AlreadyExistsError(
                        f"artifact {artifact.id!r} already exists in dataset "
                        f"{describe_dataset(key)} with different content; use a new artifact "
                        "id or UpdateArtifact to replace its data"
                    )
                self._add_tags(repo, dataset.id, key, existing_pk, tag_names, now)
                return
            # Deleted by a concurrent transaction between the insert and the read: again.
        raise RuntimeError(f"artifact {artifact.id!r} kept disappearing under concurrent deletes")

    def create_artifacts(
        self, repo: CatalogRepository, artifacts: Sequence[datacatalog_pb2.Artifact]
    ) -> datacatalog_service_pb2.CreateArtifactsResponse:
        """Record many artifacts in one transaction, each succeeding or failing on its own.

        Each artifact is recorded as :meth:`create_artifact` records it, inside a savepoint:
        one that fails (its id exists with other content, a tag is taken, its dataset is
        missing, a partition key is undeclared) is rolled back alone and reported in its
        result; the others are kept. Database errors (a unique-key race) fail the whole
        transaction, which the caller's retry repeats from scratch.

        Raises:
            InvalidArgumentError: When there are no artifacts or more than ``max_batch_size``.
        """
        self.check_batch(len(artifacts), field="artifacts", item="artifact")
        response = datacatalog_service_pb2.CreateArtifactsResponse()
        for artifact in artifacts:
            result = response.results.add(artifact_id=artifact.id)
            try:
                with repo.savepoint():
                    self.create_artifact(repo, artifact)
            except (AlreadyExistsError, NotFoundError, InvalidArgumentError) as exc:
                result.status = _CREATION_STATUS[type(exc)]
                result.message = exc.message
            else:
                result.status = datacatalog_service_pb2.CREATION_STATUS_CREATED
        return response

    def get_artifact(
        self,
        repo: CatalogRepository,
        dataset_id: datacatalog_pb2.DatasetID,
        handle: ArtifactHandle,
        out: datacatalog_pb2.Artifact | None = None,
    ) -> datacatalog_pb2.Artifact:
        """Fetch an artifact with its data, by id or by tag (the cache lookup).

        Args:
            repo: The repository of this unit of work.
            dataset_id: The dataset to look in.
            handle: The artifact id or the tag.
            out: A message to fill in place (e.g. the response's ``artifact``), so that the
                hot path builds the answer once; a new message when ``None``.

        Returns:
            The artifact (``out`` when given).

        Raises:
            NotFoundError: When the dataset, the tag or the artifact does not exist.
        """
        key = transformers.dataset_key(dataset_id)
        exists, view = repo.lookup_artifact(
            key, artifact_id=handle.artifact_id, tag_name=handle.tag_name
        )
        if view is not None:
            return self._artifact_proto(view, out)
        if not exists:
            raise NotFoundError(f"dataset {describe_dataset(key)} does not exist")
        raise NotFoundError(
            f"{handle.describe()} does not exist in dataset {describe_dataset(key)}"
        )

    def check_batch(self, count: int, *, field: str = "tag_names", item: str = "tag") -> None:
        """Fail unless a batch call of ``count`` items is allowed (lookups or writes).

        Args:
            count: Items in the request.
            field: The request field that holds them.
            item: What one item is, for the message.

        Raises:
            InvalidArgumentError: When there are none or more than ``max_batch_size``.
        """
        if count == 0:
            raise InvalidArgumentError(f"at least one {item} is needed", field=field)
        limit = self.settings.max_batch_size
        if count > limit:
            raise InvalidArgumentError(
                f"{count} {item}s in one call; at most {limit} per call", field=field
            )

    def get_artifacts_by_tag(
        self,
        repo: CatalogRepository,
        dataset_id: datacatalog_pb2.DatasetID,
        tag_names: Sequence[str],
    ) -> datacatalog_service_pb2.GetArtifactsByTagResponse:
        """Look many tags of one dataset up at once (a map task's item lookups).

        Args:
            repo: The repository of this unit of work.
            dataset_id: The dataset to look in (one that does not exist finds nothing).
            tag_names: The tags, at most ``settings.max_batch_size``.

        Returns:
            One result per tag in request order, possibly for a prefix of the tags only: the
            answer stops once it reaches ``settings.batch_response_bytes``.

        Raises:
            InvalidArgumentError: When there are no tags or too many.
        """
        self.check_batch(len(tag_names))
        key = transformers.dataset_key(dataset_id)
        _, found = repo.lookup_artifacts_by_tag(key, tag_names)
        response = datacatalog_service_pb2.GetArtifactsByTagResponse()
        results = response.results
        budget = self.settings.batch_response_bytes
        size = 0
        for tag in tag_names:
            result = results.add(tag_name=tag)
            view = found.get(tag)
            if view is not None:
                result.found = True
                self._artifact_proto(view, result.artifact)
            size += result.ByteSize()
            if size >= budget:
                break
        return response

    def list_artifacts(
        self,
        repo: CatalogRepository,
        dataset_id: datacatalog_pb2.DatasetID,
        filters: Sequence[datacatalog_pb2.ArtifactFilter],
        page: PageRequest,
    ) -> tuple[list[datacatalog_pb2.Artifact], str]:
        """One page of a dataset's artifacts matching all filters.

        Returns:
            The artifacts (with data) and the next page's token (empty on the last page).

        Raises:
            NotFoundError: When the dataset does not exist.
        """
        dataset = self._dataset(repo, dataset_id)
        limit = self._limit(page)
        rows = repo.list_artifacts(
            dataset.id,
            tag_names=[f.tag_name for f in filters if f.WhichOneof("property") == "tag_name"],
            partitions=[
                (f.partition.key, f.partition.value)
                for f in filters
                if f.WhichOneof("property") == "partition"
            ],
            artifact_ids=[
                f.artifact_id for f in filters if f.WhichOneof("property") == "artifact_id"
            ],
            limit=limit + 1,
            cursor=self._cursor(page),
            ascending=page.ascending,
        )
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            next_token = PageCursor(rows[-1].created_at, rows[-1].id, page.ascending).encode()
        return [self._artifact_proto(ArtifactView.of(r)) for r in rows], next_token

    def update_artifact(
        self,
        repo: CatalogRepository,
        dataset_id: datacatalog_pb2.DatasetID,
        handle: ArtifactHandle,
        data: Sequence[datacatalog_pb2.ArtifactData],
        metadata: datacatalog_pb2.Metadata | None,
    ) -> str:
        """Replace an artifact's data (and metadata when given).

        Returns:
            The id of the updated artifact.

        Raises:
            NotFoundError: When the dataset or the artifact does not exist.
        """
        key = transformers.dataset_key(dataset_id)
        dataset = _dataset_ref(repo, key)
        state = repo.get_artifact_state(
            dataset.id, artifact_id=handle.artifact_id, tag_name=handle.tag_name
        )
        if state is None:
            raise NotFoundError(
                f"{handle.describe()} does not exist in dataset {describe_dataset(key)}"
            )
        new_metadata = dict(metadata.key_map) if metadata is not None else state.metadata
        digest = _content_digest(data, new_metadata, state.partitions, state.source_execution)
        new_rows = self._store_data(key, state.artifact_id, data)
        old = repo.replace_artifact_data(
            state.pk, new_rows, new_metadata if metadata is not None else None, digest
        )
        keep = {r.location for r in new_rows}
        self._delete_blobs_after_commit(repo, [loc for loc in old if loc not in keep])
        return state.artifact_id

    def delete_artifact(
        self,
        repo: CatalogRepository,
        dataset_id: datacatalog_pb2.DatasetID,
        handle: ArtifactHandle,
    ) -> None:
        """Delete one artifact and every tag pointing at it.

        Raises:
            NotFoundError: When the dataset or the artifact does not exist.
        """
        dataset = self._dataset(repo, dataset_id)
        result = repo.delete_artifact(self._artifact(repo, dataset, handle))
        self._delete_blobs_after_commit(repo, result.locations)

    def evict_artifacts(
        self,
        repo: CatalogRepository,
        created_before: dt.datetime,
        *,
        dataset_id: datacatalog_pb2.DatasetID | None = None,
        project: str = "",
        domain: str = "",
    ) -> tuple[int, int]:
        """Delete, with their tags, all artifacts created before ``created_before``.

        Args:
            repo: The transaction's repository.
            created_before: Exclusive upper bound on creation time.
            dataset_id: Only this dataset (which must exist), when given.
            project: Only datasets of this project, when not empty and no dataset is given.
            domain: Only datasets of this domain, when not empty and no dataset is given.

        Returns:
            ``(artifacts deleted, tags deleted)``.
        """
        if dataset_id is not None:
            dataset = self._dataset(repo, dataset_id)
            result = repo.evict_artifacts(created_before, dataset_id=dataset.id)
        else:
            result = repo.evict_artifacts(
                created_before, project=project or None, domain=domain or None
            )
        self._delete_blobs_after_commit(repo, result.locations)
        return result.artifacts, result.tags

    # ------------------------------------------------------------ tags

    def add_tag(
        self, repo: CatalogRepository, tag: datacatalog_pb2.Tag, *, repoint: bool = False
    ) -> None:
        """Point a tag at an existing artifact.

        Adding a tag that already points at the same artifact succeeds (idempotent).

        Args:
            repo: The transaction's repository.
            tag: Name, dataset and artifact id.
            repoint: Move the tag when it points at another artifact, instead of failing.

        Raises:
            NotFoundError: When the dataset or the artifact does not exist.
            AlreadyExistsError: When the tag points at another artifact and ``repoint`` is off.
        """
        key = transformers.dataset_key(tag.dataset)
        dataset = _dataset_ref(repo, key)
        found = repo.get_artifact_digest(dataset.id, tag.artifact_id)
        if found is None:
            raise NotFoundError(
                f"{ArtifactHandle(artifact_id=tag.artifact_id).describe()} does not exist in "
                f"dataset {describe_dataset(key)}"
            )
        artifact_pk = found[0]
        now = self._clock()
        if repo.insert_tags(dataset.id, [tag.name], artifact_pk, now):
            return
        owner = repo.get_tag_owners(dataset.id, [tag.name]).get(tag.name)
        if owner is None:
            # Deleted since the insert skipped it; a concurrent insert retries the transaction.
            repo.insert_tags(dataset.id, [tag.name], artifact_pk, now, if_absent=False)
        elif owner.artifact_pk != artifact_pk:
            if not repoint:
                raise AlreadyExistsError(
                    f"tag {tag.name!r} of dataset {describe_dataset(key)} already "
                    f"points at artifact {owner.artifact_id!r}"
                )
            repo.repoint_tag(dataset.id, tag.name, artifact_pk, now)

    # ------------------------------------------------------------ reservations

    def get_or_extend_reservation(
        self,
        repo: CatalogRepository,
        reservation_id: datacatalog_pb2.ReservationID,
        owner_id: str,
        heartbeat_interval: dt.timedelta,
    ) -> datacatalog_pb2.Reservation:
        """Grant, extend or report the reservation of one tag.

        The heartbeat interval is capped at ``max_heartbeat_interval`` (which is also used when
        none is asked for); the lease lasts ``heartbeat_grace_multiplier`` intervals.

        Returns:
            The reservation as it now stands; the caller holds it when its ``owner_id`` is the
            caller's.
        """
        cap = self.settings.max_heartbeat_interval
        heartbeat = cap if heartbeat_interval <= dt.timedelta(0) else min(heartbeat_interval, cap)
        now = self._clock()
        row = repo.get_or_extend_reservation(
            transformers.dataset_key(reservation_id.dataset_id),
            reservation_id.tag_name,
            owner_id,
            heartbeat_ms=max(1, int(heartbeat / dt.timedelta(milliseconds=1))),
            now=now,
            expires_at=now + heartbeat * self.settings.heartbeat_grace_multiplier,
        )
        return transformers.reservation_proto(row)

    def release_reservation(
        self,
        repo: CatalogRepository,
        reservation_id: datacatalog_pb2.ReservationID,
        owner_id: str,
    ) -> bool:
        """Release the reservation if ``owner_id`` holds it (otherwise a no-op).

        Returns:
            True when a reservation was released.
        """
        return repo.release_reservation(
            transformers.dataset_key(reservation_id.dataset_id),
            reservation_id.tag_name,
            owner_id,
        )

    # ------------------------------------------------------------ helpers

    def _dataset(
        self, repo: CatalogRepository, dataset_id: datacatalog_pb2.DatasetID
    ) -> DatasetRow:
        key = transformers.dataset_key(dataset_id)
        row = repo.get_dataset(key)
        if row is None:
            raise NotFoundError(f"dataset {describe_dataset(key)} does not exist")
        return row

    def _artifact(
        self, repo: CatalogRepository, dataset: DatasetRow, handle: ArtifactHandle
    ) -> ArtifactRow:
        if handle.tag_name is not None:
            row = repo.get_artifact_by_tag(dataset.id, handle.tag_name)
        else:
            row = repo.get_artifact(dataset.id, handle.artifact_id or "")
        if row is None:
            raise NotFoundError(
                f"{handle.describe()} does not exist in dataset "
                f"{describe_dataset(_key_of(dataset))}"
            )
        return row

    def _add_tags(
        self,
        repo: CatalogRepository,
        dataset_id: int,
        key: DatasetKey,
        artifact_pk: int,
        names: Sequence[str],
        now: dt.datetime,
    ) -> None:
        # Insert what is missing in one statement; only names that were there already need a
        # look at what they point at.
        inserted = repo.insert_tags(dataset_id, names, artifact_pk, now)
        if len(inserted) == len(names):
            return
        rest = [n for n in names if n not in inserted]
        owners = repo.get_tag_owners(dataset_id, rest)
        for name in rest:
            owner = owners.get(name)
            if owner is not None and owner.artifact_pk != artifact_pk:
                raise AlreadyExistsError(
                    f"tag {name!r} of dataset {describe_dataset(key)} already points at "
                    f"artifact {owner.artifact_id!r}"
                )
        # Tags deleted since the insert skipped them. Should one be inserted concurrently
        # again, the integrity error retries the whole transaction.
        gone = [n for n in rest if n not in owners]
        repo.insert_tags(dataset_id, gone, artifact_pk, now, if_absent=False)

    def _store_data(
        self,
        key: DatasetKey,
        artifact_id: str,
        data: Iterable[datacatalog_pb2.ArtifactData],
    ) -> list[DataRecord]:
        rows = []
        for position, item in enumerate(data):
            blob = _serialize(item.value)
            if len(blob) <= self.settings.inline_limit_bytes:
                rows.append(DataRecord(item.name, position, blob, None, len(blob)))
                continue
            # Content-addressed, so a conflicting create under the same id can never
            # overwrite the values of the artifact that exists.
            location = self._location(key, artifact_id, item.name, hashlib.sha256(blob).hexdigest())
            self._store.put_bytes(location, blob, content_type="application/x-protobuf")
            rows.append(DataRecord(item.name, position, None, location, len(blob)))
        return rows

    def _location(self, key: DatasetKey, artifact_id: str, name: str, digest: str) -> str:
        parts = [key.project, key.domain, key.name, key.version, artifact_id, name]
        path = "/".join(_path_part(p) for p in parts)
        return f"{self.settings.data_prefix.rstrip('/')}/{path}/{digest[:32]}.pb"

    def _artifact_proto(
        self, view: ArtifactView, out: datacatalog_pb2.Artifact | None = None
    ) -> datacatalog_pb2.Artifact:
        artifact = datacatalog_pb2.Artifact() if out is None else out
        artifact.Clear()
        for item in view.data:
            value = artifact.data.add(name=item.name).value
            if item.inline_value is not None:
                # Parsed straight into the message that is sent: no intermediate copy.
                value.MergeFromString(item.inline_value)
                value.SetInParent()  # present even when the stored literal is empty
            else:
                assert item.location is not None
                value.CopyFrom(self._store.read_proto(item.location, literals_pb2.Literal))
        transformers.fill_artifact(view, artifact)
        return artifact

    def _delete_blobs_after_commit(self, repo: CatalogRepository, locations: list[str]) -> None:
        if not locations:
            return
        store = self._store

        def delete() -> None:
            for location in locations:
                store.delete(location)

        repo.after_commit(delete)

    def _limit(self, page: PageRequest) -> int:
        if page.limit <= 0:
            return self.settings.default_page_size
        return min(page.limit, self.settings.max_page_size)

    def _cursor(self, page: PageRequest) -> PageCursor | None:
        if not page.token:
            return None
        return PageCursor.decode(page.token, ascending=page.ascending)


def _dataset_ref(repo: CatalogRepository, key: DatasetKey) -> DatasetRef:
    dataset = repo.get_dataset_ref(key)
    if dataset is None:
        raise NotFoundError(f"dataset {describe_dataset(key)} does not exist")
    return dataset


_CREATION_STATUS = {
    AlreadyExistsError: datacatalog_service_pb2.CREATION_STATUS_ALREADY_EXISTS,
    NotFoundError: datacatalog_service_pb2.CREATION_STATUS_NOT_FOUND,
    InvalidArgumentError: datacatalog_service_pb2.CREATION_STATUS_INVALID_ARGUMENT,
}


def _key_of(row: DatasetRow) -> DatasetKey:
    return DatasetKey(row.project, row.domain, row.name, row.version)


def _path_part(part: str) -> str:
    quoted = quote(part, safe="-_.=")
    return "_" + quoted if quoted in {"", ".", ".."} else quoted


def _serialize(message: object) -> bytes:
    # Deterministic, so that equal messages hash equal (map fields are ordered).
    return message.SerializeToString(deterministic=True)  # type: ignore[attr-defined,no-any-return]


def _content_digest(
    data: Iterable[datacatalog_pb2.ArtifactData],
    metadata: object,
    partitions: Iterable[tuple[str, str]],
    source: bytes,
) -> str:
    digest = hashlib.sha256()

    def put(chunk: bytes) -> None:
        # Length-prefixed, so that ("ab", "c") and ("a", "bc") hash differently.
        digest.update(struct.pack(">Q", len(chunk)))
        digest.update(chunk)

    items = sorted((d.name, _serialize(d.value)) for d in data)
    put(b"data")
    for name, value in items:
        put(name.encode())
        put(value)
    put(b"metadata")
    for k, v in sorted(dict(metadata).items()):  # type: ignore[call-overload]
        put(k.encode())
        put(v.encode())
    put(b"partitions")
    for k, v in sorted(partitions):
        put(k.encode())
        put(v.encode())
    put(b"source")
    put(source)
    return digest.hexdigest()


__all__ = [
    "ArtifactHandle",
    "CatalogManager",
    "CatalogSettings",
    "PageRequest",
    "describe_dataset",
]
