"""Notices rendered per (contact, channel) from the Jinja2 templates; reads only templates.

The environment is sandboxed and strict: an unknown variable is an error, never an empty
gap in a sent notice. Contact fields are values, never template code. The fax page is HTML
with autoescaping; e-mail and SMS are plain text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from dispatcher.errors import Problem, TemplateError
from dispatcher.render.links import ConfirmLink, ConfirmLinks, qr_data_uri, sample_link
from dispatcher.render.segments import Segments, count_segments
from dispatcher.render.twiml import Script, parse_script, spoken_text, without_markers
from dispatcher.table import (
    Channel,
    Config,
    Contact,
    Inputs,
    Notice,
    Phase,
    Slot,
    jp_clock,
    jp_date,
    jp_datetime,
    jp_lead,
    jp_month_day,
    jp_range,
    jp_short_range,
    jp_spoken_clock,
    jp_spoken_date,
    jp_spoken_range,
    jp_stamp,
)

TEMPLATE_SUFFIX = {Channel.FAX: "html.j2", Channel.EMAIL: "txt.j2", Channel.SMS: "txt.j2",
                   Channel.VOICE: "txt.j2"}
SUBJECT_PREFIX = "Subject:"
# where a preview's sample link points when [http] has no public_url
EXAMPLE_PUBLIC_URL = "https://dispatcher.example.jp"
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


@dataclass(frozen=True)
class Message:
    """One rendered message for one contact on one channel."""

    contact: Contact
    channel: Channel
    address: str
    subject: str | None
    body: str
    segments: Segments | None = None
    script: Script | None = None  # a call's parts; its body is the words as read


def template_name(channel: Channel, phase: Phase) -> str:
    return f"{channel.value}/{phase.value}.{TEMPLATE_SUFFIX[channel]}"


INTERRUPTED = "interrupted"  # the templates of a postponed notice after the work began


def template_of(channel: Channel, notice: Notice) -> str:
    """The template ``notice`` is written with on ``channel``: its phase's, or for a
    postponement of work that had begun (中断), ``interrupted``'s."""
    if notice.phase is Phase.POSTPONED and notice.interrupted:
        return f"{channel.value}/{INTERRUPTED}.{TEMPLATE_SUFFIX[channel]}"
    return template_name(channel, notice.phase)


def one_line(text: str) -> str:
    """``text`` with every line break folded to a space: safe for a mail header."""
    return _LINE_BREAKS.sub(" ", text).strip()


class Renderer:
    """Renders notices from one templates folder for one configuration. A notice that asks
    to confirm carries each delivery's own link; rendered for no delivery (a preview, a
    check), a sample link of the same length."""

    def __init__(self, templates_dir: Path, config: Config,
                 sources: Mapping[str, str] | None = None) -> None:
        self.templates_dir = templates_dir
        self.config = config
        self._links = ConfirmLinks.of(config)
        self._tz = config.settings.timezone
        self._env = _environment(templates_dir, self._tz, sources)
        self._shared = {
            "sender": config.sender,
            "helpdesk": config.helpdesk,
        }

    @classmethod
    def of(cls, inputs: Inputs) -> Renderer:
        """The renderer of the table ``inputs`` (its templates as read with it)."""
        config = inputs.config
        return cls(config.settings.templates_dir, config, inputs.templates or None)

    def render(self, notice: Notice, contact: Contact, channel: Channel, sent_at: datetime,
               delivery_id: int | None = None, with_link: bool = True) -> Message:
        """The message ``contact`` receives on ``channel`` if sent at ``sent_at`` (its date
        line) as delivery ``delivery_id`` (``with_link``: its confirmation link, if the
        notice asks); TemplateError names file and line."""
        address = contact.address(channel) or ""
        link = self.confirm_link(notice, delivery_id) if with_link else None
        context = {**self.context(notice, contact, sent_at), "confirm": link}
        name = self._written_with(channel, notice)
        text = self.render_text(name, context)
        if channel is Channel.EMAIL:
            subject, body = _split_subject(text, name)
            return Message(contact, channel, address, subject, body)
        if channel is Channel.SMS:
            body = text.strip()
            return Message(contact, channel, address, None, body, count_segments(body))
        if channel is Channel.VOICE:
            script = parse_script(text, name)
            return Message(contact, channel, address, None, spoken_text(script), script=script)
        return Message(contact, channel, address, None, text)

    def _written_with(self, channel: Channel, notice: Notice) -> str:
        """``template_of``; a table whose templates predate the interrupted notice's (an
        upgrade that kept its own folder) writes it with the postponed notice's, as before
        (`check` warns)."""
        name = template_of(channel, notice)
        if notice.phase is Phase.POSTPONED and notice.interrupted and not self.has(name):
            return template_name(channel, notice.phase)
        return name

    def has(self, name: str) -> bool:
        """Whether the templates hold ``name``."""
        try:
            self._env.get_template(name)
        except jinja2.TemplateNotFound:
            return False
        except jinja2.TemplateError:
            return True  # there, if broken: rendering says how
        return True

    def confirm_link(self, notice: Notice, delivery_id: int | None) -> ConfirmLink | None:
        """The link the delivery carries if its notice asks to confirm."""
        if not notice.window.confirms(notice.phase):
            return None
        if self._links is not None and delivery_id is not None:
            return self._links.link(delivery_id)
        return sample_link(self.config.http.public_url or EXAMPLE_PUBLIC_URL)

    def context(self, notice: Notice, contact: Contact, sent_at: datetime) -> dict[str, Any]:
        context = {
            **self._shared,
            "window": notice.window,
            "affected_services": self.config.services_of(notice.window),
            "reason": notice.reason,
            "slot": local_slot(notice.slot, self._tz),
            "phase": notice.phase.value,
            "sent_at": sent_at.astimezone(self._tz),
            "contact": contact,
        }
        if notice.new_slot is not None:
            context["new_slot"] = local_slot(notice.new_slot, self._tz)
        if notice.lead is not None:
            context["lead"] = notice.lead
        return {**context, **self._report_context(notice)}

    def _report_context(self, notice: Notice) -> dict[str, Any]:
        """What the operator's report a notice tells of gives its template: ``extension``
        (``number``, ``until``: the new end), ``update`` (``number``, ``text``, ``at``), and
        ``ended_at`` (when the work ended, after `done`; else None) for the end notice."""
        report = notice.report
        if notice.phase is Phase.END:
            return {"ended_at": report.until.astimezone(self._tz)
                    if report is not None and report.until is not None else None}
        if report is None:
            return {}
        if notice.phase is Phase.EXTENDED:
            assert report.until is not None, "an extension has its new end"
            return {"extension": {"number": report.number,
                                  "until": report.until.astimezone(self._tz)}}
        return {"update": {"number": report.number, "text": report.text,
                           "at": report.at.astimezone(self._tz)}}

    def render_text(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            return self._env.get_template(name).render(context)
        except jinja2.TemplateNotFound:
            raise TemplateError([Problem(str(self.templates_dir / name), "missing")]) from None
        except jinja2.TemplateSyntaxError as exc:
            where = f"{self.templates_dir / (exc.name or name)}:{exc.lineno}"
            raise TemplateError([Problem(where, f"syntax: {exc.message}")]) from None
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError) as exc:
            where = _where_in_template(exc.__traceback__, self.templates_dir, name)
            raise TemplateError([Problem(where, _describe(exc))]) from None


def local_slot(slot: Slot, tz: tzinfo) -> Slot:
    """``slot`` in the time zone the contacts read (``[dispatcher].timezone``)."""
    return replace(slot, start=slot.start.astimezone(tz), end=slot.end.astimezone(tz))


def _environment(templates_dir: Path, tz: tzinfo, sources: Mapping[str, str] | None
                 ) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=_loader(templates_dir, sources),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"),
                                            default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        finalize=without_markers,
    )
    env.filters.update(filters(tz))
    env.filters["qr"] = qr_data_uri
    return env


def _loader(templates_dir: Path, sources: Mapping[str, str] | None) -> jinja2.BaseLoader:
    """The files of ``templates_dir``, or ``sources`` (their text as read with the table),
    named by their path so that errors name file and line either way."""
    if sources is None:
        return jinja2.FileSystemLoader(templates_dir, encoding="utf-8")

    def load(name: str) -> tuple[str, str, Callable[[], bool]] | None:
        source = sources.get(name)
        return None if source is None else (source, str(templates_dir / name), lambda: True)
    return jinja2.FunctionLoader(load)


def filters(tz: tzinfo) -> dict[str, Callable[..., str]]:
    """The templates' time filters; every time a contact reads is shown in ``tz``, whatever
    zone it reached the template in (the clock gives UTC)."""
    def local(moment: datetime) -> datetime:
        return moment.astimezone(tz)

    def slot_range(slot: Slot) -> str:
        return jp_range(local(slot.start), local(slot.end))

    def short_slot_range(slot: Slot) -> str:
        return jp_short_range(local(slot.start), local(slot.end))

    return {
        "jp_date": lambda moment: jp_date(local(moment)),
        "jp_datetime": lambda moment: jp_datetime(local(moment)),
        "jp_clock": lambda moment: jp_clock(local(moment)),
        "jp_spoken_clock": lambda moment: jp_spoken_clock(local(moment)),
        "jp_spoken_date": lambda moment: jp_spoken_date(local(moment)),
        "jp_spoken_range": lambda slot: jp_spoken_range(local(slot.start), local(slot.end)),
        "jp_lead": jp_lead,
        "jp_md": lambda moment: jp_month_day(local(moment)),
        "jp_range": slot_range,
        "jp_stamp": lambda moment: jp_stamp(local(moment)),
        "jp_short_range": short_slot_range,
    }


def _split_subject(text: str, name: str) -> tuple[str, str]:
    first, _, body = text.partition("\n")
    if not first.startswith(SUBJECT_PREFIX):
        raise TemplateError([Problem(name, f"an e-mail template must start with a "
                                           f"'{SUBJECT_PREFIX} …' line")])
    return one_line(first[len(SUBJECT_PREFIX):]), body.lstrip("\n")


def _where_in_template(tb: TracebackType | None, templates_dir: Path, name: str) -> str:
    """``file:line`` of the innermost template frame of a rendering error."""
    where = str(templates_dir / name)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _describe(exc: Exception) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"unknown variable: {exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"not allowed in a template: {exc}"
    return f"{type(exc).__name__}: {exc}"
