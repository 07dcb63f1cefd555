"""What every console page shows at its top, read from the ledger: the works that overran
an end in force without `done` (and what the merchants were told), the notices the daemon
could not send (why, and what to do), the operators' alerts that did not go, and the
contacts rows set aside as invalid (those merchants are told nothing)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo

from dispatcher.ledger import (
    ALERT_SEND_SECONDS,
    ALERT_SHOWN,
    AlertTrouble,
    Ledger,
    NoticeFailure,
    NoticeState,
    failing,
)
from dispatcher.send import fix_of
from dispatcher.table import (
    SET_ASIDE_SHOWN,
    Config,
    Overrun,
    Phase,
    SetAside,
    jp_datetime,
    notice_key,
    overruns,
)

_TOLD = {NoticeState.DONE: "送信済み", NoticeState.SENDING: "送信中",
         NoticeState.PARTIAL: "送信中", NoticeState.MISSED: "時間切れで送れませんでした"}


async def banners(config: Config, ledger: Ledger, now: datetime) -> dict[str, list[str]]:
    """The banners' lines, by banner: overrunning, failing, alerts_not_sent, set_aside."""
    states, active = await ledger.notice_states(), await ledger.active_slots()
    tz = config.settings.timezone
    found = overruns(config.windows, active, await ledger.work_reports(),
                     timedelta(minutes=config.settings.overrun_after_minutes), now)
    known = {w.id for w in config.windows}
    stuck = failing(await ledger.notice_failures(), states, active)
    return {
        "overrunning": [overrun_line(o, states, tz) for o in found],
        "failing": failing_lines(config, {k: f for k, f in stuck.items()
                                          if f.window_id in known}, tz),
        "alerts_not_sent": alert_lines(await ledger.alert_troubles(
            now - ALERT_SEND_SECONDS, now - ALERT_SHOWN), tz),
        "set_aside": set_aside_lines(await ledger.set_aside()),
    }


def overrun_line(overrun: Overrun, states: Mapping[str, NoticeState], tz: tzinfo) -> str:
    """``#3 …: 終了予定 … を過ぎても…`` with what became of the merchants' overrun notice."""
    window = overrun.window
    due = jp_datetime(overrun.due_end.astimezone(tz))
    end = f"延長後の終了予定 {due}" if overrun.extensions else f"終了予定 {due}"
    told = ""
    if window.broadcast:
        state = states.get(notice_key(window.id, overrun.slot.name, Phase.OVERRUN))
        told = f"（加盟店様への作業延長のお知らせ: {_told(state)}"
        told += "。超過時に一度だけ送ります）" if overrun.extensions else "）"
    return (f"#{window.number} {window.title}: {end} を過ぎても作業完了の報告がありません"
            f"{told}。作業完了（dispatcher done {window.number}）または延長を報告してください。")


def _told(state: NoticeState | None) -> str:
    return _TOLD.get(state, "未送信") if state is not None else "未送信"


def failing_lines(config: Config, failures: Mapping[str, NoticeFailure], tz: tzinfo
                  ) -> list[str]:
    """``#3 …「start」(planned) を送信できていません…`` with why and what to do."""
    numbers = {w.id: f"#{w.number} {w.title}" for w in config.windows}
    lines = []
    for f in failures.values():
        fix = fix_of(f.fix)
        since = jp_datetime(f.since.astimezone(tz))
        lines.append(f"{numbers.get(f.window_id, f.window_id)} のお知らせ「{f.phase}」"
                     f"（{f.slot}）を送信できていません（{since} から {f.failures} 回）: "
                     f"{f.reason} {fix.japanese if fix else ''}".rstrip())
    return lines


def set_aside_lines(rows: Sequence[SetAside]) -> list[str]:
    lines = [f"{row.source}: {row.id or '（ID なし）'} {row.merchant}: {row.reason}"
             for row in rows[:SET_ASIDE_SHOWN]]
    if len(rows) > SET_ASIDE_SHOWN:
        lines.append(f"ほか {len(rows) - SET_ASIDE_SHOWN:,} 行（すべての行は dispatcher check "
                     f"で確認できます）")
    return lines


def alert_lines(troubles: Iterable[AlertTrouble], tz: tzinfo) -> list[str]:
    return [f"{jp_datetime(t.at.astimezone(tz))} {t.alert} → {t.channel} {t.address}: "
            f"{t.error or '送信されないままです（送信中に止まりました）'}" for t in troubles]
