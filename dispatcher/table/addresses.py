"""Addresses as the contacts and the config write them, checked: phone numbers into E.164
(a Japanese number may be written nationally; an SMS number must be a mobile one) and
e-mail addresses by their syntax. Pure functions."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import phonenumbers
from email_validator import EmailNotValidError, validate_email

DEFAULT_REGION = "JP"
Fail = Callable[[str, str], None]  # (column, reason)
_SMS_TYPES = {phonenumbers.PhoneNumberType.MOBILE,
              phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def checked_phone(value: str, column: str, fail: Fail) -> str | None:
    if not value:
        return None
    try:
        return phone_number(value, mobile=column == "sms")
    except ValueError as exc:
        fail(column, str(exc))
        return None


def phone_number(value: str, mobile: bool) -> str:
    """``value`` as E.164 (a Japanese number may be written nationally), or ValueError; a
    number for SMS must be a mobile one."""
    try:
        number = phonenumbers.parse(unicodedata.normalize("NFKC", value), DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid phone number")
    if mobile and phonenumbers.number_type(number) not in _SMS_TYPES:
        raise ValueError(f"{value!r} is not a mobile number, so it cannot receive SMS")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def checked_email(value: str, fail: Fail) -> str | None:
    if not value:
        return None
    try:
        return validate_email(value, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError as exc:
        fail("email", f"{value!r}: {exc}")
        return None
