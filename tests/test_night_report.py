"""`report WINDOW`: the night's figures (per notice and channel: states, why failed, when
handed over) agree with `status --json` for the same ledger, and say when the night is
still in progress."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from dispatcher.ledger import DeliveryRecord
from dispatcher.receipts import channel_figures, moment_at
from tests.helpers import BEFORE_EVERY_WINDOW, Cli

T0 = datetime(2021, 7, 18, 16, 0, tzinfo=UTC)


def delivery(n: int, state: str, sent: int | None, error: str | None = None) -> DeliveryRecord:
    return DeliveryRecord(n, 1, f"C{n}", "email", f"c{n}@x.jp", state, 1, None, error, None,
                          T0 + timedelta(seconds=sent) if sent is not None else None)


def test_the_figures_of_a_channel() -> None:
    deliveries = [delivery(1, "delivered", 0), delivery(2, "sent", 3),
                  delivery(3, "bounced", 1, "550 no such user"), delivery(4, "expired", None,
                                                                          "the end passed"),
                  delivery(5, "sent", 9)]
    figures = channel_figures("email", deliveries)
    assert figures.total == 5
    assert figures.by_state == {"bounced": 1, "delivered": 1, "expired": 1, "sent": 2}
    assert figures.failures == {"bounced: 550 no such user": 1, "expired: the end passed": 1}
    assert figures.handed_over == {"first": T0, "half": T0 + timedelta(seconds=1),
                                   "nine_in_ten": T0 + timedelta(seconds=9),
                                   "last": T0 + timedelta(seconds=9)}


@given(st.lists(st.integers(0, 3600), min_size=1, max_size=50), st.floats(0, 1))
def test_the_moment_a_share_was_handed_over_covers_that_share(seconds: list[int],
                                                              share: float) -> None:
    times = sorted(T0 + timedelta(seconds=s) for s in seconds)
    moment = moment_at(times, share)
    assert moment is not None and times[0] <= moment <= times[-1]
    assert sum(t <= moment for t in times) >= share * len(times)  # at least that share
    assert moment_at(times, 0.0) == times[0] and moment_at(times, 1.0) == times[-1]


def test_the_report_agrees_with_status_and_says_a_night_in_progress(
        cli: Cli, project: Path, cli_at: Callable[[datetime], None]) -> None:
    during = datetime(2021, 7, 18, 16, 20, tzinfo=UTC)  # AM1:20, the work under way
    cli_at(during)
    assert cli("send", "3", "start", "--yes", "-c", str(project)).code == 0
    assert cli("update", "3", "--text", "作業は順調です。", "--yes", "-c",
               str(project)).code == 0
    report = json.loads(cli("report", "3", "--json", "-c", str(project)).out)
    status = json.loads(cli("status", "3", "--json", "-c", str(project)).out)
    assert report["in_progress"] is True and report["slot"] == "planned"
    shown = {n["phase"]: {c["channel"]: c["states"] for c in n["channels"]}
             for n in report["notices"]}
    assert shown == {n["phase"]: n["channels"] for n in status["notices"]}
    assert [a["action"] for a in report["actions"]] == ["send", "update"]
    text = cli("report", "3", "-c", str(project)).out
    assert text.startswith("(the night is still in progress")
    cli_at(BEFORE_EVERY_WINDOW + timedelta(days=90))  # long after: the night is over
    later = json.loads(cli("report", "3", "--json", "-c", str(project)).out)
    assert later["in_progress"] is False
