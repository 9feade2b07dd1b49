"""How a task process finds the entity it runs: by module and attribute name.

Registration records ``--resolver caddis.default --module M --name N`` in a task's process
arguments; the task runtime calls :func:`load_entity` with them.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from caddis.core.errors import EntityNotFoundError

__all__ = ["DEFAULT_RESOLVER", "load_entity", "module_name_of"]

#: The resolver name that :func:`load_entity` implements.
DEFAULT_RESOLVER = "caddis.default"


def module_name_of(module: str, file: str | None = None) -> str:
    """The importable name of the module a function was defined in.

    A script run as ``python wf.py`` defines its functions in ``__main__``, which a task
    process cannot import; the name is then derived from the script's path relative to the
    first ``sys.path`` entry that contains it (``wf`` or ``pkg.wf``).
    """
    if module != "__main__":
        return module
    if file is None:
        main = sys.modules.get("__main__")
        file = getattr(main, "__file__", None)
    if not file:
        return module
    path = os.path.abspath(file)
    stem = os.path.splitext(path)[0]
    candidates = [os.getcwd(), *[p for p in sys.path if p]]
    best: str | None = None
    for root in candidates:
        root = os.path.abspath(root)
        if stem.startswith(root + os.sep):
            rel = os.path.relpath(stem, root)
            dotted = rel.replace(os.sep, ".")
            if best is None or len(dotted) < len(best):
                best = dotted
    return best or os.path.basename(stem)


def load_entity(module: str, name: str, resolver: str = DEFAULT_RESOLVER) -> Any:
    """Import ``module`` and return its attribute ``name`` (dotted names walk attributes).

    Args:
        module: Importable module name (``pkg.workflows``).
        name: Attribute name of the entity in the module (``my_task``).
        resolver: The resolver named in the task's arguments; only ``caddis.default``.

    Raises:
        EntityNotFoundError: Unknown resolver, module or attribute.
    """
    if resolver != DEFAULT_RESOLVER:
        raise EntityNotFoundError(
            f"unknown resolver {resolver!r}; this caddis knows only {DEFAULT_RESOLVER!r}"
        )
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise EntityNotFoundError(
            f"cannot import module {module!r} to load {name!r}: {exc}. Is the code bundle or "
            f"image current, and is the module importable from the working directory?"
        ) from exc
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise EntityNotFoundError(
                f"module {module!r} has no entity {name!r}; tasks must be defined at module "
                f"level to run in a task process"
            ) from exc
    return obj
