"""One servicer per admin service.

Each method decodes, calls one manager method, encodes;
domain errors become status codes in caddis._serving's interceptor.
"""

from __future__ import annotations

from typing import Any

import grpc

from caddis._serving.errors import InvalidArgumentError, NotFoundError
from caddis_admin.manager.events import EventManager
from caddis_admin.manager.executions import ExecutionManager, LaunchRequest
from caddis_admin.manager.registration import RegistrationManager
from caddis_admin.manager.signals import SignalManager
from caddis_idl.admin.v1 import (
    code_bundle_service_pb2 as cb,
)
from caddis_idl.admin.v1 import (
    code_bundle_service_pb2_grpc as cb_grpc,
)
from caddis_idl.admin.v1 import (
    event_service_pb2 as ev,
)
from caddis_idl.admin.v1 import (
    event_service_pb2_grpc as ev_grpc,
)
from caddis_idl.admin.v1 import (
    execution_service_pb2 as ex,
)
from caddis_idl.admin.v1 import (
    execution_service_pb2_grpc as ex_grpc,
)
from caddis_idl.admin.v1 import (
    launch_plan_service_pb2 as lp,
)
from caddis_idl.admin.v1 import (
    launch_plan_service_pb2_grpc as lp_grpc,
)
from caddis_idl.admin.v1 import (
    node_execution_service_pb2 as ne,
)
from caddis_idl.admin.v1 import (
    node_execution_service_pb2_grpc as ne_grpc,
)
from caddis_idl.admin.v1 import (
    project_service_pb2 as pj,
)
from caddis_idl.admin.v1 import (
    project_service_pb2_grpc as pj_grpc,
)
from caddis_idl.admin.v1 import (
    signal_service_pb2 as sg,
)
from caddis_idl.admin.v1 import (
    signal_service_pb2_grpc as sg_grpc,
)
from caddis_idl.admin.v1 import (
    task_execution_service_pb2 as te,
)
from caddis_idl.admin.v1 import (
    task_execution_service_pb2_grpc as te_grpc,
)
from caddis_idl.admin.v1 import (
    task_service_pb2 as tk,
)
from caddis_idl.admin.v1 import (
    task_service_pb2_grpc as tk_grpc,
)
from caddis_idl.admin.v1 import (
    workflow_service_pb2 as wf,
)
from caddis_idl.admin.v1 import (
    workflow_service_pb2_grpc as wf_grpc,
)

Ctx = grpc.ServicerContext


class ProjectServicer(pj_grpc.ProjectServiceServicer):
    """ProjectService."""

    def __init__(self, registration: RegistrationManager) -> None:
        self.m = registration

    def CreateProject(
        self, request: pj.CreateProjectRequest, context: Ctx
    ) -> pj.CreateProjectResponse:
        return pj.CreateProjectResponse(project=self.m.create_project(request.project))

    def GetProject(self, request: pj.GetProjectRequest, context: Ctx) -> pj.GetProjectResponse:
        return pj.GetProjectResponse(project=self.m.get_project(request.id))

    def ListProjects(
        self, request: pj.ListProjectsRequest, context: Ctx
    ) -> pj.ListProjectsResponse:
        items, token = self.m.list_projects(request.options)
        return pj.ListProjectsResponse(projects=items, next_token=token)

    def UpdateProject(
        self, request: pj.UpdateProjectRequest, context: Ctx
    ) -> pj.UpdateProjectResponse:
        return pj.UpdateProjectResponse(project=self.m.update_project(request.project))


class TaskServicer(tk_grpc.TaskServiceServicer):
    """TaskService."""

    def __init__(self, registration: RegistrationManager) -> None:
        self.m = registration

    def CreateTask(self, request: tk.CreateTaskRequest, context: Ctx) -> tk.CreateTaskResponse:
        self.m.create_task(request.id, request.spec)
        return tk.CreateTaskResponse()

    def GetTask(self, request: tk.GetTaskRequest, context: Ctx) -> tk.GetTaskResponse:
        return tk.GetTaskResponse(task=self.m.get_task(request.id))

    def ListTaskIds(self, request: tk.ListTaskIdsRequest, context: Ctx) -> tk.ListTaskIdsResponse:
        ids, token = self.m.list_ids("tasks", request.project, request.domain, request.options)
        return tk.ListTaskIdsResponse(entities=ids, next_token=token)

    def ListTasks(self, request: tk.ListTasksRequest, context: Ctx) -> tk.ListTasksResponse:
        items, token = self.m.list_tasks(request.id, request.options)
        return tk.ListTasksResponse(tasks=items, next_token=token)


class WorkflowServicer(wf_grpc.WorkflowServiceServicer):
    """WorkflowService."""

    def __init__(self, registration: RegistrationManager) -> None:
        self.m = registration

    def CreateWorkflow(
        self, request: wf.CreateWorkflowRequest, context: Ctx
    ) -> wf.CreateWorkflowResponse:
        self.m.create_workflow(request.id, request.spec)
        return wf.CreateWorkflowResponse()

    def GetWorkflow(self, request: wf.GetWorkflowRequest, context: Ctx) -> wf.GetWorkflowResponse:
        return wf.GetWorkflowResponse(
            workflow=self.m.get_workflow(request.id, request.include_compiled_closure)
        )

    def ListWorkflowIds(
        self, request: wf.ListWorkflowIdsRequest, context: Ctx
    ) -> wf.ListWorkflowIdsResponse:
        ids, token = self.m.list_ids("workflows", request.project, request.domain, request.options)
        return wf.ListWorkflowIdsResponse(entities=ids, next_token=token)

    def ListWorkflows(
        self, request: wf.ListWorkflowsRequest, context: Ctx
    ) -> wf.ListWorkflowsResponse:
        items, token = self.m.list_workflows(request.id, request.options)
        return wf.ListWorkflowsResponse(workflows=items, next_token=token)


class LaunchPlanServicer(lp_grpc.LaunchPlanServiceServicer):
    """LaunchPlanService."""

    def __init__(self, registration: RegistrationManager) -> None:
        self.m = registration

    def CreateLaunchPlan(
        self, request: lp.CreateLaunchPlanRequest, context: Ctx
    ) -> lp.CreateLaunchPlanResponse:
        self.m.create_launch_plan(request.id, request.spec)
        return lp.CreateLaunchPlanResponse()

    def GetLaunchPlan(
        self, request: lp.GetLaunchPlanRequest, context: Ctx
    ) -> lp.GetLaunchPlanResponse:
        return lp.GetLaunchPlanResponse(launch_plan=self.m.get_launch_plan(request.id))

    def GetActiveLaunchPlan(
        self, request: lp.GetActiveLaunchPlanRequest, context: Ctx
    ) -> lp.GetActiveLaunchPlanResponse:
        return lp.GetActiveLaunchPlanResponse(launch_plan=self.m.get_active_launch_plan(request.id))

    def ListLaunchPlanIds(
        self, request: lp.ListLaunchPlanIdsRequest, context: Ctx
    ) -> lp.ListLaunchPlanIdsResponse:
        ids, token = self.m.list_ids(
            "launch_plans", request.project, request.domain, request.options
        )
        return lp.ListLaunchPlanIdsResponse(entities=ids, next_token=token)

    def ListLaunchPlans(
        self, request: lp.ListLaunchPlansRequest, context: Ctx
    ) -> lp.ListLaunchPlansResponse:
        items, token = self.m.list_launch_plans(request.id, request.options)
        return lp.ListLaunchPlansResponse(launch_plans=items, next_token=token)

    def ListActiveLaunchPlans(
        self, request: lp.ListActiveLaunchPlansRequest, context: Ctx
    ) -> lp.ListActiveLaunchPlansResponse:
        from caddis_idl.admin.v1 import common_pb2

        ident = common_pb2.NamedEntityIdentifier(project=request.project, domain=request.domain)
        items, token = self.m.list_launch_plans(ident, request.options, active_only=True)
        return lp.ListActiveLaunchPlansResponse(launch_plans=items, next_token=token)

    def UpdateLaunchPlan(
        self, request: lp.UpdateLaunchPlanRequest, context: Ctx
    ) -> lp.UpdateLaunchPlanResponse:
        self.m.update_launch_plan(request.id, request.state)
        return lp.UpdateLaunchPlanResponse()


class CodeBundleServicer(cb_grpc.CodeBundleServiceServicer):
    """CodeBundleService."""

    def __init__(self, registration: RegistrationManager) -> None:
        self.m = registration

    def CreateUploadLocation(
        self, request: cb.CreateUploadLocationRequest, context: Ctx
    ) -> cb.CreateUploadLocationResponse:
        expires = request.expires_in.ToTimedelta().total_seconds() or 3600.0
        signed, native = self.m.create_upload_location(
            request.project, request.domain, request.digest, request.filename, expires
        )
        return cb.CreateUploadLocationResponse(signed_url=signed, native_url=native)

    def RegisterCodeBundle(
        self, request: cb.RegisterCodeBundleRequest, context: Ctx
    ) -> cb.RegisterCodeBundleResponse:
        bundle = self.m.register_code_bundle(
            request.project,
            request.domain,
            request.digest,
            request.uri,
            request.size_bytes,
            request.filename,
        )
        return cb.RegisterCodeBundleResponse(bundle=bundle)

    def GetCodeBundle(
        self, request: cb.GetCodeBundleRequest, context: Ctx
    ) -> cb.GetCodeBundleResponse:
        return cb.GetCodeBundleResponse(
            bundle=self.m.get_code_bundle(request.project, request.domain, request.digest)
        )


class ExecutionServicer(ex_grpc.ExecutionServiceServicer):
    """ExecutionService."""

    def __init__(self, executions: ExecutionManager) -> None:
        self.m = executions

    def CreateExecution(
        self, request: ex.CreateExecutionRequest, context: Ctx
    ) -> ex.CreateExecutionResponse:
        name = self.m.create(
            LaunchRequest(
                request.project, request.domain, request.name, request.spec, request.inputs
            )
        )
        return ex.CreateExecutionResponse(id=_exec_id(request.project, request.domain, name))

    def RelaunchExecution(
        self, request: ex.RelaunchExecutionRequest, context: Ctx
    ) -> ex.RelaunchExecutionResponse:
        name = self.m.relaunch(request.id, request.name, request.overwrite_cache)
        return ex.RelaunchExecutionResponse(
            id=_exec_id(request.id.project, request.id.domain, name)
        )

    def RecoverExecution(
        self, request: ex.RecoverExecutionRequest, context: Ctx
    ) -> ex.RecoverExecutionResponse:
        name = self.m.recover(request.id, request.name, list(request.task_version_overrides))
        return ex.RecoverExecutionResponse(id=_exec_id(request.id.project, request.id.domain, name))

    def GetExecution(
        self, request: ex.GetExecutionRequest, context: Ctx
    ) -> ex.GetExecutionResponse:
        response = ex.GetExecutionResponse()
        self.m.get(request.id, into=response.execution)
        return response

    def ListExecutions(
        self, request: ex.ListExecutionsRequest, context: Ctx
    ) -> ex.ListExecutionsResponse:
        items, token = self.m.list_executions(request.project, request.domain, request.options)
        return ex.ListExecutionsResponse(executions=items, next_token=token)

    def TerminateExecution(
        self, request: ex.TerminateExecutionRequest, context: Ctx
    ) -> ex.TerminateExecutionResponse:
        self.m.terminate(request.id, request.cause)
        return ex.TerminateExecutionResponse()

    def GetExecutionData(
        self, request: ex.GetExecutionDataRequest, context: Ctx
    ) -> ex.GetExecutionDataResponse:
        inputs, outputs = self.m.get_data(request.id)
        return ex.GetExecutionDataResponse(inputs=inputs, outputs=outputs)

    def UpdateExecution(
        self, request: ex.UpdateExecutionRequest, context: Ctx
    ) -> ex.UpdateExecutionResponse:
        return ex.UpdateExecutionResponse(
            execution=self.m.update(
                request.id, request.state, list(request.add_tags), list(request.remove_tags)
            )
        )


class NodeExecutionServicer(ne_grpc.NodeExecutionServiceServicer):
    """NodeExecutionService."""

    def __init__(self, events: EventManager) -> None:
        self.m = events

    def GetNodeExecution(
        self, request: ne.GetNodeExecutionRequest, context: Ctx
    ) -> ne.GetNodeExecutionResponse:
        return ne.GetNodeExecutionResponse(node_execution=self.m.get_node(request.id))

    def ListNodeExecutions(
        self, request: ne.ListNodeExecutionsRequest, context: Ctx
    ) -> ne.ListNodeExecutionsResponse:
        items, token = self.m.list_nodes(
            request.execution_id,
            request.unique_parent_id,
            request.options,
            all_levels=request.all_levels,
        )
        return ne.ListNodeExecutionsResponse(node_executions=items, next_token=token)

    def GetNodeExecutionData(
        self, request: ne.GetNodeExecutionDataRequest, context: Ctx
    ) -> ne.GetNodeExecutionDataResponse:
        inputs, outputs = self.m.node_data(request.id)
        return ne.GetNodeExecutionDataResponse(inputs=inputs, outputs=outputs)


class TaskExecutionServicer(te_grpc.TaskExecutionServiceServicer):
    """TaskExecutionService."""

    def __init__(self, events: EventManager) -> None:
        self.m = events

    def GetTaskExecution(
        self, request: te.GetTaskExecutionRequest, context: Ctx
    ) -> te.GetTaskExecutionResponse:
        return te.GetTaskExecutionResponse(task_execution=self.m.get_task_execution(request.id))

    def ListTaskExecutions(
        self, request: te.ListTaskExecutionsRequest, context: Ctx
    ) -> te.ListTaskExecutionsResponse:
        items, token = self.m.list_task_executions(request.node_execution_id, request.options)
        return te.ListTaskExecutionsResponse(task_executions=items, next_token=token)

    def GetTaskExecutionData(
        self, request: te.GetTaskExecutionDataRequest, context: Ctx
    ) -> te.GetTaskExecutionDataResponse:
        inputs, outputs = self.m.task_data(request.id)
        return te.GetTaskExecutionDataResponse(inputs=inputs, outputs=outputs)


class SignalServicer(sg_grpc.SignalServiceServicer):
    """SignalService: signals that gate nodes wait for."""

    def __init__(self, signals: SignalManager) -> None:
        self.m = signals

    def GetOrCreateSignal(
        self, request: sg.GetOrCreateSignalRequest, context: Ctx
    ) -> sg.GetOrCreateSignalResponse:
        return sg.GetOrCreateSignalResponse(signal=self.m.get_or_create(request.id, request.type))

    def ListSignals(self, request: sg.ListSignalsRequest, context: Ctx) -> sg.ListSignalsResponse:
        items, token = self.m.list_signals(request.execution_id, request.options)
        return sg.ListSignalsResponse(signals=items, next_token=token)

    def SetSignal(self, request: sg.SetSignalRequest, context: Ctx) -> sg.SetSignalResponse:
        self.m.set(request.id, request.value)
        return sg.SetSignalResponse()


class EventServicer(ev_grpc.EventServiceServicer):
    """EventService: propeller reports workflow, node and task events here."""

    def __init__(self, events: EventManager) -> None:
        self.m = events

    def CreateWorkflowEvent(
        self, request: ev.CreateWorkflowEventRequest, context: Ctx
    ) -> ev.CreateWorkflowEventResponse:
        self.m.workflow_event(request.request_id, request.event)
        return ev.CreateWorkflowEventResponse()

    def CreateNodeEvent(
        self, request: ev.CreateNodeEventRequest, context: Ctx
    ) -> ev.CreateNodeEventResponse:
        self.m.node_event(request.request_id, request.event)
        return ev.CreateNodeEventResponse()

    def CreateTaskEvent(
        self, request: ev.CreateTaskEventRequest, context: Ctx
    ) -> ev.CreateTaskEventResponse:
        self.m.task_event(request.request_id, request.event)
        return ev.CreateTaskEventResponse()

    def CreateEvents(
        self, request: ev.CreateEventsRequest, context: Ctx
    ) -> ev.CreateEventsResponse:
        from caddis._serving.errors import FailedPreconditionError, ServiceError

        applied = self.m.apply_batch(
            [
                (item.WhichOneof("event") or "", item.request_id, _batched(item))
                for item in request.events
            ]
        )
        results = []
        for item, result in zip(request.events, applied, strict=True):
            outcome = ev.EVENT_OUTCOME_ACCEPTED
            message = ""
            if result is False:
                outcome = ev.EVENT_OUTCOME_DUPLICATE
            elif isinstance(result, FailedPreconditionError):
                outcome, message = ev.EVENT_OUTCOME_ALREADY_TERMINAL, result.message
            elif isinstance(result, NotFoundError):
                outcome, message = ev.EVENT_OUTCOME_NOT_FOUND, result.message
            elif isinstance(result, InvalidArgumentError):
                outcome, message = ev.EVENT_OUTCOME_INVALID, result.message
            elif isinstance(result, ServiceError):
                outcome, message = ev.EVENT_OUTCOME_INTERNAL_ERROR, result.message
            results.append(
                ev.EventResult(request_id=item.request_id, outcome=outcome, message=message)
            )
        return ev.CreateEventsResponse(results=results)


def _batched(item: ev.BatchedEvent) -> Any:
    kind = item.WhichOneof("event")
    return getattr(item, kind) if kind else None


def _exec_id(project: str, domain: str, name: str) -> Any:
    from caddis_idl.core.v1 import identifier_pb2

    return identifier_pb2.WorkflowExecutionIdentifier(project=project, domain=domain, name=name)
