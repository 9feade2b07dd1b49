"""flytekit's ``flytekit.exceptions.user`` names, for programs ported from flytekit.

``from caddis.exceptions.user import FlyteRecoverableException`` works as flytekit's import
does; see :mod:`caddis.exceptions` for how caddis retries user errors.
"""

from __future__ import annotations

from caddis.core.errors import CaddisUserError, CompilationError
from caddis.exceptions import (
    FlyteNonRecoverableException,
    FlyteRecoverableException,
    NonRecoverableError,
    RecoverableError,
)

__all__ = [
    "FlyteAssertion",
    "FlyteNonRecoverableException",
    "FlyteRecoverableException",
    "FlyteUserException",
    "NonRecoverableError",
    "RecoverableError",
]

#: flytekit's base class of user errors.
FlyteUserException = CaddisUserError
#: flytekit's error for programs that cannot be defined as written.
FlyteAssertion = CompilationError
