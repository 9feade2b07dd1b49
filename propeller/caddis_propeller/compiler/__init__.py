"""The caddis workflow compiler (pure: the IDL and the standard library only).

Admin compiles at registration and propeller compiles dynamic futures with this same code::

    from caddis_propeller.compiler import compile_workflow, CompilationError

    try:
        closure = compile_workflow(wf_template, tasks=[...], subworkflows=[...], launch_plans=[...])
    except CompilationError as exc:
        for issue in exc.errors:          # every problem, not just the first
            print(issue.code, issue.node_id, issue.variable, issue.message)

Public API:

- :func:`compile_workflow` -> ``CompiledWorkflowClosure`` (primary + subworkflows with
  ConnectionSets, referenced tasks and launch plans).
- :func:`compile_dynamic` -> ``CompiledWorkflowClosure`` for a ``DynamicJobSpec``.
- :func:`is_castable`, :func:`format_type`: the type rules and readable type names.
- :class:`CompilationError` (``.errors``: list of :class:`CompileIssue` with ``code``
  (:class:`ErrorCode`), ``node_id``, ``variable``, ``message``, ``workflow``).
- ``START_NODE`` / ``END_NODE``: the synthetic node ids (``start-node``, ``end-node``).
"""

from caddis_propeller.compiler.compile import (
    END_NODE,
    FAILURE_NODE_ERROR_INPUT,
    START_NODE,
    NodeInterface,
    compile_dynamic,
    compile_workflow,
    dynamic_workflow_id,
    format_id,
    id_key,
)
from caddis_propeller.compiler.errors import CompilationError, CompileIssue, ErrorCode
from caddis_propeller.compiler.types import (
    format_type,
    is_castable,
    is_optional,
    is_primitive,
    list_of,
    literal_type_of,
    optional,
    scalar_type_of,
    simple,
)

__all__ = [
    "END_NODE",
    "FAILURE_NODE_ERROR_INPUT",
    "START_NODE",
    "CompilationError",
    "CompileIssue",
    "ErrorCode",
    "NodeInterface",
    "compile_dynamic",
    "compile_workflow",
    "dynamic_workflow_id",
    "format_id",
    "format_type",
    "id_key",
    "is_castable",
    "is_optional",
    "is_primitive",
    "list_of",
    "literal_type_of",
    "optional",
    "scalar_type_of",
    "simple",
]
