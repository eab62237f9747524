"""Map Admin GraphQL nodes (paged answers and bulk JSONL lines alike) to ``connectors.records``.

Field meanings: https://shopify.dev/docs/api/admin-graphql/2025-01/objects/Order ,
.../objects/Customer (``emailMarketingConsent``), .../objects/Fulfillment (``deliveredAt``,
``estimatedDeliveryAt``). Protected customer data (name, e-mail) comes back null for apps without access:
the customer is kept without contact and the flows skip it with the reason "no contact access".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors import delivery
from connectors.records import (
    CustomerRecord,
    FulfillmentEventRecord,
    FulfillmentRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    VariantRecord,
)

CONSENTED = "SUBSCRIBED"
# returnStatus values meaning goods came back or are on their way back.
RETURNED_STATES = {"RETURN_REQUESTED", "IN_PROGRESS", "INSPECTION_COMPLETE", "RETURNED"}
_ZERO = Decimal("0")
_fromisoformat = datetime.fromisoformat


def numeric_id(gid: str | None) -> str | None:
    """Return the numeric tail of a global id (``gid://shopify/Order/12`` -> ``"12"``)."""
    if not gid:
        return None
    tail = gid[gid.rfind("/") + 1:]
    return tail.split("?", 1)[0] if "?" in tail else tail


def gid_type(gid: str) -> str:
    """Return the resource type of a global id (``gid://shopify/LineItem/3`` -> ``"LineItem"``)."""
    parts = gid.split("/")
    return parts[3] if len(parts) > 4 else ""


def to_gid(kind: str, external_id: str) -> str:
    """Build a global id from a resource type and numeric id."""
    return f"gid://shopify/{kind}/{external_id}"


def parse_time(value: str | None) -> datetime | None:
    """Parse Shopify's ISO-8601 timestamps (``...Z``) into aware UTC datetimes."""
    if not value:
        return None
    parsed = _fromisoformat(value)  # Python 3.11+ reads the trailing "Z"
    zone = parsed.tzinfo
    if zone is UTC:
        return parsed
    if zone is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


CANCEL_REASONS = frozenset({"CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER"})


def cancel_reason(value: Any) -> str | None:
    """Return Shopify's OrderCancelReason upper-cased (REST bodies send ``customer``), None when absent or unknown.

    https://shopify.dev/docs/api/admin-graphql/2025-01/enums/OrderCancelReason — an unknown future value reads as
    OTHER, which no flow messages about.
    """
    if not value:
        return None
    reason = str(value).strip().upper()
    return reason if reason in CANCEL_REASONS else "OTHER"


def _money(bag: dict[str, Any] | None) -> Decimal | None:
    if not bag:
        return None
    money = bag.get("shopMoney")
    amount = money.get("amount") if money else None
    if amount is None:
        return None
    # Shopify's Decimal scalar is a string; anything else goes through str() so a float keeps its short form.
    return Decimal(amount if amount.__class__ is str else str(amount))


def customer_record(node: dict[str, Any]) -> CustomerRecord:
    """Map a Customer node."""
    consent = node.get("emailMarketingConsent") or {}
    subscribed = consent.get("marketingState") == CONSENTED
    address = node.get("defaultAddress") or {}
    return CustomerRecord(
        external_id=numeric_id(node["id"]) or "",
        email=node.get("email") or None,
        first_name=node.get("firstName") or None,
        locale=node.get("locale") or None,
        country=address.get("countryCodeV2") or None,
        time_zone=address.get("timeZone") or None,
        marketing_consent=subscribed,
        # When the state was last set, withdrawals included: the consent webhook orders its events by it.
        marketing_consent_at=parse_time(consent.get("consentUpdatedAt")),
        tags=tuple(node.get("tags") or ()),
        created_at=parse_time(node.get("createdAt")),
        updated_at=parse_time(node.get("updatedAt")),
    )


def line_record(node: dict[str, Any]) -> OrderLineRecord:
    """Map a LineItem node."""
    return OrderLineRecord(
        external_id=numeric_id(node["id"]) or "",
        quantity=int(node.get("quantity") or 0),
        price=_money(node.get("originalUnitPriceSet")) or _ZERO,
        title=node.get("title") or "",
        sku=node.get("sku") or None,
        product_external_id=numeric_id((node.get("product") or {}).get("id")),
        variant_external_id=numeric_id((node.get("variant") or {}).get("id")),
    )


def fulfillment_record(node: dict[str, Any]) -> FulfillmentRecord:
    """Map a Fulfillment node (one parcel) with its first tracking number."""
    tracking = (node.get("trackingInfo") or [{}])[0] or {}
    return FulfillmentRecord(external_id=numeric_id(node.get("id")) or "", status=node.get("status") or "",
                             created_at=parse_time(node.get("createdAt")),
                             delivered_at=parse_time(node.get("deliveredAt")), name=node.get("name"),
                             updated_at=parse_time(node.get("updatedAt")),
                             estimated_delivery_at=parse_time(node.get("estimatedDeliveryAt")),
                             tracking_company=tracking.get("company") or None,
                             tracking_number=tracking.get("number") or None, tracking_url=tracking.get("url") or None)


def fulfillment_event_record(fulfillment_id: str, node: dict[str, Any]) -> FulfillmentEventRecord:
    """Map a FulfillmentEvent node of a parcel."""
    return FulfillmentEventRecord(external_id=numeric_id(node.get("id")) or "", fulfillment_id=fulfillment_id,
                                  status=str(node.get("status") or ""),
                                  happened_at=parse_time(node.get("happenedAt")),  # type: ignore[arg-type]
                                  estimated_delivery_at=parse_time(node.get("estimatedDeliveryAt")),
                                  city=node.get("city") or None, province=node.get("province") or None,
                                  country=node.get("country") or None, message=node.get("message") or None)


def order_record(node: dict[str, Any], lines: Iterable[dict[str, Any]]) -> OrderRecord:
    """Map an Order node and its LineItem nodes.

    Delivery facts come from the fulfilments (connectors.delivery): ``fulfilled_at`` the first successful one,
    ``delivered_at`` the last parcel's delivery once every successful one is delivered, ``estimated_delivery_at``
    the latest carrier estimate.
    """
    fulfillments = tuple(fulfillment_record(f) for f in node.get("fulfillments") or ())
    estimated = None
    for fulfillment in node.get("fulfillments") or ():
        if fulfillment.get("status") != delivery.SHIPS:
            continue
        if (stamp := parse_time(fulfillment.get("estimatedDeliveryAt"))) and (estimated is None or stamp > estimated):
            estimated = stamp
    customer = node.get("customer")
    financial_status = node.get("displayFinancialStatus")
    return OrderRecord(
        external_id=numeric_id(node["id"]) or "",
        name=node.get("name"),
        created_at=parse_time(node["createdAt"]),  # type: ignore[arg-type]
        processed_at=parse_time(node.get("processedAt")),
        updated_at=parse_time(node.get("updatedAt")),
        currency=node.get("currencyCode") or "",
        total_price=_money(node.get("totalPriceSet")) or _ZERO,
        subtotal_price=_money(node.get("subtotalPriceSet")),
        total_refunded=_money(node.get("totalRefundedSet")) or _ZERO,
        financial_status=financial_status,
        fulfillment_status=node.get("displayFulfillmentStatus"),
        cancelled_at=parse_time(node.get("cancelledAt")),
        cancel_reason=cancel_reason(node.get("cancelReason")),
        refunded=financial_status == "REFUNDED",
        returned=node.get("returnStatus") in RETURNED_STATES,
        fulfilled_at=delivery.fulfilled_at(fulfillments),
        delivered_at=delivery.delivered_at(fulfillments),
        estimated_delivery_at=estimated,
        tags=tuple(node.get("tags") or ()),
        fulfillments=fulfillments,
        customer=customer_record(customer) if customer else None,
        lines=tuple([line_record(line) for line in lines]),
    )


def featured_image(node: dict[str, Any]) -> tuple[str | None, str | None]:
    """Return the product's featured image URL and alt text (the media's alt, else the image's), or Nones.

    https://shopify.dev/docs/api/admin-graphql/2025-01/objects/Product#field-featuredMedia — the preview image
    is null until the media is processed (``status`` READY), so a product may have media and no image yet.
    """
    media = node.get("featuredMedia") or {}
    image = (media.get("preview") or {}).get("image") or {}
    url = image.get("url")
    if not url:
        return None, None
    return str(url), (media.get("alt") or image.get("altText") or None)


def product_record(node: dict[str, Any], variants: Iterable[dict[str, Any]]) -> ProductRecord:
    """Map a Product node and its ProductVariant nodes."""
    image_url, image_alt = featured_image(node)
    return ProductRecord(
        external_id=numeric_id(node["id"]) or "",
        title=node.get("title") or "",
        handle=node.get("handle"),
        product_type=node.get("productType") or None,
        vendor=node.get("vendor") or None,
        status=node.get("status"),
        tags=tuple(node.get("tags") or ()),
        updated_at=parse_time(node.get("updatedAt")),
        image_url=image_url,
        image_alt=image_alt,
        total_inventory=node.get("totalInventory"),
        tracks_inventory=node.get("tracksInventory"),
        variants=tuple(VariantRecord(external_id=numeric_id(v["id"]) or "", sku=v.get("sku") or None,
                                     title=v.get("title") or "",
                                     price=Decimal(str(v["price"])) if v.get("price") is not None else None)
                       for v in variants),
    )
