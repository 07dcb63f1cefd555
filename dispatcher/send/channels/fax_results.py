"""What a fax's result says happened on the line, from HylaFAX's job status or a fax
gateway's result mail (Japanese services write 話中, 応答なし, 電話の可能性あり): shared by
the fax backends and the receipts. Pure.

- ``busy``, ``no-answer``: the line may clear: faxed again per [retry];
- ``voice``: a person or a recorded guidance answered (電話の可能性, ガイダンス): not faxed
  again (it would ring that person again); the contact stays unreached, so the notice's
  escalation and the help desk's list take it up on its other channels;
- ``not-in-service``: the number does not exist: failed, and the number is suppressed
  until the contact is corrected;
- ``other``: whatever else (a kill time, a job removed by hand).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_KINDS = (
    ("not-in-service", r"not in service|unassigned|invalid (number|dial)|no such number|"
                       r"使われておりません|番号.{0,6}(誤り|違い|間違)|存在しない番号|欠番"),
    ("voice", r"voice|human|answering machine|no carrier|without CED|no fax (tone|detected)|"
              r"電話の可能性|音声|ガイダンス|人が応答|留守番"),
    ("busy", r"busy|話中|通話中"),
    ("no-answer", r"no answer|does not answer|not answered|応答なし|応答がありません|"
                  r"呼出.{0,4}応答|too many attempts to (dial|transmit)|no (local )?dial ?tone"),
)
_PATTERNS = [(kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _KINDS]
WRONG_NUMBER = "fax-number"  # the error code of a fax to a number not in service
CODES = {"busy": "fax-busy", "no-answer": "fax-no-answer", "voice": "fax-voice",
         "not-in-service": WRONG_NUMBER, "other": "fax"}


@dataclass(frozen=True)
class FaxResult:
    kind: str  # busy, no-answer, voice, not-in-service, other
    text: str

    @property
    def retried(self) -> bool:
        return self.kind in ("busy", "no-answer")

    @property
    def code(self) -> str:
        return CODES[self.kind]

    @property
    def wrong_number(self) -> bool:
        return self.kind == "not-in-service"


def fax_result(text: str) -> FaxResult:
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return FaxResult(kind, text)
    return FaxResult("other", text)
