"""Messaging API v1: which buyer messages an order allows, and sending them with the models' limits.

Text and attachment limits are those of messaging.json (e.g. ``text`` 1-2000 characters for
unexpectedProblem, 1-800 for confirmCustomizationDetails, 1-400 for digitalAccessKey; at most 5
attachments). Amazon publishes no exact wording for a message type that is not available for an order;
the sandbox answers 403 Unauthorized like Solicitations does (an assumption).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .context import Ctx
from .http import ApiError, invalid_input, json_body, parse_time
from .marketplaces import MARKETPLACES
from .seed import Order

# action name -> (text max length or None when the message has no text, text required, attachments
# required); from the request schemas in messaging.json.
ACTIONS: dict[str, tuple[int | None, bool, bool]] = {
    "confirmCustomizationDetails": (800, True, False),
    "confirmDeliveryDetails": (2000, True, False),
    "legalDisclosure": (None, False, True),
    "confirmOrderDetails": (2000, True, False),
    "confirmServiceDetails": (2000, True, False),
    "warranty": (None, False, True),
    "digitalAccessKey": (400, True, False),
    "unexpectedProblem": (2000, True, False),
    "invoice": (None, False, True),
}
MAX_ATTACHMENTS = 5


@dataclass(frozen=True)
class MessageRecord:
    """One buyer message the sandbox accepted."""

    order_id: str
    marketplace_id: str
    seller_id: str
    kind: str
    text: str | None
    attachments: tuple[str, ...]
    sent_at: datetime
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class MessageLog:
    """Thread-safe list of accepted messages."""

    def __init__(self) -> None:
        self.records: list[MessageRecord] = []
        self._lock = threading.Lock()

    def add(self, record: MessageRecord) -> None:
        """Append a message."""
        with self._lock:
            self.records.append(record)


def available(order: Order, now: datetime) -> list[str]:
    """Return the message types the order allows now (none for canceled or pending orders)."""
    status = order.status_at(now)
    if status in ("Canceled", "Pending", "PendingAvailability"):
        return []
    names = ["legalDisclosure", "unexpectedProblem", "warranty"]
    if order.fulfillment_channel == "MFN":
        names[1:1] = ["confirmDeliveryDetails", "confirmOrderDetails"]
    if MARKETPLACES[order.marketplace_id].region == "EU":
        names.append("invoice")
    return names


def get_actions(ctx: Ctx, amazonOrderId: str) -> tuple[int, Any]:  # noqa: N803 - path parameter name
    """GET /messaging/v1/orders/{amazonOrderId}: HAL links to the allowed message types."""
    order = ctx.order(amazonOrderId)
    mp = ctx.one_marketplace(order)
    base = f"/messaging/v1/orders/{order.order_id}"
    actions, embedded = [], []
    for name in available(order, ctx.now):
        href = f"{base}/messages/{name}?marketplaceIds={mp}"
        actions.append({"href": href, "name": name})
        embedded.append({"_links": {"self": {"href": href, "name": name},
                                    "schema": {"href": f"{base}/messages/{name}/schema", "name": name}},
                         "payload": {"name": name}})
    return 200, {"_links": {"actions": actions, "self": {"href": f"{base}?marketplaceIds={mp}"}},
                 "_embedded": {"actions": embedded}}


def get_attributes(ctx: Ctx, amazonOrderId: str) -> tuple[int, Any]:  # noqa: N803
    """GET /messaging/v1/orders/{amazonOrderId}/attributes: the buyer's locale."""
    order = ctx.order(amazonOrderId)
    ctx.one_marketplace(order)
    return 200, {"buyer": {"locale": MARKETPLACES[order.marketplace_id].locale}}


def _validate(kind: str, body: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    max_len, text_required, attachments_required = ACTIONS[kind]
    text = body.get("text")
    if max_len is not None and (text is not None or text_required):
        if not isinstance(text, str) or not 1 <= len(text) <= max_len:
            size = len(text) if isinstance(text, str) else 0
            raise invalid_input("Invalid Input", f"text length must be between 1 and {max_len} "
                                f"characters (got {size}).")
    attachments = body.get("attachments", [])
    if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS:
        raise invalid_input("Invalid Input", f"attachments accepts at most {MAX_ATTACHMENTS} items.")
    if attachments_required and not attachments:
        raise invalid_input("Invalid Input", "attachments must contain at least one item.")
    names = []
    for attachment in attachments:
        if not (isinstance(attachment, dict) and attachment.get("uploadDestinationId")
                and attachment.get("fileName")):
            raise invalid_input("Invalid Input", "each attachment needs uploadDestinationId and fileName.")
        names.append(str(attachment["fileName"]))
    for key in ("coverageStartDate", "coverageEndDate"):
        if key in body:
            parse_time(str(body[key]), key)
    return text, tuple(names)


def send(kind: str):
    """Build the handler of ``POST /messaging/v1/orders/{amazonOrderId}/messages/<kind>``."""
    def handler(ctx: Ctx, amazonOrderId: str) -> tuple[int, Any]:  # noqa: N803
        order = ctx.order(amazonOrderId)
        mp = ctx.one_marketplace(order)
        text, attachments = _validate(kind, json_body(ctx.request.get_data()))
        if kind not in available(order, ctx.now):
            raise ApiError(403, "Unauthorized",
                           "The requested message is not available for this amazonOrderId.", "")
        ctx.sandbox.messages.add(MessageRecord(order.order_id, mp, ctx.seller.seller_id, kind, text,
                                               attachments, ctx.now))
        return 201, {}
    handler.__doc__ = f"POST .../messages/{kind}: validate the body and record the message."
    return handler
