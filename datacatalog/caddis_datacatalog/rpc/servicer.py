"""The DataCatalogService servicer: decode, validate, run one manager call in a transaction, encode.

Errors are raised as :mod:`caddis._serving.errors`; the server's interceptor maps them to
status codes (and anything unexpected to INTERNAL).
"""

from __future__ import annotations

import datetime as dt

import grpc

from caddis._serving.errors import InvalidArgumentError, NotFoundError
from caddis_datacatalog.manager.catalog import ArtifactHandle, CatalogManager, PageRequest
from caddis_datacatalog.repository.database import Database
from caddis_datacatalog.rpc import validation as v
from caddis_datacatalog.rpc.metrics import CatalogMetrics
from caddis_idl.datacatalog.v1 import (
    datacatalog_pb2,
    datacatalog_service_pb2,
    datacatalog_service_pb2_grpc,
)

pb = datacatalog_service_pb2

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["DataCatalogService"].full_name
"""Full protobuf name of the service (for health and reflection)."""

_DATASET_FILTER_COLUMNS = ("project", "domain", "name", "version")


def _page(request_pagination: datacatalog_pb2.PaginationOptions) -> PageRequest:
    if request_pagination.sort_order not in (
        datacatalog_pb2.SORT_ORDER_UNSPECIFIED,
        datacatalog_pb2.SORT_ORDER_DESCENDING,
        datacatalog_pb2.SORT_ORDER_ASCENDING,
    ):
        raise InvalidArgumentError("unknown sort order", field="pagination.sort_order")
    if request_pagination.sort_key not in (
        datacatalog_pb2.SORT_KEY_UNSPECIFIED,
        datacatalog_pb2.SORT_KEY_CREATED_AT,
    ):
        raise InvalidArgumentError("unknown sort key", field="pagination.sort_key")
    return PageRequest(
        limit=request_pagination.limit,
        token=request_pagination.token,
        ascending=request_pagination.sort_order == datacatalog_pb2.SORT_ORDER_ASCENDING,
    )


def _check_operator(operator: int, field: str) -> None:
    if operator not in (
        datacatalog_pb2.FILTER_OPERATOR_UNSPECIFIED,
        datacatalog_pb2.FILTER_OPERATOR_EQUALS,
    ):
        raise InvalidArgumentError("only EQUALS is supported", field=field)


def _check_artifact(artifact: datacatalog_pb2.Artifact, path: str) -> None:
    v.require_name(artifact.id, f"{path}.id")
    v.dataset_id(artifact, "dataset", f"{path}.dataset")
    v.artifact_data(list(artifact.data), f"{path}.data")
    for i, partition in enumerate(artifact.partitions):
        v.require_name(partition.key, f"{path}.partitions[{i}].key")
    for i, tag in enumerate(artifact.tags):
        v.require_name(tag.name, f"{path}.tags[{i}].name")


def _handle(
    request: pb.GetArtifactRequest | pb.UpdateArtifactRequest | pb.DeleteArtifactRequest,
) -> ArtifactHandle:
    which = v.one_of(request, "query_handle", "")
    if which == "tag_name":
        return ArtifactHandle(tag_name=request.tag_name)
    return ArtifactHandle(artifact_id=request.artifact_id)


class DataCatalogServicer(datacatalog_service_pb2_grpc.DataCatalogServiceServicer):
    """Serves ``caddis_idl.datacatalog.v1.DataCatalogService``.

    Args:
        db: Where transactions run.
        manager: The logic.
        metrics: Cache and reservation counters.
    """

    def __init__(self, db: Database, manager: CatalogManager, metrics: CatalogMetrics) -> None:
        self._db = db
        self._manager = manager
        self._metrics = metrics

    # ------------------------------------------------------------ datasets

    def CreateDataset(
        self, request: pb.CreateDatasetRequest, context: grpc.ServicerContext
    ) -> pb.CreateDatasetResponse:
        """See the IDL."""
        v.require_message(request, "dataset", "dataset")
        v.dataset_id(request.dataset, "id", "dataset.id")
        for i, key in enumerate(request.dataset.partition_keys):
            v.require_name(key, f"dataset.partition_keys[{i}]")
        if len(set(request.dataset.partition_keys)) != len(request.dataset.partition_keys):
            raise InvalidArgumentError(
                "partition keys must be unique", field="dataset.partition_keys"
            )
        dataset = self._db.run(lambda repo: self._manager.create_dataset(repo, request.dataset))
        return pb.CreateDatasetResponse(dataset=dataset)

    def GetDataset(
        self, request: pb.GetDatasetRequest, context: grpc.ServicerContext
    ) -> pb.GetDatasetResponse:
        """See the IDL."""
        dataset_id = v.dataset_id(request, "dataset", "dataset")
        dataset = self._db.run(
            lambda repo: self._manager.get_dataset(repo, dataset_id), write=False
        )
        return pb.GetDatasetResponse(dataset=dataset)

    def ListDatasets(
        self, request: pb.ListDatasetsRequest, context: grpc.ServicerContext
    ) -> pb.ListDatasetsResponse:
        """See the IDL."""
        equals: dict[str, str] = {}
        for i, f in enumerate(request.filters):
            which = f.WhichOneof("property")
            if which is None:
                raise InvalidArgumentError("a filter needs a property", field=f"filters[{i}]")
            _check_operator(f.operator, f"filters[{i}].operator")
            value = getattr(f, which)
            if which in equals and equals[which] != value:
                # Two different required values can never both match.
                return pb.ListDatasetsResponse()
            equals[which] = value
        page = _page(request.pagination)
        datasets, token = self._db.run(
            lambda repo: self._manager.list_datasets(repo, equals, page), write=False
        )
        return pb.ListDatasetsResponse(datasets=datasets, next_token=token)

    def DeleteDataset(
        self, request: pb.DeleteDatasetRequest, context: grpc.ServicerContext
    ) -> pb.DeleteDatasetResponse:
        """See the IDL."""
        dataset_id = v.dataset_id(request, "dataset", "dataset")
        self._db.run(lambda repo: self._manager.delete_dataset(repo, dataset_id))
        return pb.DeleteDatasetResponse()

    # ------------------------------------------------------------ artifacts

    def CreateArtifact(
        self, request: pb.CreateArtifactRequest, context: grpc.ServicerContext
    ) -> pb.CreateArtifactResponse:
        """See the IDL."""
        v.require_message(request, "artifact", "artifact")
        artifact = request.artifact
        _check_artifact(artifact, "artifact")
        self._db.run(lambda repo: self._manager.create_artifact(repo, artifact))
        return pb.CreateArtifactResponse()

    def CreateArtifacts(
        self, request: pb.CreateArtifactsRequest, context: grpc.ServicerContext
    ) -> pb.CreateArtifactsResponse:
        """See the IDL."""
        artifacts = list(request.artifacts)
        self._manager.check_batch(len(artifacts), field="artifacts", item="artifact")
        for i, artifact in enumerate(artifacts):
            _check_artifact(artifact, f"artifacts[{i}]")
        return self._db.run(lambda repo: self._manager.create_artifacts(repo, artifacts))

    def GetArtifact(
        self, request: pb.GetArtifactRequest, context: grpc.ServicerContext
    ) -> pb.GetArtifactResponse:
        """See the IDL. A lookup by tag counts as a cache hit or miss."""
        dataset_id = v.dataset_id(request, "dataset", "dataset")
        handle = _handle(request)
        # The manager fills the response's artifact in place (no copy of the whole message).
        response = pb.GetArtifactResponse()
        out = response.artifact
        try:
            self._db.run(
                lambda repo: self._manager.get_artifact(repo, dataset_id, handle, out),
                write=False,
            )
        except NotFoundError:
            if handle.tag_name is not None:
                self._metrics.cache_misses.inc()
            raise
        if handle.tag_name is not None:
            self._metrics.cache_hits.inc()
        return response

    def GetArtifactsByTag(
        self, request: pb.GetArtifactsByTagRequest, context: grpc.ServicerContext
    ) -> pb.GetArtifactsByTagResponse:
        """See the IDL. Each answered tag counts as a cache hit or miss."""
        dataset_id = v.dataset_id(request, "dataset", "dataset")
        tag_names = list(request.tag_names)
        self._manager.check_batch(len(tag_names))
        for i, name in enumerate(tag_names):
            v.require_name(name, f"tag_names[{i}]")
        response = self._db.run(
            lambda repo: self._manager.get_artifacts_by_tag(repo, dataset_id, tag_names),
            write=False,
        )
        hits = sum(1 for result in response.results if result.found)
        self._metrics.cache_hits.inc(hits)
        self._metrics.cache_misses.inc(len(response.results) - hits)
        return response

    def ListArtifacts(
        self, request: pb.ListArtifactsRequest, context: grpc.ServicerContext
    ) -> pb.ListArtifactsResponse:
        """See the IDL."""
        dataset_id = v.dataset_id(request, "dataset", "dataset")
        for i, f in enumerate(request.filters):
            which = f.WhichOneof("property")
            if which is None:
                raise InvalidArgumentError("a filter needs a property", field=f"filters[{i}]")
            _check_operator(f.operator, f"filters[{i}].operator")
            if which == "partition":
                v.require_name(f.partition.key, f"filters[{i}].partition.key")
        page = _page(request.pagination)
        artifacts, token = self._db.run(
            lambda repo: self._manager.list_artifacts(repo, dataset_id, request.filters, page),
            write=False,
        )
        return pb.ListArtifactsResponse(artifacts=artifacts, next_token=token)

    def UpdateArtifact(
        self, request: pb.UpdateArtifactRequest, context: grpc.ServicerContext
    ) -> pb.UpdateArtifactResponse:
        """See the IDL."""
        dataset_id = v.dataset_id(request, "dataset", "dataset")
        handle = _handle(request)
        v.artifact_data(list(request.data), "data")
        metadata = request.metadata if request.HasField("metadata") else None
        artifact_id = self._db.run(
            lambda repo: self._manager.update_artifact(
                repo, dataset_id, handle, request.data, metadata
            )
        )
        return pb.UpdateArtifactResponse(artifact_id=artifact_id)

    def DeleteArtifact(
        self, request: pb.DeleteArtifactRequest, context: grpc.ServicerContext
    ) -> pb.DeleteArtifactResponse:
        """See the IDL."""
        dataset_id = v.dataset_id(request, "dataset", "dataset")
        handle = _handle(request)
        self._db.run(lambda repo: self._manager.delete_artifact(repo, dataset_id, handle))
        return pb.DeleteArtifactResponse()

    def EvictArtifacts(
        self, request: pb.EvictArtifactsRequest, context: grpc.ServicerContext
    ) -> pb.EvictArtifactsResponse:
        """See the IDL."""
        v.require_message(request, "created_before", "created_before")
        try:
            created_before = request.created_before.ToDatetime(tzinfo=dt.UTC)
        except (OverflowError, ValueError) as exc:
            raise InvalidArgumentError(f"is out of range: {exc}", field="created_before") from None
        dataset_id = (
            v.dataset_id(request, "dataset", "dataset") if request.HasField("dataset") else None
        )
        artifacts, tags = self._db.run(
            lambda repo: self._manager.evict_artifacts(
                repo,
                created_before,
                dataset_id=dataset_id,
                project=request.project,
                domain=request.domain,
            )
        )
        return pb.EvictArtifactsResponse(evicted_artifacts=artifacts, evicted_tags=tags)

    # ------------------------------------------------------------ tags

    def AddTag(self, request: pb.AddTagRequest, context: grpc.ServicerContext) -> pb.AddTagResponse:
        """See the IDL."""
        v.require_message(request, "tag", "tag")
        v.require_name(request.tag.name, "tag.name")
        v.require_name(request.tag.artifact_id, "tag.artifact_id")
        v.dataset_id(request.tag, "dataset", "tag.dataset")
        tag, repoint = request.tag, request.repoint
        self._db.run(lambda repo: self._manager.add_tag(repo, tag, repoint=repoint))
        return pb.AddTagResponse()

    # ------------------------------------------------------------ reservations

    def GetOrExtendReservation(
        self, request: pb.GetOrExtendReservationRequest, context: grpc.ServicerContext
    ) -> pb.GetOrExtendReservationResponse:
        """See the IDL. Counts granted and contended requests."""
        v.require_message(request, "reservation_id", "reservation_id")
        reservation_id = request.reservation_id
        v.dataset_id(reservation_id, "dataset_id", "reservation_id.dataset_id")
        v.require_name(reservation_id.tag_name, "reservation_id.tag_name")
        owner_id = v.require_name(request.owner_id, "owner_id")
        heartbeat = v.duration(request.heartbeat_interval, "heartbeat_interval")
        reservation = self._db.run(
            lambda repo: self._manager.get_or_extend_reservation(
                repo, reservation_id, owner_id, heartbeat
            )
        )
        if reservation.owner_id == owner_id:
            self._metrics.reservations_granted.inc()
        else:
            self._metrics.reservations_contended.inc()
        return pb.GetOrExtendReservationResponse(reservation=reservation)

    def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: grpc.ServicerContext
    ) -> pb.ReleaseReservationResponse:
        """See the IDL."""
        v.require_message(request, "reservation_id", "reservation_id")
        reservation_id = request.reservation_id
        v.dataset_id(reservation_id, "dataset_id", "reservation_id.dataset_id")
        v.require_name(reservation_id.tag_name, "reservation_id.tag_name")
        owner_id = v.require_name(request.owner_id, "owner_id")
        released = self._db.run(
            lambda repo: self._manager.release_reservation(repo, reservation_id, owner_id)
        )
        if released:
            self._metrics.reservations_released.inc()
        return pb.ReleaseReservationResponse()


__all__ = ["SERVICE_NAME", "DataCatalogServicer"]
