"""Whole-notice checks: every template rendered for every contact before anything is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields, replace
from datetime import datetime
from typing import Any, cast

import markupsafe

from dispatcher.errors import InputError, Problem, TemplateError
from dispatcher.render.fax import require_japanese_font
from dispatcher.render.mail import HARD_LINE_LIMIT, email_head, longest_line
from dispatcher.render.segments import count_segments
from dispatcher.render.templates import Message, Renderer, template_name
from dispatcher.table import (
    Channel,
    Contact,
    Inputs,
    Notice,
    Phase,
    Window,
    build_notice,
    in_audience,
    notice_times,
)


def check_inputs(inputs: Inputs, now: datetime) -> list[Problem]:
    """Every problem rendering would meet: each template for each contact of each broadcast."""
    config = inputs.config
    broadcasts = [w for w in config.windows if w.broadcast]
    audiences = {w.id: in_audience(inputs.contacts, w.audience) for w in broadcasts}
    renderer = Renderer(config.settings.templates_dir, config)
    problems = check_rendering(renderer, broadcasts, audiences,
                               config.channels[Channel.SMS].max_segments, now)
    if any(Channel.FAX in w.channels for w in broadcasts):
        try:
            require_japanese_font()
        except InputError as exc:
            problems.extend(exc.problems)
    return problems


def notices_of(window: Window) -> list[Notice]:
    """The notices a window can send, in its planned slot: those of its timeline (the
    advance notice, each reminder, start and end), and postponed if it has a reserve slot."""
    slot = window.planned
    notices = [build_notice(window, slot, due.phase, lead=due.lead)
               for due in notice_times(window, slot)]
    postponed = [build_notice(window, slot, Phase.POSTPONED)] if window.reserves else []
    return notices + postponed


def check_rendering(
    renderer: Renderer,
    windows: Iterable[Window],
    audiences: Mapping[str, list[Contact]],
    max_segments: int,
    now: datetime,
) -> list[Problem]:
    """Render every notice of every window for every contact of its audience (by window id).

    A template error is reported once, with the first contact it failed for; an SMS longer
    than ``max_segments`` is reported for each contact.
    """
    problems: dict[str, Problem] = {}
    for window in windows:
        for notice in notices_of(window):
            for channel in notice.channels:
                for problem in check_notice(renderer, notice, audiences[window.id], channel,
                                            max_segments, now):
                    problems.setdefault(str(problem), problem)
    return list(problems.values())


def check_notice(renderer: Renderer, notice: Notice, contacts: Iterable[Contact],
                 channel: Channel, max_segments: int, sent_at: datetime) -> Iterable[Problem]:
    """Problems rendering ``notice`` on ``channel`` for ``contacts`` (those with an address),
    as if sent at ``sent_at``: a template error once, with the contact it failed for; an
    SMS too long, or a header too long, for each contact."""
    name = str(renderer.templates_dir / template_name(channel, notice.phase))
    try:
        for message in messages_for(renderer, notice, contacts, channel, sent_at,
                                    _CHECKED_PER_CONTACT[channel]):
            yield from _contact_problems(renderer, message, name, max_segments, sent_at)
    except ContactTemplateError as exc:
        for problem in exc.error.problems:
            yield Problem(problem.where, f"{problem.what} (rendering for contact {exc.contact})")


class ContactTemplateError(Exception):
    """A template failed for ``contact``."""

    def __init__(self, error: TemplateError, contact: str) -> None:
        super().__init__(str(error))
        self.error, self.contact = error, contact


def messages_for(renderer: Renderer, notice: Notice, contacts: Iterable[Contact],
                 channel: Channel, sent_at: datetime,
                 wanted: Callable[[Contact], bool] = lambda _: True) -> Iterator[Message]:
    """The message of each contact with an address on ``channel``, grouped by *shape*
    (which fields are empty, which tags), at the cost of a few renderings per shape.

    The template is rendered once per shape with each field a marker; each contact's text
    is then that text with its own values put in: string replacements, not a template.
    That is exact as long as the template prints the fields as they are, which is checked
    on the first contact of each shape (rendered in full); where it does not hold, every
    contact is rendered. Where it holds, only the ``wanted`` contacts' messages are put
    together. ContactTemplateError if a template fails."""
    shapes: dict[tuple[object, ...], list[Contact]] = {}
    for contact in contacts:
        if contact.address(channel):
            shapes.setdefault(_shape(contact), []).append(contact)
    for group in shapes.values():
        yield from _group_messages(renderer, notice, group, channel, sent_at, wanted)


def _render(renderer: Renderer, notice: Notice, contact: Contact, channel: Channel,
            sent_at: datetime) -> Message:
    try:
        return renderer.render(notice, contact, channel, sent_at)
    except TemplateError as exc:
        raise ContactTemplateError(exc, contact.id) from exc


def _group_messages(renderer: Renderer, notice: Notice, group: list[Contact],
                    channel: Channel, sent_at: datetime, wanted: Callable[[Contact], bool]
                    ) -> Iterator[Message]:
    first = _render(renderer, notice, group[0], channel, sent_at)
    yield first
    if len(group) == 1:
        return
    probe, markers = _probe(group[0])
    try:
        template: Message | None = renderer.render(notice, probe, channel, sent_at)
    except TemplateError:
        template = None
    escape = channel is Channel.FAX  # the fax page is HTML: autoescaped
    if template is None or _filled(template, group[0], markers, escape) != first:
        for contact in group[1:]:  # the template transforms a field: no shortcut
            yield _render(renderer, notice, contact, channel, sent_at)
        return
    for contact in group[1:]:
        if wanted(contact):
            yield _filled(template, contact, markers, escape)


def _contact_problems(renderer: Renderer, message: Message, name: str, max_segments: int,
                      sent_at: datetime) -> Iterable[Problem]:
    contact = message.contact
    if message.channel is Channel.EMAIL and len(message.address) > _ADDRESS_WORTH_A_LOOK:
        yield from _header_problems(renderer, message, name, sent_at)
    if message.segments and message.segments.count > max_segments:
        yield Problem(f"{name}: contact {contact.id} ({contact.merchant})",
                      f"the SMS takes {message.segments}, more than max_segments = "
                      f"{max_segments}")


# Folding splits names and subjects; only an address this long could bring a header line
# near the 998 octets that RFC 5322 allows.
_ADDRESS_WORTH_A_LOOK = 900
# Per contact, once a template prints the fields as they are: an SMS's length; an e-mail's
# header, only where a long address could pass 998 octets; nothing on a fax page.
_CHECKED_PER_CONTACT: Mapping[Channel, Callable[[Contact], bool]] = {
    Channel.SMS: lambda _: True,
    Channel.EMAIL: lambda c: len(c.email or "") > _ADDRESS_WORTH_A_LOOK,
    Channel.FAX: lambda _: False,
}
_TEXT_FIELDS = tuple(f.name for f in fields(Contact) if f.name not in ("tags", "source"))


def _shape(contact: Contact) -> tuple[object, ...]:
    """What can send a template down another branch: which fields are empty, the tags."""
    return (*(not getattr(contact, f) for f in _TEXT_FIELDS), contact.tags)


def _probe(contact: Contact) -> tuple[Contact, dict[str, str]]:
    """``contact`` with each non-empty field a marker (private-use characters no text
    holds), and the markers by field."""
    markers = {f: f"\ue000{i}\ue001" for i, f in enumerate(_TEXT_FIELDS)
               if getattr(contact, f)}
    return replace(contact, **cast(dict[str, Any], markers)), markers


def _filled(template: Message, contact: Contact, markers: dict[str, str], escape: bool
            ) -> Message:
    """``template``'s texts with ``contact``'s values in place of the markers."""
    def fill(text: str) -> str:
        for field, marker in markers.items():
            value = str(getattr(contact, field))
            text = text.replace(marker, str(markupsafe.escape(value)) if escape else value)
        return text

    body = fill(template.body)
    return replace(template, contact=contact, address=contact.address(template.channel) or "",
                   subject=fill(template.subject) if template.subject is not None else None,
                   body=body,
                   segments=count_segments(body) if template.segments is not None else None)


def _header_problems(renderer: Renderer, message: Message, name: str, sent_at: datetime
                     ) -> Iterable[Problem]:
    """A header line past RFC 5322's hard limit of 998 octets (folding splits names and
    subjects, never an address): refused before anything is sent."""
    config = renderer.config
    head = email_head(message, config.channels[Channel.EMAIL].from_address, sent_at,
                      "<x@example.invalid>", config.helpdesk.reply_to)
    octets = longest_line(head)
    if octets > HARD_LINE_LIMIT:
        contact = message.contact
        yield Problem(f"{name}: contact {contact.id} ({contact.merchant})",
                      f"a header line of its e-mail would be {octets:,} octets, past the "
                      f"{HARD_LINE_LIMIT} that RFC 5322 allows; shorten its address")
