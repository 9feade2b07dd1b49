"""Launch-plan nodes as child executions created through admin's ExecutionService.

The engine asks :class:`AdminLaunchPlanRunner` to launch, check and abort child executions.
The child's name is the engine's deterministic :attr:`LaunchRequest.child_name` (execution,
node path, attempt), so a round replayed after a crash, or two replicas racing, create one
child: admin answers ALREADY_EXISTS to the second CreateExecution, which counts as launched.
Admin hands the child to propeller like any execution; this runner only watches it.
"""

from __future__ import annotations

import logging

import grpc

from caddis.storage import BlobStore
from caddis_idl.admin.v1 import execution_pb2 as admin_execution_pb2
from caddis_idl.admin.v1 import execution_service_pb2, execution_service_pb2_grpc
from caddis_idl.core.v1 import execution_pb2, identifier_pb2, literals_pb2
from caddis_propeller.engine.interfaces import Failed, LaunchRequest, Running, Succeeded, TaskStatus

_log = logging.getLogger(__name__)

_WP = execution_pb2.WorkflowExecutionPhase
_TP = execution_pb2.TaskExecutionPhase
_USER = execution_pb2.ErrorKind.ERROR_KIND_USER
_SYSTEM = execution_pb2.ErrorKind.ERROR_KIND_SYSTEM
# Admin or the network having a bad moment: keep polling instead of failing the node.
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
_FAILED_PHASES = {
    _WP.WORKFLOW_EXECUTION_PHASE_FAILED: "ChildExecutionFailed",
    _WP.WORKFLOW_EXECUTION_PHASE_TIMED_OUT: "ChildExecutionTimedOut",
    _WP.WORKFLOW_EXECUTION_PHASE_ABORTED: "ChildExecutionAborted",
}


def child_id(request: LaunchRequest) -> identifier_pb2.WorkflowExecutionIdentifier:
    """The child execution of a launch-plan node: parent's project and domain, derived name."""
    parent = request.execution_id
    return identifier_pb2.WorkflowExecutionIdentifier(
        project=parent.project, domain=parent.domain, name=request.child_name
    )


def _fmt(eid: identifier_pb2.WorkflowExecutionIdentifier) -> str:
    return f"{eid.project}/{eid.domain}/{eid.name}"


class AdminLaunchPlanRunner:
    """The engine's ``LaunchPlanRunner`` over admin's ExecutionService.

    Args:
        channel: A gRPC channel to admin.
        store: Blob store to read the child's outputs from when admin does not inline them.
        timeout: Deadline of one call in seconds.
    """

    def __init__(self, channel: grpc.Channel, store: BlobStore, *, timeout: float = 10.0) -> None:
        self._stub = execution_service_pb2_grpc.ExecutionServiceStub(channel)
        self._store = store
        self._timeout = timeout

    def launch(self, request: LaunchRequest) -> TaskStatus:
        """Create the child execution (idempotent by its deterministic name).

        Args:
            request: The launch-plan node's request.

        Returns:
            ``Running`` with the child's ``project/domain/name`` as handle, or ``Failed`` when
            admin refuses the child for good (launch plan not registered, bad inputs).
        """
        child = child_id(request)
        handle = _fmt(child)
        failed = self._create(request, child)
        if failed is not None:
            return failed
        return Running(handle, phase=_TP.TASK_EXECUTION_PHASE_RUNNING, reason=f"child {handle}")

    def check(self, request: LaunchRequest, handle: str) -> TaskStatus:
        """Report the child's phase; its outputs once it succeeded.

        Args:
            request: The launch-plan node's request.
            handle: What :meth:`launch` returned (unused: the child id is derived again).

        Returns:
            ``Running``, ``Succeeded(outputs)`` or ``Failed`` with the child's error.
        """
        child = child_id(request)
        try:
            response = self._stub.GetExecution(
                execution_service_pb2.GetExecutionRequest(id=child), timeout=self._timeout
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                # launch() could not reach admin: create the child now.
                failed = self._create(request, child)
                return failed or Running(handle or _fmt(child), reason="child created")
            if exc.code() in TRANSIENT:
                return Running(handle or _fmt(child), reason=f"admin: {exc.code().name}")
            raise
        closure = response.execution.closure
        phase = closure.phase
        if phase == _WP.WORKFLOW_EXECUTION_PHASE_SUCCEEDED:
            return Succeeded(self._outputs(child, closure))
        code = _FAILED_PHASES.get(phase)
        if code is None:
            return Running(handle or _fmt(child), reason=f"child {_WP.Name(phase)}")
        which = closure.WhichOneof("output_result")
        error = execution_pb2.ExecutionError(
            code=code, message=f"child execution {_fmt(child)} ended {_WP.Name(phase)}", kind=_USER
        )
        if which == "error":
            error.message += f": [{closure.error.code}] {closure.error.message}"
            error.kind = closure.error.kind
            error.recoverable = closure.error.recoverable
        elif which == "abort_metadata":
            error.message += f": {closure.abort_metadata.cause}"
        return Failed(error)

    def abort(self, request: LaunchRequest, handle: str, reason: str) -> None:
        """Terminate the child (a child already over, or never created, is fine).

        Args:
            request: The launch-plan node's request.
            handle: What :meth:`launch` returned.
            reason: Recorded as the child's abort cause.
        """
        child = child_id(request)
        try:
            self._stub.TerminateExecution(
                execution_service_pb2.TerminateExecutionRequest(
                    id=child, cause=f"parent aborted: {reason}"
                ),
                timeout=self._timeout,
            )
        except grpc.RpcError as exc:
            if exc.code() not in (
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.FAILED_PRECONDITION,
            ):
                raise

    # ------------------------------------------------------------------ internals
    def _create(
        self, request: LaunchRequest, child: identifier_pb2.WorkflowExecutionIdentifier
    ) -> Failed | None:
        parent = request.execution_id
        spec = admin_execution_pb2.ExecutionSpec(
            launch_plan=request.launch_plan,
            metadata=admin_execution_pb2.ExecutionMetadata(
                mode=admin_execution_pb2.EXECUTION_MODE_CHILD,
                principal=f"{parent.project}/{parent.domain}/{parent.name}",
                parent_node_execution=identifier_pb2.NodeExecutionIdentifier(
                    node_id=request.node_path, execution_id=parent
                ),
            ),
        )
        create = execution_service_pb2.CreateExecutionRequest(
            project=child.project,
            domain=child.domain,
            name=child.name,
            spec=spec,
            inputs=request.inputs,
        )
        try:
            self._stub.CreateExecution(create, timeout=self._timeout)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.ALREADY_EXISTS:
                return None  # created before a crash, or by another replica
            if code in TRANSIENT:
                _log.info("child %s not created yet (%s); retried on check", _fmt(child), code)
                return None
            lp = request.launch_plan
            return Failed(
                execution_pb2.ExecutionError(
                    code="ChildLaunchRefused",
                    message=(
                        f"launch plan {lp.project}/{lp.domain}/{lp.name}@{lp.version} of node "
                        f"{request.node_path}: admin refused the child execution "
                        f"({code.name}): {exc.details()}"
                    ),
                    kind=_USER,
                )
            )
        return None

    def _outputs(
        self,
        child: identifier_pb2.WorkflowExecutionIdentifier,
        closure: admin_execution_pb2.ExecutionClosure,
    ) -> literals_pb2.LiteralMap:
        if closure.WhichOneof("output_result") == "output_data":
            return closure.output_data
        data = self._stub.GetExecutionData(
            execution_service_pb2.GetExecutionDataRequest(id=child), timeout=self._timeout
        ).outputs
        if data.HasField("literals"):
            return data.literals
        if data.uri:
            return self._store.read_proto(data.uri, literals_pb2.LiteralMap)
        return literals_pb2.LiteralMap()


__all__ = ["AdminLaunchPlanRunner", "child_id"]
