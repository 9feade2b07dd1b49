"""Errors raised while authoring and compiling caddis entities.

Every message names what is wrong (the task or workflow, the node, the variable, the expected
and received type) and what to do about it, so that a user can fix the program without
reading caddis' code.
"""

from __future__ import annotations

__all__ = [
    "CaddisUserError",
    "CompilationError",
    "EntityNotFoundError",
    "MissingTypeError",
    "PromiseTypeError",
    "PromiseUsageError",
    "RemoteOnlyError",
]


class CaddisUserError(Exception):
    """Base class of errors caused by the user's program rather than by caddis."""


class CompilationError(CaddisUserError, AssertionError):
    """A task, workflow or launch plan cannot be defined as written.

    It derives from ``AssertionError`` as flytekit's ``FlyteAssertion`` does, so that code
    catching either keeps working.
    """


class MissingTypeError(CompilationError):
    """A parameter or return value lacks a type hint, or its hint has no caddis type."""


class PromiseTypeError(CompilationError, TypeError):
    """A promise is passed where a value of an incompatible type is expected."""


class PromiseUsageError(CompilationError, TypeError):
    """A promise is used as a Python value (iterated, tested for truth, added, ...).

    Promises stand for values that exist only when the workflow runs; the body of a
    ``@workflow`` runs once, when it is defined, so their values cannot be inspected there.
    """


class RemoteOnlyError(CaddisUserError, NotImplementedError):
    """A reference entity was called locally; it can only run on a caddis cluster."""


class EntityNotFoundError(CaddisUserError, LookupError):
    """A task process could not load the entity named by its resolver arguments."""
