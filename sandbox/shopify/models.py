"""Plain records of the sandbox store (what Shopify holds), kept small with slots for 100k-order runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

GID = "gid://shopify/{}/{}"


def gid(kind: str, number: int) -> str:
    """Return Shopify's global id for a resource, e.g. ``gid://shopify/Order/1001``."""
    return GID.format(kind, number)


def money(cents: int) -> str:
    """Format integer cents as Shopify's decimal string (``"12.9"`` style is avoided: always 2 places)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


@dataclass(slots=True)
class ShopPolicy:
    """One of the shop's legal policies (Settings > Policies): its type, title, HTML body and public page."""

    id: int
    type: str
    title: str
    body: str
    url: str
    created_at: datetime

    @property
    def gid(self) -> str:
        """Return the policy's global id."""
        return gid("ShopPolicy", self.id)


@dataclass(slots=True)
class ShopRecord:
    """A shop: identity, currency and time zone."""

    id: int
    name: str
    domain: str
    email: str
    currency: str
    iana_timezone: str
    country: str
    city: str
    created_at: datetime
    updated_at: datetime
    primary_locale: str = "en"
    # The billing address (Settings > General in the Shopify admin); any part may be blank, as at Shopify.
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    province: str | None = None
    province_code: str | None = None
    zip: str | None = None
    phone: str | None = None
    # The refund policy's HTML the shop shows when it has no `policies` (None: none at all).
    refund_policy: str | None = ("<p>Returns are accepted within 30 days of delivery. Refunds go back to the "
                                 "original payment method within 5 business days of the return reaching us.</p>")
    # Settings > Policies; a shop may have none.
    policies: list[ShopPolicy] = field(default_factory=list)

    @property
    def gid(self) -> str:
        """Return the shop's global id."""
        return gid("Shop", self.id)


@dataclass(slots=True)
class Customer:
    """A customer with locale, address country/time zone and e-mail marketing consent."""

    id: int
    first_name: str
    last_name: str
    email: str
    phone: str | None
    locale: str
    country: str
    city: str
    time_zone: str
    marketing_state: str
    opt_in_level: str | None
    consent_updated_at: datetime | None
    tags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    note: str | None = None
    verified_email: bool = True
    state: str = "ENABLED"
    # Metafields by "namespace.key": (type, value), e.g. {"facts.birth_date": ("date", "1990-04-01")}.
    metafields: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def gid(self) -> str:
        """Return the customer's global id."""
        return gid("Customer", self.id)


@dataclass(slots=True)
class Variant:
    """A product variant with SKU and price."""

    id: int
    product_id: int
    title: str
    sku: str
    price_cents: int
    position: int
    inventory_quantity: int
    created_at: datetime
    updated_at: datetime

    @property
    def gid(self) -> str:
        """Return the variant's global id."""
        return gid("ProductVariant", self.id)


@dataclass(slots=True)
class Collection:
    """A custom collection: a title, a handle and the products the merchant put in it, in their order."""

    id: int
    title: str
    handle: str
    product_ids: list[int]
    updated_at: datetime

    @property
    def gid(self) -> str:
        """Return the collection's global id."""
        return gid("Collection", self.id)


@dataclass(slots=True)
class Product:
    """A product; consumables carry a typical days-of-supply per unit, durables ``None``."""

    id: int
    title: str
    handle: str
    product_type: str
    vendor: str
    tags: tuple[str, ...]
    status: str
    days_of_supply: int | None
    created_at: datetime
    updated_at: datetime
    variants: list[Variant] = field(default_factory=list)
    # The featured image (featuredMedia) and its alt text; None: the product has no media.
    image_url: str | None = None
    image_alt: str | None = None
    # False for a product sold without stock tracking (made to order, digital): never "out of stock".
    tracks_inventory: bool = True

    @property
    def consumable(self) -> bool:
        """Return True for replenishable products."""
        return self.days_of_supply is not None

    @property
    def gid(self) -> str:
        """Return the product's global id."""
        return gid("Product", self.id)


@dataclass(slots=True)
class LineItem:
    """One order line."""

    id: int
    product_id: int
    variant_id: int
    sku: str
    title: str
    variant_title: str
    vendor: str
    quantity: int
    unit_price_cents: int
    # The unit price in the buyer's currency on a multi-currency order (None: the shop's currency).
    presentment: tuple[int, str] | None = None

    @property
    def gid(self) -> str:
        """Return the line item's global id."""
        return gid("LineItem", self.id)


@dataclass(slots=True)
class FulfillmentEvent:
    """A carrier milestone of a shipment (FulfillmentEvent: ``status`` a FulfillmentEventStatus)."""

    id: int
    status: str
    happened_at: datetime
    created_at: datetime
    estimated_delivery_at: datetime | None = None
    city: str | None = None
    province: str | None = None
    country: str | None = None
    message: str | None = None

    @property
    def gid(self) -> str:
        """Return the event's global id."""
        return gid("FulfillmentEvent", self.id)


@dataclass(slots=True)
class Fulfillment:
    """A shipment with carrier dates; ``delivered_at``/``estimated_delivery_at`` may be unknown.

    ``events`` are the carrier's milestones in the order they were reported; tracking fields are None for a
    parcel shipped without carrier tracking.
    """

    id: int
    status: str
    created_at: datetime
    updated_at: datetime
    in_transit_at: datetime | None
    estimated_delivery_at: datetime | None
    delivered_at: datetime | None
    quantity: int
    tracking_company: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    events: list[FulfillmentEvent] = field(default_factory=list)
    name: str = ""

    @property
    def gid(self) -> str:
        """Return the fulfilment's global id."""
        return gid("Fulfillment", self.id)

    @property
    def display_status(self) -> str:
        """Return Shopify's FulfillmentDisplayStatus for the known carrier events."""
        if self.status == "CANCELLED":
            return "CANCELED"
        if self.delivered_at is not None:
            return "DELIVERED"
        if self.events:
            # The latest milestone the carrier reported (FulfillmentDisplayStatus names each of them).
            return max(self.events, key=lambda e: (e.happened_at, e.id)).status
        if self.in_transit_at is not None:
            return "IN_TRANSIT"
        return "FULFILLED"


@dataclass(slots=True)
class Refund:
    """A refund of part or all of an order: ``amount_cents`` in the shop's currency, ``presentment`` (cents,
    currency) in the buyer's on a multi-currency order (None: the shop's currency)."""

    id: int
    created_at: datetime
    amount_cents: int
    note: str | None
    presentment: tuple[int, str] | None = None

    @property
    def gid(self) -> str:
        """Return the refund's global id."""
        return gid("Refund", self.id)


@dataclass(slots=True)
class Return:
    """A return of order items."""

    id: int
    name: str
    status: str
    quantity: int
    created_at: datetime

    @property
    def gid(self) -> str:
        """Return the return's global id."""
        return gid("Return", self.id)


@dataclass(slots=True)
class Order:
    """An order with its lines, fulfilments, refunds and returns."""

    id: int
    number: int
    customer_id: int | None
    email: str | None
    customer_locale: str
    currency: str
    created_at: datetime
    processed_at: datetime
    updated_at: datetime
    line_items: list[LineItem]
    fulfillments: list[Fulfillment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    returns: list[Return] = field(default_factory=list)
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    closed_at: datetime | None = None
    tags: tuple[str, ...] = ()
    phone: str | None = None
    # The buyer's currency and how many of its cents one shop cent is worth; None: the shop's currency.
    # Shopify keeps every amount in both (``shopMoney``/``presentmentMoney``, REST ``shop_money``/
    # ``presentment_money``): https://shopify.dev/docs/api/admin-graphql/2025-01/objects/MoneyBag
    presentment_currency: str | None = None
    presentment_rate: Decimal = Decimal(1)

    @property
    def gid(self) -> str:
        """Return the order's global id."""
        return gid("Order", self.id)

    @property
    def buyer_currency(self) -> str:
        """Return the presentment currency (the shop's unless the buyer paid in another)."""
        return self.presentment_currency or self.currency

    def presentment(self, cents: int) -> tuple[int, str] | None:
        """Convert shop cents to (cents, currency) of the buyer at the order's rate; None on a single-currency order."""
        if self.presentment_currency is None:
            return None
        converted = int((Decimal(cents) * self.presentment_rate).quantize(Decimal(1), ROUND_HALF_UP))
        return converted, self.presentment_currency

    @property
    def name(self) -> str:
        """Return the order name shown to merchants, e.g. ``#1001``."""
        return f"#{self.number}"

    @property
    def subtotal_cents(self) -> int:
        """Return the sum of line prices."""
        return sum(li.unit_price_cents * li.quantity for li in self.line_items)

    @property
    def total_cents(self) -> int:
        """Return the order total (the sandbox charges no tax or shipping)."""
        return self.subtotal_cents

    @property
    def refunded_cents(self) -> int:
        """Return the total refunded."""
        return sum(r.amount_cents for r in self.refunds)

    @property
    def presentment_total(self) -> tuple[int, str] | None:
        """Return the order total in the buyer's currency: the sum of its lines' buyer prices (None: one currency)."""
        if self.presentment_currency is None:
            return None
        return sum((li.presentment or (li.unit_price_cents, ""))[0] * li.quantity
                   for li in self.line_items), self.presentment_currency

    @property
    def refunded_presentment(self) -> tuple[int, str] | None:
        """Return the total refunded in the buyer's currency (each refund as it was made); None: single currency."""
        if self.presentment_currency is None:
            return None
        return sum(r.presentment[0] if r.presentment else 0 for r in self.refunds), self.presentment_currency

    @property
    def financial_status(self) -> str:
        """Return Shopify's OrderDisplayFinancialStatus."""
        refunded = self.refunded_cents
        if refunded and refunded >= self.total_cents:
            return "REFUNDED"
        if refunded:
            return "PARTIALLY_REFUNDED"
        return "PAID"

    @property
    def fulfillment_status(self) -> str:
        """Return Shopify's OrderDisplayFulfillmentStatus."""
        shipped = sum(f.quantity for f in self.fulfillments if f.status == "SUCCESS")
        if shipped == 0:
            return "UNFULFILLED"
        if shipped < sum(li.quantity for li in self.line_items):
            return "PARTIALLY_FULFILLED"
        return "FULFILLED"

    @property
    def return_status(self) -> str:
        """Return Shopify's OrderReturnStatus."""
        if not self.returns:
            return "NO_RETURN"
        if any(r.status in ("OPEN", "REQUESTED") for r in self.returns):
            return "IN_PROGRESS"
        return "RETURNED"


@dataclass
class BulkOperation:
    """A bulk operation (``bulkOperationRunQuery``) and its outcome."""

    id: int
    client_id: str
    query: str
    created_at: datetime
    status: str = "CREATED"
    type: str = "QUERY"
    completed_at: datetime | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    url: str | None = None
    partial_data_url: str | None = None
    error_code: str | None = None


@dataclass
class Store:
    """Everything one shop holds, with id indexes."""

    shop: ShopRecord
    customers: list[Customer]
    products: list[Product]
    orders: list[Order]
    collections: list[Collection] = field(default_factory=list)
    customers_by_id: dict[int, Customer] = field(default_factory=dict)
    products_by_id: dict[int, Product] = field(default_factory=dict)
    variants_by_id: dict[int, Variant] = field(default_factory=dict)
    orders_by_id: dict[int, Order] = field(default_factory=dict)
    orders_by_customer: dict[int, list[Order]] = field(default_factory=dict)
    next_id: int = 0

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the id indexes after bulk changes."""
        self.customers_by_id = {c.id: c for c in self.customers}
        self.products_by_id = {p.id: p for p in self.products}
        self.variants_by_id = {v.id: v for p in self.products for v in p.variants}
        self.orders_by_id = {o.id: o for o in self.orders}
        self.orders_by_customer = {}
        for o in self.orders:
            if o.customer_id is not None:
                self.orders_by_customer.setdefault(o.customer_id, []).append(o)

    def new_id(self) -> int:
        """Return a fresh numeric id, unique within the sandbox for this shop."""
        self.next_id += 1
        return self.next_id

    def customer_orders(self, customer_id: int) -> list[Order]:
        """Return a customer's orders, oldest first."""
        return self.orders_by_customer.get(customer_id, [])

    def fulfillment_owner(self, fulfillment_id: int) -> tuple[Order, Fulfillment] | None:
        """Return the order holding a fulfilment and the fulfilment, or None (index rebuilt on a miss)."""
        index = getattr(self, "_fulfillments", None)
        if index is None or fulfillment_id not in index:
            index = {f.id: (o, f) for o in self.orders for f in o.fulfillments}
            object.__setattr__(self, "_fulfillments", index)
        return index.get(fulfillment_id)

    def add_order(self, order: Order) -> None:
        """Append a new order and index it."""
        self.orders.append(order)
        self.orders_by_id[order.id] = order
        if order.customer_id is not None:
            self.orders_by_customer.setdefault(order.customer_id, []).append(order)

    def remove_order(self, order_id: int) -> Order:
        """Delete an order from the store and its indexes (KeyError when unknown)."""
        order = self.orders_by_id.pop(order_id)
        self.orders.remove(order)
        if order.customer_id is not None:
            self.orders_by_customer[order.customer_id].remove(order)
        return order

    def remove_product(self, product_id: int) -> Product:
        """Delete a product and its variants; order lines keep their copies (title, SKU, price)."""
        product = self.products_by_id.pop(product_id)
        self.products.remove(product)
        for variant in product.variants:
            self.variants_by_id.pop(variant.id, None)
        return product

    def remove_customer(self, customer_id: int) -> Customer:
        """Delete a customer who has no orders (ValueError otherwise, as Shopify refuses it)."""
        customer = self.customers_by_id[customer_id]
        if self.orders_by_customer.get(customer_id):
            raise ValueError("Customer can't be deleted because they have orders")
        del self.customers_by_id[customer_id]
        self.customers.remove(customer)
        self.orders_by_customer.pop(customer_id, None)
        return customer
