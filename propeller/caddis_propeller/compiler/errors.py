"""Compilation problems: every check adds an issue; all issues are raised together at the end."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """What kind of problem a :class:`CompileIssue` reports (stable strings, safe to match on)."""

    DUPLICATE_NODE_ID = "DuplicateNodeId"
    INVALID_NODE_ID = "InvalidNodeId"
    NO_TARGET = "NodeHasNoTarget"
    UNKNOWN_NODE = "UnknownNode"
    UNKNOWN_TASK = "UnknownTask"
    UNKNOWN_SUBWORKFLOW = "UnknownSubWorkflow"
    UNKNOWN_LAUNCH_PLAN = "UnknownLaunchPlan"
    RECURSIVE_SUBWORKFLOW = "RecursiveSubWorkflow"
    CYCLE = "Cycle"
    UNREACHABLE_NODE = "UnreachableNode"
    NOT_CONTRIBUTING = "NodeNotContributing"
    UNBOUND_INPUT = "UnboundInput"
    UNKNOWN_INPUT = "UnknownInput"
    DUPLICATE_BINDING = "DuplicateBinding"
    UNKNOWN_OUTPUT = "UnknownOutput"
    MISMATCHING_TYPES = "MismatchingTypes"
    UNBOUND_WORKFLOW_OUTPUT = "UnboundWorkflowOutput"
    UNKNOWN_WORKFLOW_OUTPUT = "UnknownWorkflowOutput"
    INVALID_BRANCH = "InvalidBranch"
    UNKNOWN_CONDITION_VARIABLE = "UnknownConditionVariable"
    NON_PRIMITIVE_CONDITION = "NonPrimitiveCondition"
    INVALID_ARRAY_NODE = "InvalidArrayNode"
    INVALID_GATE = "InvalidGate"


@dataclass(frozen=True, slots=True)
class CompileIssue:
    """One problem found by the compiler.

    Attributes:
        code: The kind of problem.
        node_id: The node it concerns ("" for workflow-level problems; "start-node" and
            "end-node" name the workflow's inputs and outputs).
        variable: The input/output variable concerned, or "".
        message: A sentence for humans naming what is wrong and what to do.
        workflow: The name of the workflow template the node belongs to.
    """

    code: ErrorCode
    node_id: str
    variable: str
    message: str
    workflow: str = ""

    def __str__(self) -> str:
        where = f"{self.workflow}:" if self.workflow else ""
        where += self.node_id or "<workflow>"
        if self.variable:
            where += f".{self.variable}"
        return f"[{self.code.value}] {where}: {self.message}"


class CompilationError(ValueError):
    """Raised when a workflow does not compile; ``errors`` lists every problem found.

    Attributes:
        errors: All issues, in the order they were found (never empty).
    """

    def __init__(self, errors: list[CompileIssue]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"workflow failed to compile with {len(self.errors)} error(s):\n{lines}")
