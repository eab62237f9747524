"""Channels the dispatcher sends through, by name (``message.channel``).

A channel prepares a message inside the claim transaction (database reads and rendering only, no network),
then sends prepared messages over one connection per batch, and records channel-specific effects after a
send. ``email`` and ``review_reply`` are built in; other channels (e.g. ``amazon_solicitation``, sent today
by the Amazon job itself) plug in with ``register_channel(name, factory)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from plugin.models import Message

if TYPE_CHECKING:
    from plugin.context import JobContext
    from plugin.messaging.policy import Decision


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


ChannelFactory = Callable[["JobContext"], Channel]
_FACTORIES: dict[str, ChannelFactory] = {}


def register_channel(name: str, factory: ChannelFactory) -> None:
    """Make ``message.channel == name`` dispatchable through channels built by ``factory(ctx)``."""
    _FACTORIES[name] = factory


def build_channels(ctx: JobContext, names: list[str] | None = None) -> dict[str, Channel]:
    """Instantiate the registered channels (all, or the named ones) for one dispatch run."""
    _register_builtins()
    chosen = names if names is not None else list(_FACTORIES)
    unknown = [n for n in chosen if n not in _FACTORIES]
    if unknown:
        raise LookupError(f"no channel registered for {', '.join(unknown)}")
    return {name: _FACTORIES[name](ctx) for name in chosen}


def registered() -> Iterator[str]:
    """Yield the names of the registered channels."""
    _register_builtins()
    yield from _FACTORIES


def _register_builtins() -> None:
    if "email" in _FACTORIES:
        return
    from plugin.messaging.channels.email import EmailChannel
    from plugin.messaging.channels.review_reply import ReviewReplyChannel

    _FACTORIES.setdefault("email", EmailChannel)
    _FACTORIES.setdefault("review_reply", ReviewReplyChannel)
