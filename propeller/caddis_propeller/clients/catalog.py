"""The engine's ``Catalog`` over the datacatalog gRPC service.

- ``lookup``: GetArtifact by tag (the input hash) in the task's dataset; NOT_FOUND is a miss.
- ``lookup_many``: GetArtifactsByTag, the lookups of a map task's items in batches (one call
  per ``batch_size`` items of a dataset instead of one per item). A datacatalog that does not
  know the call yet (UNIMPLEMENTED, an older version during a rolling upgrade) is asked one
  GetArtifact per key from then on, so caching keeps working.
- ``put``: CreateArtifact with the tag in it (one call and one transaction); NOT_FOUND (no
  dataset yet) creates the dataset and tries again, ALREADY_EXISTS means another run recorded
  these inputs first and its artifact stands. With ``overwrite``, UpdateArtifact of the tagged
  artifact first.
- ``put_many``: CreateArtifacts, the results of a map task's items recorded together (one
  call and one datacatalog transaction per batch); falls back to ``put`` per item against a
  datacatalog without the call.
- Reservations (cache_serialize): GetOrExtendReservation / ReleaseReservation.

Any failure raises (the engine then runs the task uncached and reports CACHE_LOOKUP_FAILURE or
CACHE_PUT_FAILURE; a catalog outage never fails a task). After a failure that says the service
is unreachable, calls fail fast for ``cooldown`` seconds instead of each waiting for a
deadline, so an outage costs one timeout, not one per node.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf import duration_pb2

from caddis_idl.core.v1 import literals_pb2
from caddis_idl.datacatalog.v1 import (
    datacatalog_pb2,
    datacatalog_service_pb2,
    datacatalog_service_pb2_grpc,
)

if TYPE_CHECKING:
    from caddis_propeller.engine.cache_keys import CacheKey


_log = logging.getLogger(__name__)

T = TypeVar("T")


class CatalogUnavailableError(RuntimeError):
    """The datacatalog could not be reached (recently); the caller runs uncached."""


_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}

# Recorded, or another run's result for the same tag stands (the same as put's outcomes).
_RECORDED = {
    datacatalog_service_pb2.CREATION_STATUS_CREATED,
    datacatalog_service_pb2.CREATION_STATUS_ALREADY_EXISTS,
}
# Serialized values per CreateArtifacts call.
_PUT_BYTES = 1024 * 1024


class DataCatalogClient:
    """``Catalog`` implementation over a gRPC channel to the datacatalog.

    Args:
        endpoint: ``host:port`` of the datacatalog.
        timeout: Deadline of each call in seconds.
        cooldown: Seconds to fail fast after the service was found unreachable.
        on_event: Metrics hook called with ``hit``, ``miss``, ``put``, ``put_failure``,
            ``lookup_failure``.
        batch_size: Tags per GetArtifactsByTag call of :meth:`lookup_many` (the service
            accepts up to 1,000 by default).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 5.0,
        cooldown: float = 2.0,
        on_event: Callable[[str], None] | None = None,
        batch_size: int = 500,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.endpoint = endpoint
        self.timeout = timeout
        self.cooldown = cooldown
        self.batch_size = batch_size
        self._on_event = on_event
        self._channel = grpc.insecure_channel(endpoint)
        self._stub = datacatalog_service_pb2_grpc.DataCatalogServiceStub(self._channel)
        self._down_until = 0.0
        self._lock = threading.Lock()
        # Batch RPCs the service answered UNIMPLEMENTED (see _batched).
        self._unimplemented: set[str] = set()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def _emit(self, what: str) -> None:
        if self._on_event is not None:
            self._on_event(what)

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        if time.monotonic() < self._down_until:
            raise CatalogUnavailableError(f"datacatalog at {self.endpoint} is unreachable")
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            if exc.code() in _UNAVAILABLE:
                with self._lock:
                    self._down_until = time.monotonic() + self.cooldown
                raise CatalogUnavailableError(
                    f"datacatalog at {self.endpoint} is unreachable: {exc.details()}"
                ) from exc
            raise

    @staticmethod
    def _dataset(key: CacheKey) -> datacatalog_pb2.DatasetID:
        # Tasks compiled outside registration carry no project/domain; they still cache.
        return datacatalog_pb2.DatasetID(
            project=key.project or "_",
            domain=key.domain or "_",
            name=key.name,
            version=key.version,
        )

    def lookup(self, key: CacheKey) -> literals_pb2.LiteralMap | None:
        """Cached outputs for ``key``, or None on a miss."""
        request = datacatalog_service_pb2.GetArtifactRequest(
            dataset=self._dataset(key), tag_name=key.tag
        )
        try:
            response = self._call(self._stub.GetArtifact, request)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                self._emit("miss")
                return None
            self._emit("lookup_failure")
            _log.warning("datacatalog lookup of %s failed: %s", key, exc.details())
            raise
        except CatalogUnavailableError as exc:
            self._emit("lookup_failure")
            _log.warning("datacatalog lookup of %s failed: %s", key, exc)
            raise
        outputs = literals_pb2.LiteralMap()
        for item in response.artifact.data:
            outputs.literals[item.name].CopyFrom(item.value)
        self._emit("hit")
        return outputs

    def lookup_many(self, keys: Sequence[CacheKey]) -> list[literals_pb2.LiteralMap | None]:
        """Cached outputs for each key (None for a miss), in the order of ``keys``.

        Keys of one dataset are asked for together, ``batch_size`` tags a call; an answer
        that the service cut short (its response size bound) is followed by a call for the
        remaining tags. Any failure raises, as :meth:`lookup` does.
        """

        def batched() -> list[literals_pb2.LiteralMap | None]:
            results: list[literals_pb2.LiteralMap | None] = [None] * len(keys)
            by_dataset: dict[tuple[str, str, str, str], list[int]] = {}
            for i, key in enumerate(keys):
                dataset_key = (key.project, key.domain, key.name, key.version)
                by_dataset.setdefault(dataset_key, []).append(i)
            for positions in by_dataset.values():
                dataset = self._dataset(keys[positions[0]])
                for start in range(0, len(positions), self.batch_size):
                    chunk = positions[start : start + self.batch_size]
                    self._lookup_batch(dataset, keys, chunk, results)
            return results

        return self._batched(
            "GetArtifactsByTag",
            f"batch lookup of {len(keys)} keys",
            "lookup_failure",
            batched,
            lambda: [self.lookup(key) for key in keys],
        )

    def _lookup_batch(
        self,
        dataset: datacatalog_pb2.DatasetID,
        keys: Sequence[CacheKey],
        positions: list[int],
        results: list[literals_pb2.LiteralMap | None],
    ) -> None:
        while positions:
            request = datacatalog_service_pb2.GetArtifactsByTagRequest(
                dataset=dataset, tag_names=[keys[i].tag for i in positions]
            )
            answered = self._call(self._stub.GetArtifactsByTag, request).results
            if not answered or len(answered) > len(positions):
                raise RuntimeError(
                    f"datacatalog at {self.endpoint} answered {len(answered)} results to a "
                    f"batch lookup of {len(positions)} tags"
                )
            for i, result in zip(positions, answered, strict=False):
                if result.tag_name != keys[i].tag:
                    raise RuntimeError(
                        f"datacatalog at {self.endpoint} answered tag {result.tag_name!r} "
                        f"where {keys[i].tag!r} was asked for"
                    )
                if result.found:
                    outputs = literals_pb2.LiteralMap()
                    for item in result.artifact.data:
                        outputs.literals[item.name].CopyFrom(item.value)
                    results[i] = outputs
                    self._emit("hit")
                else:
                    self._emit("miss")
            positions = positions[len(answered) :]

    def put(self, key: CacheKey, outputs: literals_pb2.LiteralMap, *, overwrite: bool) -> None:
        """Record ``outputs`` under ``key`` (replacing the tagged artifact when ``overwrite``)."""
        try:
            self._put(key, outputs, overwrite=overwrite)
        except Exception as exc:
            self._emit("put_failure")
            _log.warning("datacatalog put of %s failed: %s", key, exc)
            raise
        self._emit("put")

    def _put(self, key: CacheKey, outputs: literals_pb2.LiteralMap, *, overwrite: bool) -> None:
        dataset_id = self._dataset(key)
        data = [
            datacatalog_pb2.ArtifactData(name=name, value=value)
            for name, value in sorted(outputs.literals.items())
        ]
        if overwrite:
            try:
                self._call(
                    self._stub.UpdateArtifact,
                    datacatalog_service_pb2.UpdateArtifactRequest(
                        dataset=dataset_id, tag_name=key.tag, data=data
                    ),
                )
                return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
        # The tag travels in the artifact: artifact and tag are written in one transaction,
        # and a tag that exists already fails the whole call with nothing written.
        request = datacatalog_service_pb2.CreateArtifactRequest(
            artifact=datacatalog_pb2.Artifact(
                id=str(uuid.uuid4()),
                dataset=dataset_id,
                data=data,
                tags=[datacatalog_pb2.Tag(name=key.tag, dataset=dataset_id)],
            )
        )
        for first in (True, False):
            try:
                self._call(self._stub.CreateArtifact, request)
                return
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                    # Another run recorded the same inputs first (the artifact id is new, so
                    # only the tag can clash); its artifact stands.
                    return
                if not first or exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            # The task's dataset does not exist yet (its first cached result).
            try:
                self._call(
                    self._stub.CreateDataset,
                    datacatalog_service_pb2.CreateDatasetRequest(
                        dataset=datacatalog_pb2.Dataset(id=dataset_id)
                    ),
                )
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise

    def put_many(self, entries: Sequence[tuple[CacheKey, literals_pb2.LiteralMap]]) -> list[bool]:
        """Record many results at once (never overwriting); True for each one recorded.

        An entry whose tag another run recorded first counts as recorded (its result stands),
        as in :meth:`put`. Entries go ``batch_size`` at a time, fewer when their values are
        large, each batch one CreateArtifacts call; a dataset that does not exist yet is
        created and its entries sent again. A failed call raises.
        """

        def batched() -> list[bool]:
            done = [False] * len(entries)
            for chunk in self._put_chunks(entries):
                self._put_batch(entries, chunk, done)
            for ok in done:
                self._emit("put" if ok else "put_failure")
            return done

        return self._batched(
            "CreateArtifacts",
            f"put of {len(entries)} results",
            "put_failure",
            batched,
            lambda: self._put_each(entries),
        )

    def _batched(
        self,
        rpc: str,
        what: str,
        failure: str,
        batched: Callable[[], T],
        one_by_one: Callable[[], T],
    ) -> T:
        """Run a batch call, or its one-call-per-item form once the service lacked ``rpc``.

        A datacatalog that does not know ``rpc`` (UNIMPLEMENTED: an older version, e.g. during
        a rolling upgrade) is asked one item at a time from then on. Any other failure emits
        ``failure``, is logged and raises.
        """
        if rpc in self._unimplemented:
            return one_by_one()
        try:
            return batched()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                self._batch_failed(what, failure, exc.details())
                raise
            _log.warning(
                "datacatalog at %s has no %s (an older version?): one call per item instead",
                self.endpoint,
                rpc,
            )
            self._unimplemented.add(rpc)
            return one_by_one()
        except Exception as exc:
            self._batch_failed(what, failure, exc)
            raise

    def _batch_failed(self, what: str, failure: str, detail: object) -> None:
        self._emit(failure)
        _log.warning("datacatalog %s failed: %s", what, detail)

    def _put_each(self, entries: Sequence[tuple[CacheKey, literals_pb2.LiteralMap]]) -> list[bool]:
        done = []
        for key, outputs in entries:
            try:
                self.put(key, outputs, overwrite=False)
            except Exception:
                done.append(False)
            else:
                done.append(True)
        return done

    def _put_chunks(
        self, entries: Sequence[tuple[CacheKey, literals_pb2.LiteralMap]]
    ) -> list[list[int]]:
        # Bounded by count and by size, so that a request stays far below gRPC's 4 MiB.
        chunks: list[list[int]] = [[]]
        size = 0
        for i, (_, outputs) in enumerate(entries):
            item = outputs.ByteSize()
            if chunks[-1] and (len(chunks[-1]) >= self.batch_size or size + item > _PUT_BYTES):
                chunks.append([])
                size = 0
            chunks[-1].append(i)
            size += item
        return [c for c in chunks if c]

    def _put_batch(
        self,
        entries: Sequence[tuple[CacheKey, literals_pb2.LiteralMap]],
        positions: list[int],
        done: list[bool],
    ) -> None:
        artifacts = []
        for i in positions:
            key, outputs = entries[i]
            dataset_id = self._dataset(key)
            artifacts.append(
                datacatalog_pb2.Artifact(
                    id=str(uuid.uuid4()),
                    dataset=dataset_id,
                    data=[
                        datacatalog_pb2.ArtifactData(name=name, value=value)
                        for name, value in sorted(outputs.literals.items())
                    ],
                    tags=[datacatalog_pb2.Tag(name=key.tag, dataset=dataset_id)],
                )
            )
        pending = list(range(len(positions)))
        for first in (True, False):
            request = datacatalog_service_pb2.CreateArtifactsRequest(
                artifacts=[artifacts[j] for j in pending]
            )
            results = self._call(self._stub.CreateArtifacts, request).results
            if len(results) != len(pending):
                raise RuntimeError(
                    f"datacatalog at {self.endpoint} answered {len(results)} results to "
                    f"{len(pending)} artifacts"
                )
            missing: list[int] = []
            for j, result in zip(pending, results, strict=True):
                if result.status in _RECORDED:
                    done[positions[j]] = True
                elif result.status == datacatalog_service_pb2.CREATION_STATUS_NOT_FOUND and first:
                    missing.append(j)
                else:
                    _log.warning(
                        "datacatalog did not record %s: %s",
                        entries[positions[j]][0],
                        result.message,
                    )
            if not missing:
                return
            # The first results of a task: its dataset does not exist yet.
            for dataset_id in {
                artifacts[j].dataset.SerializeToString(): artifacts[j].dataset for j in missing
            }.values():
                try:
                    self._call(
                        self._stub.CreateDataset,
                        datacatalog_service_pb2.CreateDatasetRequest(
                            dataset=datacatalog_pb2.Dataset(id=dataset_id)
                        ),
                    )
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                        raise
            pending = missing

    def get_or_extend_reservation(self, key: CacheKey, owner_id: str, heartbeat: float) -> bool:
        """Take or extend the reservation; True when ``owner_id`` holds it."""
        request = datacatalog_service_pb2.GetOrExtendReservationRequest(
            reservation_id=datacatalog_pb2.ReservationID(
                dataset_id=self._dataset(key), tag_name=key.tag
            ),
            owner_id=owner_id,
            heartbeat_interval=duration_pb2.Duration(
                seconds=int(heartbeat), nanos=int((heartbeat % 1) * 1e9)
            ),
        )
        response = self._call(self._stub.GetOrExtendReservation, request)
        return bool(response.reservation.owner_id == owner_id)

    def release_reservation(self, key: CacheKey, owner_id: str) -> None:
        """Release the reservation if ``owner_id`` holds it."""
        request = datacatalog_service_pb2.ReleaseReservationRequest(
            reservation_id=datacatalog_pb2.ReservationID(
                dataset_id=self._dataset(key), tag_name=key.tag
            ),
            owner_id=owner_id,
        )
        try:
            self._call(self._stub.ReleaseReservation, request)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise


__all__ = ["CatalogUnavailableError", "DataCatalogClient"]
