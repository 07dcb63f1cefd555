"""The pure parts of sending: backoff with jitter, and the rate limiter, on an injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.send import RateLimiter, message_id
from dispatcher.table import Channel, RetryPolicy


@pytest.mark.parametrize(("attempts", "draw", "expected"), [
    (1, 0.0, 1.0), (1, 0.999999, 2.0), (2, 0.0, 2.0), (3, 0.5, 6.0),
    (10, 0.0, 30.0), (10, 1.0, 60.0),
])
def test_backoff_doubles_with_jitter_up_to_the_ceiling(attempts: int, draw: float,
                                                       expected: float) -> None:
    policy = RetryPolicy(initial_delay_seconds=2, max_delay_seconds=60, max_attempts=5)
    assert policy.delay(attempts, draw) == pytest.approx(expected, rel=1e-5)


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.may_retry(n) for n in (1, 2, 3, 4)] == [True, True, False, False]


class FakeTime:
    def __init__(self) -> None:
        self.now = datetime(2021, 7, 19, tzinfo=UTC)
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_rate_limiter_spaces_sends_evenly() -> None:
    time = FakeTime()
    limiter = RateLimiter(4.0, time.clock, time.sleep)

    async def five_sends() -> None:
        for _ in range(5):
            await limiter.wait()

    asyncio.run(five_sends())
    assert time.slept == pytest.approx([0.25, 0.25, 0.25, 0.25])
    assert time.now - datetime(2021, 7, 19, tzinfo=UTC) == timedelta(seconds=1)


def test_rate_limiter_without_a_rate_never_waits() -> None:
    time = FakeTime()
    asyncio.run(RateLimiter(None, time.clock, time.sleep).wait())
    assert time.slept == []


def test_message_id_is_stable_per_delivery() -> None:
    first = message_id("w/planned/start", "M1", Channel.EMAIL, "A <a@j.example.jp>")
    assert first == message_id("w/planned/start", "M1", Channel.EMAIL, "A <a@j.example.jp>")
    assert first != message_id("w/planned/end", "M1", Channel.EMAIL, "A <a@j.example.jp>")
    assert first.startswith("<") and first.endswith("@j.example.jp>")
