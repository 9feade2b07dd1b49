"""conditional(): branch nodes, conditions, nested branches and their errors."""

import pytest

from caddis import conditional, task, workflow
from caddis.core.errors import CompilationError, PromiseUsageError
from caddis.core.settings import SerializationSettings
from caddis_idl.core.v1 import condition_pb2

SETTINGS = SerializationSettings(project="p", domain="d", version="v1")
Cmp = condition_pb2.ComparisonExpression
Conj = condition_pb2.ConjunctionExpression


@task
def square(n: int) -> int:
    return n * n


@task
def double(n: int) -> int:
    return 2 * n


@task
def name_of(n: int) -> str:
    return str(n)


@task
def is_even(n: int) -> bool:
    return n % 2 == 0


@task
def maybe(n: int) -> int | None:
    return n or None


def test_if_elif_else() -> None:
    @workflow
    def wf(n: int) -> int:
        return (
            conditional("size")
            .if_(n < 10)
            .then(square(n=n))
            .elif_((n >= 10) & (n <= 100))
            .then(double(n=n))
            .else_()
            .then(square(n=1))
        )

    tpl = wf.to_template(SETTINGS)
    (branch,) = tpl.nodes
    assert branch.id == "n0" and branch.metadata.name == "size"
    assert [b.var for b in branch.inputs] == ["start-node.n"]
    ie = branch.branch_node.if_else
    cmp = ie.case.condition.comparison
    assert cmp.operator == Cmp.OPERATOR_LT
    assert cmp.left_value.var == "start-node.n"
    assert cmp.right_value.scalar.primitive.integer == 10
    assert ie.case.then_node.id == "n0-n0"
    conj = ie.other[0].condition.conjunction
    assert conj.operator == Conj.LOGICAL_OPERATOR_AND
    assert conj.left_expression.comparison.operator == Cmp.OPERATOR_GTE
    assert ie.other[0].then_node.id == "n0-n1"
    assert ie.else_node.id == "n0-n2"
    assert tpl.outputs[0].binding.promise.node_id == "n0"
    wf.compile(SETTINGS)


def test_fail_branch_and_unary_tests() -> None:
    @workflow
    def wf(n: int) -> int:
        even = is_even(n=n)
        m = maybe(n=n)
        return (
            conditional("check")
            .if_(even.is_true() | m.is_none())
            .then(double(n=n))
            .elif_(even.is_false())
            .then(square(n=n))
            .else_()
            .fail("impossible")
        )

    tpl = wf.to_template(SETTINGS)
    branch = tpl.nodes[2]
    ie = branch.branch_node.if_else
    assert ie.error.message == "impossible" and ie.error.failed_node_id == "n2"
    conj = ie.case.condition.conjunction
    assert conj.operator == Conj.LOGICAL_OPERATOR_OR
    assert conj.left_expression.unary.operator == condition_pb2.UnaryExpression.OPERATOR_IS_TRUE
    assert conj.right_expression.unary.operator == condition_pb2.UnaryExpression.OPERATOR_IS_NONE
    assert {b.var for b in branch.inputs} == {"n0.o0", "n1.o0"}
    # The branch waits for what its conditions and its cases read.
    assert set(branch.upstream_node_ids) == {"n0", "n1"}
    wf.compile(SETTINGS)


def test_bool_promise_is_accepted_as_condition() -> None:
    @workflow
    def wf(n: int) -> int:
        even = is_even(n=n)
        return conditional("c").if_(even).then(double(n=n)).else_().then(square(n=n))

    ie = wf.to_template(SETTINGS).nodes[1].branch_node.if_else
    assert ie.case.condition.unary.operator == condition_pb2.UnaryExpression.OPERATOR_IS_TRUE


def test_comparing_two_promises_and_nested_branch() -> None:
    @workflow
    def wf(a: int, b: int) -> int:
        return (
            conditional("outer")
            .if_(a == b)
            .then(conditional("inner").if_(a > 0).then(double(n=a)).else_().then(square(n=b)))
            .else_()
            .then(square(n=a))
        )

    tpl = wf.to_template(SETTINGS)
    outer = tpl.nodes[0]
    inner = outer.branch_node.if_else.case.then_node
    assert inner.id == "n0-n0"
    assert inner.branch_node.if_else.case.then_node.id == "n0-n0-n0"
    cmp = outer.branch_node.if_else.case.condition.comparison
    assert (cmp.left_value.var, cmp.right_value.var) == ("start-node.a", "start-node.b")
    wf.compile(SETTINGS)


def test_branch_then_nodes_after_other_nodes() -> None:
    @workflow
    def wf(n: int) -> str:
        s = square(n=n)
        d = conditional("c").if_(s > 4).then(double(n=s)).else_().then(square(n=s))
        return name_of(n=d)

    tpl = wf.to_template(SETTINGS)
    assert [n.id for n in tpl.nodes] == ["n0", "n1", "n2"]
    assert tpl.nodes[2].inputs[0].binding.promise.node_id == "n1"
    wf.compile(SETTINGS)


def test_outputs_of_branches_must_agree() -> None:
    with pytest.raises(CompilationError, match=r"output 'o0' is integer in if_ but string"):

        @workflow
        def wf(n: int) -> int:
            return conditional("c").if_(n > 1).then(square(n=n)).else_().then(name_of(n=n))


def test_missing_else_is_reported() -> None:
    with pytest.raises(CompilationError, match=r"conditional 'c' .* is never closed"):

        @workflow
        def wf(n: int) -> None:
            conditional("c").if_(n > 1).then(square(n=n))


def test_one_call_per_case() -> None:
    with pytest.raises(CompilationError, match="exactly one call"):

        @workflow
        def wf(n: int) -> int:
            return conditional("c").if_(n > 1).then(square(n=square(n=n))).else_().then(square(n=n))


def test_calls_inside_conditions_are_rejected() -> None:
    with pytest.raises(CompilationError, match="called inside the condition"):

        @workflow
        def wf(n: int) -> int:
            return conditional("c").if_(square(n=n) > 1).then(double(n=n)).else_().then(square(n=n))


def test_condition_errors() -> None:
    with pytest.raises(CompilationError, match="the Python bool True"):

        @workflow
        def wf(n: int) -> int:
            return conditional("c").if_(True).then(double(n=n)).else_().then(square(n=n))

    with pytest.raises(CompilationError, match="is not a bool"):

        @workflow
        def wf2(n: int) -> int:
            return conditional("c").if_(n).then(double(n=n)).else_().then(square(n=n))

    with pytest.raises(PromiseUsageError, match="operator &"):

        @workflow
        def wf3(n: int, m: int) -> int:
            return conditional("c").if_(n & m).then(double(n=n)).else_().then(square(n=n))

    with pytest.raises(CompilationError, match="only with a primitive constant"):

        @workflow
        def wf4(n: int) -> int:
            return conditional("c").if_(n > [1]).then(double(n=n)).else_().then(square(n=n))


def test_conditional_outside_workflow() -> None:
    with pytest.raises(CompilationError, match="inside a @workflow or @dynamic"):
        conditional("c")


def test_expression_used_as_bool() -> None:
    with pytest.raises(PromiseUsageError, match="cannot be used as a Python bool"):

        @workflow
        def wf(n: int) -> int:
            return double(n=n) if (n > 1) and (n < 3) else square(n=n)
