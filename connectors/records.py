"""Plain records every connector yields and `plugin.sync` upserts; one shape per kind of object.

Ids are the marketplace's own (Shopify: the numeric part of the gid as a string, e.g. "1234";
Amazon: the order id / ASIN / SKU). Datetimes are aware UTC. Money is Decimal in the order's currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A customer as the flows need them (minimal personal data)."""

    external_id: str
    email: str | None = None
    first_name: str | None = None
    locale: str | None = None
    country: str | None = None
    time_zone: str | None = None
    marketing_consent: bool = False
    marketing_consent_at: datetime | None = None
    birthday: date | None = None
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class VariantRecord:
    """A purchasable variant of a product."""

    external_id: str
    sku: str | None = None
    title: str = ""
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """A product with its variants; ``days_of_supply`` only when the marketplace data says it."""

    external_id: str
    title: str = ""
    handle: str | None = None
    product_type: str | None = None
    vendor: str | None = None
    status: str | None = None
    tags: tuple[str, ...] = ()
    variants: tuple[VariantRecord, ...] = ()
    updated_at: datetime | None = None
    image_url: str | None = None
    image_alt: str | None = None
    # Stock (Shopify totalInventory / tracksInventory); None where the marketplace does not say.
    total_inventory: int | None = None
    tracks_inventory: bool | None = None


@dataclass(frozen=True, slots=True)
class OrderLineRecord:
    """One line of an order; product/variant ids refer to ProductRecord/VariantRecord external ids."""

    external_id: str
    quantity: int
    price: Decimal
    title: str = ""
    sku: str | None = None
    product_external_id: str | None = None
    variant_external_id: str | None = None


@dataclass(frozen=True, slots=True)
class FulfillmentRecord:
    """One parcel of an order: its status (Shopify's FulfillmentStatus, e.g. SUCCESS, CANCELLED), dates and tracking.

    Tracking fields and ``updated_at`` are None where the source does not say (a carrier event's report).
    """

    external_id: str
    status: str
    created_at: datetime | None = None
    delivered_at: datetime | None = None
    name: str | None = None
    updated_at: datetime | None = None
    estimated_delivery_at: datetime | None = None
    tracking_company: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None


@dataclass(frozen=True, slots=True)
class FulfillmentEventRecord:
    """One carrier milestone of a parcel (Shopify's FulfillmentEvent; ``status`` a FulfillmentEventStatus)."""

    external_id: str
    fulfillment_id: str
    status: str
    happened_at: datetime
    estimated_delivery_at: datetime | None = None
    city: str | None = None
    province: str | None = None
    country: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order of either platform, with its lines and delivery facts.

    ``fulfillments`` are the parcels behind ``fulfilled_at``/``delivered_at`` where the platform lists them
    (Shopify; connectors.delivery holds the rule); None where it gives the order-level dates only (Amazon).
    """

    external_id: str
    created_at: datetime
    currency: str
    total_price: Decimal
    name: str | None = None
    customer: CustomerRecord | None = None
    processed_at: datetime | None = None
    updated_at: datetime | None = None
    subtotal_price: Decimal | None = None
    total_refunded: Decimal = Decimal("0")
    financial_status: str | None = None
    fulfillment_status: str | None = None
    cancelled_at: datetime | None = None
    # Shopify's OrderCancelReason, upper case (CUSTOMER, DECLINED, FRAUD, INVENTORY, STAFF, OTHER).
    cancel_reason: str | None = None
    refunded: bool = False
    returned: bool = False
    fulfilled_at: datetime | None = None
    estimated_delivery_at: datetime | None = None
    delivered_at: datetime | None = None
    earliest_delivery_at: datetime | None = None
    latest_delivery_at: datetime | None = None
    latest_ship_at: datetime | None = None
    fulfillment_channel: str | None = None
    marketplace_id: str | None = None
    tags: tuple[str, ...] = ()
    fulfillments: tuple[FulfillmentRecord, ...] | None = None
    lines: tuple[OrderLineRecord, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """A review or seller-feedback entry from a review app or marketplace."""

    source: str  # "judgeme" | "amazon_feedback"
    external_id: str
    rating: int
    created_at: datetime
    title: str | None = None
    body: str | None = None
    language: str | None = None
    reviewer_name: str | None = None
    reviewer_email: str | None = None
    product_external_id: str | None = None
    order_external_id: str | None = None
    updated_at: datetime | None = None
    # Judge.me also says which product handle/title and which platform customer a review concerns, and
    # whether it is shown: replies go only to published, visible reviews.
    product_handle: str | None = None
    product_title: str | None = None
    reviewer_external_id: str | None = None
    published: bool = True
    hidden: bool = False
    verified: str | None = None  # Judge.me: "buyer", "nothing", ...


@dataclass(frozen=True, slots=True)
class PostedReply:
    """A public reply a review app accepted."""

    review_external_id: str
    reply_external_id: str | None
    body: str
