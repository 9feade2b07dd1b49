"""Helpers shared by the test suite: polling with a deadline, free ports, subprocess servers."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(AssertionError):
    """A condition polled with :func:`wait_until` did not hold before its deadline."""


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str = "condition",
) -> T:
    """Poll ``condition`` until it returns a truthy value and return that value.

    Tests use this instead of sleeping: it returns as soon as the condition holds and fails
    with a clear message when the deadline passes. Exceptions raised by the condition count
    as "not yet" until the deadline, then the last one is chained to the failure.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    delay = interval
    while True:
        try:
            value = condition()
            if value:
                return value
            last_error = None
        except Exception as exc:  # "not yet" until the deadline
            last_error = exc
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(f"{message} did not hold within {timeout}s") from last_error
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (for servers that need one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Terminate a child process, killing it when it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def in_ci() -> bool:
    """True when running under CI, where a missing service is a failure rather than a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
