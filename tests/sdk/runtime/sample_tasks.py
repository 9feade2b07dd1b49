"""Module-level tasks that the runtime tests load by module and name (as a task process does)."""

from __future__ import annotations

from caddis.core.context import current_context
from caddis.core.dynamic import dynamic
from caddis.core.task import task
from caddis.exceptions import NonRecoverableError
from caddis.runtime import Deck, RecoverableError


@task
def add_one(x: int) -> int:
    return x + 1


@task
def pair(a: int, b: str = "b") -> tuple[int, str]:
    return a * 2, b.upper()


@task
def fails(x: int) -> int:
    raise ValueError(f"no good: {x}")


@task
def fails_recoverably(x: int) -> int:
    raise RecoverableError("try again")


@task
def fails_for_good(x: int) -> int:
    raise NonRecoverableError(f"cannot work with {x}")


class FlyteNonRecoverableException(Exception):
    """A class with flytekit's name, as ported code may define or import it."""


@task
def fails_flytekit_style(x: int) -> int:
    raise FlyteNonRecoverableException("ported")


@task
def wrong_arity(x: int) -> tuple[int, int]:
    return (x,)  # type: ignore[return-value]


@task(enable_deck=True)
def with_deck(x: int) -> int:
    Deck("extra", "<p>hello deck</p>")
    return x * 10


@task(retries=2)
def resumes(x: int) -> int:
    """Counts attempts in its checkpoint; fails until the third attempt."""
    cp = current_context().checkpoint
    prev = cp.read()
    n = int(prev.decode()) if prev else 0
    cp.write(str(n + 1).encode())
    if n < 2:
        raise RecoverableError(f"attempt with checkpoint {n}")
    return x + n


@dynamic
def fan_out(n: int) -> list[int]:
    return [add_one(x=i) for i in range(n)]
