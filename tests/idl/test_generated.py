"""The generated IDL modules import, and representative messages survive a round trip."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf import message as pb_message

from caddis_idl.core.v1 import (
    compiler_pb2,
    condition_pb2,
    dynamic_job_pb2,
    errors_pb2,
    execution_pb2,
    identifier_pb2,
    interface_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
    workflow_pb2,
)
from caddis_idl.event.v1 import event_pb2

PROTOS = Path(__file__).resolve().parents[2] / "protos"


def _generated_modules() -> list[str]:
    names = []
    for path in sorted((PROTOS / "caddis_idl").rglob("*_pb2*.py")):
        names.append(".".join(path.relative_to(PROTOS).with_suffix("").parts))
    return names


@pytest.mark.parametrize("module", _generated_modules())
def test_every_generated_module_imports(module: str) -> None:
    importlib.import_module(module)


def _roundtrip(msg: pb_message.Message) -> pb_message.Message:
    data = msg.SerializeToString(deterministic=True)
    parsed = type(msg).FromString(data)
    assert parsed == msg
    # Deterministic serialization is what cache keys and the --check mode rely on.
    assert parsed.SerializeToString(deterministic=True) == data
    return parsed


# -- helpers building values -------------------------------------------------------------


def _id(kind: int, name: str) -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=kind, project="flytesnacks", domain="development", name=name, version="v1"
    )


def _simple(t: int) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(simple=t)


INT = _simple(types_pb2.SIMPLE_TYPE_INTEGER)
STR = _simple(types_pb2.SIMPLE_TYPE_STRING)
NONE = _simple(types_pb2.SIMPLE_TYPE_NONE)


def _int(v: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=v))
    )


def _promise(node: str, var: str, *path: str | int) -> literals_pb2.BindingData:
    attrs = [
        literals_pb2.PromiseAttribute(int_value=p)
        if isinstance(p, int)
        else literals_pb2.PromiseAttribute(string_value=p)
        for p in path
    ]
    return literals_pb2.BindingData(
        promise=literals_pb2.OutputReference(node_id=node, var=var, attr_path=attrs)
    )


def _interface(inputs: dict[str, types_pb2.LiteralType], outputs: dict[str, types_pb2.LiteralType]):  # type: ignore[no-untyped-def]
    return interface_pb2.TypedInterface(
        inputs=interface_pb2.VariableMap(
            variables={k: interface_pb2.Variable(type=v) for k, v in inputs.items()}
        ),
        outputs=interface_pb2.VariableMap(
            variables={k: interface_pb2.Variable(type=v) for k, v in outputs.items()}
        ),
    )


def _task(name: str) -> tasks_pb2.TaskTemplate:
    task = tasks_pb2.TaskTemplate(
        id=_id(identifier_pb2.RESOURCE_TYPE_TASK, name),
        type="python-task",
        interface=_interface({"x": INT}, {"o0": INT}),
        process=tasks_pb2.ProcessSpec(
            image="",
            command=["python", "-m", "caddis.runtime"],
            args=["--inputs", "{{.input}}", "--output-prefix", "{{.outputPrefix}}"],
            env=[literals_pb2.KeyValuePair(key="LOG_LEVEL", value="info")],
            resources=tasks_pb2.Resources(
                requests=[
                    tasks_pb2.ResourceEntry(name=tasks_pb2.RESOURCE_NAME_CPU, value="500m"),
                    tasks_pb2.ResourceEntry(name=tasks_pb2.RESOURCE_NAME_MEMORY, value="1Gi"),
                ],
                limits=[
                    tasks_pb2.ResourceEntry(name=tasks_pb2.RESOURCE_NAME_GPU, value="1"),
                    tasks_pb2.ResourceEntry(
                        name=tasks_pb2.RESOURCE_NAME_EPHEMERAL_STORAGE, value="10Gi"
                    ),
                ],
            ),
            code_bundle=tasks_pb2.CodeBundle(
                uri="s3://bucket/bundles/ab.tar.gz", digest="sha256:ab"
            ),
        ),
        metadata=tasks_pb2.TaskMetadata(
            cacheable=True,
            cache_version="1.0",
            cache_serializable=True,
            cache_ignore_input_vars=["verbose"],
            interruptible=False,
            retries=literals_pb2.RetryStrategy(retries=3),
            runtime=tasks_pb2.RuntimeMetadata(
                type=tasks_pb2.RuntimeMetadata.RUNTIME_TYPE_CADDIS_SDK,
                version="0.1.0",
                flavor="python",
            ),
            generates_deck=True,
            tags={"team": "ml"},
        ),
        config={"k": "v"},
        security_context=tasks_pb2.SecurityContext(
            secrets=[
                tasks_pb2.Secret(
                    group="db",
                    key="password",
                    mount_requirement=tasks_pb2.Secret.MOUNT_TYPE_ENV_VAR,
                )
            ]
        ),
    )
    task.metadata.timeout.FromTimedelta(timedelta(minutes=5))
    task.custom.update({"plugin": {"replicas": 2}})
    return task


def _task_node(node_id: str, task: str, upstream: str = "start-node") -> workflow_pb2.Node:
    return workflow_pb2.Node(
        id=node_id,
        metadata=workflow_pb2.NodeMetadata(name=node_id, cacheable=True, interruptible=True),
        inputs=[literals_pb2.Binding(var="x", binding=_promise(upstream, "x"))],
        task_node=workflow_pb2.TaskNode(
            reference_id=_id(identifier_pb2.RESOURCE_TYPE_TASK, task),
            overrides=workflow_pb2.TaskNodeOverrides(container_image="img:2"),
        ),
    )


def _operand_var(name: str) -> condition_pb2.Operand:
    return condition_pb2.Operand(var=name)


def _comparison(op: int, var: str, value: int) -> condition_pb2.BooleanExpression:
    return condition_pb2.BooleanExpression(
        comparison=condition_pb2.ComparisonExpression(
            operator=op,
            left_value=_operand_var(var),
            right_value=condition_pb2.Operand(primitive=literals_pb2.Primitive(integer=value)),
        )
    )


def _closure() -> compiler_pb2.CompiledWorkflowClosure:
    Cmp = condition_pb2.ComparisonExpression
    Conj = condition_pb2.ConjunctionExpression
    Unary = condition_pb2.UnaryExpression
    # (x > 1 AND x <= 10) OR x is None
    condition = condition_pb2.BooleanExpression(
        conjunction=Conj(
            operator=Conj.LOGICAL_OPERATOR_OR,
            left_expression=condition_pb2.BooleanExpression(
                conjunction=Conj(
                    operator=Conj.LOGICAL_OPERATOR_AND,
                    left_expression=_comparison(Cmp.OPERATOR_GT, "x", 1),
                    right_expression=_comparison(Cmp.OPERATOR_LTE, "x", 10),
                )
            ),
            right_expression=condition_pb2.BooleanExpression(
                unary=Unary(operator=Unary.OPERATOR_IS_NONE, operand=_operand_var("x"))
            ),
        )
    )
    branch = workflow_pb2.Node(
        id="n2",
        inputs=[literals_pb2.Binding(var="x", binding=_promise("n0", "o0"))],
        branch_node=workflow_pb2.BranchNode(
            if_else=workflow_pb2.IfElseBlock(
                case=workflow_pb2.IfBlock(condition=condition, then_node=_task_node("n2-n0", "t")),
                other=[
                    workflow_pb2.IfBlock(
                        condition=_comparison(Cmp.OPERATOR_EQ, "x", 0),
                        then_node=_task_node("n2-n1", "t"),
                    )
                ],
                error=types_pb2.Error(failed_node_id="n2", message="no case matched"),
            )
        ),
    )
    gate = workflow_pb2.Node(
        id="n3",
        upstream_node_ids=["n2"],
        gate_node=workflow_pb2.GateNode(
            signal=workflow_pb2.SignalCondition(signal_id="go", type=STR, output_variable_name="o0")
        ),
    )
    sleep = workflow_pb2.Node(
        id="n3b", gate_node=workflow_pb2.GateNode(sleep=workflow_pb2.SleepCondition())
    )
    sleep.gate_node.sleep.duration.FromTimedelta(timedelta(seconds=30))
    approve = workflow_pb2.Node(
        id="n3c",
        gate_node=workflow_pb2.GateNode(approve=workflow_pb2.ApproveCondition(signal_id="ok")),
    )
    array = workflow_pb2.Node(
        id="n4",
        inputs=[literals_pb2.Binding(var="x", binding=_promise("n1", "o0", "items", 0))],
        array_node=workflow_pb2.ArrayNode(
            node=_task_node("n4-sub", "t"),
            parallelism=8,
            min_success_ratio=0.9,
            bound_inputs=["y"],
            run_all_sub_nodes=True,
            data_mode=workflow_pb2.ArrayNode.DATA_MODE_INDIVIDUAL_INPUT_FILES,
            execution_mode=workflow_pb2.ArrayNode.EXECUTION_MODE_MINIMAL_STATE,
        ),
    )
    subwf_node = workflow_pb2.Node(
        id="n1",
        inputs=[literals_pb2.Binding(var="x", binding=_promise("start-node", "x"))],
        workflow_node=workflow_pb2.WorkflowNode(
            sub_workflow_ref=_id(identifier_pb2.RESOURCE_TYPE_WORKFLOW, "sub")
        ),
    )
    lp_node = workflow_pb2.Node(
        id="n5",
        upstream_node_ids=["n4"],
        output_aliases=[workflow_pb2.Alias(var="o0", alias="child_out")],
        workflow_node=workflow_pb2.WorkflowNode(
            launchplan_ref=_id(identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN, "child_lp")
        ),
    )
    primary = workflow_pb2.WorkflowTemplate(
        id=_id(identifier_pb2.RESOURCE_TYPE_WORKFLOW, "main"),
        metadata=workflow_pb2.WorkflowMetadata(
            on_failure=workflow_pb2.WorkflowMetadata.ON_FAILURE_POLICY_FAIL_AFTER_EXECUTABLE_NODES_COMPLETE
        ),
        interface=_interface({"x": INT}, {"o0": INT}),
        nodes=[_task_node("n0", "t"), subwf_node, branch, gate, sleep, approve, array, lp_node],
        outputs=[literals_pb2.Binding(var="o0", binding=_promise("n0", "o0"))],
        failure_node=_task_node("fn", "cleanup"),
        metadata_defaults=workflow_pb2.WorkflowMetadataDefaults(interruptible=True),
    )
    connections = compiler_pb2.ConnectionSet(
        downstream={"n0": compiler_pb2.ConnectionSet.IdList(ids=["n2", "end-node"])},
        upstream={"n2": compiler_pb2.ConnectionSet.IdList(ids=["n0"])},
    )
    sub = workflow_pb2.WorkflowTemplate(
        id=_id(identifier_pb2.RESOURCE_TYPE_WORKFLOW, "sub"),
        interface=_interface({"x": INT}, {"o0": INT}),
        nodes=[_task_node("s0", "t")],
    )
    lp = workflow_pb2.LaunchPlanTemplate(
        id=_id(identifier_pb2.RESOURCE_TYPE_LAUNCH_PLAN, "child_lp"),
        interface=_interface({}, {"o0": INT}),
        fixed_inputs=literals_pb2.LiteralMap(literals={"x": _int(3)}),
    )
    return compiler_pb2.CompiledWorkflowClosure(
        primary=compiler_pb2.CompiledWorkflow(template=primary, connections=connections),
        sub_workflows=[compiler_pb2.CompiledWorkflow(template=sub)],
        tasks=[
            compiler_pb2.CompiledTask(template=_task("t")),
            compiler_pb2.CompiledTask(template=_task("cleanup")),
        ],
        launch_plans=[compiler_pb2.CompiledLaunchPlan(template=lp)],
    )


# -- tests ---------------------------------------------------------------------------------


def test_compiled_workflow_closure_with_every_node_kind_round_trips() -> None:
    parsed = _roundtrip(_closure())
    assert isinstance(parsed, compiler_pb2.CompiledWorkflowClosure)
    kinds = {n.WhichOneof("target") for n in parsed.primary.template.nodes}
    assert kinds == {"task_node", "workflow_node", "branch_node", "gate_node", "array_node"}
    refs = {
        n.workflow_node.WhichOneof("reference")
        for n in parsed.primary.template.nodes
        if n.HasField("workflow_node")
    }
    assert refs == {"launchplan_ref", "sub_workflow_ref"}
    gates = {
        n.gate_node.WhichOneof("condition")
        for n in parsed.primary.template.nodes
        if n.HasField("gate_node")
    }
    assert gates == {"approve", "signal", "sleep"}
    branch = next(n for n in parsed.primary.template.nodes if n.id == "n2").branch_node
    cond = branch.if_else.case.condition
    assert cond.conjunction.right_expression.unary.operand.var == "x"
    assert branch.if_else.WhichOneof("default") == "error"
    array = next(n for n in parsed.primary.template.nodes if n.id == "n4")
    assert array.array_node.WhichOneof("success_criteria") == "min_success_ratio"
    assert array.array_node.HasField("parallelism")
    assert [a.WhichOneof("value") for a in array.inputs[0].binding.promise.attr_path] == [
        "string_value",
        "int_value",
    ]
    task = parsed.tasks[0].template
    assert task.metadata.HasField("interruptible") and not task.metadata.interruptible
    assert task.metadata.timeout.ToTimedelta() == timedelta(minutes=5)
    assert task.custom["plugin"]["replicas"] == 2
    assert task.security_context.secrets[0].group == "db"


def test_optional_node_metadata_distinguishes_unset_from_false() -> None:
    meta = workflow_pb2.NodeMetadata()
    assert not meta.HasField("cacheable")
    meta.cacheable = False
    assert meta.HasField("cacheable")


def test_dynamic_job_spec_round_trips() -> None:
    spec = dynamic_job_pb2.DynamicJobSpec(
        nodes=[_task_node(f"dn{i}", "t") for i in range(3)],
        min_successes=3,
        outputs=[literals_pb2.Binding(var="o0", binding=_promise("dn2", "o0"))],
        tasks=[_task("t")],
        subworkflows=[
            workflow_pb2.WorkflowTemplate(id=_id(identifier_pb2.RESOURCE_TYPE_WORKFLOW, "s"))
        ],
    )
    parsed = _roundtrip(spec)
    assert isinstance(parsed, dynamic_job_pb2.DynamicJobSpec)
    assert [n.id for n in parsed.nodes] == ["dn0", "dn1", "dn2"]


def _nested_literal_map() -> literals_pb2.LiteralMap:
    csv = types_pb2.BlobType(format="csv", dimensionality=types_pb2.BlobType.DIMENSIONALITY_SINGLE)
    folder = types_pb2.BlobType(dimensionality=types_pb2.BlobType.DIMENSIONALITY_MULTIPART)
    sd_type = types_pb2.StructuredDatasetType(
        columns=[types_pb2.StructuredDatasetType.DatasetColumn(name="a", literal_type=INT)],
        format="parquet",
    )
    union_type = types_pb2.LiteralType(
        union_type=types_pb2.UnionType(variants=[INT, NONE]),
    )
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def union_of(value: literals_pb2.Literal, t: types_pb2.LiteralType) -> literals_pb2.Literal:
        return literals_pb2.Literal(
            scalar=literals_pb2.Scalar(union=literals_pb2.Union(value=value, type=t))
        )

    prim = literals_pb2.Primitive()
    prim.datetime.FromDatetime(when)
    dur = literals_pb2.Primitive()
    dur.duration.FromTimedelta(timedelta(seconds=90))
    none = literals_pb2.Literal(scalar=literals_pb2.Scalar(none_type=literals_pb2.Void()))
    row = literals_pb2.LiteralMap(
        literals={
            "maybe": union_of(_int(7), INT),
            "nothing": union_of(none, NONE),
            "file": literals_pb2.Literal(
                scalar=literals_pb2.Scalar(
                    blob=literals_pb2.Blob(
                        metadata=literals_pb2.BlobMetadata(type=csv), uri="s3://b/x.csv"
                    )
                )
            ),
            "dir": literals_pb2.Literal(
                scalar=literals_pb2.Scalar(
                    blob=literals_pb2.Blob(
                        metadata=literals_pb2.BlobMetadata(type=folder), uri="s3://b/d/"
                    )
                )
            ),
            "df": literals_pb2.Literal(
                hash="precomputed-hash",
                scalar=literals_pb2.Scalar(
                    structured_dataset=literals_pb2.StructuredDataset(
                        uri="s3://b/df/",
                        metadata=literals_pb2.StructuredDatasetMetadata(
                            structured_dataset_type=sd_type
                        ),
                    )
                ),
            ),
            "when": literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=prim)),
            "took": literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=dur)),
            "packed": literals_pb2.Literal(
                scalar=literals_pb2.Scalar(
                    binary=literals_pb2.Binary(value=b"\x81\xa1a\x01", tag="msgpack")
                )
            ),
            "err": literals_pb2.Literal(
                scalar=literals_pb2.Scalar(error=types_pb2.Error(failed_node_id="n1", message="x"))
            ),
            "big": literals_pb2.Literal(
                offloaded_metadata=literals_pb2.LiteralOffloadedMetadata(
                    uri="s3://b/big.pb", size_bytes=1 << 30, inferred_type=union_type
                )
            ),
        }
    )
    generic = literals_pb2.Literal(scalar=literals_pb2.Scalar())
    generic.scalar.generic.update({"k": [1, "two", None]})
    collection = literals_pb2.Literal(
        collection=literals_pb2.LiteralCollection(
            literals=[literals_pb2.Literal(map=row), literals_pb2.Literal(map=row), generic]
        ),
        metadata={"origin": "test"},
    )
    return literals_pb2.LiteralMap(literals={"rows": collection, "n": _int(2)})


def test_nested_literal_map_round_trips() -> None:
    parsed = _roundtrip(_nested_literal_map())
    assert isinstance(parsed, literals_pb2.LiteralMap)
    rows = parsed.literals["rows"].collection.literals
    assert rows[0].map.literals["maybe"].scalar.union.value.scalar.primitive.integer == 7
    assert rows[0].map.literals["df"].hash == "precomputed-hash"
    assert rows[0].map.literals["when"].scalar.primitive.datetime.ToDatetime(UTC).year == 2026
    assert rows[0].map.literals["big"].offloaded_metadata.size_bytes == 1 << 30
    assert rows[2].scalar.generic["k"][1] == "two"


def test_execution_events_round_trip() -> None:
    exec_id = identifier_pb2.WorkflowExecutionIdentifier(
        project="p", domain="development", name="abc123"
    )
    node_exec = identifier_pb2.NodeExecutionIdentifier(node_id="n4-0", execution_id=exec_id)
    task_exec = identifier_pb2.TaskExecutionIdentifier(
        task_id=_id(identifier_pb2.RESOURCE_TYPE_TASK, "t"),
        node_execution_id=node_exec,
        retry_attempt=1,
    )
    error = execution_pb2.ExecutionError(
        code="USER:ValueError",
        message="bad",
        kind=execution_pb2.ERROR_KIND_USER,
        recoverable=False,
        worker="host-1",
    )
    node_event = event_pb2.NodeExecutionEvent(
        id=node_exec,
        producer_id="propeller-0",
        phase=execution_pb2.NODE_EXECUTION_PHASE_SUCCEEDED,
        input_uri="s3://b/inputs.pb",
        output_data=_nested_literal_map(),
        task_node_metadata=event_pb2.TaskNodeMetadata(
            cache_status=execution_pb2.CATALOG_CACHE_STATUS_HIT,
            reservation_status=execution_pb2.CATALOG_RESERVATION_STATUS_ACQUIRED,
            catalog_key=execution_pb2.CatalogMetadata(
                dataset_id=_id(identifier_pb2.RESOURCE_TYPE_DATASET, "t"),
                artifact_tag=execution_pb2.CatalogArtifactTag(artifact_id="a1", name="h1"),
                source_task_execution=task_exec,
            ),
            dynamic_workflow=event_pb2.DynamicWorkflowNodeMetadata(
                compiled_workflow=_closure(), dynamic_job_spec_uri="s3://b/futures.pb"
            ),
        ),
        parent_node_metadata=event_pb2.ParentNodeExecutionMetadata(node_id="n4", array_index=0),
        parent_task_metadata=event_pb2.ParentTaskExecutionMetadata(id=task_exec),
        node_name="n4",
        is_parent=False,
        is_dynamic=True,
        is_array=False,
        target_entity=_id(identifier_pb2.RESOURCE_TYPE_TASK, "t"),
    )
    node_event.occurred_at.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC))
    node_event.reported_at.GetCurrentTime()
    parsed = _roundtrip(node_event)
    assert isinstance(parsed, event_pb2.NodeExecutionEvent)
    assert parsed.WhichOneof("output_result") == "output_data"
    assert parsed.parent_node_metadata.HasField("array_index")

    task_event = event_pb2.TaskExecutionEvent(
        task_id=task_exec.task_id,
        parent_node_execution_id=node_exec,
        retry_attempt=1,
        phase=execution_pb2.TASK_EXECUTION_PHASE_RETRYABLE_FAILED,
        phase_version=2,
        error=error,
        logs=[
            execution_pb2.TaskLog(
                uri="file:///logs/1",
                name="stdout",
                message_format=execution_pb2.TaskLog.MESSAGE_FORMAT_JSON,
            )
        ],
        reasons=[event_pb2.EventReason(reason="oom")],
        metadata=event_pb2.TaskExecutionMetadata(
            external_resources=[
                event_pb2.ExternalResourceInfo(
                    external_id="pid-1",
                    index=3,
                    phase=execution_pb2.TASK_EXECUTION_PHASE_RUNNING,
                    cache_status=execution_pb2.CATALOG_CACHE_STATUS_MISS,
                )
            ]
        ),
    )
    task_event.custom_info.update({"pid": 1234})
    assert _roundtrip(task_event) == task_event

    wf_event = event_pb2.WorkflowExecutionEvent(
        execution_id=exec_id,
        phase=execution_pb2.WORKFLOW_EXECUTION_PHASE_FAILED,
        error=error,
    )
    assert _roundtrip(wf_event) == wf_event


def test_error_document_round_trips() -> None:
    doc = errors_pb2.ErrorDocument(
        error=errors_pb2.ContainerError(
            code="ValueError",
            message="Traceback ...",
            kind=errors_pb2.ContainerError.KIND_RECOVERABLE,
            origin=execution_pb2.ERROR_KIND_USER,
        )
    )
    assert _roundtrip(doc) == doc


def test_parameter_behaviour_is_a_oneof() -> None:
    param = interface_pb2.Parameter(var=interface_pb2.Variable(type=INT), required=True)
    param.default.CopyFrom(_int(5))
    assert param.WhichOneof("behavior") == "default"


@pytest.mark.parametrize(
    "enum",
    [
        types_pb2.SimpleType,
        identifier_pb2.ResourceType,
        execution_pb2.WorkflowExecutionPhase,
        execution_pb2.NodeExecutionPhase,
        execution_pb2.TaskExecutionPhase,
        execution_pb2.CatalogCacheStatus,
        execution_pb2.CatalogReservationStatus,
        execution_pb2.ErrorKind,
    ],
)
def test_enums_start_with_unspecified(enum) -> None:  # type: ignore[no-untyped-def]
    assert enum.Name(0).endswith("_UNSPECIFIED")
