"""Whole-notice checks: every template rendered for every contact before anything is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, cast

import markupsafe

from dispatcher.errors import InputError, Problem, TemplateError
from dispatcher.render.fax import require_japanese_font
from dispatcher.render.mail import HARD_LINE_LIMIT, email_head, longest_line
from dispatcher.render.segments import (
    Encoding,
    Segments,
    capacity,
    count_segments,
    is_gsm7,
    ucs2_segments,
    utf16_units,
)
from dispatcher.render.templates import (
    INTERRUPTED,
    TEMPLATE_SUFFIX,
    Message,
    Renderer,
    template_of,
)
from dispatcher.table import (
    Channel,
    Contact,
    Inputs,
    Notice,
    Window,
    in_audience,
    possible_notices,
)


def check_inputs(inputs: Inputs, now: datetime) -> list[Problem]:
    """Every problem rendering would meet: each template for each contact of each broadcast."""
    config = inputs.config
    broadcasts = [w for w in config.windows if w.broadcast]
    audiences = {w.id: in_audience(inputs.contacts, w.audience) for w in broadcasts}
    renderer = Renderer.of(inputs)
    problems = check_rendering(renderer, broadcasts, audiences,
                               config.messages.sms_max_segments, now)
    if any(Channel.FAX in w.channels for w in broadcasts):
        try:
            require_japanese_font()
        except InputError as exc:
            problems.extend(exc.problems)
    return problems


def interrupted_warnings(inputs: Inputs) -> list[str]:
    """A warning for each channel whose interrupted notice's template is missing (a table
    whose templates predate it): a postponement during the work is then written with the
    postponed notice's text, which says nothing of the interruption."""
    renderer = Renderer.of(inputs)
    channels = {c for w in inputs.config.windows if w.broadcast and w.reserves
                for c in w.channels}
    names = [f"{c.value}/{INTERRUPTED}.{TEMPLATE_SUFFIX[c]}" for c in sorted(channels)]
    return [f"{renderer.templates_dir / name} is missing: a postponement after the work "
            f"began (中断) would be written with the postponed notice's text, and "
            f"`postpone --no-move` is refused; copy the shipped one"
            for name in names if not renderer.has(name)]


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
        shapes = Shapes(audiences[window.id])
        for notice in possible_notices(window):
            for channel in notice.channels:
                for problem in check_notice(renderer, notice, shapes, channel, max_segments,
                                            now):
                    problems.setdefault(str(problem), problem)
    return list(problems.values())


def check_notice(renderer: Renderer, notice: Notice, contacts: Iterable[Contact] | Shapes,
                 channel: Channel, max_segments: int, sent_at: datetime) -> Iterable[Problem]:
    """Problems rendering ``notice`` on ``channel`` for ``contacts`` (those with an address),
    as if sent at ``sent_at``: a template error once, with the contact it failed for; an
    SMS too long, or a header too long, for each contact."""
    name = str(renderer.templates_dir / template_of(channel, notice))
    if notice.interrupted and not renderer.has(template_of(channel, notice)):
        # a table whose templates predate it: a postponement is written with the
        # postponed notice's (checked as that one), `postpone --no-move` is refused as it
        # starts (its preflight); `check` warns of both (interrupted_warnings)
        return
    try:
        for group in _shapes(contacts).on(channel):
            first, filler = _shape_template(renderer, notice, group, channel, sent_at)
            yield from _contact_problems(renderer, first, name, max_segments, sent_at)
            for contact in group[1:]:
                if filler is None:  # the template transforms a field: each rendered
                    message = _render(renderer, notice, contact, channel, sent_at)
                    yield from _contact_problems(renderer, message, name, max_segments,
                                                 sent_at)
                elif channel is Channel.SMS:
                    yield from _sms_problems(contact, filler.segments(contact), name,
                                             max_segments)
                elif channel is Channel.EMAIL and _address_worth_a_look(contact):
                    yield from _header_problems(renderer, filler.message(contact), name,
                                                sent_at)
    except ContactTemplateError as exc:
        for problem in exc.error.problems:
            yield Problem(problem.where, f"{problem.what} (rendering for contact {exc.contact})")


class ContactTemplateError(Exception):
    """A template failed for ``contact``."""

    def __init__(self, error: TemplateError, contact: str) -> None:
        super().__init__(str(error))
        self.error, self.contact = error, contact


class Shapes:
    """Contacts grouped by *shape* (which fields are empty, which tags): what can send a
    template down another branch. Grouped once per audience, for all its notices."""

    def __init__(self, contacts: Iterable[Contact]) -> None:
        groups: dict[tuple[object, ...], list[Contact]] = {}
        for contact in contacts:
            groups.setdefault(_shape(contact), []).append(contact)
        self.groups = list(groups.values())

    def on(self, channel: Channel) -> list[list[Contact]]:
        """The groups with an address on ``channel`` (all of a group have one, or none)."""
        return [group for group in self.groups if group[0].address(channel)]


def messages_for(renderer: Renderer, notice: Notice, contacts: Iterable[Contact] | Shapes,
                 channel: Channel, sent_at: datetime,
                 wanted: Callable[[Contact], bool] = lambda _: True) -> Iterator[Message]:
    """The message of each contact with an address on ``channel``, by shape, at the cost
    of a few renderings per shape (see ``_shape_template``). Where the shortcut holds,
    only the ``wanted`` contacts' messages are put together. ContactTemplateError if a
    template fails."""
    for group in _shapes(contacts).on(channel):
        first, filler = _shape_template(renderer, notice, group, channel, sent_at)
        yield first
        for contact in group[1:]:
            if filler is None:
                yield _render(renderer, notice, contact, channel, sent_at)
            elif wanted(contact):
                yield filler.message(contact)


def _shapes(contacts: Iterable[Contact] | Shapes) -> Shapes:
    return contacts if isinstance(contacts, Shapes) else Shapes(contacts)


def _render(renderer: Renderer, notice: Notice, contact: Contact, channel: Channel,
            sent_at: datetime) -> Message:
    try:
        return renderer.render(notice, contact, channel, sent_at)
    except TemplateError as exc:
        raise ContactTemplateError(exc, contact.id) from exc


def _shape_template(renderer: Renderer, notice: Notice, group: list[Contact],
                    channel: Channel, sent_at: datetime) -> tuple[Message, _Filler | None]:
    """The first contact's message, rendered in full, and what puts together the others'.

    The template is rendered once with each field a marker; each contact's text is then
    that text with its own values put in: string replacements, not a template. That is
    exact as long as the template prints the fields as they are, which the first contact's
    message checks; where it does not hold (None), every contact must be rendered."""
    first = _render(renderer, notice, group[0], channel, sent_at)
    if len(group) == 1:
        return first, None
    probe, markers = _probe(group[0])
    try:
        template = renderer.render(notice, probe, channel, sent_at)
    except TemplateError:
        return first, None
    filler = _Filler(template, markers, escape=channel is Channel.FAX)  # fax: HTML
    return first, (filler if filler.message(group[0]) == first else None)


class _Filler:
    """A shape's message with markers for the fields, and each contact's from it."""

    def __init__(self, template: Message, markers: dict[str, str], escape: bool) -> None:
        self.template, self.markers, self.escape = template, markers, escape
        self._sms_length = _SmsLength.of(template.body, markers)

    def message(self, contact: Contact) -> Message:
        template = self.template
        body = self._fill(template.body, contact)
        return replace(template, contact=contact,
                       address=contact.address(template.channel) or "",
                       subject=(self._fill(template.subject, contact)
                                if template.subject is not None else None),
                       body=body,
                       segments=count_segments(body) if template.segments is not None else None)

    def segments(self, contact: Contact) -> Segments:
        """The SMS's segments, from the fields' lengths where that is exact."""
        if self._sms_length is not None:
            return self._sms_length.segments(contact)
        segments = self.message(contact).segments
        assert segments is not None
        return segments

    def _fill(self, text: str, contact: Contact) -> str:
        for field, marker in self.markers.items():
            value = str(getattr(contact, field))
            text = text.replace(marker, str(markupsafe.escape(value)) if self.escape else value)
        return text


@dataclass(frozen=True)
class _SmsLength:
    """An SMS's length in UTF-16 units from its fields' lengths. Exact where the text
    around the fields already needs UCS-2 (any Japanese does): no field can change the
    encoding then, and the length is the text's plus each field's times its uses."""

    units: int
    uses: tuple[tuple[str, int], ...]  # (field, how many times the text prints it)

    @classmethod
    def of(cls, body: str, markers: dict[str, str]) -> _SmsLength | None:
        rest = body
        for marker in markers.values():
            rest = rest.replace(marker, "")
        if is_gsm7(rest):
            return None
        uses = ((field, body.count(marker)) for field, marker in markers.items())
        return cls(utf16_units(rest), tuple((field, times) for field, times in uses if times))

    def segments(self, contact: Contact) -> Segments:
        return ucs2_segments(self.units + sum(times * utf16_units(str(getattr(contact, field)))
                                              for field, times in self.uses))


def _contact_problems(renderer: Renderer, message: Message, name: str, max_segments: int,
                      sent_at: datetime) -> Iterable[Problem]:
    if message.channel is Channel.EMAIL and _address_worth_a_look(message.contact):
        yield from _header_problems(renderer, message, name, sent_at)
    if message.segments is not None:
        yield from _sms_problems(message.contact, message.segments, name, max_segments)


@dataclass(frozen=True)
class SmsTooLong(Problem):
    """An SMS longer than ``max_segments`` allow: how long, to say how much to cut."""

    segments: Segments | None = None
    max_segments: int = 0


def _sms_problems(contact: Contact, segments: Segments, name: str, max_segments: int
                  ) -> Iterable[Problem]:
    if segments.count > max_segments:
        yield SmsTooLong(f"{name}: contact {contact.id} ({contact.merchant})",
                         f"the SMS takes {segments}, more than max_segments = "
                         f"{max_segments}", segments, max_segments)


def summarise_too_long(problems: Iterable[Problem], where: str) -> list[Problem]:
    """``problems`` with every SMS too long folded into one, naming ``where`` (the text
    an operator typed): how many contacts, the longest, the limit and what to cut."""
    too_long = [p for p in problems if isinstance(p, SmsTooLong) and p.segments]
    others = [p for p in problems if p not in too_long]
    if not too_long:
        return others
    worst = max(too_long, key=lambda p: p.segments.units if p.segments else 0)
    assert worst.segments is not None
    limit = capacity(worst.segments.encoding, worst.max_segments)
    unit = "characters" if worst.segments.encoding is Encoding.UCS2 else "GSM-7 septets"
    return [Problem(where, f"too long for an SMS of {worst.max_segments} segments "
                           f"([channels.sms] max_segments) for {len(too_long):,} contact(s): "
                           f"the longest ({worst.where.rpartition(': ')[2]}) is "
                           f"{worst.segments.units} {unit}, the limit {limit}: shorten it "
                           f"by {worst.segments.units - limit} {unit}"), *others]


def _address_worth_a_look(contact: Contact) -> bool:
    """Folding splits names and subjects; only an address this long could bring a header
    line near the 998 octets that RFC 5322 allows."""
    return len(contact.email or "") > 900


_TEXT_FIELDS = tuple(f.name for f in fields(Contact)
                     if f.name not in ("tags", "source", "extra_fields"))


def _shape(contact: Contact) -> tuple[object, ...]:
    """What can send a template down another branch: which fields are empty, the tags,
    and the extra columns' values themselves (a template may test ``contact.extra.plan ==
    "gold"``; they are not markers, so a table with such columns renders more often)."""
    return (*(not getattr(contact, f) for f in _TEXT_FIELDS), contact.tags,
            contact.extra_fields)


def _probe(contact: Contact) -> tuple[Contact, dict[str, str]]:
    """``contact`` with each non-empty field a marker (private-use characters no text
    holds), and the markers by field."""
    markers = {f: f"\ue000{i}\ue001" for i, f in enumerate(_TEXT_FIELDS)
               if getattr(contact, f)}
    return replace(contact, **cast(dict[str, Any], markers)), markers


def _header_problems(renderer: Renderer, message: Message, name: str, sent_at: datetime
                     ) -> Iterable[Problem]:
    """A header line past RFC 5322's hard limit of 998 octets (folding splits names and
    subjects, never an address): refused before anything is sent."""
    config = renderer.config
    head = email_head(message, config.messages.mail_from, sent_at,
                      "<x@example.invalid>", config.helpdesk.reply_to)
    octets = longest_line(head)
    if octets > HARD_LINE_LIMIT:
        contact = message.contact
        yield Problem(f"{name}: contact {contact.id} ({contact.merchant})",
                      f"a header line of its e-mail would be {octets:,} octets, past the "
                      f"{HARD_LINE_LIMIT} that RFC 5322 allows; shorten its address")
