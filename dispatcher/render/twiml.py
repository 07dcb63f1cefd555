"""A voice call's words (``templates/voice/*.txt.j2``) and the TwiML that says them, built
with the twilio SDK's own ``VoiceResponse``. Pure.

To a person the message is said twice, inside a ``<Gather numDigits="1">`` that takes the
1 a notice that asks to confirm requests, and then the closing; to an answering machine
(``AnsweredBy`` ``machine_*``, from ``MachineDetection=DetectMessageEnd``) once, with the
closing that gives the help desk's number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from twilio.twiml.voice_response import Gather, VoiceResponse

from dispatcher.errors import Problem, TemplateError

LANGUAGE = "ja-JP"
GATHER_SECONDS = 6  # how long after the words a key press is still taken
PART_MARKER = re.compile(r"\[(message|confirm|machine|thanks)\]")


def without_markers(value: object) -> object:
    """A value a template prints, with any part marker in it made text (full-width
    brackets): an update's words or a merchant's name saying ``[confirm]`` never
    restructures a call. Only a template's own text makes its parts."""
    if isinstance(value, str) and PART_MARKER.search(value):
        return type(value)(PART_MARKER.sub(r"［\1］", value))
    return value


@dataclass(frozen=True)
class Script:
    """What a call says: the message, the request to press 1 (None: the notice does not
    ask to confirm), the closing, and what it says once 1 was pressed."""

    message: str
    confirm: str | None
    closing: str
    thanks: str | None = None


def parse_script(text: str, name: str) -> Script:
    """The parts of a rendered voice template, each after its marker; TemplateError
    naming the template if [message] or [machine] is missing or empty."""
    pieces = PART_MARKER.split(text)
    parts = {pieces[i]: " ".join(pieces[i + 1].split()) for i in range(1, len(pieces) - 1, 2)}
    missing = [p for p in ("message", "machine") if not parts.get(p)]
    if missing:
        raise TemplateError([Problem(name, "a voice template needs a [message] and a "
                                           f"[machine] part, each with words; missing: "
                                           f"{', '.join(missing)}")])
    return Script(parts["message"], parts.get("confirm") or None, parts["machine"],
                  parts.get("thanks") or None)


def call_twiml(script: Script, voice: str, gather_url: str | None,
               machine: bool = False) -> str:
    """The TwiML of the call: for a person (``machine`` False) or an answering machine."""
    response = VoiceResponse()
    if machine:
        _say(response, script.message, voice)
        _say(response, script.closing, voice)
        response.hangup()
        return str(response.to_xml())
    gather = Gather(num_digits=1, timeout=GATHER_SECONDS, method="POST",
                    **({"action": gather_url} if gather_url else {}))
    for repeat in (False, True):
        _say(gather, f"{'繰り返します。' if repeat else ''}{script.message}", voice)
        if script.confirm:
            _say(gather, script.confirm, voice)
    response.append(gather)
    _say(response, script.closing, voice)
    response.hangup()
    return str(response.to_xml())


def after_key_twiml(script: Script, voice: str, confirmed: bool) -> str:
    """What the call says once the contact pressed a key: thanks if it confirmed."""
    response = VoiceResponse()
    if confirmed and script.thanks:
        _say(response, script.thanks, voice)
    response.hangup()
    return str(response.to_xml())


def hang_up_twiml() -> str:
    """A call with nothing to say (its notice has left the table): it ends."""
    response = VoiceResponse()
    response.hangup()
    return str(response.to_xml())


def spoken_text(script: Script) -> str:
    """The words as a person reads them in a preview: each part on its own line."""
    return "\n".join(p for p in (script.message, script.confirm, script.closing) if p)


def _say(into: VoiceResponse | Gather, words: str, voice: str) -> None:
    into.say(words, language=LANGUAGE, voice=voice)
