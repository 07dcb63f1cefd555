"""A window's audience as the console asks about it on every page, worked out once per
table in force: the contacts in order, their count on each channel, and a search index."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from dispatcher.render import utf16_units
from dispatcher.table import Channel, Contact, Inputs, in_audience

MATCHES_SHOWN = 20


@dataclass(frozen=True)
class Audience:
    contacts: list[Contact]
    recipients: dict[Channel, int]  # contacts with an address on each channel

    @classmethod
    def of(cls, contacts: Iterable[Contact], tags: Iterable[str]) -> Audience:
        chosen = in_audience(contacts, tags)
        return cls(chosen, {channel: sum(1 for c in chosen if c.address(channel))
                            for channel in Channel})

    @cached_property
    def by_id(self) -> dict[str, Contact]:
        return {c.id: c for c in self.contacts}

    @cached_property
    def addresses(self) -> dict[str, set[str]]:
        """Every address of the audience, by channel (which suppressed ones concern it)."""
        return {channel.value: {a for c in self.contacts if (a := c.address(channel))}
                for channel in Channel}

    @cached_property
    def longest_sms_contact(self) -> Contact | None:
        """The contact with an SMS number and the longest merchant name: whose SMS is the
        longest (the templates name the merchant)."""
        with_sms = (c for c in self.contacts if c.address(Channel.SMS))
        return max(with_sms, key=lambda c: utf16_units(c.merchant), default=None)

    @cached_property
    def _searched(self) -> list[str]:
        # id, merchant and name, casefolded once: a search reads 100,000 of them
        return ["\x1f".join((c.id, c.merchant, c.name)).casefold() for c in self.contacts]

    def find(self, query: str) -> list[Contact]:
        """The contact whose id is ``query``; else up to ``MATCHES_SHOWN`` whose id,
        merchant or name holds it (the console's search box: no list of 100,000 to
        scroll)."""
        if not query:
            return []
        exact = [c for c in self.contacts if c.id == query]
        if exact:
            return exact
        folded = query.casefold()
        if "\x1f" in folded:  # the separator of the fields searched: in no field
            return []
        found = (c for c, text in zip(self.contacts, self._searched, strict=True)
                 if folded in text)
        return list(itertools.islice(found, MATCHES_SHOWN))


@dataclass
class Audiences:
    """Each window's Audience in the last table asked about (the table in force)."""

    _inputs: Inputs | None = None
    _found: dict[tuple[str, ...], Audience] = field(default_factory=dict)

    def of(self, inputs: Inputs, tags: Iterable[str]) -> Audience:
        if inputs is not self._inputs:
            self._inputs, self._found = inputs, {}
        key = tuple(sorted(tags))
        if key not in self._found:
            self._found[key] = Audience.of(inputs.contacts, key)
        return self._found[key]
