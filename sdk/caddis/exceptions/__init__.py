"""Exceptions a task raises to steer retries, and the errors caddis raises to users.

Retries (``@task(retries=N)``): **every exception raised by a task's code is retried**, up to
the task's ``retries`` budget. Raise :class:`NonRecoverableError` when retrying cannot help
(bad input, a missing permission): the node fails at once without using its retries.
:class:`RecoverableError` marks a failure as retryable explicitly (it is also the default).
Failures of the platform (a lost worker, an unreachable store) are retried on a separate
budget and never use ``retries``.

flytekit only retries exceptions deriving from ``FlyteRecoverableException``; its names are
kept (``FlyteRecoverableException``, ``FlyteNonRecoverableException``), and classes are
matched by name, so code raising flytekit's own classes behaves the same under caddis.

Also here, for ``except`` clauses: :class:`LocalExecutionError` (a local run failed),
:class:`CaddisUserError` and :class:`CompilationError` (a program cannot be defined as
written). ``caddis.exceptions.user`` holds flytekit's user-exception names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from caddis.core.errors import CaddisUserError, CompilationError

if TYPE_CHECKING:
    from caddis._local import LocalExecutionError

__all__ = [
    "CaddisUserError",
    "CompilationError",
    "FlyteNonRecoverableException",
    "FlyteRecoverableException",
    "LocalExecutionError",
    "NonRecoverableError",
    "RecoverableError",
    "is_recoverable",
]


class RecoverableError(Exception):
    """A failure that a retry may fix (a busy service, a flaky network).

    Every user exception is retried within the task's ``retries`` budget already; raising
    this one says so explicitly, and keeps flytekit programs (``FlyteRecoverableException``)
    working unchanged.
    """


class NonRecoverableError(Exception):
    """A failure that retrying cannot fix: the node fails at once, without using retries.

    Example::

        @task(retries=3)
        def fetch(url: str) -> bytes:
            response = get(url)
            if response.status == 404:
                raise NonRecoverableError(f"{url} does not exist")
            response.raise_for_status()  # other failures are retried
            return response.body
    """


#: flytekit's name for :class:`RecoverableError`.
FlyteRecoverableException = RecoverableError
#: The flytekit-style name for :class:`NonRecoverableError`.
FlyteNonRecoverableException = NonRecoverableError

# Matched by class name along the MRO, so flytekit's classes (and other ports of these
# names) count too; the nearest match wins (a NonRecoverableError subclass of a recoverable
# class is non-recoverable).
_RECOVERABLE_NAMES = frozenset({"RecoverableError", "FlyteRecoverableException"})
_NON_RECOVERABLE_NAMES = frozenset({"NonRecoverableError", "FlyteNonRecoverableException"})


def is_recoverable(exc: BaseException) -> bool:
    """Whether a user exception may be retried within the task's ``retries`` budget.

    Args:
        exc: The exception the task's code raised.

    Returns:
        False for :class:`NonRecoverableError` (or a class of that name, or flytekit's
        ``FlyteNonRecoverableException``) and for :class:`CompilationError` (a dynamic body
        that cannot compile fails the same way every time); True otherwise.
    """
    for klass in type(exc).__mro__:
        name = klass.__name__
        if name in _NON_RECOVERABLE_NAMES:
            return False
        if name in _RECOVERABLE_NAMES:
            return True
    return not isinstance(exc, CompilationError)


def __getattr__(name: str) -> Any:
    # LocalExecutionError lives with local execution, which imports the engine: only load it
    # when asked for, so that task processes importing this module stay light.
    if name == "LocalExecutionError":
        from caddis._local import LocalExecutionError

        globals()[name] = LocalExecutionError
        return LocalExecutionError
    raise AttributeError(f"module 'caddis.exceptions' has no attribute {name!r}")
