"""What differs per channel while a notice is sent, in one object per channel that the
sending run calls: how many deliveries it holds claimed, what it prepares for a claimed
batch, what goes with each message, and what the provider taking a message means.

E-mail and SMS use ``ChannelStrategy`` as it is. A fax renders its pages ahead of the
lines (``FaxPress``) and, through HylaFAX, is only submitted when handed over: it is
polled until its job ends. A new channel adds its strategy here when it differs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from dispatcher.clock import Clock
from dispatcher.errors import InputError
from dispatcher.ledger import Claimed, DeliveryState
from dispatcher.render import FaxDocument, Message, Renderer
from dispatcher.send.channels import Backend
from dispatcher.send.faxpress import FaxPress, pace_for
from dispatcher.table import Channel, Config, Contact, Notice

CLAIM_BATCH = 64


class ChannelStrategy:
    """A channel whose messages go as they are rendered, one claimed delivery at a time."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def confirms_later(self) -> bool:
        """Whether the provider is asked afterwards until each message has ended."""
        return self.backend.confirms_later

    @property
    def handed_over(self) -> DeliveryState:
        """A delivery's state once the provider took it."""
        return DeliveryState.SUBMITTED if self.confirms_later else DeliveryState.SENT

    def claim_batch(self, concurrency: int) -> int:
        """How many deliveries to hold claimed: enough to keep every worker busy."""
        return max(4 * concurrency, CLAIM_BATCH)

    def claimed(self, notice: Notice, items: list[Claimed]) -> None:
        """Called with each batch claimed, before its items are sent: work ahead."""

    def stamped(self, item: Claimed) -> datetime | None:
        """The moment the delivery's message was rendered ahead for (its claim), to be
        rendered as then; None: as it is sent."""
        return None

    async def document(self, message: Message) -> FaxDocument | None:
        """What goes with the rendered message (a fax's page)."""
        return None

    async def close(self) -> None:
        """Release what the strategy started."""


class FaxStrategy(ChannelStrategy):
    """Fax pages are rendered ahead, a claimed batch at a time, by worker processes."""

    def __init__(self, backend: Backend, press: FaxPress, renderer: Renderer,
                 contacts: Mapping[str, Contact], clock: Clock) -> None:
        super().__init__(backend)
        self._press = press
        self._renderer = renderer
        self._contacts = contacts
        self._clock = clock
        self._stamps: dict[tuple[int, int], datetime] = {}  # by claim: when rendered ahead

    def claim_batch(self, concurrency: int) -> int:
        # the pages kept rendered ahead of the lines (see pace_for)
        return max(super().claim_batch(concurrency), self._press.pages_ahead)

    def claimed(self, notice: Notice, items: list[Claimed]) -> None:
        now = self._clock()
        pages = []
        for item in items:
            contact = self._contacts.get(item.contact_id)
            if contact is not None:
                self._stamps[(item.id, item.epoch)] = now
                try:
                    pages.append(self._renderer.render(notice, contact, Channel.FAX, now,
                                                       item.id).body)
                except InputError:  # reported when the delivery itself is rendered
                    continue
        self._press.prepare(pages)

    def stamped(self, item: Claimed) -> datetime | None:
        # the page laid out at the claim is the one sent (its header line names that
        # minute): rendered again at the send, a new minute laid it out twice
        return self._stamps.pop((item.id, item.epoch), None)

    async def document(self, message: Message) -> FaxDocument | None:
        return await self._press.document(message.body)

    async def close(self) -> None:
        await self._press.close()


def strategy_for(channel: Channel, backend: Backend, config: Config, renderer: Renderer,
                 contacts: Mapping[str, Contact], clock: Clock) -> ChannelStrategy:
    """The strategy that sends ``channel``'s messages through ``backend``."""
    if channel is Channel.FAX:
        press = FaxPress(config.settings.templates_dir, pace_for(config.channels[channel]))
        return FaxStrategy(backend, press, renderer, contacts, clock)
    return ChannelStrategy(backend)
