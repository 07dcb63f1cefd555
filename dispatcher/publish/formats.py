"""The three published files, each rendered from the same entries with the field's own
library: a maintenance page (Jinja2), an iCalendar feed (icalendar, RFC 5545) and an Atom
feed (feedgen, RFC 4287). Pure: values in, bytes out."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
import jinja2
from feedgen.feed import FeedGenerator

from dispatcher.publish.site import PROGRESS_LABELS, UNDER_WAY, Entry, Published, PublishedState
from dispatcher.table import Config, jp_clock, jp_datetime

PAGE = "index.html"
CALENDAR = "maintenance.ics"
FEED = "feed.atom"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/dispatcher/windows")


@dataclass(frozen=True)
class Site:
    """What every file says besides the windows: who publishes, where, how often to look."""

    service: str
    organisation: str
    website: str
    helpdesk: str
    timezone: ZoneInfo
    base_url: str | None
    refresh: timedelta
    generated_at: datetime
    # ORGANIZER (RFC 5546 §3.2.1): the help desk's address (its e-mail, else the address
    # the notices are mailed from), with the help desk as CN
    organizer: str
    organizer_name: str
    centre: str = ""  # [sender] centre: what the maintenance is of

    @classmethod
    def of(cls, config: Config, base_url: str | None, refresh: timedelta, now: datetime
           ) -> Site:
        desk = config.helpdesk
        address = desk.email or parseaddr(config.messages.mail_from)[1]
        return cls(config.sender.service, config.sender.organisation, config.sender.website,
                   f"{desk.name} {desk.phone}（{desk.hours}）", config.settings.timezone,
                   base_url, refresh, now, f"mailto:{address}", desk.name,
                   config.sender.centre)

    @property
    def title(self) -> str:
        return f"{self.service} メンテナンス情報"

    def link(self, name: str = "") -> str | None:
        return f"{self.base_url.rstrip('/')}/{name}" if self.base_url else None


def window_uid(window_id: str) -> str:
    """The window's identity in the calendar (UID) and the feed (id), for its whole life."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, window_id)}"


def render_all(published: Sequence[Published], site: Site) -> dict[str, bytes]:
    return {PAGE: page(published, site), CALENDAR: calendar(published, site),
            FEED: feed(published, site)}


def description(entry: Entry, site: Site) -> str:
    """The window in plain Japanese text, as the calendar and the feed carry it."""
    lines = [f"状況: {PROGRESS_LABELS[entry.progress]}", f"日時: {entry.slot.text}"]
    if entry.due_until and not entry.ended_at:
        lines.append(f"延長: 終了予定を {jp_clock(entry.due_until)} から "
                     f"{jp_clock(entry.slot.end)} に延長しました")
    if entry.ended_at:
        lines.append(f"終了: {jp_clock(entry.ended_at)} に作業が終了しました")
    if entry.moved_from:
        lines.append(f"延期: 当初の予定 {entry.moved_from.text} から変更しました")
    lines += [f"予備日: {span.text}" for span in entry.reserves]
    lines.append(f"影響: {entry.impact}")
    if entry.impact_detail:
        lines.append(entry.impact_detail)
    if entry.services:
        lines.append("ご利用いただけないサービス: " + "、".join(entry.services))
    lines.append(f"お問い合わせ: {site.helpdesk}")
    return "\n".join(lines)


def calendar(published: Sequence[Published], site: Site) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//dispatcher//maintenance windows//JA")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", site.title)
    cal.add("x-wr-timezone", str(site.timezone))
    cal.add("refresh-interval", site.refresh, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", _duration(site.refresh))
    for item in published:
        cal.add_component(_event(item, site))
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def _duration(length: timedelta) -> str:
    """RFC 5545 DURATION text (``PT1H``); X-PUBLISHED-TTL is not a typed property."""
    minutes = int(length.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes or not hours else "")


def _event(item: Published, site: Site) -> icalendar.Event:
    entry, version = item.entry, item.version
    event = icalendar.Event()
    event.add("uid", window_uid(entry.window_id))
    event.add("sequence", version.sequence)
    event.add("dtstamp", version.updated_at.astimezone(UTC))
    event.add("last-modified", version.updated_at.astimezone(UTC))
    event.add("dtstart", entry.slot.start.astimezone(site.timezone))
    event.add("dtend", entry.slot.end.astimezone(site.timezone))
    event.add("summary", entry.title)
    event.add("description", description(entry, site))
    event.add("status", "CANCELLED" if entry.progress is PublishedState.CANCELLED else "CONFIRMED")
    event.add("transp", "TRANSPARENT")
    event.add("organizer", site.organizer, parameters={"CN": site.organizer_name})
    if link := site.link(f"#{entry.window_id}"):
        event.add("url", link)
    return event


def feed(published: Sequence[Published], site: Site) -> bytes:
    generator = FeedGenerator()
    generator.id(window_uid(f"feed:{site.website or site.service}"))
    generator.title(site.title)
    generator.author({"name": site.organisation})
    generator.language("ja")
    if self_link := site.link("feed.atom"):
        generator.link(href=self_link, rel="self", type="application/atom+xml")
        generator.link(href=site.link(), rel="alternate", type="text/html")
    elif site.website:
        generator.link(href=site.website, rel="alternate")
    # every time in the site's zone (the ledger gives UTC back): one offset in the feed
    generator.updated(max((p.version.updated_at for p in published),
                          default=site.generated_at).astimezone(site.timezone))
    for item in published:
        entry = generator.add_entry(order="append")
        entry.id(window_uid(item.entry.window_id))
        entry.title(f"【{PROGRESS_LABELS[item.entry.progress]}】{item.entry.title} "
                    f"{item.entry.slot.text}")
        entry.updated(item.version.updated_at.astimezone(site.timezone))
        entry.content(description(item.entry, site), type="text")
        if link := site.link(f"#{item.entry.window_id}"):
            entry.link(href=link, rel="alternate")
    return bytes(generator.atom_str(pretty=True))


_PAGE_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("dispatcher.publish", "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_PAGE_ENV.filters["jp_clock"] = jp_clock  # the entries' times are in the site's zone

_SECTIONS = ((UNDER_WAY, "作業中のメンテナンス"),
             ((PublishedState.UPCOMING,), "今後のメンテナンス予定"),
             ((PublishedState.COMPLETED,), "終了したメンテナンス"),
             ((PublishedState.CANCELLED,), "中止したメンテナンス"))


def page(published: Sequence[Published], site: Site) -> bytes:
    sections = [(title, [p for p in published if p.entry.progress in states])
                for states, title in _SECTIONS]
    if sections[2][1]:  # the latest completed first
        sections[2] = (sections[2][0], sections[2][1][::-1])
    html = _PAGE_ENV.get_template("index.html.j2").render(
        site=site, sections=sections, labels=PROGRESS_LABELS,
        generated=jp_datetime(site.generated_at.astimezone(site.timezone)),
        calendar_link=CALENDAR, feed_link=FEED, host=urlsplit(site.website).netloc)
    return html.encode("utf-8")
