"""Whole-notice checks: every template rendered for every contact before anything is sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from dispatcher.errors import InputError, Problem, TemplateError
from dispatcher.render.fax import require_japanese_font
from dispatcher.render.mail import HARD_LINE_LIMIT, email_head, longest_line
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
    as if sent at ``sent_at``."""
    name = str(renderer.templates_dir / template_name(channel, notice.phase))
    for contact in contacts:
        if not contact.address(channel):
            continue
        try:
            message = renderer.render(notice, contact, channel, sent_at)
        except TemplateError as exc:
            for problem in exc.problems:
                yield Problem(problem.where, f"{problem.what} (rendering for contact {contact.id})")
            return
        if channel is Channel.EMAIL:
            yield from _header_problems(renderer, message, name, sent_at)
        if message.segments and message.segments.count > max_segments:
            yield Problem(f"{name}: contact {contact.id} ({contact.merchant})",
                          f"the SMS takes {message.segments}, more than max_segments = "
                          f"{max_segments}")


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
