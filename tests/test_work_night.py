"""The seed's night with the work's real state, on the daemon's injected clock: window 3's
end waits for `done` (end_notice = "confirmed", overrun_after_minutes = 1). No end notice
at AM2:00, the overrun notice at AM2:01 once, an extension to AM2:30 and an update each
sent once, `done` at AM2:20 sends the end notice, and AM2:30 sends no second one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import icalendar
import pytest

from dispatcher.daemon import Daemon
from dispatcher.publish import window_uid
from dispatcher.render import readable
from dispatcher.send import (
    WorkAction,
    WorkView,
    carry_out_report,
    make_backends,
    overrun_alert,
    plan_done,
    plan_extension,
    plan_update,
    send_alert,
    work_view,
)
from dispatcher.table import Channel, Overrun, find_window, load_inputs
from tests.helpers import TOKYO, WINDOW_3, project_ledger, run_daemon_at

EMAILS, TEXTS = 28, 26


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2021, 7, 19, hour, minute, second, tzinfo=TOKYO)


def confirmed_end(project: Path) -> None:
    text = project.read_text(encoding="utf-8")
    text = text.replace('notify = "broadcast"', 'notify = "broadcast"\nend_notice = "confirmed"', 1)
    text = text.replace("catch_up_minutes = 30", "catch_up_minutes = 30\noverrun_after_minutes = 1")
    text = text.replace('channels = ["fax", "email", "sms"]', 'channels = ["email", "sms"]')
    project.write_text(text + '\n[publish]\npath = "public"\n', encoding="utf-8")


def calendar_end(project: Path) -> datetime:
    calendar = icalendar.Calendar.from_ical((project.parent / "public" / "maintenance.ics")
                                            .read_bytes())
    [event] = [e for e in calendar.walk("VEVENT") if e["uid"] == window_uid(WINDOW_3)]
    end: datetime = event.decoded("dtend")
    return end


def sent(project: Path) -> dict[str, int]:
    """How many e-mails and SMS each notice of window 3 wrote to the outbox, by its tag."""
    found: dict[str, int] = {}
    for channel in ("email", "sms"):
        for folder in (project.parent / "var" / "outbox" / channel).glob(f"{WINDOW_3}_*"):
            tag = folder.name.rpartition("_")[2]
            found[tag] = found.get(tag, 0) + len(list(folder.iterdir()))
    return found


async def test_the_night_of_a_confirmed_end(project: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    confirmed_end(project)
    now = [at(1, 0, 1)]
    daemon = Daemon(project, lambda: now[0])
    await daemon.open()

    async def look(moment: datetime) -> dict[str, int]:
        now[0] = moment
        await daemon.tick()
        await daemon.wait_for_sends()
        return sent(project)

    async def report(moment: datetime, plan: Callable[[WorkView], WorkAction]) -> None:
        now[0] = moment
        async with project_ledger(project) as ledger:
            window = find_window(daemon.inputs.config.windows, "3")
            await carry_out_report(ledger, plan(await work_view(ledger, window)),
                                   lambda: now[0])

    inputs = load_inputs(project)
    try:
        assert await look(at(1, 0, 1)) == {"start": EMAILS + TEXTS}
        assert await look(at(2, 0, 30)) == {"start": EMAILS + TEXTS}  # no end at AM2:00
        assert daemon.scheduled() == {f"{WINDOW_3}/planned/overrun": at(2, 1)}
        caplog.set_level(logging.WARNING)
        overrun = await look(at(2, 1))
        assert overrun["overrun"] == EMAILS + TEXTS
        alerts = [r for r in caplog.records if "work overrunning" in r.getMessage()]
        assert len(alerts) == 1 and alerts[0].levelno == logging.WARNING
        assert (await look(at(2, 3)))["overrun"] == EMAILS + TEXTS  # once

        def extend(view: WorkView) -> WorkAction:
            return plan_extension(inputs, view, at(2, 30), "DB 移行", "night-desk",
                                  lambda: now[0])

        await report(at(2, 5), extend)
        assert (await look(at(2, 5)))["extended-1"] == EMAILS + TEXTS
        mail = next((project.parent / "var/outbox/email" /
                     f"{WINDOW_3}_planned_extended-1").iterdir()).read_bytes()
        _, body = readable(mail)
        assert "作業の終了予定時刻を AM2:30 に延長いたします" in body
        assert calendar_end(project) == at(2, 30)

        def update(view: WorkView) -> WorkAction:
            return plan_update(inputs, view, "データ移行の最終確認中です。", None, "night-desk",
                               lambda: now[0])

        await report(at(2, 10), update)
        assert (await look(at(2, 10)))["update-1"] == EMAILS + TEXTS

        def done(view: WorkView) -> WorkAction:
            return plan_done(inputs, view, None, "night-desk", lambda: now[0])

        await report(at(2, 20), done)
        assert (await look(at(2, 20)))["end"] == EMAILS + TEXTS
        assert calendar_end(project) == at(2, 20)  # when the work ended
        final = await look(at(2, 30, 30))  # the extended end: nothing more
        assert final == {"start": EMAILS + TEXTS, "overrun": EMAILS + TEXTS,
                         "extended-1": EMAILS + TEXTS, "update-1": EMAILS + TEXTS,
                         "end": EMAILS + TEXTS}
        assert daemon.scheduled() == {}
    finally:
        await daemon.close()



async def test_the_operators_are_alerted_of_an_overrun_once_even_after_a_restart(
        project: Path) -> None:
    confirmed_end(project)
    with project.open("a", encoding="utf-8") as config:
        config.write('\n[alerts]\nemail = ["night-desk@j-mups.example.jp"]\n'
                     'sms = ["090-1234-0099"]\n')
    for moment in (at(1, 0, 1), at(2, 1)):  # a clock in UTC, as the daemon's real one
        await run_daemon_at(project, moment.astimezone(UTC))
    await run_daemon_at(project, at(2, 1, 30))  # a restart while the overrun is recent
    outbox = project.parent / "var" / "outbox"
    key = f"alert_{WINDOW_3}_planned_overrun"
    [mail] = list((outbox / "email" / key).iterdir())
    headers, body = readable(mail.read_bytes())
    assert "To: 運用担当 <night-desk@j-mups.example.jp>" in headers
    assert "Date: Mon, 19 Jul 2021 02:01:00 +0900" in headers  # the zone's, as the notices'
    assert any(h.startswith("Subject: 【要対応】作業延長: #3 ") for h in headers)
    assert "終了予定 2021年7月19日(月) AM2:00 を過ぎても作業完了の報告がありません" in body
    assert "dispatcher done 3" in body
    [sms] = list((outbox / "sms" / key).iterdir())
    text = sms.read_text(encoding="utf-8")
    assert text.startswith("To: +819012340099") and "AM2:00を過ぎても" in text
    async with project_ledger(project) as ledger:
        assert await ledger.alerts_sent(f"alert/{WINDOW_3}/planned/overrun") == [
            ("email", "night-desk@j-mups.example.jp", None), ("sms", "+819012340099", None)]
        config = load_inputs(project).config
        window = find_window(config.windows, "3")
        alert = overrun_alert(config, Overrun(window, window.planned, at(2, 0), 0))
        assert alert.key == f"alert/{WINDOW_3}/planned/overrun"
        async with make_backends(config, [Channel.EMAIL, Channel.SMS], {}) as backends:
            assert await send_alert(config, ledger, backends, alert, at(2, 2)) == 0  # claimed
    assert sent(project)["overrun"] == EMAILS + TEXTS  # the merchants' counts hold no alert


async def test_each_overrun_of_an_end_in_force_is_logged_and_alerted_once(
        project: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The table's end passes (AM2:00), then the extension's (AM2:30): each gets its log
    line and its alert once, over three looks and a restart; the merchants' overrun
    notice goes once, at the first."""
    confirmed_end(project)
    with project.open("a", encoding="utf-8") as config:
        config.write('\n[alerts]\nemail = ["night-desk@j-mups.example.jp"]\n')
    caplog.set_level(logging.WARNING)
    for moment in (at(1, 0, 1), at(2, 1), at(2, 2)):
        await run_daemon_at(project, moment)
    inputs = load_inputs(project)
    async with project_ledger(project) as ledger:
        window = find_window(inputs.config.windows, "3")
        await carry_out_report(ledger, plan_extension(
            inputs, await work_view(ledger, window), at(2, 30), "DB 移行", "night-desk",
            lambda: at(2, 5)), lambda: at(2, 5))
    for moment in (at(2, 5), at(2, 31), at(2, 32), at(2, 33)):
        await run_daemon_at(project, moment)
    logged = [getattr(r, "fields", {}) for r in caplog.records
              if r.getMessage() == "work overrunning: its end passed without done"]
    # one line per daemon that saw each overrun (each look here is a daemon of its own)
    assert [(f["end"], f["extensions"]) for f in logged] == [
        (at(2, 0), 0), (at(2, 0), 0), (at(2, 30), 1), (at(2, 30), 1), (at(2, 30), 1)]
    outbox = project.parent / "var" / "outbox" / "email"
    assert len(list((outbox / f"alert_{WINDOW_3}_planned_overrun").iterdir())) == 1
    [second] = list((outbox / f"alert_{WINDOW_3}_planned_overrun_extended-1").iterdir())
    headers, body = readable(second.read_bytes())
    assert any(h.startswith("Subject: 【要対応】延長後も作業延長: #3 ") for h in headers)
    assert "延長後の終了予定 2021年7月19日(月) AM2:30 を過ぎても作業完了の報告がありません" in body
    assert "再送はしません" in body
    assert sent(project)["overrun"] == EMAILS + TEXTS


async def test_an_extension_made_before_the_end_passed_alerts_that_the_merchants_are_told(
        project: Path) -> None:
    """Extended at AM1:50, before the table's end: the first overrun is the extension's
    end, and the alert says the merchants' overrun notice goes (not that it went before)."""
    confirmed_end(project)
    with project.open("a", encoding="utf-8") as config:
        config.write('\n[alerts]\nemail = ["night-desk@j-mups.example.jp"]\n')
    await run_daemon_at(project, at(1, 0, 1).astimezone(UTC))
    inputs = load_inputs(project)
    async with project_ledger(project) as ledger:
        window = find_window(inputs.config.windows, "3")
        await carry_out_report(ledger, plan_extension(
            inputs, await work_view(ledger, window), at(2, 30), "DB 移行", "night-desk",
            lambda: at(1, 50)), lambda: at(1, 50))
    for moment in (at(1, 50), at(2, 1), at(2, 31)):
        await run_daemon_at(project, moment.astimezone(UTC))
    outbox = project.parent / "var" / "outbox" / "email"
    assert not (outbox / f"alert_{WINDOW_3}_planned_overrun").exists()  # AM2:00 was moved
    [alert] = list((outbox / f"alert_{WINDOW_3}_planned_overrun_extended-1").iterdir())
    _, body = readable(alert.read_bytes())
    assert "加盟店様には作業延長のお知らせを送信します" in body and "再送" not in body
    assert sent(project)["overrun"] == EMAILS + TEXTS
