"""A lane's wait for a finish gives way to a cancellation (Ctrl-C, a stop) even when a
delivery finishes in the same turn of the loop: a swallowed cancel would let the claim loop
go on sending the whole broadcast after Ctrl-C (seen under load in test_crash)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

import pytest

from dispatcher.send.lanes import Lane, RateLimiter
from dispatcher.table import ChannelConfig


async def no_sleep(_seconds: float) -> None:
    return None


def a_lane() -> Lane:
    limiter = RateLimiter(None, lambda: datetime.now(UTC), no_sleep)
    return Lane(cast(ChannelConfig, None), limiter, lease_seconds=60)


async def cancelled_as_a_delivery_finishes(steps_between: int) -> tuple[bool, bool]:
    """Whether the wait had returned when it was cancelled, and whether it ended cancelled."""
    lane = a_lane()
    waiting = asyncio.create_task(lane.wait_for_a_finish(60))
    await asyncio.sleep(0)  # the wait has begun
    lane.finished()
    for _ in range(steps_between):
        await asyncio.sleep(0)
    returned_before = waiting.done()
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    return returned_before, waiting.cancelled()


@pytest.mark.parametrize("steps_between", [0, 1, 2, 3])
def test_a_cancel_that_lands_as_a_delivery_finishes_is_not_swallowed(
        steps_between: int) -> None:
    returned_before, cancelled = asyncio.run(cancelled_as_a_delivery_finishes(steps_between))
    # a wait that had already returned cannot be cancelled; one still waiting must be
    assert cancelled != returned_before, "the cancellation was swallowed"


def test_a_finish_ends_the_wait_and_is_consumed() -> None:
    async def scenario() -> bool:
        lane = a_lane()
        lane.finished()
        await asyncio.wait_for(lane.wait_for_a_finish(60), 5)  # returns at once
        loop = asyncio.get_running_loop()
        began = loop.time()
        await lane.wait_for_a_finish(0.05)  # no finish since: the timeout, without an error
        return loop.time() - began >= 0.05

    assert asyncio.run(scenario())
