"""The retry loop, driven by a fake clock: bounds, backoff growth and jitter."""

from __future__ import annotations

import pytest

from caddis.storage import NotFoundError, RetryConfig, StorageError
from caddis.storage._retry import backoff_delay, call_with_retry


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(fn, policy: RetryConfig, fake: FakeTime, rand: float = 0.5):  # type: ignore[no-untyped-def]
    return call_with_retry(
        fn,
        policy=policy,
        uri="s3://bkt/k",
        operation="get_bytes",
        is_transient=lambda e: isinstance(e, ConnectionError),
        translate=lambda e, n: (NotFoundError if isinstance(e, KeyError) else StorageError)(
            f"get_bytes s3://bkt/k: {e}", uri="s3://bkt/k", operation="get_bytes", attempts=n
        ),
        sleep=fake.sleep,
        clock=fake.clock,
        rand=lambda: rand,
    )


def test_recovers_after_transient_failures() -> None:
    fake = FakeTime()
    calls = iter([ConnectionError("refused"), ConnectionError("refused"), "ok"])

    def fn() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert run(fn, RetryConfig(initial_backoff=1, multiplier=2, max_backoff=10), fake) == "ok"
    assert fake.sleeps == [0.75, 1.5]  # half fixed, half jitter (rand=0.5), doubling


def test_gives_up_at_max_attempts() -> None:
    fake = FakeTime()
    with pytest.raises(StorageError) as info:
        run(
            lambda: (_ for _ in ()).throw(ConnectionError("refused")),
            RetryConfig(max_attempts=4),
            fake,
        )
    assert info.value.attempts == 4
    assert len(fake.sleeps) == 3
    assert "get_bytes s3://bkt/k failed after 4 attempt(s)" in str(info.value)
    assert isinstance(info.value.__cause__, ConnectionError)


def test_gives_up_when_the_next_wait_would_pass_max_elapsed() -> None:
    fake = FakeTime()
    policy = RetryConfig(max_attempts=100, initial_backoff=1, max_backoff=4, max_elapsed=10)
    with pytest.raises(StorageError):
        run(lambda: (_ for _ in ()).throw(ConnectionError()), policy, fake, rand=1.0)
    assert fake.now <= 10
    assert fake.sleeps == [1, 2, 4]  # a fourth wait of 4s would end at 11s


def test_permanent_errors_are_not_retried() -> None:
    fake = FakeTime()
    with pytest.raises(NotFoundError) as info:
        run(lambda: (_ for _ in ()).throw(KeyError("k")), RetryConfig(), fake)
    assert info.value.attempts == 1
    assert fake.sleeps == []


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryConfig(initial_backoff=0.5, multiplier=3, max_backoff=2)
    assert [backoff_delay(policy, n, lambda: 0.0) for n in (1, 2, 3, 4)] == [0.25, 0.75, 1.0, 1.0]
    assert backoff_delay(policy, 4, lambda: 0.999) < 2
