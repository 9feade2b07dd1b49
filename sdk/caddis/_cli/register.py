"""``caddis register PATH... [--project P] [--domain D] [--version V]``.

Imports every Python file under PATH (a file or a directory), collects the tasks, workflows
and launch plans defined at module level, uploads the code as a content-addressed bundle and
registers them all with admin. The version defaults to the bundle's digest, so registering
unchanged code again is a no-op.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from caddis.remote._cli_support import connect, remote_options, reports_remote_errors

__all__ = ["collect_from_paths", "register"]


def _module_for(path: Path) -> tuple[Path, str]:
    """(import root, dotted module name) of a Python file, honouring packages."""
    path = path.resolve()
    parts = [path.stem]
    directory = path.parent
    while (directory / "__init__.py").exists():
        parts.insert(0, directory.name)
        directory = directory.parent
    return directory, ".".join(parts)


def _python_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    skip = {"__pycache__", ".git", ".venv", "venv", "node_modules", "build", "dist"}
    found: list[Path] = []
    for current, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in skip and not d.startswith("."))
        found.extend(Path(current) / f for f in sorted(files) if f.endswith(".py"))
    return found


def collect_from_paths(paths: list[Path]) -> tuple[list[Any], Path | None]:
    """Import the files and return the entities they define, plus the code root.

    Args:
        paths: Python files or directories.

    Returns:
        The entities (each once, in file order) and the import root of the first file.
    """
    from caddis.core.launch_plan import LaunchPlan
    from caddis.core.task import PythonTask
    from caddis.core.workflow import WorkflowBase

    entities: list[Any] = []
    seen: set[int] = set()
    code_root: Path | None = None
    for path in paths:
        for file in _python_files(path):
            root, module_name = _module_for(file)
            code_root = code_root or root
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            module = importlib.import_module(module_name)
            for value in vars(module).values():
                if id(value) in seen or not isinstance(
                    value, PythonTask | WorkflowBase | LaunchPlan
                ):
                    continue
                defined_in = _defined_module(value)
                if defined_in not in (None, module_name):
                    continue  # imported from elsewhere: registered with its own module
                seen.add(id(value))
                entities.append(value)
    return entities, code_root


def _defined_module(entity: Any) -> str | None:
    for attr in ("task_function", "workflow_function"):
        fn = getattr(entity, attr, None)
        if fn is not None:
            from caddis.core.resolver import module_name_of

            return module_name_of(fn.__module__, getattr(fn, "__globals__", {}).get("__file__"))
    return None


@click.command("register")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--version", "-v", default=None, help="Version (default: digest of the code).")
@click.option(
    "--fast/--no-fast",
    default=True,
    help="Upload the code as a bundle (default) or rely on the task image's code.",
)
@click.option("--image", default="", help="Default container image of the tasks.")
@remote_options
@reports_remote_errors
def register(
    paths: tuple[Path, ...], version: str | None, fast: bool, image: str, **options: Any
) -> None:
    """Register the tasks, workflows and launch plans defined in PATHS with admin."""
    entities, code_root = collect_from_paths(list(paths))
    if not entities:
        raise click.UsageError(
            f"no tasks, workflows or launch plans found in {', '.join(map(str, paths))}"
        )
    with connect(options) as remote:
        result = remote.register(
            *entities, version=version, code_root=code_root, fast=fast, image=image
        )
    if result.bundle is not None:
        click.echo(f"code bundle {result.bundle.digest} ({len(result.bundle.files)} files)")
    for kind, ids in (
        ("task", result.tasks),
        ("workflow", result.workflows),
        ("launch plan", result.launch_plans),
    ):
        for ident in ids:
            click.echo(f"registered {kind:<11} {ident.name}@{ident.version}")
    click.echo(
        f"{len(result.all_ids())} entities registered in "
        f"{remote.project}/{remote.domain} as version {result.version}"
    )
