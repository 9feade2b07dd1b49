"""Recovery: outputs of the nodes that succeeded in the execution being recovered.

A LaunchExecution in mode RECOVERED names a reference execution. :class:`ReferenceOutputs`
is the engine's ``PriorOutputs`` for it: the engine asks for every node (nested ones too, by
path: ``n1``, ``sub/0/n0``, ``dyn/0/n2``) before running it and marks it RECOVERED when the
reference has outputs.

Which nodes succeeded comes from admin's node executions of the reference (one listing, all
levels; node ids are the engine's node paths), and the values from the blob store at the
output URIs admin recorded. Without admin, the reference's deterministic locations
(``{prefix}/{path}/{attempt}/outputs.pb``, only written by an attempt that succeeded) are
probed instead.
"""

from __future__ import annotations

import logging
import threading

import grpc

from caddis.storage import BlobStore
from caddis_idl.admin.v1 import common_pb2, node_execution_service_pb2
from caddis_idl.admin.v1 import node_execution_service_pb2_grpc as ne_grpc
from caddis_idl.core.v1 import execution_pb2, identifier_pb2, literals_pb2

_log = logging.getLogger(__name__)

_NP = execution_pb2.NodeExecutionPhase
_DONE = frozenset({_NP.NODE_EXECUTION_PHASE_SUCCEEDED, _NP.NODE_EXECUTION_PHASE_RECOVERED})


class ReferenceOutputs:
    """The engine's ``PriorOutputs`` over a reference execution.

    Args:
        reference: The execution being recovered.
        reference_prefix: Its data prefix in the blob store (``.../project/domain/name``).
        store: The blob store holding its outputs.
        channel: A gRPC channel to admin, or None to probe the blob store only.
        max_attempts: Attempts probed per node when admin cannot be asked.
        timeout: Deadline of one admin call.
    """

    def __init__(
        self,
        reference: identifier_pb2.WorkflowExecutionIdentifier,
        reference_prefix: str,
        store: BlobStore,
        *,
        channel: grpc.Channel | None = None,
        max_attempts: int = 4,
        timeout: float = 10.0,
    ) -> None:
        self.reference = reference
        self.prefix = reference_prefix.rstrip("/")
        self._store = store
        self._channel = channel
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._lock = threading.Lock()
        # node path -> output URI of the reference (None until listed; listing failed: probe).
        self._uris: dict[str, str] | None = None
        self._listed = False

    def get(self, node_path: str) -> literals_pb2.LiteralMap | None:
        """The reference's outputs of ``node_path``, or None to run the node.

        Args:
            node_path: The engine's node path.

        Returns:
            The outputs when the node succeeded in the reference.
        """
        uris = self._succeeded()
        if uris is not None:
            uri = uris.get(node_path)
            if uri:
                return self._store.read_proto(uri, literals_pb2.LiteralMap)
            if not _is_array_item(node_path, uris):
                return None
            # Items of a map are not node executions (per-item events are off), so a
            # succeeded item of a partly failed map is found at its deterministic location.
        for attempt in range(self._max_attempts):
            uri = f"{self.prefix}/{node_path}/{attempt}/outputs.pb"
            if self._store.exists(uri):
                return self._store.read_proto(uri, literals_pb2.LiteralMap)
        return None

    def _succeeded(self) -> dict[str, str] | None:
        with self._lock:
            if self._listed:
                return self._uris
            self._listed = True
            if self._channel is not None:
                try:
                    self._uris = self._list()
                except grpc.RpcError as exc:
                    _log.warning(
                        "node executions of %s unavailable (%s): probing the blob store",
                        self.reference.name,
                        exc.code(),
                    )
            return self._uris

    def _list(self) -> dict[str, str]:
        assert self._channel is not None
        stub = ne_grpc.NodeExecutionServiceStub(self._channel)
        uris: dict[str, str] = {}
        token = ""
        while True:
            page = stub.ListNodeExecutions(
                node_execution_service_pb2.ListNodeExecutionsRequest(
                    execution_id=self.reference,
                    all_levels=True,
                    options=common_pb2.ListOptions(limit=1000, token=token),
                ),
                timeout=self._timeout,
            )
            for ne in page.node_executions:
                closure = ne.closure
                if closure.phase in _DONE and closure.output_uri:
                    uris[ne.id.node_id] = closure.output_uri
            token = page.next_token
            if not token:
                return uris


def _is_array_item(node_path: str, listed: dict[str, str]) -> bool:
    """Whether ``node_path`` is an item (``{array}/0/{index}``) of a node not listed as succeeded.

    Only then are its outputs worth probing for in the blob store.
    """
    head, sep, index = node_path.rpartition("/")
    array_path, sep2, attempt = head.rpartition("/")
    return bool(sep and sep2 and index.isdigit() and attempt == "0") and array_path not in listed


__all__ = ["ReferenceOutputs"]
