"""A model of the night: Hypothesis drives the real ledger, the real send path and the real
daemon's tick on an injected clock through random sequences of what happens on a
maintenance night (operators sending some channels, retrying, postponing from a view that
may be stale; edits of the contacts, the reserve slots and the times; providers accepting,
refusing, timing out or away; a sender killed mid-notice; the clock moved past leases,
starts and ends; contacts confirming a start notice that asks them to, which the daemon
escalates by SMS and a call), and checks the night's invariants after every step.

Providers are the one thing stood in for, at the plugin boundary (a Backend that answers
as told and counts what it was handed). `HYPOTHESIS_PROFILE=night` runs 20 times more.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from dispatcher.daemon import Daemon
from dispatcher.demo import free_port
from dispatcher.errors import (
    InputError,
    PermanentError,
    StaleError,
    TransientError,
    UnavailableError,
    UncertainError,
)
from dispatcher.ledger import (
    FINAL_STATES,
    REPORTABLE_STATES,
    REPORTED_STATES,
    UNSENT_STATES,
    DeliveryRecord,
    DeliveryState,
    Ledger,
    NoticeRecord,
    NoticeState,
    engine_url,
)
from dispatcher.ledger import Report as StatusReport
from dispatcher.receipts.confirmations import confirm_by_hand
from dispatcher.send import (
    Backend,
    Outgoing,
    Receipt,
    carry_out_postponement,
    carry_out_report,
    current_notice,
    plan_done,
    plan_extension,
    plan_interruption,
    plan_postponement,
    plan_update,
    requeue_failed,
    retry_failed,
    send_now,
    send_session,
    work_view,
)
from dispatcher.table import (
    ENDING,
    STEP_MARK,
    Channel,
    Config,
    Phase,
    Report,
    find_window,
    load_inputs,
)
from tests.helpers import CONTACTS_HEADER, ROOT
from tests.servers import fresh_schema

# ci: about 45 s here (15 examples on SQLite, 5 on PostgreSQL); night: 20 times as many
_SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=15, stateful_step_count=20, deadline=None,
                          suppress_health_check=_SLOW)
settings.register_profile("night", max_examples=300, stateful_step_count=20, deadline=None,
                          suppress_health_check=_SLOW)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
POSTGRES_SHARE = 3  # PostgreSQL runs a third of the examples: each one is slower

WINDOW = "w3"
START = datetime(2031, 7, 18, 16, 0, tzinfo=UTC)  # AM1:00 JST, after any real clock here
CONTACTS = [f"M{n},店{n},,,m{n}@example.jp,090-1000-{n:04d},emoney\n" for n in range(6)]
RESERVES = {"first": "2031-08-23T01:00:00", "second": "2031-09-20T01:00:00"}
ANSWERS = ("accepted", "slow", "4xx", "5xx", "timeout", "down")
SLOW_SECONDS = 40  # a provider taking longer over one message than a lease lasts
SECONDS = (1, 20, 45, 300, 600, 1800, 3600, 6 * 3600)
JST = timezone(timedelta(hours=9))
STEP_AFTER = {"sms": timedelta(minutes=10), "voice": timedelta(minutes=20)}  # ASKING's
BROKEN = "★{{ no_such_thing }}"  # a template edit the daemon rejects


ASKING = """
[http]
listen = "127.0.0.1:{port}"
public_url = "https://dispatcher.example.jp"

[confirm]
phases = ["start"]
steps = [{{after = "10m", channel = "sms"}}]
callout_after = "20m"

[channels.voice]
backend = "outbox"
"""


def config_text(planned_shift: int, reserves: Iterable[str], ledger: str,
                end_notice: str = "scheduled", asking_port: int | None = None) -> str:
    start = datetime(2031, 7, 19, 1, 0) + timedelta(minutes=planned_shift)
    reserve_tables = "".join(
        f"  [[windows.reserve]]\n  start = {RESERVES[name]}\n"
        f"  end = {RESERVES[name].replace('T01', 'T02')}\n" for name in reserves)
    return f"""
[dispatcher]
timezone = "Asia/Tokyo"
catch_up_minutes = 30
overrun_after_minutes = 1
lease_seconds = 30
announce_days_before = 0
ledger = "{ledger}"

[sender]
organisation = "テスト株式会社"
service = "J-Mups"

[helpdesk]
name = "J-Mups ヘルプデスク"
phone = "0120-220-766"
hours = "365 日 24 時間"

[alerts]
email = ["night-desk@example.jp"]
sms = ["090-1234-0099"]

[channels.email]
concurrency = 1  # so that claimed deliveries wait their turn behind a slow one

[channels.sms]
concurrency = 1

[retry]
initial_delay_seconds = 1
max_delay_seconds = 4
max_attempts = 3

[[windows]]
number = 3
id = "{WINDOW}"
title = "電子マネー メンテナンス"
start = {start.isoformat()}
end = {(start + timedelta(hours=1)).isoformat()}
impact = "約30分間のサービス停止"
notify = "broadcast"
end_notice = "{end_notice}"
channels = ["email", "sms"]
{reserve_tables}{ASKING.format(port=asking_port) if asking_port else ""}"""


class World:
    """The providers and the clock as the model drives them."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.answers: list[str] = []
        self.accepted: Counter[int] = Counter()  # deliveries a provider took, by id
        self.kill_after: int | None = None  # hand-overs before the sender dies
        self.handed = 0
        self.sender: asyncio.Task[Any] | None = None
        self.ledger: Ledger | None = None
        self.off_slot: list[str] = []  # notices handed over for a slot not in force
        self.alerts: Counter[tuple[str, str]] = Counter()  # (alert, address) handed over
        self.to_confirmed: list[tuple[str, str]] = []  # escalations to the confirmed
        self.by_operator = False  # an operator's command is running (not the daemon)
        # (notice key, channel, when) of each hand-over by the daemon
        self.by_daemon: list[tuple[str, str, datetime]] = []
        self.handed_at: list[tuple[str, datetime]] = []  # (notice key, when), by anyone
        self.from_a_rejected_edit: list[str] = []  # messages a rejected template wrote

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """A wait of the sending (a retry's, a rate's, a slow provider's) moves the clock
        on; the lease renewer's, which runs beside it, lasts until the others have moved
        the clock that far. Were the renewer's to move it too, the clock would race ahead
        for as long as the ledger's real I/O keeps the sending busy, and a notice sent at
        its time would expire before any provider saw it."""
        until = self.now + timedelta(seconds=max(seconds, 0.001))
        if _renewing_leases():
            while self.now < until:
                await asyncio.sleep(0.001)
            return
        self.now = max(self.now, until)
        await asyncio.sleep(0)

    def backends(self, config: Config, channels: Iterable[Channel],
                 env: Mapping[str, str]) -> dict[Channel, Backend]:
        return {channel: Provider(self) for channel in channels}

    async def hand_over(self, outgoing: Outgoing) -> Receipt:
        if outgoing.notice_key.startswith("alert/"):  # an operator's: not a delivery
            self.alerts[(outgoing.notice_key, outgoing.message.address)] += 1
            return Receipt(None)
        await self._check_slot(outgoing.notice_key)
        await self._check_unconfirmed(outgoing)
        self.handed_at.append((outgoing.notice_key, self.now))
        if "★" in outgoing.message.body:
            self.from_a_rejected_edit.append(outgoing.notice_key)
        if not self.by_operator:
            self.by_daemon.append((outgoing.notice_key, outgoing.message.channel.value,
                                   self.now))
        self.handed += 1
        if self.kill_after is not None and self.handed > self.kill_after and self.sender:
            self.kill_after = None
            self.sender.cancel()
            await asyncio.sleep(0)  # the cancellation lands here: the sender is gone
        answer = self.answers.pop(0) if self.answers else "accepted"
        if answer == "slow":
            await self.sleep(SLOW_SECONDS)
        if answer in ("accepted", "slow", "timeout"):
            self.accepted[outgoing.delivery_id] += 1
        if answer == "4xx":
            raise TransientError("451 try later", "451")
        if answer == "5xx":
            raise PermanentError("550 no such user", "550")
        if answer == "timeout":
            raise UncertainError("timed out after the data was sent")
        if answer == "down":
            raise UnavailableError("connection refused")
        return Receipt(f"ref-{outgoing.delivery_id}")

    async def _check_slot(self, key: str) -> None:
        assert self.ledger is not None
        window, slot, phase = key.split("/")
        active = (await self.ledger.active_slots()).get(window, "planned")
        moved_to = (await self.ledger.slot_moves()).get(window, {}).get(slot)
        if slot != active and not (phase == "postponed" and moved_to == active):
            self.off_slot.append(key)


    async def _check_unconfirmed(self, outgoing: Outgoing) -> None:
        """An escalation goes only to a contact who has not confirmed the notice."""
        assert self.ledger is not None
        window, slot, tag = outgoing.notice_key.split("/")
        base, escalated, _ = tag.partition(STEP_MARK)
        record = await self.ledger.notice(window, slot, base) if escalated else None
        contact = outgoing.message.contact.id
        if record is not None and await self.ledger.confirmations_of(record.id, [contact]):
            self.to_confirmed.append((outgoing.notice_key, contact))


def _renewing_leases() -> bool:
    task = asyncio.current_task()
    return task is not None and task.get_coro().__qualname__.endswith(".renew_leases")


class Provider(Backend):
    name: ClassVar[str] = "model"

    def __init__(self, world: World) -> None:
        self.world = world

    async def send(self, outgoing: Outgoing) -> Receipt:
        return await self.world.hand_over(outgoing)


class Night(RuleBasedStateMachine):
    """One night of window 3, on e-mail and SMS, in its own project folder."""

    folder: Path
    tmp: ClassVar[pytest.TempPathFactory]
    ledger_url: ClassVar[str] = "sqlite:///var/ledger.sqlite3"

    @initialize(end_notice=st.sampled_from(["scheduled", "confirmed"]), asking=st.booleans())
    def open_the_night(self, end_notice: str, asking: bool) -> None:
        """``asking``: the start notice asks to confirm (the daemon then listens, for the
        links, and escalates)."""
        self.end_notice = end_notice
        self.asking_port = free_port() if asking else None
        self.folder = self.tmp.mktemp("night")
        shutil.copytree(ROOT / "templates", self.folder / "templates")
        (self.folder / "contacts").mkdir()
        self.contacts = [0, 1, 2]
        self.reserves = ["first"]
        self.shift = 0
        self.earliest_shift = 0  # the planned start was never earlier than START + this
        self.edits = 0
        self.template_broken = False
        self.config = self.folder / "config.toml"
        self._write_table()
        # a night that asks begins a minute before the work, so that its examples reach
        # the escalations (10 and 20 minutes after the start notice, within the hour)
        self.world = World(START - (timedelta(minutes=1) if asking else timedelta(hours=2)))
        self.loop = asyncio.new_event_loop()
        url = engine_url(self.ledger_url, self.folder)
        if url.get_backend_name() == "postgresql":
            self.run(fresh_schema(url))
        self.ledger = self.run(Ledger.open(url))
        self.world.ledger = self.ledger
        self.daemon = Daemon(self.config, self.world.clock, backends=self.world.backends,
                             sleep=self.world.sleep)
        self.run(self.daemon.open())
        self.daemon_table = self._daemon_contacts()  # what the daemon's notices go to
        self.allowed: Counter[int] = Counter()  # extra hand-overs a death or --uncertain allows
        self.seen: dict[int, str] = {}
        self.retried: set[int] = set()
        self.notices_seen: dict[int, str] = {}
        self.orphaned: set[int] = set()  # notices a sender died at, not yet resumed
        self.other_ledger = self.run(Ledger.open(url))  # a second operator's process
        # (notice key, channel) → when an operator first sent that channel by hand
        self.released_by_hand: dict[tuple[str, str], datetime] = {}
        self.asked_again: set[int] = set()  # sent deliveries a report made due again
        self.operator_acted = False  # in this step: what may reopen a missed notice

    def run(self, step: Any) -> Any:
        return self.loop.run_until_complete(step)

    def teardown(self) -> None:
        if hasattr(self, "loop"):
            self.run(self.daemon.close())
            self.run(self.ledger.close())
            self.run(self.other_ledger.close())
            self.loop.close()

    # --- the table -------------------------------------------------------------------

    def _write_table(self) -> None:
        self.config.write_text(config_text(self.shift, self.reserves, self.ledger_url,
                                           self.end_notice, self.asking_port), encoding="utf-8")
        rows = "".join(CONTACTS[n] for n in self.contacts)
        (self.folder / "contacts" / "night.csv").write_text(CONTACTS_HEADER + rows,
                                                            encoding="utf-8")
        self.edits += 1  # a distinct change time for each edit, however fast they come
        stamp = (1_900_000_000 + self.edits) * 10**9
        for path in (self.config, self.folder / "contacts" / "night.csv"):
            os.utime(path, ns=(stamp, stamp))

    @rule()
    def break_or_mend_the_sms_start_template(self) -> None:
        """An edit that names a variable no notice has (the daemon rejects it and keeps
        the last good templates), or the template put back as it was."""
        template = self.folder / "templates" / "sms" / "start.txt.j2"
        good = (ROOT / "templates" / "sms" / "start.txt.j2").read_text(encoding="utf-8")
        self.template_broken = not self.template_broken
        template.write_text(good.replace("を開始しました", f"を開始しました{BROKEN}")
                            if self.template_broken else good, encoding="utf-8")
        self.edits += 1
        stamp = (1_900_000_000 + self.edits) * 10**9
        os.utime(template, ns=(stamp, stamp))

    @rule(contact=st.integers(0, 5))
    def add_or_remove_a_contact(self, contact: int) -> None:
        if contact in self.contacts and len(self.contacts) > 1:
            self.contacts.remove(contact)
        elif contact not in self.contacts:
            self.contacts.append(contact)
        self._write_table()

    @rule(name=st.sampled_from(sorted(RESERVES)))
    def add_or_remove_a_reserve_slot(self, name: str) -> None:
        self.reserves = ([r for r in self.reserves if r != name] if name in self.reserves
                         else sorted([*self.reserves, name], key=list(RESERVES).index))
        self._write_table()

    @rule(minutes=st.sampled_from([-30, 10, 45]))
    def move_the_planned_times(self, minutes: int) -> None:
        self.shift += minutes
        self.earliest_shift = min(self.earliest_shift, self.shift)
        self._write_table()

    # --- the providers, the clock, a death ---------------------------------------------

    @rule(answers=st.lists(st.sampled_from(ANSWERS), max_size=8))
    def providers_will_answer(self, answers: list[str]) -> None:
        self.world.answers = answers

    @rule(seconds=st.sampled_from(SECONDS))
    def time_passes(self, seconds: int) -> None:
        self.world.now += timedelta(seconds=seconds)

    @rule(after=st.integers(0, 4))
    def the_next_sender_dies_after(self, after: int) -> None:
        self.world.kill_after = after

    @rule()
    def daemon_ticks(self) -> None:
        self.run(self.daemon.tick())  # a tick must never raise
        self.daemon_table = self._daemon_contacts()  # its sends took the table of the tick
        self.run(self.daemon.wait_for_sends())
        self.orphaned.clear()  # it resumes at once what a dead sender left

    @rule(minutes=st.sampled_from([1, 10, 20]))
    def the_night_goes_on(self, minutes: int) -> None:
        """Time passes and the daemon ticks, as it does every few seconds: the way a night
        reaches its escalations and overruns in a few steps."""
        self.time_passes(60 * minutes)
        self.daemon_ticks()

    def _daemon_contacts(self) -> set[str]:
        return {contact.id for contact in self.daemon.inputs.contacts}

    # --- the operators -----------------------------------------------------------------

    @rule(phase=st.sampled_from([Phase.START, Phase.END]),
          channels=st.sets(st.sampled_from([Channel.EMAIL, Channel.SMS]), min_size=1),
          stale=st.booleans())
    def operator_sends(self, phase: Phase, channels: set[Channel], stale: bool) -> None:
        async def send() -> None:
            inputs = load_inputs(self.config)
            window = find_window(inputs.config.windows, "3")
            seen = self._seen_slot(stale)
            notice = await current_notice(self.ledger, window, phase, seen_slot=seen)
            released = [(notice.key, channel.value) for channel in channels]
            try:
                await send_now(inputs, self.ledger, self.world.backends(inputs.config,
                                                                        channels, {}),
                               notice, sorted(channels), "model", self.world.clock,
                               sleep=self.world.sleep)
            except InputError:  # refused before anything was planned
                raise
            except BaseException:  # killed while sending: what it planned is released
                self._released_by_hand(released)
                raise
            self._released_by_hand(released)
        self._operator(send())

    def _released_by_hand(self, released: list[tuple[str, str]]) -> None:
        for key in released:
            self.released_by_hand.setdefault(key, self.world.now)

    @rule(phase=st.sampled_from([Phase.START, Phase.END, Phase.POSTPONED]),
          uncertain=st.booleans(), tick_between=st.booleans())
    def operator_retries(self, phase: Phase, uncertain: bool, tick_between: bool) -> None:
        """``tick_between``: the daemon looks between the requeue and the send."""
        async def retry() -> None:
            inputs = load_inputs(self.config)
            window = find_window(inputs.config.windows, "3")
            notice = await current_notice(self.ledger, window, phase)
            record = await self.ledger.notice(window.id, notice.slot.name, notice.tag)
            before = await self.ledger.deliveries_of(record.id) if record else []
            again = {d.id for d in before if d.state in {s.value for s in UNSENT_STATES}}
            if uncertain:  # the operator accepts a duplicate of what may have gone out
                self.allowed.update(d.id for d in before if d.state == "uncertain")
            else:
                again -= {d.id for d in before if d.state == "uncertain"}
            self.retried |= again
            requeued, channels = await requeue_failed(self.ledger, notice, uncertain,
                                                      self.world.clock)
            if tick_between:
                await self._daemon_looks_meanwhile()
            await retry_failed(inputs, self.ledger, self.world.backends(inputs.config,
                               channels, {}), notice, channels, requeued, "model",
                               self.world.clock, sleep=self.world.sleep)
        self._operator(retry())

    async def _daemon_looks_meanwhile(self) -> None:
        """A daemon tick in the middle of an operator's command (its sends are the
        daemon's, and no sender dies in them)."""
        sender, kill_after = self.world.sender, self.world.kill_after
        self.world.by_operator, self.world.sender, self.world.kill_after = False, None, None
        try:
            await self.daemon.tick()
            await self.daemon.wait_for_sends()
        finally:
            self.world.by_operator, self.world.sender = True, sender
            self.world.kill_after = kill_after

    @rule(answer=st.sampled_from(["again", "delivered", "undelivered"]),
          pick=st.integers(0, 50))
    def a_provider_reports(self, answer: str, pick: int) -> None:
        """A status report on a delivery a provider took: delivered, undelivered, or asking
        for another attempt (Twilio 30003, a busy line), on whatever notice it is of."""
        async def report() -> None:
            taken = [d for n in await self.ledger.notices_of(WINDOW)
                     for d in await self.ledger.deliveries_of(n.id, ["sent"])]
            if not taken:
                return
            delivery = taken[pick % len(taken)]
            if answer == "again":  # a second message, as the provider asked
                self.allowed[delivery.id] += 1
                self.asked_again.add(delivery.id)
            state = {"again": DeliveryState.PENDING, "delivered": DeliveryState.DELIVERED,
                     "undelivered": DeliveryState.UNDELIVERED}[answer]
            await self.ledger.apply_reports([StatusReport(
                delivery.id, "model", answer, "30003", answer,
                f"{delivery.id}:{answer}:{self.world.now.isoformat()}", state,
                self.world.now)], self.world.now)
        self.run(report())

    @rule(stale=st.booleans(), with_notice=st.booleans())
    def operator_postpones(self, stale: bool, with_notice: bool) -> None:
        async def postpone() -> None:
            inputs = load_inputs(self.config)
            window = find_window(inputs.config.windows, "3")
            plan = plan_postponement(inputs, window, await self.ledger.active_slots(), None,
                                     with_notice, self.world.clock, self._seen_slot(stale))
            await carry_out_postponement(self.ledger, plan, "model", "", self.world.clock)
            if plan.channels:
                await send_now(inputs, self.ledger, self.world.backends(
                    inputs.config, plan.channels, {}), plan.notice, plan.channels, "model",
                    self.world.clock, checked=True, sleep=self.world.sleep)
        self._operator(postpone())

    @rule(report=st.sampled_from(["done", "extend", "update", "interrupt"]),
          minutes=st.integers(1, 90), stale=st.booleans())
    def operator_reports_the_work(self, report: str, minutes: int, stale: bool) -> None:
        """`done`, `extend --until` (``minutes`` past the end in force), `update` or an
        interruption with the date to follow (`postpone --no-move`), from a view read now,
        or (stale) one that has not seen the reports made since."""
        async def made() -> None:
            inputs = load_inputs(self.config)
            window = find_window(inputs.config.windows, "3")
            view = await work_view(self.ledger, window)
            clock = self.world.clock
            if report == "done":
                action = plan_done(inputs, view, None, "model", clock)
            elif report == "interrupt":
                action = plan_interruption(inputs, view, "機器の不具合のため", "model", clock)
            elif report == "extend":
                seen = view.slot.end if stale else view.work.end
                until = max(view.work.end, clock()) + timedelta(minutes=minutes)
                action = plan_extension(inputs, view, until, "", "model", clock, seen)
            else:
                action = plan_update(inputs, view, f"経過報告 {minutes}", None, "model", clock,
                                     0 if stale else len(view.work.updates))
            await carry_out_report(self.ledger, action, clock)
            if action.channels:
                await send_session(inputs, self.ledger, self.world.backends(
                    inputs.config, action.channels, {}), action.notice, action.channels,
                    "operator:model", clock, checked=True, sleep=self.world.sleep)
        self._operator(made())

    @rule(minutes=st.integers(1, 90))
    def two_operators_report_at_once(self, minutes: int) -> None:
        """`done` and `extend` made on one view by two operators, at once, through two
        ledgers (two processes): at most one is recorded."""
        async def both() -> None:
            inputs = load_inputs(self.config)
            window = find_window(inputs.config.windows, "3")
            view = await work_view(self.ledger, window)
            clock = self.world.clock
            done = plan_done(inputs, view, None, "model-a", clock)
            until = max(view.work.end, clock()) + timedelta(minutes=minutes)
            extend = plan_extension(inputs, view, until, "", "model-b", clock, view.work.end)
            results = await asyncio.gather(carry_out_report(self.ledger, done, clock),
                                           carry_out_report(self.other_ledger, extend, clock),
                                           return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            assert all(isinstance(e, StaleError) for e in errors), errors
            assert len(errors) >= 1, "both reports of one view were recorded"
        self._operator(both())

    @rule(contact=st.integers(0, 5))
    def a_contact_confirms(self, contact: int) -> None:
        """Through the help desk (the link and the call record the same confirmation); a
        contact the start notice was not sent to is refused (exit 2)."""
        async def confirm() -> None:
            window = find_window(load_inputs(self.config).config.windows, "3")
            notice = await current_notice(self.ledger, window, Phase.START)
            record = await self.ledger.notice(WINDOW, notice.slot.name, notice.tag)
            if record is not None:
                await confirm_by_hand(self.ledger, None, record, f"M{contact}", "model",
                                      self.world.now)
        self._operator(confirm())

    def _seen_slot(self, stale: bool) -> str | None:
        """The slot the operator looked at: the one in force, or (stale) the planned slot,
        which is stale once the window has moved."""
        return "planned" if stale else None

    def _operator(self, action: Any) -> None:
        """An operator's command, run like the CLI runs it; bad or stale input is refused
        with an InputError (exit 2), which is a fine outcome; anything else is a bug."""
        async def run() -> None:
            self.world.handed = 0
            self.world.sender = asyncio.current_task()
            self.world.by_operator = self.operator_acted = True
            try:
                await action
            except InputError:
                pass
            except asyncio.CancelledError:  # the sender died: it held what it held
                await self._allow_what_the_dead_held()
            finally:
                self.world.sender = None
                self.world.kill_after = None
                self.world.by_operator = False
        self.run(run())

    async def _allow_what_the_dead_held(self) -> None:
        """A dead sender's claims may go out twice; a notice it was at may stay ``sending``
        with every delivery final (it died before finishing it) until a sender resumes it."""
        for notice in await self.ledger.notices_of(WINDOW):
            if notice.state == NoticeState.SENDING:
                self.orphaned.add(notice.id)
            for delivery in await self.ledger.deliveries_of(notice.id, ["sending"]):
                self.allowed[delivery.id] += 1

    # --- the invariants ----------------------------------------------------------------

    @invariant()
    def nothing_is_sent_twice_unless_a_sender_died_holding_it(self) -> None:
        for delivery_id, times in self.world.accepted.items():
            assert times <= 1 + self.allowed[delivery_id], (delivery_id, times)

    @invariant()
    def each_operator_is_alerted_of_an_overrun_once_and_only_of_one_that_went(self) -> None:
        assert all(times == 1 for times in self.world.alerts.values()), self.world.alerts
        if not hasattr(self, "ledger"):
            return
        overruns = {f"alert/{WINDOW}/{n.slot}/{n.phase}"
                    for n in self.run(self.ledger.notices_of(WINDOW))
                    if n.phase == "overrun" and n.state != "missed"}
        reports = self.run(self.ledger.work_reports())
        for alert, _ in self.world.alerts:
            _, _, slot, _, *extended = alert.split("/")
            if not extended:  # the table's end passed: as its overrun notice went
                assert alert in overruns, alert
                continue
            # an extension's end passed (a minute ago, overrun_after_minutes) before done
            mine = reports.get((WINDOW, slot), [])
            extension = next(r for r in mine if r.tag == extended[0])
            done = next((r.at for r in mine if r.kind in ENDING), None)
            assert extension.until is not None, extension
            assert done is None or done >= extension.until + timedelta(minutes=1), alert
            event("an extension's end overrun")

    @invariant()
    def an_escalation_goes_once_to_each_unconfirmed_contact_of_a_notice_that_asks(
            self) -> None:
        assert self.world.to_confirmed == []
        if not hasattr(self, "ledger"):
            return
        for notice in self.run(self.ledger.notices_of(WINDOW)):
            base, escalated, channel = notice.phase.partition(STEP_MARK)
            if not escalated:
                continue
            assert self.asking_port and base == "start", notice
            assert channel in ("sms", "voice"), notice
            contacts = Counter(d.contact_id for d in self.run(
                self.ledger.deliveries_of(notice.id)))
            assert all(times == 1 for times in contacts.values()), (notice, contacts)
            event(f"escalation by {channel}")

    @invariant()
    def nothing_is_handed_over_before_its_channel_is_released(self) -> None:
        """The daemon hands a start notice's channel over only at the work's start (as
        early as the table ever had it) or once an operator sent that channel by hand; an
        escalation only its step's wait after the work's start."""
        for key, channel, when in self.world.by_daemon:
            _, slot, tag = key.split("/")
            base, escalated, step = tag.partition(STEP_MARK)
            if base != Phase.START.value:
                continue
            due = self._earliest_start(slot) + (STEP_AFTER[step] if escalated else timedelta())
            by_hand = self.released_by_hand.get((key, channel))
            assert when >= due or (by_hand is not None and by_hand <= when), (
                key, channel, when, due)
        self.world.by_daemon.clear()

    def _earliest_start(self, slot: str) -> datetime:
        if slot == "planned":
            return START + timedelta(minutes=self.earliest_shift)
        return datetime.strptime(slot, "reserve-%Y-%m-%d-%H%M").replace(tzinfo=JST)

    @invariant()
    def nothing_is_handed_over_after_the_work_it_tells_of_was_reported_done(self) -> None:
        """A start notice, its escalations, the overrun and extension notices: none goes
        to a provider after `done` or an interruption (what was in flight was handed over
        before it)."""
        if not hasattr(self, "ledger"):
            return
        reports = self.run(self.ledger.work_reports())
        for key, when in self.world.handed_at:
            _, slot, tag = key.split("/")
            kind = tag.partition(STEP_MARK)[0].partition("-")[0]
            if kind not in ("start", "overrun", "extended"):
                continue
            done = next((r.at for r in reports.get((WINDOW, slot), [])
                         if r.kind in ENDING), None)
            assert done is None or when <= done, (key, when, done)
        self.world.handed_at.clear()

    @invariant()
    def a_rejected_template_edit_never_changes_or_stops_what_is_sent(self) -> None:
        """The daemon sends with the last good templates: nothing a rejected one would
        write goes out, and no notice of the daemon's fails for it."""
        assert self.world.from_a_rejected_edit == []
        if not hasattr(self, "ledger"):
            return
        assert self.run(self.ledger.notice_failures()) == {}
        if self.template_broken:
            event("a template edit rejected")

    @invariant()
    def no_notice_goes_out_for_a_slot_not_in_force(self) -> None:
        assert self.world.off_slot == []

    @invariant()
    def states_only_move_forward_and_done_means_all_final(self) -> None:
        if not hasattr(self, "ledger"):
            return
        self.run(self._check_ledger())
        self.retried.clear()

    @invariant()
    def the_active_slot_is_in_the_table_in_force(self) -> None:
        """Once the daemon has looked at the files (an operator's command may have moved
        the window with an edit the daemon had not read yet)."""
        if not hasattr(self, "ledger"):
            return
        self.run(self.daemon.reload_if_changed())
        active = self.run(self.ledger.active_slots()).get(WINDOW, "planned")
        window = find_window(self.daemon.inputs.config.windows, WINDOW)
        if active not in {s.name for s in window.slots} and self.daemon.table.rejected:
            # the files hold an edit the daemon refused (a broken template) and an operator
            # moved the window to a slot only they have: the window waits, logged, for a
            # table that has it; nothing goes out meanwhile (see the slot invariant)
            event("a window moved to a slot of an edit the daemon refused")
            return
        assert active in {s.name for s in window.slots}

    @invariant()
    def the_end_waits_for_done_and_an_overrun_never_follows_it(self) -> None:
        """With a confirmed end, no end notice goes out by the schedule before `done`, and
        no overrun after it (one whose time passed unsent is recorded missed: nothing went
        out); every extended and update notice tells of a report made; no
        report follows `done`."""
        if not hasattr(self, "ledger"):
            return
        reports = self.run(self.ledger.work_reports())
        for notice in self.run(self.ledger.notices_of(WINDOW)):
            mine = reports.get((WINDOW, notice.slot), [])
            done = next((r.at for r in mine if r.kind in ENDING), None)
            by_schedule = notice.triggered_by == "schedule"
            if notice.phase == "end" and by_schedule and self.end_notice == "confirmed":
                assert done is not None and done <= notice.created_at, notice
            if notice.phase == "overrun" and by_schedule and notice.state != "missed":
                assert self.end_notice == "confirmed", notice
                # at the latest in the instant done was reported (the tick came first)
                assert done is None or done >= notice.created_at, notice
            kind, _, number = notice.phase.partition("-")
            if kind in ("extended", "update"):
                assert any(r.kind.value == kind and r.number == int(number) for r in mine)
            stopped = any(r.kind is Report.INTERRUPTED for r in mine)
            if notice.phase == "interrupted":  # it tells of an interruption made
                assert stopped, notice
                event("the work interrupted, the date to follow")
            if notice.phase == "end" and by_schedule:  # never the end of stopped work
                assert not stopped, notice
        for made in reports.values():  # in the order recorded: nothing after the end
            kinds = [r.kind for r in made]
            ends = [k for k in kinds if k in ENDING]
            assert not ends or (len(ends) == 1 and kinds[-1] in ENDING), made

    async def _check_ledger(self) -> None:
        try:
            await self._check_notices()
        finally:
            self.operator_acted = False

    async def _check_notices(self) -> None:
        final = {s.value for s in FINAL_STATES}
        for notice in await self.ledger.notices_of(WINDOW):
            deliveries = await self.ledger.deliveries_of(notice.id)
            states = [d.state for d in deliveries]
            for delivery in deliveries:
                self._moved_forward(delivery.id, delivery.state)
            if notice.state == NoticeState.DONE:
                assert set(states) <= final, (notice, states)
            if notice.state == NoticeState.PARTIAL:  # what waits for its time aside
                releases = await self.ledger.releases_of(notice.id)
                released = {d.state for d in deliveries
                            if (at := releases.get(d.channel)) and at <= self.world.now}
                assert released <= final, (notice, states)
            escalation = STEP_MARK in notice.phase  # to those who had not confirmed
            if (notice.state == NoticeState.DONE and not escalation
                    and self.notices_seen.get(notice.id) != "done"):
                # it became done in this step: every contact of the table it was sent from
                # has a delivery on each of the notice's channels: the files as they stand
                # for an operator, the daemon's table in force for the daemon (which keeps
                # its last good table when an edit disagrees with the ledger)
                planned = {(d.channel, d.contact_id) for d in deliveries}
                audience = (self.daemon_table if notice.triggered_by == "schedule"
                            else {f"M{n}" for n in self.contacts})
                wanted = {(c, contact) for c in ("email", "sms") for contact in audience}
                assert wanted <= planned, (notice, sorted(wanted - planned))
            if (notice.state == NoticeState.DONE and escalation
                    and self.notices_seen.get(notice.id) != "done"):
                await self._check_escalated_to_every_unconfirmed(notice, deliveries)
            if self.notices_seen.get(notice.id) == NoticeState.MISSED:  # only an operator
                assert notice.state == NoticeState.MISSED or self.operator_acted, notice
            self.notices_seen[notice.id] = notice.state
            if notice.state != NoticeState.SENDING:
                self.orphaned.discard(notice.id)
            elif notice.id not in self.orphaned:  # something left for a sender to resume
                assert not set(states) <= final, (notice, states)

    async def _check_escalated_to_every_unconfirmed(
            self, notice: NoticeRecord, deliveries: list[DeliveryRecord]) -> None:
        """A done escalation reached every contact of the daemon's table who has not
        confirmed its notice, whether or not that notice reached them (but an address on
        the suppression list)."""
        base_tag, _, channel = notice.phase.partition(STEP_MARK)
        base = await self.ledger.notice(WINDOW, notice.slot, base_tag)
        assert base is not None, notice
        confirmed = set(await self.ledger.confirmations_of(base.id))
        suppressed = (await self.ledger.suppressed()).get(channel, set())
        table = {contact.id: contact for contact in self.daemon.inputs.contacts}
        wanted = {contact for contact in self.daemon_table - confirmed
                  if table[contact].address(Channel(channel)) not in suppressed}
        reached = {delivery.contact_id for delivery in deliveries}
        assert wanted <= reached, (notice, sorted(wanted - reached))

    def _moved_forward(self, delivery_id: int, state: str) -> None:
        before = self.seen.get(delivery_id)
        self.seen[delivery_id] = state
        if before is None or before == state or before not in {s.value for s in FINAL_STATES}:
            return
        if delivery_id in self.asked_again:  # sent, then reported: try again
            self.asked_again.discard(delivery_id)
            return
        if before in {s.value for s in REPORTABLE_STATES} and state in {
                s.value for s in REPORTED_STATES}:  # a provider's report: forward
            return
        # a final state changes only when an operator retried it
        assert before in {s.value for s in UNSENT_STATES}, (delivery_id, before, state)
        assert delivery_id in self.retried, (delivery_id, before, state)


def _run(machine: type[Night], examples_share: int = 1) -> None:
    profile = settings.get_profile(PROFILE)
    case = machine.TestCase
    case.settings = settings(profile, max_examples=max(profile.max_examples // examples_share,
                                                       1))
    case("runTest").runTest()


def test_the_night_on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> None:
    Night.tmp = tmp_path_factory
    _run(Night)


def test_the_night_on_postgresql(tmp_path_factory: pytest.TempPathFactory,
                                 postgres_url: str) -> None:
    class OnPostgres(Night):
        ledger_url = postgres_url

    OnPostgres.tmp = tmp_path_factory
    _run(OnPostgres, POSTGRES_SHARE)

