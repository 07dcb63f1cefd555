"""A small valid config and the broken variants of it that tests feed to the loader."""

from __future__ import annotations

from dataclasses import dataclass

MINIMAL = """\
[dispatcher]
timezone = "Asia/Tokyo"

[sender]
organisation = "テスト株式会社"
service = "J-Mups"

[helpdesk]
name = "J-Mups ヘルプデスク"
phone = "0120-220-766"
hours = "365 日 24 時間"

[[windows]]
number = 3
id = "w3"
title = "電子マネー メンテナンス"
start = 2021-07-19T01:00:00
end = 2021-07-19T02:00:00
impact = "約30分間のサービス停止"
notify = "broadcast"
channels = ["fax"]
  [[windows.reserve]]
  start = 2021-08-23T01:00:00
  end = 2021-08-23T02:00:00
"""

SECOND_WINDOW = """
[[windows]]
number = 4
id = "w4"
title = "二件目"
start = 2021-07-19T04:00:00
end = 2021-07-19T07:30:00
impact = "通信瞬断"
notify = "none"
"""


@dataclass(frozen=True)
class Broken:
    """``MINIMAL`` with ``old`` replaced by ``new``; the error must name ``where`` and ``what``.

    ``line_of`` is a piece of the broken text whose line the message must give.
    """

    name: str
    old: str
    new: str
    where: str
    what: str
    line_of: str | None = None

    def text(self) -> str:
        assert self.old in MINIMAL or self.old == "", self.name
        return MINIMAL + self.new if self.old == "" else MINIMAL.replace(self.old, self.new, 1)

    def line(self) -> int | None:
        if self.line_of is None:
            return None
        text = self.text()
        return text[: text.index(self.line_of)].count("\n") + 1


START = "start = 2021-07-19T01:00:00"
END = "end = 2021-07-19T02:00:00"
RESERVE = "  start = 2021-08-23T01:00:00\n  end = 2021-08-23T02:00:00"

BROKEN = [
    Broken("toml syntax", 'title = "電子マネー メンテナンス"', 'title = "unterminated',
           "", "TOML syntax", 'title = "unterminated'),
    Broken("end before start", END, "end = 2021-07-19T00:30:00",
           "windows[1].end", "must be after start", "end = 2021-07-19T00:30:00"),
    Broken("end equals start", END, "end = 2021-07-19T01:00:00",
           "windows[1].end", "must be after start", "end = 2021-07-19T01:00:00"),
    Broken("reserve overlaps planned", RESERVE,
           "  start = 2021-07-19T01:30:00\n  end = 2021-07-19T03:00:00",
           "windows[1].reserve[1].start", "overlaps the planned slot",
           "  start = 2021-07-19T01:30:00"),
    Broken("reserve before planned", RESERVE,
           "  start = 2021-07-01T01:00:00\n  end = 2021-07-01T02:00:00",
           "windows[1].reserve[1].start", "must start after planned ends",
           "  start = 2021-07-01T01:00:00"),
    Broken("reserve end before its start", RESERVE,
           "  start = 2021-08-23T01:00:00\n  end = 2021-08-22T02:00:00",
           "windows[1].reserve[1].end", "must be after start", "  end = 2021-08-22T02:00:00"),
    Broken("missing end", END + "\n", "", "windows[1].end", "missing", "[[windows]]"),
    Broken("a website that is a script", 'service = "J-Mups"',
           'service = "J-Mups"\nwebsite = "javascript:alert(1)"', "sender.website",
           "is not an http(s) URL", "website = "),
    Broken("a proxy that is a name", "", '\n[http]\ntrusted_proxies = ["proxy.local"]\n',
           "http.trusted_proxies", "is not an IP address or network", "trusted_proxies"),
    Broken("missing title", 'title = "電子マネー メンテナンス"\n', "",
           "windows[1].title", "missing", "[[windows]]"),
    Broken("unknown window key", "notify = ", 'colour = "red"\nnotify = ',
           "windows[1].colour", "unknown key", "colour"),
    Broken("unknown top-level table", "", "\n[extras]\nanswer = 42\n", "extras", "unknown key"),
    Broken("unknown dispatcher key", 'timezone = "Asia/Tokyo"',
           'timezone = "Asia/Tokyo"\ntimezon = "UTC"', "dispatcher.timezon", "unknown key",
           "timezon ="),
    Broken("unknown time zone", '"Asia/Tokyo"', '"Asia/Tokio"', "dispatcher.timezone",
           "unknown time zone", "timezone"),
    Broken("notify not an allowed word", 'notify = "broadcast"', 'notify = "fax-only"',
           "windows[1].notify", "must be one of 'broadcast', 'none'", "notify"),
    Broken("channel that does not exist", 'channels = ["fax"]', 'channels = ["fax", "telex"]',
           "windows[1].channels", "no channel named 'telex'", "channels"),
    Broken("broadcast with empty channels", 'channels = ["fax"]', "channels = []",
           "windows[1].channels", "needs at least one channel", "channels"),
    Broken("broadcast without channels key", 'channels = ["fax"]\n', "",
           "windows[1].channels", "needs at least one channel", "[[windows]]"),
    Broken("channel listed twice", 'channels = ["fax"]', 'channels = ["fax", "fax"]',
           "windows[1].channels", "more than once", "channels"),
    Broken("start written as a string", START, 'start = "2021-07-19 01:00"',
           "windows[1].start", "without quotes", 'start = "2021'),
    Broken("start without a time of day", START, "start = 2021-07-19",
           "windows[1].start", "needs a time of day", "start = 2021-07-19\n"),
    Broken("number not an integer", "number = 3", 'number = "3"',
           "windows[1].number", "must be a whole number", "number"),
    Broken("number zero", "number = 3", "number = 0", "windows[1].number", "at least 1",
           "number"),
    Broken("id all digits", 'id = "w3"', 'id = "33"', "windows[1].id", "must not be all digits",
           "id ="),
    Broken("id with spaces", 'id = "w3"', 'id = "w 3"', "windows[1].id", "may hold only", "id ="),
    Broken("duplicate number", "", SECOND_WINDOW.replace("number = 4", "number = 3"),
           "windows[2].number", "already used by windows[1]", "number = 3\nid = \"w4\""),
    Broken("duplicate id", "", SECOND_WINDOW.replace('id = "w4"', 'id = "w3"'),
           "windows[2].id", "already used by windows[1]", 'id = "w3"\ntitle = "二件目"'),
    Broken("audience not a list", 'channels = ["fax"]', 'channels = ["fax"]\naudience = "emoney"',
           "windows[1].audience", "must be an array of strings", "audience"),
    Broken("missing helpdesk", '[helpdesk]\nname = "J-Mups ヘルプデスク"\nphone = "0120-220-766"\n'
           'hours = "365 日 24 時間"\n', "", "helpdesk", "missing table [helpdesk]"),
    Broken("helpdesk without phone", 'phone = "0120-220-766"\n', "", "helpdesk.phone",
           "missing", "[helpdesk]"),
    Broken("negative catch-up", 'timezone = "Asia/Tokyo"',
           'timezone = "Asia/Tokyo"\ncatch_up_minutes = -5', "dispatcher.catch_up_minutes",
           "at least 0", "catch_up_minutes"),
    Broken("unknown channel table", "", '\n[channels.telex]\nbackend = "outbox"\n',
           "channels.telex", "no channel named 'telex'", "[channels.telex]"),
    Broken("unknown backend", "", '\n[channels.sms]\nbackend = "carrier-pigeon"\n',
           "channels.sms.backend", "must be one of", "backend"),
    Broken("sms-only key on email", "", "\n[channels.email]\nmax_segments = 3\n",
           "channels.email.max_segments", "unknown key", "max_segments"),
    Broken("smtp key with the outbox backend", "", "\n[channels.email]\nport = 587\n",
           "channels.email.port", "a key of the smtp backend, and this channel's backend is "
           "outbox", "port"),
    Broken("twilio sender with the outbox backend", "",
           '\n[channels.sms]\nfrom = "+815012345678"\n', "channels.sms.from",
           "a key of the twilio backend", "from ="),
    Broken("hylafax key with the email-gateway backend", "",
           '\n[channels.fax]\nbackend = "email-gateway"\n'
           'gateway_address = "{number}@fax.example.jp"\nmodem = "ttyIAX0"\n',
           "channels.fax.modem", "a key of the hylafax backend, and this channel's backend "
           "is email-gateway", "modem"),
    Broken("no windows at all", MINIMAL[MINIMAL.index("[[windows]]"):], "",
           "windows", "the table has no windows"),
    Broken("sender fax in full-width digits", 'service = "J-Mups"',
           'service = "J-Mups"\nfax = "０３-５５５５-０１００"', "sender.fax",
           "must be a telephone number", "fax = "),
    Broken("twilio without a sender", "", '\n[channels.sms]\nbackend = "twilio"\n',
           "channels.sms.from", "needs from", "[channels.sms]"),
    Broken("sms sender not E.164", "",
           '\n[channels.sms]\nbackend = "twilio"\nfrom = "050-1234-5678"\n',
           "channels.sms.from", "E.164", "from ="),
    Broken("gateway without address", "", '\n[channels.fax]\nbackend = "email-gateway"\n',
           "channels.fax.gateway_address", "needs gateway_address", "[channels.fax]"),
    Broken("gateway address without number", "",
           '\n[channels.fax]\nbackend = "email-gateway"\ngateway_address = "fax@example.jp"\n',
           "channels.fax.gateway_address", "must contain {number}", "gateway_address"),
    Broken("gateway address with an unknown field", "",
           '\n[channels.fax]\nbackend = "email-gateway"\n'
           'gateway_address = "{number}@{fax}.example.jp"\n',
           "channels.fax.gateway_address", "unknown field {fax}", "gateway_address"),
    Broken("gateway address with a stray brace", "",
           '\n[channels.fax]\nbackend = "email-gateway"\n'
           'gateway_address = "{number}@fax}.example.jp"\n',
           "channels.fax.gateway_address", "encountered in format string", "gateway_address"),
    Broken("an alert to a fixed line", "", '\n[alerts]\nsms = ["03-1234-5678"]\n',
           "alerts.sms", "not a mobile number", "sms ="),
    Broken("an alert to a broken address", "", '\n[alerts]\nemail = ["night-desk@"]\n',
           "alerts.email", "night-desk@", "email ="),
    Broken("a confirmation link with no server to open it", "",
           '\n[confirm]\nphases = ["start"]\n', "confirm.phases", "[http] listen", "phases ="),
    Broken("a phase to confirm that does not exist", "",
           '\n[confirm]\nphases = ["begin"]\n', "confirm.phases", "no phase named 'begin'",
           "phases ="),
    Broken("a window confirming an unknown phase", 'channels = ["fax"]',
           'channels = ["fax"]\nconfirm = ["finish"]', "windows[1].confirm",
           "no phase named 'finish'", "confirm ="),
    Broken("negative rate", "", "\n[channels.email]\nrate_per_second = -1\n",
           "channels.email.rate_per_second", "more than 0", "rate_per_second"),
    Broken("port out of range", "", '\n[channels.email]\nbackend = "smtp"\nport = 70000\n',
           "channels.email.port", "TCP port", "port"),
    Broken("bad security word", "",
           '\n[channels.email]\nbackend = "smtp"\nsecurity = "ssl"\n',
           "channels.email.security", "must be one of", "security"),
    Broken("login without password", "",
           '\n[channels.email]\nbackend = "smtp"\nusername_env = "SMTP_USER"\n',
           "channels.email.password_env", "needed with username_env", "[channels.email]"),
    Broken("bad sender mailbox", "", '\n[channels.email]\nfrom = "not an address"\n',
           "channels.email.from", "is not a mailbox", "from ="),
    Broken("unknown retry key", "", "\n[retry]\nbackoff = 2\n", "retry.backoff",
           "unknown key", "backoff"),
    Broken("retry ceiling below start", "",
           "\n[retry]\ninitial_delay_seconds = 10\nmax_delay_seconds = 1\n",
           "retry.max_delay_seconds", "must not be less than", "max_delay_seconds"),
    Broken("retry attempts zero", "", "\n[retry]\nmax_attempts = 0\n",
           "retry.max_attempts", "at least 1", "max_attempts"),
    Broken("missing CA file", "",
           '\n[channels.email]\nbackend = "smtp"\nca_file = "nowhere.pem"\n',
           "channels.email.ca_file", "no such file", "ca_file"),
    Broken("http listen without a port", "", '\n[http]\nlisten = "127.0.0.1"\n',
           "http.listen", "must be host:port", "listen"),
    Broken("public url without listen", "",
           '\n[http]\npublic_url = "https://d.example.jp"\n', "http.public_url",
           "needs listen", "public_url"),
    Broken("reminder lead without a unit", "", '\n[reminders]\nsms = ["1 hour"]\n',
           "reminders.sms", "is not a lead time", "sms"),
    Broken("reminders for an unknown channel", "", '\n[reminders]\npager = ["1h"]\n',
           "reminders.pager", "unknown key", "pager"),
    Broken("negative advance notice", "[dispatcher]\n",
           "[dispatcher]\nannounce_days_before = -1\n", "dispatcher.announce_days_before",
           "must be 0 (none) or more", "announce_days_before"),
    Broken("publish base url that is not a URL", "",
           '\n[publish]\nbase_url = "example.jp/maintenance"\n', "publish.base_url",
           "is not an http(s) URL", "base_url"),
    Broken("publish refresh of zero minutes", "", '\n[publish]\nrefresh_minutes = 0\n',
           "publish.refresh_minutes", "must be at least 1", "refresh_minutes"),
    Broken("bounce address without a token", "",
           '\n[receipts.email]\nbounce_address = "bounces@example.jp"\n',
           "receipts.email.bounce_address", "must hold {token}", "bounce_address"),
    Broken("imap url of another scheme", "",
           '\n[receipts.email]\nimap_url = "pop3://mail.example.jp"\n',
           "receipts.email.imap_url", "is not an IMAP URL", "imap_url"),
    Broken("imap url in clear", "",
           '\n[receipts.email]\nimap_url = "imap://mail.example.jp/INBOX"\n',
           "receipts.email.imap_url", "would send the mailbox's login in clear", "imap_url"),
    Broken("old bounce key setting", "",
           '\n[receipts.email]\ntoken_key_env = "DISPATCHER_RECEIPT_KEY"\n',
           "receipts.email.token_key_env", "[receipts] secret_file", "token_key_env"),
    Broken("old secret days of zero", "", '\n[receipts]\nold_secret_days = 0\n',
           "receipts.old_secret_days", "must be", "old_secret_days"),
    Broken("sms code listed twice", "",
           '\n[receipts.sms]\nretried_codes = [30003]\nfinal_codes = [30003]\n',
           "receipts.sms.final_codes", "also listed in retried_codes", "final_codes"),
    Broken("sms code not digits", "", '\n[receipts.sms]\nretried_codes = ["3000x"]\n',
           "receipts.sms.retried_codes", "is not a Twilio error code", "retried_codes"),
    Broken("gateway pattern not a regex", "",
           '\n[receipts.fax_gateway]\nfailed_pattern = "(送信失敗"\n',
           "receipts.fax_gateway.failed_pattern", "is not a regular expression",
           "failed_pattern"),
    Broken("grace not a number", "", '\n[receipts]\ngrace_minutes = "soon"\n',
           "receipts.grace_minutes", "must be", "grace_minutes"),
]
