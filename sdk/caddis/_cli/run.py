"""``caddis run path/to/file.py ENTITY --input value ...``: run a task or workflow.

The file is imported as a module (its directory, or the root of the package it belongs to,
goes first on ``sys.path``), ENTITY is looked up in it, and a command is built from the
entity's interface: one ``--<input>`` option per input, typed from its Python type (ints,
floats, bools and strings as such; JSON for lists, dicts, dataclasses and other structured
types; paths for files and directories). ``caddis run file.py ENTITY --help`` lists them.
The outputs are printed as JSON where they have a JSON form (``repr`` otherwise); the paths of
deck pages the run wrote (tasks with ``enable_deck=True``) follow on stderr.

Without ``--remote`` it runs on this machine (local execution). ``--remote`` registers the
entity (and its code) with admin (``--endpoint``, else the configuration, else the sandbox's
``caddis sandbox start`` writes), launches it and follows the node phases until it ends;
``--wait`` also prints the outputs (see :func:`caddis._cli.executions.run_remote`).
"""

from __future__ import annotations

import datetime
import enum
import importlib
import json
import os
import sys
import typing
from typing import Any

import click

__all__ = ["load_entity_from_file", "parse_input", "run"]


def _module_name_for(path: str) -> tuple[str, str]:
    """(sys.path root, dotted module name) for a Python file, honouring packages."""
    path = os.path.abspath(path)
    directory, filename = os.path.split(path)
    parts = [os.path.splitext(filename)[0]]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, pkg = os.path.split(directory)
        parts.insert(0, pkg)
    return directory, ".".join(parts)


def load_entity_from_file(path: str, name: str) -> Any:
    """Import the module in ``path`` and return its attribute ``name``.

    Raises:
        click.UsageError: The file does not exist or has no such entity.
    """
    if not os.path.isfile(path):
        raise click.UsageError(f"no such file: {path}")
    root, module = _module_name_for(path)
    if root not in sys.path:
        sys.path.insert(0, root)
    mod = importlib.import_module(module)
    obj: Any = mod
    for part in name.split("."):
        if not hasattr(obj, part):
            available = sorted(
                k for k, v in vars(mod).items() if hasattr(v, "python_interface") and k[0] != "_"
            )
            raise click.UsageError(
                f"{path} has no entity {name!r}; tasks, workflows and launch plans in it: "
                f"{', '.join(available) or '(none)'}"
            )
        obj = getattr(obj, part)
    if not hasattr(obj, "python_interface"):
        raise click.UsageError(f"{name!r} in {path} is not a caddis task, workflow or launch plan")
    return obj


def _unwrap_optional(tp: Any) -> Any:
    args = typing.get_args(tp)
    if args and type(None) in args and typing.get_origin(tp) in (typing.Union, _union_type()):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    if typing.get_origin(tp) is typing.Annotated:
        return _unwrap_optional(args[0])
    return tp


def _union_type() -> Any:
    import types

    return types.UnionType


def _is_file_type(tp: Any, what: str) -> bool:
    try:
        if what == "file":
            from caddis.types.file import FlyteFile as cls
        else:
            from caddis.types.directory import FlyteDirectory as cls  # type: ignore[assignment]
    except ImportError:  # pragma: no cover - the types package is part of the SDK
        return False
    base = typing.get_origin(tp) or tp
    return isinstance(base, type) and issubclass(base, cls)


def _type_label(tp: Any) -> str:
    inner = _unwrap_optional(tp)
    if inner in (int, float, str, bool):
        return str(inner.__name__)
    if _is_file_type(inner, "file"):
        return "file path"
    if _is_file_type(inner, "dir"):
        return "directory path"
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return "|".join(str(m.value) for m in inner)
    from caddis.core._types import type_name

    return f"JSON {type_name(inner)}"


def parse_input(name: str, text: str, tp: Any) -> Any:
    """Turn the command-line text of input ``name`` into a value of Python type ``tp``.

    Raises:
        click.BadParameter: The text does not parse as the type.
    """
    inner = _unwrap_optional(tp)
    try:
        if inner is str:
            return text
        if inner is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "y", "on"):
                return True
            if low in ("0", "false", "no", "n", "off"):
                return False
            raise ValueError(f"expected true/false, got {text!r}")
        if inner is int:
            return int(text)
        if inner is float:
            return float(text)
        if _is_file_type(inner, "file") or _is_file_type(inner, "dir"):
            base = typing.get_origin(inner) or inner
            return base(text)
        if isinstance(inner, type) and issubclass(inner, enum.Enum):
            return inner(text)
        if inner is datetime.datetime:
            return datetime.datetime.fromisoformat(text)
        if inner is datetime.date:
            return datetime.date.fromisoformat(text)
        if inner is datetime.timedelta:
            return datetime.timedelta(seconds=float(text))
        obj = json.loads(text)
        from caddis.core.type_engine import TypeEngine

        return TypeEngine.from_builtin(obj, tp)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise click.BadParameter(
            f"cannot read {text!r} as {_type_label(tp)}: {exc}", param_hint=f"--{name}"
        ) from exc


def _json_safe(value: Any, tp: Any) -> Any:
    try:
        from caddis.core.type_engine import TypeEngine

        out = TypeEngine.to_builtin(value, tp)
        json.dumps(out)
        return out
    except Exception:  # not everything has a JSON form: fall back to repr
        return repr(value)


def format_outputs(entity: Any, result: Any) -> str:
    """The outputs of a run as JSON (one output: its value; several: an object by name)."""
    outputs = entity.python_interface.outputs
    names = list(outputs)
    if not names:
        return "null"
    if len(names) == 1 and not entity.python_interface.outputs_are_tuple:
        return json.dumps(_json_safe(result, outputs[names[0]]), indent=2, default=repr)
    values = dict(zip(names, result, strict=False))
    return json.dumps({n: _json_safe(values[n], outputs[n]) for n in names}, indent=2, default=repr)


def _echo_decks() -> None:
    # On stderr: stdout carries the outputs as JSON, which scripts parse.
    from caddis._local import last_run_decks

    for page in last_run_decks():
        click.echo(f"deck: {page}", err=True)


def _entity_command(
    entity: Any, remote: bool, wait: bool = False, endpoint: str | None = None
) -> click.Command:
    iface = entity.python_interface
    params: list[click.Parameter] = []
    for name, tp in iface.inputs.items():
        has_default = name in iface.defaults
        default = iface.defaults.get(name)
        help_text = iface.input_descriptions.get(name, "")
        label = _type_label(tp)
        shown = f" [default: {default!r}]" if has_default else " [required]"
        decls = [f"--{name}"]
        if "_" in name:
            decls.append(f"--{name.replace('_', '-')}")
        params.append(
            click.Option(
                [*decls, name],
                type=str,
                required=False,
                metavar=label.upper() if " " not in label else f"<{label}>",
                help=f"{help_text} ({label}){shown}".strip(),
            )
        )

    def callback(**raw: Any) -> None:
        kwargs: dict[str, Any] = {}
        missing = []
        for name, tp in iface.inputs.items():
            text = raw.get(name)
            if text is None:
                if name not in iface.defaults:
                    missing.append(name)
                continue
            kwargs[name] = parse_input(name, text, tp)
        if missing:
            raise click.UsageError(
                f"{entity.describe()} needs input(s): "
                + ", ".join(f"--{m} <{_type_label(iface.inputs[m])}>" for m in missing)
            )
        if remote:
            # Remote path (owned by caddis._cli.executions): register, launch, follow.
            from caddis._cli.executions import run_remote

            run_remote(entity, kwargs, wait=wait, endpoint=endpoint)
            return
        try:
            result = entity(**kwargs)
        except Exception as exc:  # the run failed: say why, without a caddis traceback
            _echo_decks()
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
        click.echo(format_outputs(entity, result))
        _echo_decks()

    doc = (iface.docstring or "").strip().splitlines()
    return click.Command(
        name=getattr(entity, "short_name", "entity"),
        params=params,
        callback=callback,
        help=f"Run {entity.describe()}." + (f"\n\n{doc[0]}" if doc else ""),
    )


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.option(
    "--remote",
    is_flag=True,
    help="Register and run on caddis services (`caddis sandbox start` runs them locally), "
    "following node phases until the end.",
)
@click.option("--wait", is_flag=True, help="With --remote: also print the outputs at the end.")
@click.option(
    "--endpoint",
    default=None,
    metavar="HOST:PORT",
    help="With --remote: admin's address (default: configuration or the sandbox).",
)
@click.option("--help", "show_help", is_flag=True, help="Show this message and exit.")
@click.argument("file", required=False)
@click.argument("entity", required=False)
@click.pass_context
def run(
    ctx: click.Context,
    remote: bool,
    wait: bool,
    endpoint: str | None,
    show_help: bool,
    file: str | None,
    entity: str | None,
) -> None:
    """Run ENTITY (a task, workflow or launch plan) defined in FILE, here or with --remote.

    Inputs follow as options: `caddis run wf.py my_wf --x 3 --names '["a","b"]'`.
    `caddis run FILE ENTITY --help` lists the entity's inputs, types and defaults.
    """
    args = list(ctx.args)
    if file is None or entity is None:
        if show_help or file is None:
            click.echo(ctx.get_help())
            ctx.exit(0)
        raise click.UsageError("name the task or workflow to run: caddis run FILE ENTITY")
    if show_help:
        args.append("--help")
    obj = load_entity_from_file(file, entity)
    command = _entity_command(obj, remote, wait, endpoint)
    command.main(args=args, prog_name=f"caddis run {file} {entity}", standalone_mode=False)
