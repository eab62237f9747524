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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.records import CustomerRecord, OrderLineRecord, OrderRecord

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
    """A webhook body that lacks what its topic must carry."""


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


def deleted_id(payload: Mapping[str, Any], what: str) -> str:
    """Return the id of a deleted object (orders/delete, products/delete, customers/delete bodies)."""
    return _required_id(payload, f"deleted {what}")


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
        price=parse_money(payload.get("price")) or Decimal("0"),
        title=str(payload.get("title") or ""),
        sku=payload.get("sku") or None,
        product_external_id=rest_id(payload.get("product_id")),
        variant_external_id=rest_id(payload.get("variant_id")),
    )


def refunded_amount(refunds: Any) -> Decimal:
    """Sum the successful refund transactions of REST refunds."""
    total = Decimal("0")
    for refund in refunds or ():
        for tx in refund.get("transactions") or ():
            if tx.get("kind") == "refund" and tx.get("status") == "success":
                total += parse_money(tx.get("amount")) or Decimal("0")
    return total


def delivery_facts(fulfillments: Any) -> tuple[datetime | None, datetime | None]:
    """Return (first fulfilled at, latest delivered at) of successful REST fulfillments.

    REST fulfillments say ``shipment_status: delivered`` without a delivery time; the last update of a
    delivered fulfilment is when the carrier reported the delivery, so that is the delivery time.
    """
    fulfilled: list[datetime] = []
    delivered: list[datetime] = []
    for item in fulfillments or ():
        if str(item.get("status") or "").lower() != "success":
            continue
        created = parse_time(item.get("created_at"))
        if created:
            fulfilled.append(created)
        if str(item.get("shipment_status") or "").lower() == "delivered":
            stamp = parse_time(item.get("updated_at"))
            if stamp:
                delivered.append(stamp)
    return (min(fulfilled) if fulfilled else None, max(delivered) if delivered else None)


def order_record(payload: Mapping[str, Any]) -> OrderRecord:
    """Map a REST order (orders/create, updated, fulfilled, cancelled) to an OrderRecord."""
    created = parse_time(payload.get("created_at"))
    if created is None:
        raise PayloadError("order without created_at")
    total = parse_money(payload.get("total_price"))
    currency = payload.get("currency")
    if total is None or not currency:
        raise PayloadError("order without total_price or currency")
    refunded = refunded_amount(payload.get("refunds"))
    financial = payload.get("financial_status")
    fulfilled_at, delivered_at = delivery_facts(payload.get("fulfillments"))
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
        subtotal_price=parse_money(payload.get("subtotal_price")),
        total_refunded=refunded,
        financial_status=str(financial).upper() if financial else None,
        fulfillment_status=_FULFILLMENT_STATUS.get(payload.get("fulfillment_status"),
                                                   str(payload.get("fulfillment_status")).upper()),
        cancelled_at=parse_time(payload.get("cancelled_at")),
        refunded=str(financial or "").lower() == "refunded",
        fulfilled_at=fulfilled_at,
        delivered_at=delivered_at,
        tags=split_tags(payload.get("tags")),
        lines=tuple(line_record(li) for li in payload.get("line_items") or ()),
    )


def fulfillment_update(payload: Mapping[str, Any]) -> tuple[str, datetime | None, datetime | None]:
    """Return (order id, fulfilled at, delivered at) from a fulfillments/update body."""
    order_id = rest_id(payload.get("order_id"))
    if order_id is None:
        raise PayloadError("fulfillment without order_id")
    fulfilled_at, delivered_at = delivery_facts([payload])
    return order_id, fulfilled_at, delivered_at


def refund_created(payload: Mapping[str, Any]) -> tuple[str, Decimal]:
    """Return (order id, amount refunded) from a refunds/create body."""
    order_id = rest_id(payload.get("order_id"))
    if order_id is None:
        raise PayloadError("refund without order_id")
    return order_id, refunded_amount([payload])
