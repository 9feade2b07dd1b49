"""The public surface of `caddis` is pinned, resolvable, and cheap to import."""

import json
import subprocess
import sys

import caddis

EXPECTED = [
    "Annotations",
    "Cache",
    "CronSchedule",
    "Deck",
    "ExecutionParameters",
    "FixedRate",
    "FlyteContext",
    "FlyteContextManager",
    "FlyteDirectory",
    "FlyteFile",
    "Labels",
    "LaunchPlan",
    "Promise",
    "PythonFunctionTask",
    "Resources",
    "Secret",
    "StructuredDataset",
    "TaskMetadata",
    "TaskPlugins",
    "WorkflowFailurePolicy",
    "approve",
    "conditional",
    "create_node",
    "current_context",
    "dynamic",
    "kwtypes",
    "map_task",
    "reference_launch_plan",
    "reference_task",
    "reference_workflow",
    "sleep",
    "task",
    "wait_for_input",
    "workflow",
]


def test_all_is_pinned() -> None:
    assert sorted(caddis.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in caddis.__all__:
        assert getattr(caddis, name) is not None, name


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        caddis.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_exceptions_module_is_pinned_and_light() -> None:
    import caddis.exceptions as exc
    import caddis.exceptions.user as user
    import caddis.runtime as rt

    assert sorted(exc.__all__) == [
        "CaddisUserError",
        "CompilationError",
        "FlyteNonRecoverableException",
        "FlyteRecoverableException",
        "LocalExecutionError",
        "NonRecoverableError",
        "RecoverableError",
        "is_recoverable",
    ]
    for name in exc.__all__:
        assert getattr(exc, name) is not None, name
    assert exc.FlyteNonRecoverableException is exc.NonRecoverableError
    assert user.FlyteRecoverableException is rt.RecoverableError is exc.RecoverableError
    assert rt.NonRecoverableError is exc.NonRecoverableError
    probe = (
        "import sys, caddis.exceptions, caddis.exceptions.user; "
        "print(any(m in sys.modules for m in ('caddis_propeller', 'caddis._local', 'grpc')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import caddis
elapsed = time.perf_counter() - t0
from caddis import task, workflow, dynamic, map_task, conditional, LaunchPlan, Resources
heavy = [m for m in ("grpc", "sqlalchemy", "minio", "pandas", "numpy") if m in sys.modules]
print(json.dumps({"elapsed": elapsed, "heavy": heavy}))
"""


def test_import_is_light_and_fast() -> None:
    # Best of three: the machine is shared, and a cold disk cache says nothing about caddis.
    results = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert all(r["heavy"] == [] for r in results), results
    assert min(r["elapsed"] for r in results) < 0.150, results
