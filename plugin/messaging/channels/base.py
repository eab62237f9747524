"""What every channel is: the protocol the dispatcher sends through, and the outcomes a channel can give.

A channel prepares a message inside the claim transaction (database reads and rendering only, no network),
then sends prepared messages over one connection per batch, and records channel-specific effects after a
send. The channels themselves are listed in plugin/messaging/channels/__init__.py.

A channel's send may end a message without delivering it (``NotSent``) or leave its fate open
(``Unconfirmed``). A channel that can ask its provider what became of a message defines
``reconcile(message, now) -> Reconciled``: the dispatcher then calls it for that channel's rows left in
``sending`` by a crash, instead of handing them back to be sent again (after the channel's own
``claim_timeout`` when it sets one, else ``mail.claim_timeout_seconds``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from plugin.context import JobContext
from plugin.messaging.policy import Decision
from plugin.models import Message


class DeliveryError(Exception):
    """A send failed: ``permanent`` ones are not retried; ``bounce`` puts ``address`` on the suppression list;
    ``stop_batch`` says the channel itself is down (the rest of the batch waits for the next run)."""

    def __init__(self, message: str, *, permanent: bool, bounce: bool = False, address: str | None = None,
                 stop_batch: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.bounce = bounce
        self.address = address
        self.stop_batch = stop_batch


# -- outcomes a channel can give besides "sent" and DeliveryError (see plugin/messaging/dispatch.py) ---------------
class NotSent(Exception):
    """Nothing went out, by a rule or by the provider's answer: ``skipped`` with ``reason`` (a code) for good, or,
    with ``retry_at``, back to ``scheduled`` for then, keeping ``reason`` as why it waits (no attempt counted)."""

    def __init__(self, reason: str, *, retry_at: datetime | None = None, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason
        self.retry_at = retry_at
        self.detail = detail


class Unconfirmed(Exception):
    """The send may have reached the provider (e.g. a 5xx after the request went out): the message stays
    ``sending`` until the channel's ``reconcile`` finds out, after the claim timeout; it is never resent blindly."""


@dataclass(frozen=True)
class Reconciled:
    """What ``reconcile`` found out about a message left in ``sending``.

    ``status``: ``scheduled`` (it did not go out: send it again), ``sent`` (at ``sent_at``), ``skipped`` (with
    ``reason``) or ``sending`` (cannot tell yet: ask again after the claim timeout). ``detail`` is kept as its note.
    """

    status: str
    detail: str
    reason: str | None = None
    sent_at: datetime | None = None


# send(prepared, check) -> provider id; ``check`` raises HandOverRefused when the message must not leave.
Sender = Callable[[Any, Callable[[], None]], str | None]


class Channel(Protocol):
    """What the dispatcher needs from a channel."""

    name: str

    def prepare(self, session: Session, message: Message, decision: Decision) -> Any:
        """Build everything needed to send (no network); raise DeliveryError(permanent=True) if impossible."""
        ...

    def connection(self) -> AbstractContextManager[Sender]:
        """Open what a batch shares (e.g. one SMTP connection); yield ``send(prepared, check) -> provider id``.

        ``send`` sets up everything the hand-over needs (connection, discount code ...), then calls ``check()``
        immediately before handing the message to the server or API, and never hands it over when ``check``
        raises (plugin/messaging/handover.py).
        """
        ...

    def after_sent(self, session: Session, message_id: int, prepared: Any) -> None:
        """Record channel-specific effects of a successful send (in the result transaction)."""
        ...


ChannelFactory = Callable[[JobContext], Channel]
