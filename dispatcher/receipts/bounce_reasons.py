"""Why a recipient failed, in Sisimai's words, and whether its address is dead: only a
mailbox that does not exist (``userunknown``), a domain that does not (``hostunknown``),
an address that moved (``hasmoved``) or a domain that takes no mail (``notaccept``), each
with a permanent (5.x.x) failure. A full mailbox, a filter, a block or a policy is not a
dead address: suppressing it would drop a merchant who is there. Pure: text in."""

from __future__ import annotations

import re

DEAD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})

# What the mail system says, most telling first; a soft reason named in the same words
# wins over a dead one ("mailbox full" beside "5.1.1").
_SOFT = [
    ("rejected", r"sender (address )?(rejected|refused|denied|verify failed)|"
                 r"sender rejected|5\.1\.[78]\b"),
    ("mailererror", r"x-unix;|procmail|mailer error|command died|pipe to"),
    ("mailboxfull", r"mailbox (is )?full|over ?quota|quota (exceeded|full)|exceeded (the )?"
                    r"(storage|quota)|insufficient (disk|storage)|mail ?box (has )?exceeded|"
                    r"not enough (disk )?(space|storage)|disk full|full mailbox"),
    ("suspend", r"suspended|account (is |has been )?disabled|mailbox (is )?disabled|"
                r"inactive (user|account)|account (is )?(locked|inactive|expired)|"
                r"deactivated|temporarily (disabled|unavailable)"),
    ("filtered", r"filtered|rejected by (the )?(recipient|user)|refused by recipient|"
                 r"rcp-p[2-4]\b|"
                 r"not authorized to (send|receive)|does not accept mail from"),
    ("blocked", r"blocked|open relay|black ?list|block ?list|\brbl\b|spamhaus|dnsbl|"
                r"listed (in|at|on)|reputation|client host .* rejected|denied by policy|"
                r"access denied"),
    ("spamdetected", r"\bspam\b|junk|bulk mail|unsolicited"),
    ("policyviolation", r"policy|prohibited|not (allowed|permitted)|\bspf\b|\bdkim\b|"
                        r"\bdmarc\b|authentication|relay(ing)? (denied|not permitted)|"
                        r"unable to relay|ptr record|reverse (dns|lookup)"),
    ("toomanyconn", r"too many|rate limit|try (again )?later|temporar|throttl"),
    ("mesgtoobig", r"too (large|big)|size (limit|exceeds)|message size"),
    ("contenterror", r"virus|content (rejected|filter)|attachment"),
]
_DEAD = [
    ("hasmoved", r"has (been )?moved|has been replaced by|no longer (at|with)"),
    ("notaccept", r"does not accept (e-?)?mail|null mx|accepts no mail|no mx|"
                  r"couldn't find a mail exchanger"),
    ("hostunknown", r"host (or domain name )?(not found|unknown)|unknown host|"
                    r"domain (does not exist|not found|unknown)|no such domain|"
                    r"name or service not known|unrout(e)?able (address|domain)|"
                    r"recipient domain must exist|domain name not found|"
                    r"unknown domain|host unreachable|nxdomain"),
    ("userunknown", r"user(name)? (is )?unknown|unknown (user|recipient|mailbox|address|"
                    r"local[- ]part)|no such (user|mailbox|recipient|address|account|person|"
                    r"local user)|(user|recipient|mailbox|address|account) "
                    r"(does not|doesn't|did not) exist|(user|recipient|mailbox|address) "
                    r"(not found|not exist|invalid)|invalid (recipient|mailbox|address|user)|"
                    r"not a (valid|known) (user|mailbox|recipient)|is not a valid mailbox|"
                    r"mailbox (is )?unavailable|mailbox not (found|present)|"
                    r"no mailbox|bad (destination )?(mailbox|address)|"
                    r"no longer (valid|in use|accepts mail)|recipient no longer|"
                    r"could not be found|destination addresses were unknown|"
                    r"unknown or illegal alias|not listed in|invalid address|"
                    r"account that you tried to reach does not exist|"
                    r"there is no one at this address|no account by that name|"
                    r"user not (found|exist|known|active)|utilisateur inconnu|"
                    r"存在しない|宛先不明|ユーザ.{0,4}不明|アカウント.{0,6}(存在|無効)"),
]
_SOFT_RE = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _SOFT]
_DEAD_RE = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _DEAD]
# the enhanced status codes that say the address itself is wrong
_DEAD_STATUS = {"5.1.1": "userunknown", "5.1.0": "userunknown", "5.1.3": "userunknown",
                "5.1.2": "hostunknown", "5.1.6": "hasmoved", "5.1.10": "notaccept"}
_SOFT_STATUS = {"5.2.2": "mailboxfull", "4.2.2": "mailboxfull", "5.2.1": "suspend",
                "5.7.1": "policyviolation", "5.3.4": "mesgtoobig", "5.2.3": "mesgtoobig"}


def reason_of(status: str | None, *texts: str) -> str:
    """The reason in Sisimai's words: the mail system's own words about this recipient
    first (each of ``texts`` in turn: its diagnostic, then the report's words near it),
    then the status code; ``undefined`` when none tells."""
    for text in texts:
        named = _named_reason(text)
        if named is not None:
            return named
    if status in _DEAD_STATUS:
        return _DEAD_STATUS[status]
    return _SOFT_STATUS.get(status or "", "undefined")


def _named_reason(text: str) -> str | None:
    for name, pattern in (*_SOFT_RE, *_DEAD_RE):
        if pattern.search(text):
            return name
    return None


# At which step of the SMTP dialogue the mail system refused: at the recipient (RCPT TO) a
# "user unknown" is about the address; after the message was read (DATA) it is a filter's
# (Japan's mobile carriers answer so for their subscriber's 受信拒否設定).
_AT_RECIPIENT = re.compile(r"\bRCPT\b|recipient address rejected", re.IGNORECASE)
_AFTER_CONTENT = re.compile(r"end of data|\bDATA\b", re.IGNORECASE)
# the session refused our sender (MAIL FROM), before any recipient was named
_AT_SENDER = re.compile(r">>> MAIL FROM[^\n]*\n<<< 5\d\d", re.IGNORECASE)
# what only the DNS of a domain that has no mail answers
_NO_DOMAIN = re.compile(r"host or domain name not found|authoritative answer|no such domain|"
                        r"couldn't find a mail exchanger|does not accept mail", re.IGNORECASE)
# RFC 3463: 5.1.x is about the address (5.1.7 and 5.1.8 are about the sender's, and 5.1.0,
# "other", is used for anything); 5.4.4 is a domain that cannot be routed to
_ADDRESSING = re.compile(r"5\.1\.\d+")


def is_dead(status: str | None, reason: str, detail: str, context: str, address: str
            ) -> bool:
    """Whether ``address`` is dead: a dead reason with a permanent failure, refused at the
    recipient or with an addressing status (5.1.x; for a domain 5.4.4, or its name
    servers' answer in its own ``detail``), never after the content was read nor when the
    session refused our sender (the report's words near it, ``context``, tell). Anything
    less certain is not dead: suppressing a merchant who is there is worse than writing
    again to a dead address."""
    if reason not in DEAD_REASONS or not (status or "").startswith("5"):
        return False
    text = f"{detail}\n{context}"
    if _AFTER_CONTENT.search(text) or _AT_SENDER.search(text):
        return False
    if _ADDRESSING.fullmatch(status or "") and status not in ("5.1.0", "5.1.7", "5.1.8"):
        return True
    domain = address.rpartition("@")[2].lower()
    if reason in ("hostunknown", "notaccept") and (
            status == "5.4.4" or (_NO_DOMAIN.search(text) and domain in detail.lower())):
        return True  # the domain's own name servers say it has no mail
    return bool(_AT_RECIPIENT.search(text))
