"""Typed interfaces of tasks and workflows, read from Python signatures.

An :class:`Interface` keeps both sides of a signature: the Python types (what the runtime
converts values to) and the IDL types (what the compiler checks and the platform stores).
"""

from __future__ import annotations

import collections
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from caddis.core._types import literal_type_of, type_name
from caddis.core.errors import CompilationError, MissingTypeError
from caddis_idl.core.v1 import interface_pb2, types_pb2

__all__ = [
    "Interface",
    "default_output_name",
    "kwtypes",
    "output_names_for",
    "transform_function_to_interface",
]

_NO_DEFAULT: Any = inspect.Parameter.empty


def default_output_name(index: int) -> str:
    """Name of the ``index``-th unnamed output: ``o0``, ``o1``, ..."""
    return f"o{index}"


def kwtypes(**kwargs: Any) -> collections.OrderedDict[str, Any]:
    """Name types in order, e.g. ``kwtypes(a=int, b=str)`` (used by reference entities)."""
    return collections.OrderedDict(kwargs)


def _is_named_tuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


@dataclass
class Interface:
    """Inputs and outputs of an entity, as Python types and as IDL types.

    Attributes:
        inputs: Input name to Python type, in signature order.
        outputs: Output name to Python type, in order (``o0``, ``o1``, ... unless named).
        defaults: Input name to default value, for inputs that have one.
        output_tuple_name: Name of the ``NamedTuple`` the outputs were declared with, if any.
        outputs_are_tuple: True when the function returns its outputs as one tuple (several
            outputs, or a ``NamedTuple``/``Tuple[...]`` annotation), False for a single value.
        docstring: The function's docstring, when there is one.
        input_descriptions: Per-input descriptions from the docstring's ``Args:`` section.
        output_descriptions: Per-output descriptions.
    """

    inputs: dict[str, Any]
    outputs: dict[str, Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    output_tuple_name: str | None = None
    outputs_are_tuple: bool = False
    docstring: str | None = None
    input_descriptions: dict[str, str] = field(default_factory=dict)
    output_descriptions: dict[str, str] = field(default_factory=dict)
    input_literal_types: dict[str, types_pb2.LiteralType] = field(default_factory=dict)
    output_literal_types: dict[str, types_pb2.LiteralType] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        *,
        owner: str,
        defaults: Mapping[str, Any] | None = None,
        output_tuple_name: str | None = None,
        outputs_are_tuple: bool | None = None,
        docstring: str | None = None,
    ) -> Interface:
        """Make an interface, computing the IDL type of every variable.

        Args:
            inputs: Input name to Python type.
            outputs: Output name to Python type.
            owner: What the interface belongs to, e.g. ``task 'pkg.mod.fn'`` (for errors).
            defaults: Default values of inputs.
            output_tuple_name: NamedTuple name of the outputs.
            outputs_are_tuple: Whether outputs come back as one tuple; defaults to
                ``len(outputs) > 1``.
            docstring: Docstring to take descriptions from.

        Raises:
            MissingTypeError: A type has no IDL type.
        """
        in_lts = {n: _literal_type(owner, "input", n, t) for n, t in inputs.items()}
        out_lts = {n: _literal_type(owner, "output", n, t) for n, t in outputs.items()}
        in_desc, out_desc = _parse_docstring(docstring)
        return cls(
            inputs=dict(inputs),
            outputs=dict(outputs),
            defaults=dict(defaults or {}),
            output_tuple_name=output_tuple_name,
            outputs_are_tuple=len(outputs) > 1 if outputs_are_tuple is None else outputs_are_tuple,
            docstring=docstring,
            input_descriptions=in_desc,
            output_descriptions=out_desc,
            input_literal_types=in_lts,
            output_literal_types=out_lts,
        )

    @property
    def inputs_with_defaults(self) -> dict[str, tuple[Any, Any]]:
        """Input name to ``(type, default)``; the default is ``None`` when there is none.

        Mirrors flytekit's ``Interface.inputs_with_defaults``; use :attr:`required_inputs`
        to tell "no default" from "defaults to None".
        """
        return {n: (t, self.defaults.get(n)) for n, t in self.inputs.items()}

    @property
    def required_inputs(self) -> list[str]:
        """Names of inputs without a default, in order."""
        return [n for n in self.inputs if n not in self.defaults]

    def typed_interface(self) -> interface_pb2.TypedInterface:
        """The IDL ``TypedInterface``."""
        return interface_pb2.TypedInterface(
            inputs=_variable_map(self.input_literal_types, self.input_descriptions),
            outputs=_variable_map(self.output_literal_types, self.output_descriptions),
        )

    def output_tuple(self) -> type[tuple[Any, ...]]:
        """A namedtuple class whose fields are the output names (for returning outputs)."""
        return _output_tuple_class(self.output_tuple_name or "Outputs", tuple(self.outputs))

    def unpack_outputs(self, returned: Any, *, owner: str = "function") -> dict[str, Any]:
        """Split what the Python function returned into output name -> value.

        Args:
            returned: The function's return value.
            owner: Name used in the error message.

        Raises:
            CompilationError: The function returned the wrong number of values.
        """
        names = list(self.outputs)
        if not names:
            return {}
        if not self.outputs_are_tuple:
            return {names[0]: returned}
        if not isinstance(returned, tuple | list) or len(returned) != len(names):
            got = len(returned) if isinstance(returned, tuple | list) else 1
            raise CompilationError(
                f"{owner} declares {len(names)} outputs ({', '.join(names)}) but returned "
                f"{got} value(s)"
            )
        return dict(zip(names, returned, strict=True))

    def remove_inputs(self, names: typing.Iterable[str]) -> Interface:
        """A copy without the given inputs (used for fixed launch-plan inputs and partials)."""
        drop = set(names)
        return Interface(
            inputs={n: t for n, t in self.inputs.items() if n not in drop},
            outputs=dict(self.outputs),
            defaults={n: v for n, v in self.defaults.items() if n not in drop},
            output_tuple_name=self.output_tuple_name,
            outputs_are_tuple=self.outputs_are_tuple,
            docstring=self.docstring,
            input_descriptions={n: d for n, d in self.input_descriptions.items() if n not in drop},
            output_descriptions=dict(self.output_descriptions),
            input_literal_types={
                n: t for n, t in self.input_literal_types.items() if n not in drop
            },
            output_literal_types=dict(self.output_literal_types),
        )


_TUPLE_CLASSES: dict[tuple[str, tuple[str, ...]], type[tuple[Any, ...]]] = {}


def _output_tuple_class(name: str, fields_: tuple[str, ...]) -> type[tuple[Any, ...]]:
    key = (name, fields_)
    if key not in _TUPLE_CLASSES:
        _TUPLE_CLASSES[key] = collections.namedtuple(name, fields_)  # type: ignore[misc]
    return _TUPLE_CLASSES[key]


def _variable_map(
    lts: Mapping[str, types_pb2.LiteralType], descriptions: Mapping[str, str]
) -> interface_pb2.VariableMap:
    vm = interface_pb2.VariableMap()
    for name, lt in lts.items():
        var = vm.variables[name]
        var.type.CopyFrom(lt)
        var.description = descriptions.get(name, "")
    return vm


def _literal_type(owner: str, kind: str, name: str, py_type: Any) -> types_pb2.LiteralType:
    try:
        return literal_type_of(py_type)
    except Exception as exc:
        raise MissingTypeError(
            f"{owner}: {kind} '{name}' has type {type_name(py_type)}, which caddis cannot pass "
            f"between tasks ({exc}). Use a supported type (int, float, str, bool, datetime, "
            f"timedelta, list, dict, dataclass, enum, FlyteFile, FlyteDirectory, "
            f"StructuredDataset, ...) or register a TypeTransformer for it."
        ) from exc


def _resolve_hints(fn: Callable[..., Any], owner: str) -> dict[str, Any]:
    """Evaluate the function's annotations, including ``from __future__`` strings.

    ``typing.get_type_hints`` refuses the tuple-literal return form ``-> (int, str)`` when
    annotations are strings, so each annotation is evaluated on its own as a fallback.
    """
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # fall back to one annotation at a time, below
        pass
    hints: dict[str, Any] = {}
    globalns = getattr(fn, "__globals__", {})
    for name, ann in getattr(fn, "__annotations__", {}).items():
        if isinstance(ann, str):
            try:
                ann = eval(ann, globalns)  # annotations are code the user wrote
            except Exception as exc:
                what = "the return value" if name == "return" else f"input '{name}'"
                raise MissingTypeError(
                    f"{owner}: the type hint {ann!r} of {what} cannot be resolved ({exc}). "
                    f"Define the types it names at module level."
                ) from exc
        hints[name] = ann
    return hints


def output_names_for(return_annotation: Any, owner: str) -> tuple[dict[str, Any], str | None, bool]:
    """Outputs declared by a return annotation: ``(name -> type, tuple name, is_tuple)``.

    ``None`` (or no annotation) means no outputs; a ``NamedTuple`` keeps its field names;
    ``Tuple[A, B]``, ``tuple[A, B]`` and the flytekit form ``-> (A, B)`` give ``o0, o1``;
    anything else is one output ``o0``.
    """
    if return_annotation is None or return_annotation is type(None):
        return {}, None, False
    if return_annotation is _NO_DEFAULT:
        return {}, None, False
    if _is_named_tuple(return_annotation):
        hints = typing.get_type_hints(return_annotation, include_extras=True)
        names = list(return_annotation._fields)
        missing = [n for n in names if n not in hints]
        if missing:
            raise MissingTypeError(
                f"{owner}: NamedTuple output {return_annotation.__name__} has no type for "
                f"field(s) {', '.join(missing)}"
            )
        return {n: hints[n] for n in names}, return_annotation.__name__, True
    if isinstance(return_annotation, tuple):
        types_ = list(return_annotation)
    elif typing.get_origin(return_annotation) is tuple:
        types_ = list(typing.get_args(return_annotation))
        if Ellipsis in types_:
            raise MissingTypeError(
                f"{owner}: the return type {type_name(return_annotation)} has a variable "
                f"length; a tuple return declares one output per element, so name each "
                f"element's type (Tuple[int, str]) or return a List instead."
            )
    else:
        return {default_output_name(0): return_annotation}, None, False
    if not types_:
        return {}, None, False
    return {default_output_name(i): t for i, t in enumerate(types_)}, None, True


def transform_function_to_interface(fn: Callable[..., Any], owner: str) -> Interface:
    """Read a function's signature into an :class:`Interface`.

    Args:
        fn: The user's function.
        owner: What the function defines, e.g. ``task 'pkg.mod.fn'`` (named in errors).

    Raises:
        MissingTypeError: An input lacks a type hint or a type has no IDL type.
        CompilationError: The signature uses ``*args`` or ``**kwargs``.
    """
    sig = inspect.signature(fn)
    hints = _resolve_hints(fn, owner)
    inputs: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise CompilationError(
                f"{owner}: parameter '{name}' is *args/**kwargs; every input must be a named, "
                f"typed parameter."
            )
        if name not in hints:
            raise MissingTypeError(
                f"{owner}: input '{name}' has no type hint. Annotate it, e.g. `{name}: int`; "
                f"caddis needs the type to pass the value between tasks."
            )
        inputs[name] = hints[name]
        if param.default is not _NO_DEFAULT:
            defaults[name] = param.default
    outputs, tuple_name, is_tuple = output_names_for(hints.get("return", _NO_DEFAULT), owner)
    return Interface.build(
        inputs,
        outputs,
        owner=owner,
        defaults=defaults,
        output_tuple_name=tuple_name,
        outputs_are_tuple=is_tuple,
        docstring=inspect.getdoc(fn),
    )


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Yields|Raises|Examples?|Notes?):\s*$")
_ITEM = re.compile(r"^\s*(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")


def _parse_docstring(doc: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """Per-variable descriptions from a Google-style docstring (best effort)."""
    if not doc:
        return {}, {}
    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {}
    section = ""
    current: tuple[dict[str, str], str] | None = None
    for raw in doc.splitlines():
        line = raw.rstrip()
        match = _SECTION.match(line.strip())
        if match and not raw.startswith((" ", "\t")):
            section = match.group(1)
            current = None
            continue
        if section not in {"Args", "Arguments", "Parameters", "Returns"} or not line.strip():
            continue
        item = _ITEM.match(line)
        indent = len(line) - len(line.lstrip())
        if item and indent <= 4:
            target = inputs if section != "Returns" else outputs
            current = (target, item.group(1))
            target[item.group(1)] = item.group(3).strip()
        elif current is not None:
            target, key = current
            target[key] = (target[key] + " " + line.strip()).strip()
    return inputs, outputs
