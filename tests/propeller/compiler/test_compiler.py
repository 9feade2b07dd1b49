from __future__ import annotations

import pytest

from caddis_idl.core.v1 import dynamic_job_pb2, literals_pb2, types_pb2
from caddis_propeller.compiler import (
    CompilationError,
    ErrorCode,
    compile_dynamic,
    compile_workflow,
    format_type,
    is_castable,
    list_of,
    optional,
)
from tests.propeller.compiler.builders import (
    BOOL,
    FLOAT,
    INT,
    LIST_INT,
    NONE,
    OPT_INT,
    STR,
    STRUCT,
    array_node,
    branch_node,
    cmp,
    const,
    ref,
    subwf_node,
    task,
    task_node,
    typed_interface,
    workflow,
)

ADD = task("add", {"a": INT, "b": INT}, {"o": INT})
STRS = task("strs", {}, {"o": list_of(STR)})
TAKE_INTS = task("take_ints", {"xs": LIST_INT}, {"o": INT})


def codes(exc: CompilationError) -> list[ErrorCode]:
    return [e.code for e in exc.errors]


def compile_errors(wf, tasks, **kw) -> CompilationError:
    with pytest.raises(CompilationError) as info:
        compile_workflow(wf, tasks, **kw)
    return info.value


def test_chain_connections() -> None:
    wf = workflow(
        "wf",
        {"x": INT},
        {"y": INT},
        [
            task_node("n0", ADD, {"a": ref("start-node", "x"), "b": const(1)}),
            task_node("n1", ADD, {"a": ref("n0", "o"), "b": const(2)}),
            task_node("n2", ADD, {"a": const(1), "b": const(2)}, upstream=["n0"]),
        ],
        {"y": ref("n1", "o")},
    )
    closure = compile_workflow(wf, [ADD, TAKE_INTS])
    cs = closure.primary.connections
    assert list(cs.upstream["n0"].ids) == ["start-node"]
    assert list(cs.upstream["n1"].ids) == ["n0"]
    assert list(cs.upstream["n2"].ids) == ["n0"]
    assert sorted(cs.downstream["n0"].ids) == ["n1", "n2"]
    assert sorted(cs.upstream["end-node"].ids) == ["n1", "n2"]
    # Only referenced tasks are carried.
    assert [t.template.id.name for t in closure.tasks] == ["add"]


def test_all_errors_collected_together() -> None:
    wf = workflow(
        "wf",
        {"x": STR},
        {"y": INT, "z": INT},
        [
            task_node("n0", ADD, {"a": ref("start-node", "x"), "c": const(1)}),
            task_node("n0", ADD, {"a": const(1), "b": const(1)}),
            task_node("n1", ADD, {"a": ref("ghost", "o"), "b": ref("n0", "nope")}),
            task_node("n2", task("missing"), {}),
        ],
        {"y": ref("n1", "zz"), "w": const(1)},
    )
    err = compile_errors(wf, [ADD])
    got = codes(err)
    for code in (
        ErrorCode.MISMATCHING_TYPES,
        ErrorCode.UNKNOWN_INPUT,
        ErrorCode.UNBOUND_INPUT,
        ErrorCode.DUPLICATE_NODE_ID,
        ErrorCode.UNKNOWN_NODE,
        ErrorCode.UNKNOWN_OUTPUT,
        ErrorCode.UNKNOWN_TASK,
        ErrorCode.UNBOUND_WORKFLOW_OUTPUT,
        ErrorCode.UNKNOWN_WORKFLOW_OUTPUT,
    ):
        assert code in got, (code, err)
    unbound = next(e for e in err.errors if e.code == ErrorCode.UNBOUND_INPUT)
    assert (unbound.node_id, unbound.variable) == ("n0", "b")
    assert "wf:n0.b" in str(err)


def test_type_mismatch_message_names_both_ends() -> None:
    wf = workflow(
        "wf",
        {},
        {"y": INT},
        [task_node("s", STRS), task_node("t", TAKE_INTS, {"xs": ref("s", "o")})],
        {"y": ref("t", "o")},
    )
    err = compile_errors(wf, [STRS, TAKE_INTS])
    (issue,) = err.errors
    assert issue.code == ErrorCode.MISMATCHING_TYPES
    assert issue.node_id == "t" and issue.variable == "xs"
    assert "List[int]" in issue.message and "List[str]" in issue.message
    assert "'s'" in issue.message and "'t'" in issue.message


def test_cycle_names_nodes_and_unreachable_downstream() -> None:
    wf = workflow(
        "wf",
        {},
        {},
        [
            task_node("a", ADD, {"a": ref("c", "o"), "b": const(1)}),
            task_node("b", ADD, {"a": ref("a", "o"), "b": const(1)}),
            task_node("c", ADD, {"a": ref("b", "o"), "b": const(1)}),
            task_node("d", ADD, {"a": ref("c", "o"), "b": const(1)}),
        ],
        {},
    )
    err = compile_errors(wf, [ADD])
    cyc = [e for e in err.errors if e.code == ErrorCode.CYCLE]
    assert len(cyc) == 1
    assert "a -> b -> c -> a" in cyc[0].message
    unreachable = [e for e in err.errors if e.code == ErrorCode.UNREACHABLE_NODE]
    assert [e.node_id for e in unreachable] == ["d"]


def test_optional_inputs_may_stay_unbound_and_int_into_float() -> None:
    t = task("t", {"a": FLOAT, "b": OPT_INT}, {"o": FLOAT})
    wf = workflow(
        "wf",
        {"x": INT},
        {"y": FLOAT},
        [task_node("n", t, {"a": ref("start-node", "x")})],
        {"y": ref("n", "o")},
    )
    compile_workflow(wf, [t])


def test_branch_condition_must_be_primitive() -> None:
    wf = workflow(
        "wf",
        {"x": LIST_INT, "y": INT},
        {},
        [
            branch_node(
                "b",
                {"x": ref("start-node", "x"), "y": ref("start-node", "y")},
                [
                    (cmp("==", "$x", 1), task_node("t1", ADD, {"a": const(1), "b": const(2)})),
                    (cmp(">", "$y", 1), task_node("t2", ADD, {"a": const(1), "b": const(2)})),
                    (cmp(">", "$zz", 1), task_node("t3", ADD, {"a": const(1), "b": const(2)})),
                ],
            )
        ],
        {},
    )
    err = compile_errors(wf, [ADD])
    assert codes(err) == [ErrorCode.NON_PRIMITIVE_CONDITION, ErrorCode.UNKNOWN_CONDITION_VARIABLE]
    assert "List[int]" in err.errors[0].message


def test_array_node_checks() -> None:
    sq = task("sq", {"x": INT, "k": INT}, {"o": INT})
    ok = workflow(
        "wf",
        {"xs": LIST_INT},
        {"ys": list_of(OPT_INT)},
        [
            array_node(
                "m",
                sq,
                {"x": ref("start-node", "xs"), "k": const(2)},
                bound=["k"],
                min_success_ratio=0.5,
            )
        ],
        {"ys": ref("m", "o")},
    )
    compile_workflow(ok, [sq])
    bad = workflow(
        "wf",
        {"xs": list_of(STR)},
        {},
        [
            array_node(
                "m", sq, {"x": ref("start-node", "xs")}, bound=["nope"], min_success_ratio=1.5
            )
        ],
        {},
    )
    err = compile_errors(bad, [sq])
    assert ErrorCode.INVALID_ARRAY_NODE in codes(err)
    assert ErrorCode.MISMATCHING_TYPES in codes(err)
    assert ErrorCode.UNKNOWN_INPUT in codes(err)
    assert ErrorCode.UNBOUND_INPUT in codes(err)  # k


def test_subworkflow_and_recursion() -> None:
    inner = workflow(
        "inner",
        {"a": INT},
        {"o": INT},
        [task_node("n", ADD, {"a": ref("start-node", "a"), "b": const(1)})],
        {"o": ref("n", "o")},
    )
    outer = workflow(
        "outer", {}, {"o": INT}, [subwf_node("s", inner, {"a": const(1)})], {"o": ref("s", "o")}
    )
    closure = compile_workflow(outer, [ADD], subworkflows=[inner])
    assert [w.template.id.name for w in closure.sub_workflows] == ["inner"]
    loop = workflow("loop", {}, {}, [], {})
    loop.nodes.append(subwf_node("self", loop))
    err = compile_errors(loop, [], subworkflows=[loop])
    assert ErrorCode.RECURSIVE_SUBWORKFLOW in codes(err)


def test_unknown_subworkflow() -> None:
    ghost = workflow("ghost", {}, {}, [], {})
    wf = workflow("wf", {}, {}, [subwf_node("s", ghost)], {})
    assert codes(compile_errors(wf, [])) == [ErrorCode.UNKNOWN_SUBWORKFLOW]


def test_compile_dynamic_spec() -> None:
    iface = typed_interface({"n": INT}, {"o": INT})
    spec = dynamic_job_pb2.DynamicJobSpec(
        nodes=[task_node("d0", ADD, {"a": ref("start-node", "n"), "b": const(1)})],
        outputs=[literals_pb2.Binding(var="o", binding=ref("d0", "o"))],
        tasks=[ADD],
    )
    closure = compile_dynamic(spec, node_id="dyn", interface=iface)
    assert closure.primary.template.id.name == "dynamic_dyn"
    bad = dynamic_job_pb2.DynamicJobSpec(nodes=[task_node("d0", ADD, {})], tasks=[ADD])
    with pytest.raises(CompilationError) as info:
        compile_dynamic(bad, node_id="dyn", interface=iface)
    assert ErrorCode.UNBOUND_WORKFLOW_OUTPUT in codes(info.value)


def _sd(fmt: str, **cols: types_pb2.LiteralType) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(
        structured_dataset_type=types_pb2.StructuredDatasetType(
            format=fmt,
            columns=[
                types_pb2.StructuredDatasetType.DatasetColumn(name=k, literal_type=v)
                for k, v in cols.items()
            ],
        )
    )


def _blob(fmt: str, multi: bool = False) -> types_pb2.LiteralType:
    dim = types_pb2.BlobType.Dimensionality
    return types_pb2.LiteralType(
        blob=types_pb2.BlobType(
            format=fmt,
            dimensionality=dim.DIMENSIONALITY_MULTIPART if multi else dim.DIMENSIONALITY_SINGLE,
        )
    )


@pytest.mark.parametrize(
    ("up", "down", "ok"),
    [
        (INT, FLOAT, True),
        (FLOAT, INT, False),
        (INT, OPT_INT, True),
        (NONE, OPT_INT, True),
        (OPT_INT, INT, False),
        (OPT_INT, optional(FLOAT), True),
        (list_of(INT), list_of(FLOAT), True),
        (list_of(STR), list_of(INT), False),
        (
            types_pb2.LiteralType(map_value_type=INT),
            types_pb2.LiteralType(map_value_type=INT),
            True,
        ),
        (
            types_pb2.LiteralType(map_value_type=STR),
            types_pb2.LiteralType(map_value_type=INT),
            False,
        ),
        (_blob("csv"), _blob("csv"), True),
        (_blob("csv"), _blob(""), True),
        (_blob("csv"), _blob("parquet"), False),
        (_blob("csv"), _blob("csv", multi=True), False),
        (_sd("parquet", a=INT, b=STR), _sd("parquet", a=INT), True),
        (_sd("parquet", a=INT), _sd("parquet", a=INT, b=STR), False),
        (_sd("", a=INT), _sd("parquet"), True),
        (types_pb2.LiteralType(enum_type=types_pb2.EnumType(values=["a"])), STR, True),
        (BOOL, INT, False),
        (STRUCT, STRUCT, True),
    ],
)
def test_is_castable(up, down, ok) -> None:
    assert is_castable(up, down) is ok


def test_format_type() -> None:
    assert format_type(list_of(INT)) == "List[int]"
    assert format_type(OPT_INT) == "Optional[int]"
    assert (
        format_type(types_pb2.LiteralType(map_value_type=list_of(FLOAT)))
        == "Dict[str, List[float]]"
    )
    assert format_type(_blob("csv")) == "File[csv]"
    assert format_type(_blob("", multi=True)) == "Directory"
    assert format_type(_sd("parquet", a=INT)) == "StructuredDataset[parquet](a: int)"
    union = types_pb2.LiteralType(union_type=types_pb2.UnionType(variants=[INT, STR]))
    assert format_type(union) == "Union[int, str]"
