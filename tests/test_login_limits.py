"""The console's login limiter: bounded in memory whatever is tried, per address first,
and slower (never locked) for a user whose password is being guessed."""

from __future__ import annotations

import asyncio
import os
import random
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer

from dispatcher.errors import SetupError
from dispatcher.web import LoginLimiter
from dispatcher.web.auth import AddressLimiter, Sessions

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


def test_logins_under_way_count_for_the_delay_of_the_next_without_a_queue() -> None:
    """24 guesses at once for a user past the limit used to share one delay (logged in
    after 12 s); each now waits as the last of them would, at most MAX_DELAY, and no lock
    is held: a queue of guesses never keeps the operator's own login waiting longer."""
    limiter = LoginLimiter(5, Clock())
    for _ in range(7):
        limiter.failed_user("desk")

    async def guess(delays: list[float], started: asyncio.Event) -> None:
        with limiter.turn("desk") as delay:
            delays.append(delay)
            started.set()
            await asyncio.sleep(0)  # all 24 are under way at once

    async def burst() -> list[float]:
        delays: list[float] = []
        await asyncio.gather(*(guess(delays, asyncio.Event()) for _ in range(24)))
        return delays

    delays = asyncio.run(burst())
    assert delays[:4] == [4.0, 8.0, 16.0, 30.0] and set(delays[3:]) == {30.0}
    with limiter.turn("desk") as operators:  # the real operator, after the burst
        assert operators == 4.0  # the 7 failures' delay, not the burst's queue
    assert limiter.entries == 1  # no turn kept once over


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


def test_a_key_file_that_is_no_key_never_signs_a_cookie(tmp_path: Path) -> None:
    """An empty (truncated) key file used to be the empty key, and cookies signed with it
    verified: refused at the start; while running, the key in force stays."""
    key_file = tmp_path / "console-secret"
    key_file.write_text("\n", encoding="ascii")
    with pytest.raises(SetupError, match="cannot be read as the console's key"):
        Sessions(key_file, timedelta(hours=12))
    key_file.unlink()
    sessions = Sessions(key_file, timedelta(hours=12))  # made anew
    cookie, _ = sessions.issue("desk", 7)
    forged = URLSafeTimedSerializer(b"", salt="dispatcher-console-session").dumps(
        {"u": "desk", "c": "x", "v": 7})
    key_file.write_text("", encoding="ascii")  # truncated while running
    os.utime(key_file, ns=(0, 1))
    assert sessions.read(forged) is None
    read = sessions.read(cookie)
    assert read is not None and read.key == sessions.key_mark  # the key in force stayed
