"""The pure parts of sending: backoff with jitter, and the rate limiter, on an injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.send import RateLimiter
from dispatcher.send.breaker import Breaker
from dispatcher.table import (
    Notice,
    Phase,
    RetryPolicy,
    build_notice,
    find_window,
    load_config,
)
from tests.helpers import ROOT


@pytest.mark.parametrize(("attempts", "draw", "expected"), [
    (1, 0.0, 1.0), (1, 0.999999, 2.0), (2, 0.0, 2.0), (3, 0.5, 6.0),
    (10, 0.0, 30.0), (10, 1.0, 60.0),
])
def test_backoff_doubles_with_jitter_up_to_the_ceiling(attempts: int, draw: float,
                                                       expected: float) -> None:
    policy = RetryPolicy(initial_delay_seconds=2, max_delay_seconds=60, max_attempts=5)
    assert policy.delay(attempts, draw) == pytest.approx(expected, rel=1e-5)


def test_attempts_are_bounded_only_when_a_cap_is_set() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.may_retry(n) for n in (1, 2, 3, 4)] == [True, True, False, False]
    assert RetryPolicy().may_retry(1_000)


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


def _window_3_notices() -> tuple[Notice, Notice, Notice]:
    window = find_window(load_config(ROOT / "config.toml").windows, "3")
    return (build_notice(window, window.planned, Phase.START),
            build_notice(window, window.planned, Phase.END),
            build_notice(window, window.planned, Phase.POSTPONED))


def test_a_notice_matters_until_its_phase_says() -> None:
    start, end, postponed = _window_3_notices()
    slot = start.slot
    began = slot.start
    policy = RetryPolicy()
    assert policy.deadline(start, began).at == slot.end
    assert policy.deadline(end, slot.end).at == slot.end + timedelta(hours=12)
    assert postponed.new_slot is not None
    assert policy.deadline(postponed, began).at == postponed.new_slot.start
    assert "end notice was due" in policy.deadline(start, began).reason


def test_give_up_after_minutes_ends_it_sooner_never_later() -> None:
    start, _, _ = _window_3_notices()
    began = start.slot.start
    soon = RetryPolicy(give_up_after_minutes=10).deadline(start, began)
    assert soon.at == began + timedelta(minutes=10)
    assert "give_up_after_minutes" in soon.reason
    late = RetryPolicy(give_up_after_minutes=10_000).deadline(start, began)
    assert late.at == start.slot.end


def test_a_notice_sent_by_hand_after_its_time_gets_end_notice_hours_from_then() -> None:
    start, _, _ = _window_3_notices()
    resent = datetime(2026, 11, 27, tzinfo=UTC)
    deadline = RetryPolicy(end_notice_hours=2).deadline(start, resent)
    assert deadline.at == resent + timedelta(hours=2)


def test_probes_back_off_but_never_past_thirty_seconds() -> None:
    policy = RetryPolicy(initial_delay_seconds=2, max_delay_seconds=300)
    assert [policy.probe_delay(n, 1.0) for n in (1, 2, 3, 4, 5, 6, 10)] == [
        2, 4, 8, 16, 30, 30, 30]


def test_the_breaker_opens_once_probes_and_closes_only_on_a_later_answer() -> None:
    time = FakeTime()
    breaker = Breaker(RetryPolicy(initial_delay_seconds=1, max_delay_seconds=8), time.clock,
                      lambda: 1.0)
    before = time.now
    time.now += timedelta(seconds=1)
    assert breaker.unanswered(time.now, "refused") is True
    assert breaker.unanswered(before, "refused") is False, "already open"
    assert breaker.answered(before) is None, "started before it opened: tells nothing"
    assert breaker.is_open and not breaker.probe_due()
    time.now += timedelta(seconds=1)
    assert breaker.probe_due()
    breaker.start_probe()
    assert not breaker.probe_due()
    breaker.unanswered(time.now, "still refused")
    assert breaker.probes == 2 and breaker.next_probe_at == time.now + timedelta(seconds=2)
    time.now += timedelta(seconds=2)
    breaker.start_probe()
    outage = breaker.answered(time.now)
    assert outage is not None and not breaker.is_open
    assert (outage.seconds, outage.probes, outage.error) == (3.0, 2, "still refused")
