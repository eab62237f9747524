"""The data model of DESIGN.md §3 as SQLAlchemy 2.0 typed models.

Conventions: every table has an integer surrogate key; remote objects keep their marketplace id in
``external_id`` (unique per store); timestamps are aware UTC; enumerations are strings guarded by
CHECK constraints so SQLite and PostgreSQL enforce the same rules.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from plugin.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(14, 3)
BigId = BigInteger().with_variant(Integer, "sqlite")

PLATFORMS = ("shopify", "amazon")
STORE_STATUSES = ("active", "reinstall_needed", "uninstalled")
MESSAGE_STATUSES = ("scheduled", "sending", "sent", "failed", "skipped", "cancelled")
CHANNELS = ("email", "amazon_solicitation", "amazon_message", "review_reply")
REVIEW_SOURCES = ("judgeme", "amazon_feedback", "survey")
REPLY_STATUSES = ("none", "draft", "approved", "sending", "sent", "failed")
SUPPRESSION_REASONS = ("unsubscribe", "bounce", "complaint", "redact", "manual")
# "delivery": a parcel problem (the tracking page's "something is wrong" button, a stalled parcel);
# "cancellation": a cancelled order's answer with a comment.
TICKET_SOURCES = ("review", "survey", "feedback", "manual", "delivery", "cancellation")
# A delivery problem is about the parcel, not the customer's opinion: it holds review requests until resolved.
# Every other ticket holds them for complaint_hold_days at most, so no score or review decides who is asked.
HOLD_UNTIL_RESOLVED_SOURCES = ("delivery",)
# What a severity-1 ticket's resolution gave the customer (the follow-up names it).
TICKET_REMEDIES = ("refund", "replacement", "compensation", "vip")
# Shopify's OrderCancelReason (https://shopify.dev/docs/api/admin-graphql/2025-01/enums/OrderCancelReason).
CANCEL_REASONS = ("CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER")
# The one-click answers of the cancellation question (plugin.flows.cancellation).
CANCELLATION_ANSWERS = ("found_cheaper", "ordered_by_mistake", "delivery_too_slow", "changed_mind", "other")
TICKET_STATUSES = ("open", "resolved")
SURVEY_KINDS = ("nps", "csat")
# Shopify's FulfillmentEventStatus (https://shopify.dev/docs/api/admin-graphql/2025-01/enums/FulfillmentEventStatus).
FULFILLMENT_EVENT_STATUSES = ("LABEL_PURCHASED", "LABEL_PRINTED", "READY_FOR_PICKUP", "CONFIRMED", "IN_TRANSIT",
                              "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY", "DELAYED", "DELIVERED", "FAILURE")
# Shopify's FulfillmentStatus (https://shopify.dev/docs/api/admin-graphql/2025-01/enums/FulfillmentStatus).
FULFILLMENT_STATUSES = ("PENDING", "OPEN", "SUCCESS", "CANCELLED", "ERROR", "FAILURE")
# What a customer can be told about a parcel: its event statuses, and SHIPPED (the fulfilment itself was created).
DELIVERY_MILESTONES = ("SHIPPED", *FULFILLMENT_EVENT_STATUSES)
# What stall detection finds (plugin.delivery_stalls): Shopify orders and parcels, Amazon seller-fulfilled orders.
DELIVERY_PROBLEMS = ("unfulfilled", "no_scan", "lost", "past_estimate", "attempted", "failed",
                     "amazon_late_ship", "amazon_late_delivery")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints stably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, Decimal: Money}


class TimestampMixin:
    """Row bookkeeping: when we created and last changed the row."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Merchant(TimestampMixin, Base):
    """The business that owns one or more stores and shares settings across them."""

    __tablename__ = "merchant"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    sender_name: Mapped[str | None] = mapped_column(String(255))
    sender_email: Mapped[str | None] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    alert_email: Mapped[str | None] = mapped_column(String(320))
    cac: Mapped[Decimal | None] = mapped_column(Money)
    cac_currency: Mapped[str | None] = mapped_column(String(3))
    # The brand every email carries (plugin.messaging.branding validates them): an https logo, a #rrggbb accent.
    logo_url: Mapped[str | None] = mapped_column(String(2048))
    accent_color: Mapped[str | None] = mapped_column(String(7))
    email_footer: Mapped[str | None] = mapped_column(String(500))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    stores: Mapped[list[Store]] = relationship(back_populates="merchant", passive_deletes=True)
    users: Mapped[list[AdminUser]] = relationship(back_populates="merchant", passive_deletes=True)


class AdminUser(TimestampMixin, Base):
    """A person who signs in to the standalone admin (Amazon-only sellers, self-hosters)."""

    __tablename__ = "admin_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchant.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]

    merchant: Mapped[Merchant] = relationship(back_populates="users")


class Store(TimestampMixin, Base):
    """A sales channel of a merchant: a Shopify shop or an Amazon seller account in one region."""

    __tablename__ = "store"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        CheckConstraint(_in("platform", PLATFORMS), name="platform"),
        CheckConstraint(_in("status", STORE_STATUSES), name="status"),
        CheckConstraint("region IS NULL OR region IN ('na', 'eu', 'fe')", name="region"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchant.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    # Shopify: the myshopify domain; Amazon: "<seller id>:<region>".
    external_id: Mapped[str] = mapped_column(String(255))
    region: Mapped[str | None] = mapped_column(String(4))
    marketplace_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    name: Mapped[str] = mapped_column(String(255), default="")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    primary_locale: Mapped[str] = mapped_column(String(16), default="en")
    country: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(24), default="active", server_default="active")
    # Credentials are Fernet ciphertexts (plugin.crypto); never clear text at rest.
    access_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_token_expires_at: Mapped[datetime | None]
    refresh_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token_expires_at: Mapped[datetime | None]
    review_app_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    scopes: Mapped[str] = mapped_column(Text, default="")
    protected_data_access: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # The sender's physical postal address every commercial email must carry (CAN-SPAM); defaulted from the
    # shop's billing address at install and sync until the merchant edits it (then ``postal_address_edited``).
    postal_address: Mapped[str | None] = mapped_column(String(500))
    postal_address_edited: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    installed_at: Mapped[datetime | None]
    uninstalled_at: Mapped[datetime | None]
    # The shop's refund policy (Shopify shopPolicies REFUND_POLICY: {"title", "body" (HTML), "url"}), read by the
    # sync and shown on the tracking page; NULL when the shop has none.
    refund_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Set by every install of the shop but its first (after an uninstall, a revoked grant or a shop/redact):
    # the flows message about no order from before it (plugin.flows.audience.history_cutoff).
    reinstalled_at: Mapped[datetime | None]
    # The shop's contact address and legal policies (Shop.contactEmail, Shop.shopPolicies), read at install and
    # every sync by connectors.shopify.policies: {"REFUND_POLICY": {"title", "url", "summary"}, ...}.
    contact_email: Mapped[str | None] = mapped_column(String(320))
    shop_policies: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    merchant: Mapped[Merchant] = relationship(back_populates="stores")

    @property
    def is_sending_allowed(self) -> bool:
        """Say whether any message may go out for this store right now."""
        return self.status == "active" and self.uninstalled_at is None


class Customer(TimestampMixin, Base):
    """A buyer of one store, with only the personal data the flows need."""

    __tablename__ = "customer"
    __table_args__ = (
        UniqueConstraint("store_id", "external_id"),
        Index("ix_customer_store_email", "store_id", "email"),
        # The shopping calendar groups customers by zone and country, and reads one pair at a time.
        Index("ix_customer_store_zone_country", "store_id", "time_zone", "country"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    marketing_consent_at: Mapped[datetime | None]
    # Month and day only (the year is never used); set by sync or the customer's own "tell us" page.
    birthday: Mapped[date | None] = mapped_column(Date)
    # When the customer last set it on that page: once a year, so nobody games the birthday code.
    birthday_changed_at: Mapped[datetime | None]
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    remote_created_at: Mapped[datetime | None]
    remote_updated_at: Mapped[datetime | None]
    redacted_at: Mapped[datetime | None]


class Product(TimestampMixin, Base):
    """A product with its replenishment settings: learned values beside merchant overrides."""

    __tablename__ = "product"
    __table_args__ = (
        UniqueConstraint("store_id", "external_id"),
        CheckConstraint("days_of_supply IS NULL OR days_of_supply > 0", name="days_of_supply"),
        CheckConstraint("reminder_lead_days IS NULL OR reminder_lead_days >= 0", name="lead_days"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(512), default="")
    handle: Mapped[str | None] = mapped_column(String(255))
    product_type: Mapped[str | None] = mapped_column(String(255))
    vendor: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(32))
    consumable: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Merchant's setting: days one unit lasts. The learned cycle comes from customers' re-buys.
    days_of_supply: Mapped[int | None]
    reminder_lead_days: Mapped[int | None]
    learned_cycle_days: Mapped[float | None]
    learned_cycle_samples: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The learned spread of log(days per unit): within one customer's re-buys, and between customers' own means
    # (plugin.flows.replenishment_model shrinks a customer's gaps toward the product by their ratio).
    learned_log_within_var: Mapped[float | None]
    learned_log_between_var: Mapped[float | None]
    # Set by the replenishment planner once purchase_cycle/purchase_gap hold this product's purchases.
    cycles_built: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The days of supply and lead days the stored plans of this product were computed with ("30|7"): a
    # merchant's change is seen by comparing, and replans the product's pairs.
    plan_inputs: Mapped[str | None] = mapped_column(String(64))
    # The featured image emails show wherever a flow names the product (Shopify featuredMedia).
    image_url: Mapped[str | None] = mapped_column(String(2048))
    image_alt: Mapped[str | None] = mapped_column(String(512))
    # Shopify's totalInventory and tracksInventory: recommendations never name a product out of stock.
    # NULL: not known (Amazon, or stored before these columns until the next sync).
    total_inventory: Mapped[int | None]
    tracks_inventory: Mapped[bool | None]
    remote_updated_at: Mapped[datetime | None]

    variants: Mapped[list[Variant]] = relationship(back_populates="product", passive_deletes=True)


class ProductCollection(Base):
    """A product's membership of one of the store's collections (read whole on each sync, plugin.sync.collections).

    The collection's title and handle ride along so the Guides page can offer the store's collections without
    another table; a collection with no synced product is not listed.
    """

    __tablename__ = "product_collection"
    __table_args__ = (
        UniqueConstraint("product_id", "collection_external_id"),
        Index("ix_product_collection_store_collection", "store_id", "collection_external_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    collection_external_id: Mapped[str] = mapped_column(String(255))
    collection_title: Mapped[str] = mapped_column(String(255), default="")
    collection_handle: Mapped[str | None] = mapped_column(String(255))


class Variant(TimestampMixin, Base):
    """A purchasable variant of a product (Amazon: the ASIN/SKU)."""

    __tablename__ = "variant"
    __table_args__ = (UniqueConstraint("store_id", "external_id"), Index("ix_variant_store_sku", "store_id", "sku"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(255))
    sku: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(512), default="")
    price: Mapped[Decimal | None] = mapped_column(Money)
    days_of_supply: Mapped[int | None]

    product: Mapped[Product] = relationship(back_populates="variants")


class Order(TimestampMixin, Base):
    """An order of either platform; Amazon orders carry their earliest/latest delivery dates."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("store_id", "external_id"),
        Index("ix_orders_store_customer_created", "store_id", "customer_id", "created_at_remote"),
        Index("ix_orders_store_updated", "store_id", "remote_updated_at"),
        # The replenishment planner finds the orders written since its last run (our updated_at, not Shopify's).
        Index("ix_orders_store_changed", "store_id", "updated_at"),
        Index("ix_orders_store_delivered", "store_id", "delivered_at"),
        # Review requests and surveys fall back to the fulfilment time when there is no delivery date.
        Index("ix_orders_store_fulfilled", "store_id", "fulfilled_at"),
        # Stall detection reads the store's unfulfilled orders of the last weeks (fulfilled_at IS NULL, by date).
        Index("ix_orders_store_fulfilled_created", "store_id", "fulfilled_at", "created_at_remote"),
        # The first-order welcome reads orders by creation time, the cancellation flow by cancellation time.
        Index("ix_orders_store_created", "store_id", "created_at_remote"),
        Index("ix_orders_store_cancelled", "store_id", "cancelled_at"),
        # The admin's message log and support staff look orders up by their name (#1001).
        Index("ix_orders_store_name", "store_id", "name"),
        CheckConstraint("total_price >= 0", name="total_nonnegative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    created_at_remote: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    remote_updated_at: Mapped[datetime | None]
    currency: Mapped[str] = mapped_column(String(3))
    total_price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    subtotal_price: Mapped[Decimal | None] = mapped_column(Money)
    total_refunded: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    financial_status: Mapped[str | None] = mapped_column(String(32))
    fulfillment_status: Mapped[str | None] = mapped_column(String(32))
    cancelled_at: Mapped[datetime | None]
    # Shopify's OrderCancelReason (CANCEL_REASONS); NULL when not cancelled or not told (Amazon).
    cancel_reason: Mapped[str | None] = mapped_column(String(16))
    refunded: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    returned: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    fulfilled_at: Mapped[datetime | None]
    estimated_delivery_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    earliest_delivery_at: Mapped[datetime | None]
    latest_delivery_at: Mapped[datetime | None]
    # Amazon's ship-by bound (shipByWindow.latestDateTime): estimates when orders without a deliver-by window arrive.
    latest_ship_at: Mapped[datetime | None]
    fulfillment_channel: Mapped[str | None] = mapped_column(String(8))
    marketplace_id: Mapped[str | None] = mapped_column(String(32))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # fulfilled_at, delivered_at and (Shopify) estimated_delivery_at follow the order's parcels (Parcel,
    # plugin.sync.parcels): delivered once the last parcel that ships has arrived.

    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", passive_deletes=True,
                                                  order_by="OrderLine.id")
    parcels: Mapped[list[Parcel]] = relationship(order_by="Parcel.id", viewonly=True)

    @property
    def is_cancelled(self) -> bool:
        """Say whether the order was cancelled."""
        return self.cancelled_at is not None


class OrderLine(Base):
    """One line of an order."""

    __tablename__ = "order_line"
    __table_args__ = (
        UniqueConstraint("order_id", "external_id"),
        Index("ix_order_line_store_product", "store_id", "product_id"),
        CheckConstraint("quantity >= 0", name="quantity"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="SET NULL"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variant.id", ondelete="SET NULL"))
    sku: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(512), default="")
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))

    order: Mapped[Order] = relationship(back_populates="lines")


class Parcel(TimestampMixin, Base):
    """One Shopify fulfilment of an order (a parcel): tracking, where it stands, and when it shipped and arrived.

    The single record of an order's parcels: the order's ``fulfilled_at``/``delivered_at``/
    ``estimated_delivery_at`` follow from its parcels (``connectors.delivery``). ``status`` is the parcel's
    latest carrier milestone (the event with the latest ``happened_at``), NULL until the carrier reports one.
    """

    __tablename__ = "parcel"
    __table_args__ = (
        UniqueConstraint("store_id", "fulfillment_gid"),
        # Stall detection walks a store's undelivered parcels by how long they have been silent.
        Index("ix_parcel_store_delivered_last_event", "store_id", "delivered_at", "last_event_at"),
        # Incremental stall detection reads the parcels changed since its last run (as orders: ix_orders_store_changed).
        Index("ix_parcel_store_changed", "store_id", "updated_at"),
        CheckConstraint("status IS NULL OR " + _in("status", FULFILLMENT_EVENT_STATUSES), name="status"),
        CheckConstraint(_in("fulfillment_status", FULFILLMENT_STATUSES), name="fulfillment_status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    # gid://shopify/Fulfillment/<id>
    fulfillment_gid: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(64))
    fulfillment_status: Mapped[str] = mapped_column(String(16), default="SUCCESS", server_default="SUCCESS")
    status: Mapped[str | None] = mapped_column(String(24))
    tracking_company: Mapped[str | None] = mapped_column(String(255))
    tracking_number: Mapped[str | None] = mapped_column(String(255))
    tracking_url: Mapped[str | None] = mapped_column(String(2048))
    estimated_delivery_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    last_event_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    # Shopify's Fulfillment.updatedAt of the newest report applied (older reports never overwrite tracking).
    remote_updated_at: Mapped[datetime | None]
    # When the sync last read this parcel's events (it reads them again once Shopify's updatedAt moves past).
    events_synced_at: Mapped[datetime | None]

    events: Mapped[list[ParcelEvent]] = relationship(back_populates="parcel", passive_deletes=True,
                                                     order_by="(ParcelEvent.happened_at, ParcelEvent.id)")


class ParcelEvent(Base):
    """One carrier milestone of a parcel as Shopify reports it (FulfillmentEvent); stored once per event id."""

    __tablename__ = "parcel_event"
    __table_args__ = (
        # A replayed webhook or a re-sync finds the event already stored and changes nothing.
        UniqueConstraint("store_id", "event_gid"),
        Index("ix_parcel_event_parcel_happened", "parcel_id", "happened_at"),
        CheckConstraint(_in("status", FULFILLMENT_EVENT_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcel.id", ondelete="CASCADE"))
    # gid://shopify/FulfillmentEvent/<id>
    event_gid: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(24))
    happened_at: Mapped[datetime]
    estimated_delivery_at: Mapped[datetime | None]
    city: Mapped[str | None] = mapped_column(String(255))
    province: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    parcel: Mapped[Parcel] = relationship(back_populates="events")


class ParcelNotice(Base):
    """That the customer was (or is being) told of one milestone of one parcel: never twice for the pair."""

    __tablename__ = "parcel_notice"
    __table_args__ = (
        UniqueConstraint("parcel_id", "milestone"),
        CheckConstraint(_in("milestone", DELIVERY_MILESTONES), name="milestone"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcel.id", ondelete="CASCADE"))
    milestone: Mapped[str] = mapped_column(String(24))
    # The idempotency key of the delivery-update email that carries it (message_id is filled from it).
    message_key: Mapped[str | None] = mapped_column(String(255))
    # The delivery-update email that carries it (several milestones arriving together share one).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class DeliveryOptOut(Base):
    """An address that turned delivery updates off (one click) while still getting other transactional mail."""

    __tablename__ = "delivery_optout"
    __table_args__ = (UniqueConstraint("store_id", "email"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    # Stored lower-cased, like suppression.email.
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class DeliveryProblem(Base):
    """A delivery problem of an order or parcel, with the ticket it opened; one unresolved per subject and kind.

    ``subject`` is ``parcel=<id>`` or ``order=<id>``: unique with the store and the kind among the unresolved rows,
    it is what makes detection idempotent (a re-run finds the row and opens nothing), even when two runs race.
    ``resolved_at`` is set when the cause went away (plugin.delivery_stalls.resolve_gone); the same parcel stalling
    again later is a new problem with its own ticket. A ticket the merchant closed while the cause stays keeps its
    row unresolved, so nothing reopens it every hour.
    """

    __tablename__ = "delivery_problem"
    __table_args__ = (
        Index("ux_delivery_problem_unresolved", "store_id", "problem", "subject", unique=True,
              sqlite_where=text("resolved_at IS NULL"), postgresql_where=text("resolved_at IS NULL")),
        Index("ix_delivery_problem_store_detected", "store_id", "detected_at"),
        CheckConstraint(_in("problem", DELIVERY_PROBLEMS), name="problem"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    problem: Mapped[str] = mapped_column(String(24))
    subject: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    parcel_id: Mapped[int | None] = mapped_column(ForeignKey("parcel.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"), unique=True)
    detected_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class DeliveryStallState(Base):
    """What a store's last stall detection ran under: a change of thresholds, calendar or estimates recomputes all."""

    __tablename__ = "delivery_stall_state"

    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), primary_key=True)
    # A digest of the thresholds, the calendar (country, zone) and the stored transit estimates.
    fingerprint: Mapped[str] = mapped_column(String(64))
    checked_at: Mapped[datetime]
    # The high-water mark: the next run also reads the orders and parcels whose updated_at (the database's clock)
    # is at or after it (the start of this run, less an overlap for transactions that commit late).
    changed_since: Mapped[datetime]


class StallCheck(Base):
    """When stall detection must look at an order (kind "o") or parcel ("p") again: the moment it would stall.

    Only rows that can stall have one (most orders are fulfilled, most parcels delivered); a narrow table of its own,
    so that writing thousands of moments touches neither the wide orders and parcel rows nor their indexes. No
    foreign key: an entry of a deleted row finds nothing when it comes due and is dropped.
    """

    __tablename__ = "stall_check"
    __table_args__ = (Index("ix_stall_check_store_due", "store_id", "kind", "check_at"),)

    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    subject_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    check_at: Mapped[datetime]


class TransitEstimate(Base):
    """A store's transit days to one destination country with one carrier: median and 90th percentile.

    Recomputed daily from the store's delivered parcels (plugin.delivery_estimates.refresh) so that the tracking
    page and hourly stall detection read a handful of rows instead of ranking months of deliveries.
    """

    __tablename__ = "transit_estimate"

    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), primary_key=True)
    # "" when unknown (the customer has no country, the parcel no carrier).
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(255), primary_key=True)
    median_days: Mapped[float] = mapped_column(Double)
    p90_days: Mapped[float] = mapped_column(Double)
    samples: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime]


class Review(TimestampMixin, Base):
    """A product review (Judge.me), an Amazon seller-feedback entry, or a survey comment."""

    __tablename__ = "review"
    __table_args__ = (
        UniqueConstraint("store_id", "source", "external_id"),
        Index("ix_review_store_created", "store_id", "created_at_remote"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
        CheckConstraint(_in("source", REVIEW_SOURCES), name="source"),
        CheckConstraint(_in("reply_status", REPLY_STATUSES), name="reply_status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(24))
    external_id: Mapped[str] = mapped_column(String(255))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="SET NULL"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(String(512))
    body: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    reviewer_name: Mapped[str | None] = mapped_column(String(255))
    created_at_remote: Mapped[datetime]
    reply_body: Mapped[str | None] = mapped_column(Text)
    reply_status: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    replied_at: Mapped[datetime | None]


class SurveyResponse(Base):
    """An NPS (0-10) or CSAT (1-5) answer, with an optional comment."""

    __tablename__ = "survey_response"
    __table_args__ = (
        UniqueConstraint("store_id", "order_id", "kind"),
        CheckConstraint(_in("kind", SURVEY_KINDS), name="kind"),
        CheckConstraint("(kind = 'nps' AND score BETWEEN 0 AND 10) OR (kind = 'csat' AND score BETWEEN 1 AND 5)",
                        name="score"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    # The detractor ticket this answer opened (the answer points at the ticket, not the other way,
    # so message -> ticket and survey_response -> message never form a cycle).
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime]


class Ticket(TimestampMixin, Base):
    """A complaint to resolve, with a severity and an SLA clock."""

    __tablename__ = "ticket"
    __table_args__ = (
        Index("ix_ticket_store_status_due", "store_id", "status", "sla_due_at"),
        CheckConstraint("severity BETWEEN 1 AND 3", name="severity"),
        CheckConstraint(_in("source", TICKET_SOURCES), name="source"),
        CheckConstraint(_in("status", TICKET_STATUSES), name="status"),
        CheckConstraint("remedy IS NULL OR " + _in("remedy", TICKET_REMEDIES), name="remedy"),
        # The complaint follow-through finds resolved tickets by resolution time.
        Index("ix_ticket_store_resolved", "store_id", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    review_id: Mapped[int | None] = mapped_column(ForeignKey("review.id", ondelete="SET NULL"), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    severity: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(512), default="")
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    opened_at: Mapped[datetime]
    sla_due_at: Mapped[datetime]
    sla_alerted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    # What the store changed, in words for the customer (the +7-day follow-up quotes it).
    resolution: Mapped[str | None] = mapped_column(Text)
    # Severity 1: what the customer was given (refund, replacement, compensation, vip).
    remedy: Mapped[str | None] = mapped_column(String(16))

    notes: Mapped[list[TicketNote]] = relationship(back_populates="ticket", passive_deletes=True,
                                                   order_by="TicketNote.id")


class CancellationAnswer(Base):
    """Why a customer cancelled an order: a one-click reason from the cancellation email, an optional comment."""

    __tablename__ = "cancellation_answer"
    __table_args__ = (
        UniqueConstraint("store_id", "order_id"),
        Index("ix_cancellation_answer_store_answered", "store_id", "answered_at"),
        CheckConstraint(_in("reason", CANCELLATION_ANSWERS), name="reason"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(24))
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime]


GUIDE_TARGETS = ("product", "collection", "product_type")


class GuideBlock(TimestampMixin, Base):
    """A usage guide or care tip the merchant wrote for a product or a product type, in one or more languages.

    ``texts`` maps a locale to ``{"title": ..., "html": ...}`` (the HTML sanitised on save, plugin.guides);
    images and the video link are the same in every language. ``target`` is the product's id (as text) for a
    ``product`` block, the collection's id (as text) for a ``collection`` block, the product type as Shopify
    spells it for a ``product_type`` block.
    """

    __tablename__ = "guide_block"
    __table_args__ = (
        CheckConstraint(_in("target_kind", GUIDE_TARGETS), name="target_kind"),
        CheckConstraint("days_after_delivery >= 0", name="days_after_delivery"),
        Index("ix_guide_block_store_target", "store_id", "target_kind", "target"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255), default="")
    target_kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(255))
    texts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    image_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    video_url: Mapped[str | None] = mapped_column(String(2048))
    days_after_delivery: Mapped[float] = mapped_column(Double, default=2, server_default="2")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # The shipped starter text the block began from (textiles, skincare, coffee, supplements), if any.
    starter: Mapped[str | None] = mapped_column(String(32))


class TicketNote(Base):
    """A follow-up note on a ticket (what was done, what was promised)."""

    __tablename__ = "ticket_note"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(255), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    ticket: Mapped[Ticket] = relationship(back_populates="notes")


class Message(TimestampMixin, Base):
    """The outbox and the audit log in one: every outgoing action, sent or not, and why."""

    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_status_scheduled", "status", "scheduled_for"),
        Index("ix_message_store_customer_sent", "store_id", "customer_id", "sent_at"),
        Index("ix_message_store_flow_created", "store_id", "flow", "created_at"),
        Index("ix_message_order", "order_id"),
        # Survey follow-ups look up the messages of a ticket.
        Index("ix_message_ticket", "ticket_id"),
        CheckConstraint(_in("status", MESSAGE_STATUSES), name="status"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint("attempts >= 0", name="attempts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    review_id: Mapped[int | None] = mapped_column(ForeignKey("review.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="SET NULL"))
    flow: Mapped[str] = mapped_column(String(48))
    step: Mapped[str] = mapped_column(String(48), default="main")
    channel: Mapped[str] = mapped_column(String(24))
    marketing: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    locale: Mapped[str | None] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    scheduled_for: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="scheduled", server_default="scheduled")
    skip_reason: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    to_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(998))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # RFC 5322 Message-ID (email) or the marketplace's id for the action.
    provider_id: Mapped[str | None] = mapped_column(String(255), index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None]
    # Set by the dispatcher's last check, in the same transaction that passed it, just before the channel gets
    # the message: an action that commits earlier finds it unset and cancels the row (plugin/messaging/handover.py).
    handed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]
    converted_at: Mapped[datetime | None]
    conversion_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))


class Suppression(Base):
    """An address no flow may email again for this store (unsubscribe, bounce, complaint, redaction)."""

    __tablename__ = "suppression"
    __table_args__ = (
        UniqueConstraint("store_id", "email"),
        CheckConstraint(_in("reason", SUPPRESSION_REASONS), name="reason"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    # Stored lower-cased; redacted customers leave a SHA-256 of the address, not the address.
    email: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class FlowSettings(TimestampMixin, Base):
    """A store's settings for one flow; missing keys fall back to app.toml's [flows.*] defaults."""

    __tablename__ = "flow_settings"
    __table_args__ = (UniqueConstraint("store_id", "flow"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    flow: Mapped[str] = mapped_column(String(48))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Template(TimestampMixin, Base):
    """A merchant-edited template for one flow step and locale (shipped defaults live in files)."""

    __tablename__ = "template"
    __table_args__ = (UniqueConstraint("store_id", "flow", "step", "locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    flow: Mapped[str] = mapped_column(String(48))
    step: Mapped[str] = mapped_column(String(48), default="main")
    locale: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)


class SyncState(Base):
    """Where a stream of a store's sync stands: cursor, last success, last error."""

    __tablename__ = "sync_state"
    __table_args__ = (UniqueConstraint("store_id", "stream"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(64))
    cursor: Mapped[str | None] = mapped_column(String(255))
    bulk_operation_id: Mapped[str | None] = mapped_column(String(255))
    last_started_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    records_synced: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class SyncRejection(Base):
    """A remote record a sync could not read (one row per record): why, and when it was last seen so.

    The sync goes on without it; the row goes away once the record reads cleanly again.
    """

    __tablename__ = "sync_rejection"
    __table_args__ = (UniqueConstraint("store_id", "stream", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    times_seen: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class RateBucket(Base):
    """One SP-API operation's token bucket for one seller, shared by every run and process (Amazon meters the seller).

    ``updated_at`` is seconds since the epoch on the jobs' clock, so one atomic UPDATE can refill and take.
    """

    __tablename__ = "rate_bucket"

    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), primary_key=True)
    operation: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double)
    rate: Mapped[float] = mapped_column(Double)
    burst: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[float] = mapped_column(Double)


class LwaAccessToken(Base):
    """A seller's current LWA access token (Fernet ciphertext), reused by every run until shortly before expiry.

    ``cache_key`` names the app and refresh token it was issued for: a reconnected seller never gets the old one.
    """

    __tablename__ = "lwa_access_token"

    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(128))
    token_enc: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime]


class WebhookEvent(Base):
    """A received webhook, stored on arrival and processed later; unique per Shopify webhook id."""

    __tablename__ = "webhook_event"
    __table_args__ = (Index("ix_webhook_event_pending", "processed_at", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), index=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    webhook_id: Mapped[str] = mapped_column(String(255), unique=True)
    event_id: Mapped[str | None] = mapped_column(String(255), index=True)
    topic: Mapped[str] = mapped_column(String(64))
    api_version: Mapped[str | None] = mapped_column(String(16))
    triggered_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set when the event will not be tried again (a body that can never be applied, or retries used up);
    # last_error then says why. The admin lists these (plugin/admin/webhooks.py).
    failed_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ComplianceRequest(Base):
    """A GDPR/CCPA request from Shopify's compliance webhooks and what we did about it."""

    __tablename__ = "compliance_request"
    __table_args__ = (
        CheckConstraint("kind IN ('customers/data_request', 'customers/redact', 'shop/redact')", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("store.id", ondelete="SET NULL"), index=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    customer_external_id: Mapped[str | None] = mapped_column(String(255))
    requested_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    # The export for data requests (what we hold about the customer); never personal data for redactions.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CustomerMetrics(Base):
    """Per-customer analytics recomputed by a job and read by the admin."""

    __tablename__ = "customer_metrics"
    __table_args__ = (
        # customer_id last: the admin lists a segment newest-first straight from the index.
        Index("ix_customer_metrics_store_segment", "store_id", "segment", "customer_id"),
        CheckConstraint("r_score IS NULL OR r_score BETWEEN 1 AND 5", name="r_score"),
        CheckConstraint("f_score IS NULL OR f_score BETWEEN 1 AND 5", name="f_score"),
        CheckConstraint("m_score IS NULL OR m_score BETWEEN 1 AND 5", name="m_score"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    spent_12m: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    orders_12m: Mapped[int] = mapped_column(Integer, default=0)
    largest_order: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    first_order_at: Mapped[datetime | None]
    last_order_at: Mapped[datetime | None]
    r_score: Mapped[int | None]
    f_score: Mapped[int | None]
    m_score: Mapped[int | None]
    segment: Mapped[str | None] = mapped_column(String(32))
    predicted_next_order_at: Mapped[datetime | None]
    clv: Mapped[Decimal | None] = mapped_column(Money)
    computed_at: Mapped[datetime]


class StoreMetrics(Base):
    """Per-store overview aggregates written by the metrics jobs, so the admin never scans orders."""

    __tablename__ = "store_metrics"

    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), primary_key=True)
    # Counts only (see plugin.store_figures): repurchase, cohort cells, orders per month, flow outcomes.
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime]


class PurchaseCycle(Base):
    """Replenishment state of one customer x consumable product, kept current by plugin.flows.replenishment_plan.

    Derived from the orders (never edited by hand): the latest purchase, and the customer's own median
    gap in days per unit (NULL until they re-bought). Times are fractional days since 1970-01-01 UTC,
    the unit the planner computes run-outs in. Only the store is a foreign key (per-row checks of the
    others tripled a full build): deleting an order or a product (plugin.webhooks.deletions) updates
    these rows itself, and customers are never deleted, only erased.
    """

    __tablename__ = "purchase_cycle"
    __table_args__ = (Index("ix_purchase_cycle_store_product", "store_id", "product_id"),
                      Index("ix_purchase_cycle_store_due", "store_id", "due_day"))

    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    last_order_id: Mapped[int] = mapped_column(BigId, index=True)
    last_purchase_day: Mapped[float]
    last_quantity: Mapped[int] = mapped_column(Integer)
    variant_id: Mapped[int | None] = mapped_column(BigId)
    subscription: Mapped[bool] = mapped_column(Boolean)
    own_cycle_days: Mapped[float | None]
    gap_count: Mapped[int] = mapped_column(Integer)
    # The pair's first purchase (recency and frequency for the still-active probability) and the range of its
    # own gaps per unit (the reason the customer page gives).
    first_purchase_day: Mapped[float | None]
    own_min_gap: Mapped[float | None]
    own_max_gap: Mapped[float | None]
    # The stored plan (plugin.flows.replenishment_plan, "Stored plans"): the model's cycle per unit, log-normal
    # centre (quantity included) and spread, the lead days, the learned median and days of supply it used (the
    # reason's inputs), the predicted run-out, the reminder day (the best window's start), the probability as of
    # the plan's reference day, and the day from which the hourly run looks at the pair (NULL: not until the
    # next refit, or no cycle at all).
    plan_cycle_days: Mapped[float | None]
    plan_mu: Mapped[float | None]
    plan_sd: Mapped[float | None]
    plan_lead_days: Mapped[float | None]
    plan_learned: Mapped[float | None]
    plan_supply: Mapped[int | None] = mapped_column(Integer)
    run_out_day: Mapped[float | None]
    remind_day: Mapped[float | None]
    plan_probability: Mapped[float | None]
    due_day: Mapped[float | None]


class ReplenishmentFit(Base):
    """A store's fitted MBG/NBD parameters (r, alpha, a, b; days), written by the daily replenishment learning."""

    __tablename__ = "replenishment_fit"

    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), primary_key=True)
    r: Mapped[float]
    alpha: Mapped[float]
    a: Mapped[float]
    b: Mapped[float]
    pairs: Mapped[int] = mapped_column(Integer)
    log_likelihood: Mapped[float]
    fitted_at: Mapped[datetime]


class PurchaseGap(Base):
    """One re-buy of a consumable: days per unit from a purchase (``order_id``) to the customer's next one.

    Indexed by product and gap so a product's median is an index-ordered pick, not a sort of every gap.
    """

    __tablename__ = "purchase_gap"
    __table_args__ = (Index("ix_purchase_gap_store_product_gap", "store_id", "product_id", "gap"),)

    order_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    gap: Mapped[float]


class DeletedRecord(Base):
    """A tombstone: an object deleted in the platform, so a late copy of it (a retried webhook) is not re-added."""

    __tablename__ = "deleted_record"
    __table_args__ = (CheckConstraint("kind IN ('order', 'product')", name="kind"),)

    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    deleted_at: Mapped[datetime]


# The name of the active scheduler's lease row (jobs/schedule.py takes it; /metrics and `aftercare check` read it).
SCHEDULER_LEASE = "scheduler"


class SchedulerLease(Base):
    """A named lease held by one process at a time (the active scheduler)."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class MetricCounter(Base):
    """One operator counter (job runs, marketplace API calls) summed by every process that adds to it.

    Kept in the database rather than in process memory so `/metrics` shows one total however many gunicorn
    workers, schedulers and Celery workers there are (plugin/ops_counters.py adds, plugin/metrics.py reads).
    ``labels`` is the canonical ``k=v,k=v`` text of the series' labels, sorted by name.
    """

    __tablename__ = "metric_counter"

    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    labels: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[float] = mapped_column(Double, default=0.0)


class ProductRecommendation(Base):
    """"Customers who bought X also bought Y": one store's item-to-item co-purchase pairs, rebuilt daily.

    Written by plugin.recommendations (set-based SQL). ``co_customers`` bought both X and Y; ``lift`` is how
    much likelier a buyer of X is to buy Y than a customer at large (co_customers x customers / (buyers of X x
    buyers of Y)); ``rank`` orders the Ys of one X (1 = best). Only the store is a foreign key: the table is
    replaced whole on each run, and a deleted product simply drops out at the next one.
    """

    __tablename__ = "product_recommendation"
    __table_args__ = (Index("ix_product_recommendation_store_rank", "store_id", "product_id", "rank"),)

    product_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recommended_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    co_customers: Mapped[int] = mapped_column(Integer)
    lift: Mapped[float] = mapped_column(Double)
    rank: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime]


class VipMember(Base):
    """A customer's time in the VIP segment (the merchant's segment rules) and whether Shopify carries their tag.

    Kept by plugin.flows.vip from ``customer_metrics.segment``: ``entered_at`` when they last entered, ``left_at``
    once they left (NULL while VIP). ``tagged`` says whether the store's VIP tag is on the Shopify customer
    (``tagsAdd`` / ``tagsRemove``); the job brings it in line with ``left_at`` and keeps the last refusal.
    """

    __tablename__ = "vip_member"
    __table_args__ = (Index("ix_vip_member_store_left", "store_id", "left_at"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    entered_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    tagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    tag: Mapped[str | None] = mapped_column(String(255))
    tag_error: Mapped[str | None] = mapped_column(Text)


class ShoppingEvent(TimestampMixin, Base):
    """A store's edit of its shopping calendar (plugin.shopping_calendar): a default event changed, or its own.

    ``key`` names a shipped default (``black_friday``) whose computed date and countries this row overlays, or the
    merchant's own event (any other key, then ``title``, ``on_date`` and ``countries`` are required). NULL fields
    keep the default. ``on_date`` moves a default in that date's year only (Prime Day once Amazon announces it);
    for an own event it is the date, every year on the same month and day when ``yearly``.
    """

    __tablename__ = "shopping_event"
    __table_args__ = (
        UniqueConstraint("store_id", "key"),
        CheckConstraint("discount_percent IS NULL OR discount_percent BETWEEN 0 AND 100", name="discount_percent"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(255))
    countries: Mapped[list[str] | None] = mapped_column(JSON)
    segments: Mapped[list[str] | None] = mapped_column(JSON)
    discount_percent: Mapped[int | None] = mapped_column(Integer)
    on_date: Mapped[date | None] = mapped_column(Date)
    yearly: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
