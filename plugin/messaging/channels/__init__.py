"""The channels the dispatcher sends through, by name (``message.channel``): email, review replies, Amazon
solicitations. What a channel must do is in plugin/messaging/channels/base.py."""

from __future__ import annotations

from collections.abc import Iterator

from plugin.context import JobContext
from plugin.messaging.channels.amazon_solicitation import AmazonSolicitationChannel
from plugin.messaging.channels.base import (
    Channel,
    ChannelFactory,
    DeliveryError,
    NotSent,
    Reconciled,
    Sender,
    Unconfirmed,
)
from plugin.messaging.channels.email import EmailChannel
from plugin.messaging.channels.review_reply import ReviewReplyChannel

__all__ = ["CHANNELS", "Channel", "ChannelFactory", "DeliveryError", "NotSent", "Reconciled", "Sender",
           "Unconfirmed", "build_channels", "registered"]

CHANNELS: dict[str, ChannelFactory] = {
    "email": EmailChannel,
    "review_reply": ReviewReplyChannel,
    "amazon_solicitation": AmazonSolicitationChannel,
}


def build_channels(ctx: JobContext, names: list[str] | None = None) -> dict[str, Channel]:
    """Instantiate the channels (all, or the named ones) for one dispatch run."""
    chosen = names if names is not None else list(CHANNELS)
    unknown = [n for n in chosen if n not in CHANNELS]
    if unknown:
        raise LookupError(f"no channel registered for {', '.join(unknown)}")
    return {name: CHANNELS[name](ctx) for name in chosen}


def registered() -> Iterator[str]:
    """Yield the names of the channels."""
    yield from CHANNELS
