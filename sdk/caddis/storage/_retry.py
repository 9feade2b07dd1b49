"""Bounded retrying of transient failures, with exponential backoff and jitter."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from caddis.storage._config import RetryConfig
from caddis.storage._errors import StorageError

__all__ = ["backoff_delay", "call_with_retry"]

T = TypeVar("T")

_log = logging.getLogger("caddis.storage")


def backoff_delay(policy: RetryConfig, retry_number: int, rand: Callable[[], float]) -> float:
    """Seconds to wait before retry ``retry_number`` (1 for the first retry).

    "Equal jitter": half of the exponential step is fixed and half is random, so waits still
    grow while concurrent clients that failed together spread out instead of retrying in step.
    """
    step = min(policy.max_backoff, policy.initial_backoff * policy.multiplier ** (retry_number - 1))
    return step / 2 + rand() * step / 2


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryConfig,
    uri: str,
    operation: str,
    is_transient: Callable[[BaseException], bool],
    translate: Callable[[Exception, int], StorageError],
    retry: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
) -> T:
    """Call ``fn`` until it succeeds, a permanent error occurs or the retry budget is spent.

    Args:
        fn: The operation; called once per attempt.
        policy: Attempt and time bounds and the backoff shape.
        uri: Named in the error raised on failure.
        operation: Named in the error raised on failure.
        is_transient: Tells which exceptions are worth another attempt.
        translate: Turns a permanent failure into a :class:`StorageError` (or
            :class:`NotFoundError`); gets the exception and the attempt count.
        retry: ``False`` makes a single attempt (for streams that cannot be rewound).
        sleep: Waits between attempts (injected by tests).
        clock: Monotonic time (injected by tests).
        rand: A uniform [0, 1) source for the jitter (injected by tests).

    Returns:
        What ``fn`` returned.

    Raises:
        StorageError: Naming ``uri`` and ``operation`` when an attempt fails permanently or the
            budget (``max_attempts`` tries, ``max_elapsed`` seconds) runs out.
    """
    start = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except StorageError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise translate(exc, attempt) from exc
            elapsed = clock() - start
            delay = backoff_delay(policy, attempt, rand)
            if not retry:
                raise StorageError(
                    f"{operation} {uri} failed ({_describe(exc)}); not retried because the "
                    "source stream cannot be rewound",
                    uri=uri,
                    operation=operation,
                    attempts=attempt,
                ) from exc
            if attempt >= policy.max_attempts or elapsed + delay > policy.max_elapsed:
                raise StorageError(
                    f"{operation} {uri} failed after {attempt} attempt(s) in {elapsed:.1f}s: "
                    f"{_describe(exc)}",
                    uri=uri,
                    operation=operation,
                    attempts=attempt,
                ) from exc
            _log.warning(
                "%s %s: transient failure on attempt %d (%s); retrying in %.2fs",
                operation,
                uri,
                attempt,
                _describe(exc),
                delay,
            )
            sleep(delay)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
