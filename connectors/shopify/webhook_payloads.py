"""Map Shopify webhook bodies (REST resource JSON) to the records the GraphQL sync produces.

Webhooks carry REST shapes (https://shopify.dev/docs/api/webhooks?reference=toml): snake_case keys,
numeric ``id`` beside ``admin_graphql_api_id``, timestamps with the shop's UTC offset, ``tags`` as one
comma-separated string, money as decimal strings. Records use the numeric id as a string (the same as
the number at the end of the GraphQL gid) and GraphQL's status enums (``PARTIALLY_REFUNDED``,
``PARTIALLY_FULFILLED``) as ``connectors.shopify.parse`` does, so a webhook and a sync of the same object
give equal records.

Fields REST bodies do not carry (``OrderRecord.estimated_delivery_at`` and ``returned``, a customer's
``locale`` and ``time_zone`` on customers/update) come back as None/False here; the webhook processor
keeps the stored values for them instead of erasing them (see ``REST_UNKNOWN_*``).

Since API 2025-01 a customer payload in any webhook (customers/update, the ``customer`` inside order
bodies) carries no ``tags``, ``email_marketing_consent`` or ``sms_marketing_consent``
(https://shopify.dev/changelog/new-customer-s-webhook-and-changes-to-existing-customer-s-webhooks-payload).
A missing field is not a withdrawal: those fields are never read from customer payloads, and e-mail
consent comes only from ``customers_email_marketing_consent/update`` (``email_consent_update``) or the sync.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ParamSpec, TypeVar

from connectors import delivery
from connectors.records import (
    CustomerRecord,
    FulfillmentEventRecord,
    FulfillmentRecord,
    OrderLineRecord,
    OrderRecord,
)
from connectors.shopify.parse import cancel_reason

REST_UNKNOWN_ORDER_FIELDS = ("estimated_delivery_at", "returned")
REST_UNKNOWN_CUSTOMER_FIELDS = ("locale", "time_zone", "birthday", "marketing_consent", "marketing_consent_at",
                                "tags")
# The one e-mail consent state that is consent (DESIGN §1: marketing only with consent; ``pending`` is a
# double opt-in not confirmed yet, ``not_subscribed``/``unsubscribed``/``redacted``/``invalid`` are not consent).
SUBSCRIBED = "subscribed"

# REST order.fulfillment_status -> GraphQL OrderDisplayFulfillmentStatus.
_FULFILLMENT_STATUS = {None: "UNFULFILLED", "": "UNFULFILLED", "partial": "PARTIALLY_FULFILLED",
                       "fulfilled": "FULFILLED", "restocked": "RESTOCKED"}


class PayloadError(ValueError):
    """A webhook body that lacks what its topic must carry: no retry can apply it (a permanent error)."""


P = ParamSpec("P")
R = TypeVar("R")


def body_mapping(fn: Callable[P, R]) -> Callable[P, R]:
    """Make a body's malformed parts (a list where an object belongs, a word where a number does) a PayloadError.

    The mapping functions touch nothing but the body, so any such error is the body's and will never go away.
    """
    @functools.wraps(fn)
    def mapped(*args: P.args, **kwargs: P.kwargs) -> R:
        if args and not isinstance(args[0], Mapping):
            raise PayloadError("body is not a JSON object")
        try:
            return fn(*args, **kwargs)
        except PayloadError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise PayloadError(f"malformed body ({type(exc).__name__}: {exc})") from exc
    return mapped


def parse_time(value: Any) -> datetime | None:
    """Parse a REST timestamp (ISO 8601 with offset) into aware UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadError(f"invalid timestamp {value!r}") from exc
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_money(value: Any) -> Decimal | None:
    """Parse a REST money string (``"12.90"``)."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise PayloadError(f"invalid amount {value!r}") from exc


def shop_money(payload: Mapping[str, Any], name: str) -> Decimal | None:
    """Return a REST amount in the shop's currency: ``<name>_set.shop_money`` where the body has it, else ``<name>``.

    Since multi-currency, every REST price has a ``*_set`` twin with ``shop_money`` and ``presentment_money``
    (https://shopify.dev/docs/api/admin-rest/2025-01/resources/order); records hold shop money only.
    """
    bag = payload.get(f"{name}_set")
    if isinstance(bag, Mapping) and isinstance(bag.get("shop_money"), Mapping):
        return parse_money(bag["shop_money"].get("amount"))
    return parse_money(payload.get(name))


def rest_id(value: Any) -> str | None:
    """Return a REST numeric id as the string records use."""
    if value is None or value == "":
        return None
    return str(int(value)) if isinstance(value, int | float) or str(value).isdigit() else str(value)


def split_tags(value: Any) -> tuple[str, ...]:
    """Split REST's comma-separated ``tags`` into a tuple (GraphQL returns a list)."""
    if isinstance(value, list | tuple):
        return tuple(str(t).strip() for t in value if str(t).strip())
    return tuple(t.strip() for t in str(value or "").split(",") if t.strip())


def _required_id(payload: Mapping[str, Any], what: str) -> str:
    found = rest_id(payload.get("id"))
    if found is None:
        raise PayloadError(f"{what} without id")
    return found


@body_mapping
def deleted_id(payload: Mapping[str, Any], what: str) -> str:
    """Return the id of a deleted object (orders/delete, products/delete, customers/delete bodies)."""
    return _required_id(payload, f"deleted {what}")


@body_mapping
def customer_record(payload: Mapping[str, Any], locale: str | None = None) -> CustomerRecord:
    """Map a REST customer (customers/update, or the ``customer`` inside an order) to a CustomerRecord.

    Consent and tags are left at their defaults: 2025-01 customer payloads do not carry them, and the
    processor keeps the stored values (``REST_UNKNOWN_CUSTOMER_FIELDS``).
    """
    address = payload.get("default_address") or {}
    country = address.get("country_code")
    email = payload.get("email")
    return CustomerRecord(
        external_id=_required_id(payload, "customer"),
        email=str(email).strip() if email else None,
        first_name=payload.get("first_name") or None,
        locale=locale,
        country=str(country).upper() if country else None,
        time_zone=None,
        created_at=parse_time(payload.get("created_at")),
        updated_at=parse_time(payload.get("updated_at")),
    )


@dataclass(frozen=True, slots=True)
class EmailConsent:
    """A ``customers_email_marketing_consent/update`` body: whose consent, its state and when it was set."""

    customer_id: str
    email: str | None
    state: str
    consent_updated_at: datetime | None

    @property
    def subscribed(self) -> bool:
        """Say whether the state is consent to marketing e-mail (only ``subscribed`` is)."""
        return self.state == SUBSCRIBED


@body_mapping
def email_consent_update(payload: Mapping[str, Any]) -> EmailConsent:
    """Map a ``customers_email_marketing_consent/update`` body (topic CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE).

    Shape per the sample payload in https://shopify.dev/docs/api/webhooks: ``{"customer_id": 7064...,
    "email_address": "bob@biller.com", "email_marketing_consent": {"state": "not_subscribed",
    "opt_in_level": null, "consent_updated_at": null}}``. The address is null without protected customer
    data access. A null state is read as no consent.
    """
    customer_id = rest_id(payload.get("customer_id"))
    if customer_id is None:
        raise PayloadError("email consent update without customer_id")
    consent = payload.get("email_marketing_consent")
    if not isinstance(consent, Mapping):
        raise PayloadError("email consent update without email_marketing_consent")
    email = payload.get("email_address")
    return EmailConsent(customer_id=customer_id, email=str(email).strip() if email else None,
                        state=str(consent.get("state") or "").strip().lower(),
                        consent_updated_at=parse_time(consent.get("consent_updated_at")))


def customer_body_consent(payload: Mapping[str, Any]) -> EmailConsent | None:
    """Return the e-mail consent a customer body of an API version before 2025-01 carries, or None.

    2022-04 to 2024-10 send ``email_marketing_consent`` (``state``, ``opt_in_level``, ``consent_updated_at``),
    https://shopify.dev/changelog/new-email-marketing-consent-for-customers-and-deprecated-fields; before
    2024-01 the legacy ``accepts_marketing`` with ``accepts_marketing_updated_at`` is there too (the only one
    before 2022-04), https://shopify.dev/changelog/removal-of-accepts-marketing-fields-in-admin-api-customer-resources.
    The consent object wins over the legacy flag; a body with neither (2025-01 and later) says nothing.
    """
    customer_id = _required_id(payload, "customer")
    email = payload.get("email")
    consent = payload.get("email_marketing_consent")
    if isinstance(consent, Mapping) and consent.get("state"):
        return EmailConsent(customer_id=customer_id, email=str(email).strip() if email else None,
                            state=str(consent["state"]).strip().lower(),
                            consent_updated_at=parse_time(consent.get("consent_updated_at")))
    accepts = payload.get("accepts_marketing")
    if isinstance(accepts, bool):
        return EmailConsent(customer_id=customer_id, email=str(email).strip() if email else None,
                            state=SUBSCRIBED if accepts else "unsubscribed",
                            consent_updated_at=parse_time(payload.get("accepts_marketing_updated_at")))
    return None


def line_record(payload: Mapping[str, Any]) -> OrderLineRecord:
    """Map a REST line item."""
    return OrderLineRecord(
        external_id=_required_id(payload, "line item"),
        quantity=int(payload.get("quantity") or 0),
        price=shop_money(payload, "price") or Decimal("0"),
        title=str(payload.get("title") or ""),
        sku=payload.get("sku") or None,
        product_external_id=rest_id(payload.get("product_id")),
        variant_external_id=rest_id(payload.get("variant_id")),
    )


def _bag(value: Any) -> tuple[Decimal, str | None, Decimal] | None:
    """Return (shop amount, shop currency, presentment amount) of a REST ``*_set`` money bag."""
    if not isinstance(value, Mapping):
        return None
    shop, presentment = value.get("shop_money") or {}, value.get("presentment_money") or {}
    amount = parse_money(shop.get("amount"))
    if amount is None:
        return None
    return amount, shop.get("currency_code"), parse_money(presentment.get("amount")) or Decimal("0")


def _refund_parts(refund: Mapping[str, Any]) -> Iterable[tuple[int, Any]]:
    """Yield (sign, money bag) for every part of a REST refund: lines, shipping, duties, fees, adjustments.

    Order adjustments hold the difference between the parts and what was refunded (a refund of an amount
    only is one ``refund_discrepancy``; shipping refunds were ``shipping_refund`` adjustments before
    ``refund_shipping_lines``): they are negative when more went back than the parts.
    https://shopify.dev/docs/api/admin-rest/2025-01/resources/refund
    """
    for item in refund.get("refund_line_items") or ():
        yield 1, item.get("subtotal_set")
        yield 1, item.get("total_tax_set")
    shipping_lines = refund.get("refund_shipping_lines") or ()
    for item in shipping_lines:
        yield 1, item.get("subtotal_amount_set")
        yield 1, item.get("tax_amount_set")
    yield 1, refund.get("total_duties_set")
    yield 1, refund.get("total_additional_fees_set")
    for item in refund.get("order_adjustments") or ():
        if shipping_lines and item.get("kind") == "shipping_refund":
            continue  # the same shipping, counted from refund_shipping_lines
        yield -1, item.get("amount_set")
        yield -1, item.get("tax_amount_set")


def refund_shop_amount(refund: Mapping[str, Any]) -> Decimal:
    """Return what one REST refund gave back, in the shop's currency.

    The money moved is the successful ``refund`` transactions, but their ``amount`` is in the transaction's
    currency, the buyer's (presentment) one on a multi-currency order, and REST transactions carry no shop-money
    twin. The refund's parts carry both (``*_set``): when the transactions are in another currency than the
    shop's, the parts' shop money is what was refunded (converted at the parts' own rate when a transaction
    failed or was only partly taken).
    """
    moved, currencies = Decimal("0"), set()
    for tx in refund.get("transactions") or ():
        if tx.get("kind") == "refund" and tx.get("status") == "success":
            moved += parse_money(tx.get("amount")) or Decimal("0")
            currencies.add(tx.get("currency"))
    if not moved:
        return Decimal("0")
    shop = presentment = Decimal("0")
    shop_currency = None
    exponent = 0
    for sign, value in _refund_parts(refund):
        bag = _bag(value)
        if bag is None:
            continue
        shop, presentment = shop + sign * bag[0], presentment + sign * bag[2]
        shop_currency = shop_currency or bag[1]
        exponent = min(exponent, int(bag[0].as_tuple().exponent))
    if shop_currency is None or currencies <= {None, shop_currency}:
        return moved
    if presentment == moved:
        return shop
    if not presentment:
        raise PayloadError(f"refund in {sorted(c for c in currencies if c)} without shop-money amounts")
    return (moved * shop / presentment).quantize(Decimal(1).scaleb(exponent))


def refunded_amount(refunds: Any) -> Decimal:
    """Sum what REST refunds gave back, in the shop's currency."""
    return sum((refund_shop_amount(refund) for refund in refunds or ()), Decimal("0"))


def fulfillment_record(payload: Mapping[str, Any]) -> FulfillmentRecord:
    """Map a REST fulfillment (inside orders, or a fulfillments/update body) to a FulfillmentRecord.

    REST fulfillments say ``shipment_status: delivered`` without a delivery time; the last update of a
    delivered fulfilment is when the carrier reported the delivery, so that is its delivery time (a
    ``fulfillment_events/create`` of the delivery gives the exact one).
    """
    delivered = str(payload.get("shipment_status") or "").lower() == "delivered"
    urls = payload.get("tracking_urls") or ()
    return FulfillmentRecord(external_id=_required_id(payload, "fulfillment"),
                             status=str(payload.get("status") or "").upper(),
                             created_at=parse_time(payload.get("created_at")),
                             delivered_at=parse_time(payload.get("updated_at")) if delivered else None,
                             name=payload.get("name") or None, updated_at=parse_time(payload.get("updated_at")),
                             tracking_company=payload.get("tracking_company") or None,
                             tracking_number=payload.get("tracking_number") or None,
                             tracking_url=payload.get("tracking_url") or (urls[0] if urls else None))


@body_mapping
def order_record(payload: Mapping[str, Any]) -> OrderRecord:
    """Map a REST order (orders/create, updated, fulfilled, cancelled) to an OrderRecord."""
    created = parse_time(payload.get("created_at"))
    if created is None:
        raise PayloadError("order without created_at")
    total = shop_money(payload, "total_price")
    currency = payload.get("currency")  # the shop's currency (``presentment_currency`` is the buyer's)
    if total is None or not currency:
        raise PayloadError("order without total_price or currency")
    refunded = refunded_amount(payload.get("refunds"))
    financial = payload.get("financial_status")
    fulfillments = tuple(fulfillment_record(f) for f in payload.get("fulfillments") or ())
    customer = payload.get("customer")
    return OrderRecord(
        external_id=_required_id(payload, "order"),
        created_at=created,
        currency=str(currency),
        total_price=total,
        name=payload.get("name"),
        customer=customer_record(customer, locale=payload.get("customer_locale")) if customer else None,
        processed_at=parse_time(payload.get("processed_at")),
        updated_at=parse_time(payload.get("updated_at")),
        subtotal_price=shop_money(payload, "subtotal_price"),
        total_refunded=refunded,
        financial_status=str(financial).upper() if financial else None,
        fulfillment_status=_FULFILLMENT_STATUS.get(payload.get("fulfillment_status"),
                                                   str(payload.get("fulfillment_status")).upper()),
        cancelled_at=parse_time(payload.get("cancelled_at")),
        cancel_reason=cancel_reason(payload.get("cancel_reason")),
        refunded=str(financial or "").lower() == "refunded",
        fulfilled_at=delivery.fulfilled_at(fulfillments),
        delivered_at=delivery.delivered_at(fulfillments),
        tags=split_tags(payload.get("tags")),
        fulfillments=fulfillments,
        lines=tuple(line_record(li) for li in payload.get("line_items") or ()),
    )


@body_mapping
def fulfillment_update(payload: Mapping[str, Any]) -> tuple[str, FulfillmentRecord]:
    """Return (order id, the fulfilment) from a fulfillments/update body."""
    order_id = rest_id(payload.get("order_id"))
    if order_id is None:
        raise PayloadError("fulfillment without order_id")
    return order_id, fulfillment_record(payload)


# REST FulfillmentEvent.status values -> GraphQL FulfillmentEventStatus (the same milestones, lower snake case).
EVENT_STATUSES = frozenset({"LABEL_PURCHASED", "LABEL_PRINTED", "READY_FOR_PICKUP", "CONFIRMED", "IN_TRANSIT",
                            "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY", "DELAYED", "DELIVERED", "FAILURE"})


@body_mapping
def fulfillment_event(payload: Mapping[str, Any]) -> tuple[str, FulfillmentRecord, FulfillmentEventRecord]:
    """Return (order id, what the event says of its fulfilment, the event) from a fulfillment_events/create body.

    A carrier event (REST FulfillmentEvent: ``id``, ``fulfillment_id``, ``order_id``, ``status`` such as
    ``in_transit`` or ``delivered``, ``happened_at``, ``estimated_delivery_at``, ``city``, ``country``, ``message``;
    https://shopify.dev/docs/api/admin-rest/2025-01/resources/fulfillmentevent) says the fulfilment shipped; a
    ``delivered`` one says when it arrived.
    """
    order_id = rest_id(payload.get("order_id"))
    fulfillment_id = rest_id(payload.get("fulfillment_id"))
    if order_id is None or fulfillment_id is None:
        raise PayloadError("fulfillment event without order_id or fulfillment_id")
    event_id = rest_id(payload.get("id"))
    if event_id is None:
        raise PayloadError("fulfillment event without id")
    status = str(payload.get("status") or "").upper()
    if status not in EVENT_STATUSES:
        raise PayloadError(f"fulfillment event with unknown status {payload.get('status')!r}")
    happened = parse_time(payload.get("happened_at")) or parse_time(payload.get("created_at"))
    if happened is None:
        raise PayloadError("fulfillment event without happened_at")
    delivered = status == "DELIVERED"
    event = FulfillmentEventRecord(external_id=event_id, fulfillment_id=fulfillment_id, status=status,
                                   happened_at=happened,
                                   estimated_delivery_at=parse_time(payload.get("estimated_delivery_at")),
                                   city=payload.get("city") or None, province=payload.get("province") or None,
                                   country=payload.get("country") or None, message=payload.get("message") or None)
    return order_id, FulfillmentRecord(external_id=fulfillment_id, status=delivery.SHIPS,
                                       delivered_at=happened if delivered else None), event


@body_mapping
def refund_created(payload: Mapping[str, Any]) -> tuple[str, Decimal]:
    """Return (order id, amount refunded in the shop's currency) from a refunds/create body."""
    order_id = rest_id(payload.get("order_id"))
    if order_id is None:
        raise PayloadError("refund without order_id")
    return order_id, refund_shop_amount(payload)
