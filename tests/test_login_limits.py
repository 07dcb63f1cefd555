"""The console's login limiter: bounded in memory whatever is tried, per address first,
and slower (never locked) for a user whose password is being guessed."""

from __future__ import annotations

import asyncio
import random
import tracemalloc
from datetime import UTC, datetime, timedelta

from dispatcher.web import LoginLimiter
from dispatcher.web.auth import AddressLimiter

START = datetime(2021, 7, 19, 0, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def test_ten_thousand_wrong_logins_under_random_names_leave_memory_flat() -> None:
    clock, draw = Clock(), random.Random(7)
    limiter = LoginLimiter(5, clock, capacity=4096)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for n in range(10_000):
        name = "".join(draw.choices("abcdefghijklmnopqrstuvwxyz", k=24))
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        if not limiter.blocked(address):
            limiter.failed(name, address)
        clock.now += timedelta(milliseconds=10)
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert limiter.entries <= 2 * 4096
    assert grown < 3 * 1024 * 1024, f"{grown:,} bytes"
    assert not limiter.blocked("192.0.2.10") and limiter.delay("night-desk") == 0


def test_one_address_is_blocked_after_the_limit_and_only_it() -> None:
    clock = Clock()
    limiter = LoginLimiter(5, clock)
    for _ in range(5):
        assert not limiter.blocked("198.51.100.7")
        limiter.failed(f"guess-{clock.now.microsecond}", "198.51.100.7")
        clock.now += timedelta(microseconds=1)
    assert limiter.blocked("198.51.100.7") and not limiter.blocked("198.51.100.8")
    clock.now += timedelta(minutes=15, seconds=1)
    assert not limiter.blocked("198.51.100.7")  # the window has passed


def test_an_ipv6_host_counts_by_its_64() -> None:
    limiter = LoginLimiter(2, Clock())
    limiter.failed("a", "2001:db8:1:2::1")
    limiter.failed("b", "2001:db8:1:2:ffff::9")
    assert limiter.blocked("2001:db8:1:2::77")
    assert not limiter.blocked("2001:db8:1:3::1")


def test_a_guessed_user_is_slowed_exponentially_never_refused() -> None:
    clock = Clock()
    limiter = LoginLimiter(5, clock)
    delays = []
    for n in range(12):
        delays.append(limiter.delay("night-desk"))
        limiter.failed("night-desk", f"203.0.113.{n}")
    assert delays == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30]
    limiter.succeeded("night-desk")
    assert limiter.delay("night-desk") == 0


def test_a_login_counts_before_its_password_is_checked_and_a_right_one_is_given_back() -> None:
    limiter = LoginLimiter(5, Clock())
    taken = [limiter.take("198.51.100.7") for _ in range(7)]
    assert taken == [True] * 5 + [False] * 2  # the 6th is refused before any is checked
    limiter.succeeded("desk", "198.51.100.7")  # one of them was right
    assert limiter.take("198.51.100.7") and not limiter.take("198.51.100.7")


def test_one_users_logins_take_turns_each_waiting_the_failures_before_it() -> None:
    """24 guesses at once for a user already past the limit: each one's delay is reckoned
    when its turn comes, after the failures before it, as one after the other would be."""
    limiter = LoginLimiter(5, Clock())
    for _ in range(7):
        limiter.failed_user("desk")

    async def guess(delays: list[float]) -> None:
        async with limiter.turn("desk"):
            delays.append(limiter.delay("desk"))
            await asyncio.sleep(0)  # the password is checked (another login may run now)
            limiter.failed_user("desk")

    async def burst() -> list[float]:
        delays: list[float] = []
        await asyncio.gather(*(guess(delays) for _ in range(24)))
        return delays

    delays = asyncio.run(burst())
    assert delays[:5] == [4.0, 8.0, 16.0, 30.0, 30.0] and len(delays) == 24
    assert sum(delays) >= 4 + 8 + 16 + 30 * 21  # minutes, not one delay shared by all
    assert limiter.entries == 1  # the turns kept nothing once over


def test_a_blocked_address_stays_blocked_however_many_others_fail() -> None:
    """Counters are pushed out by newer addresses (memory stays flat); a block is not: 5,000
    bad codes from other /64s used to empty the table and free the blocked address."""
    clock = Clock()
    limiter = AddressLimiter(5, clock, capacity=4096)
    for _ in range(5):
        limiter.failed("2001:db8:dead::1")
    for n in range(5_000):
        limiter.failed(f"2001:db8:{n >> 8:x}:{n & 255:x}::1")
        clock.now += timedelta(milliseconds=10)
    assert limiter.blocked("2001:db8:dead::99")  # the same /64, 50 s later
    assert len(limiter) <= 4096 + 1
    clock.now += timedelta(minutes=15)
    assert not limiter.blocked("2001:db8:dead::1")  # its window over: free again
