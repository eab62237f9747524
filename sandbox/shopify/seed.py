"""Generate a realistic, deterministic store: customers re-buying consumables on personal cycles.

Everything is drawn from one ``random.Random`` per shop, so a seed always yields the same store.
Dates are relative to ``now`` (the sandbox clock): two years of history ending at ``now``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sandbox.shopify.catalog import (
    ASCII_FOLD,
    CANCEL_REASONS,
    CITIES,
    COLLECTION_TEMPLATES,
    LOCALES,
    PRODUCT_TEMPLATES,
)
from sandbox.shopify.models import (
    Collection,
    Customer,
    Fulfillment,
    FulfillmentEvent,
    LineItem,
    Order,
    Product,
    Refund,
    Return,
    ShopPolicy,
    ShopRecord,
    Store,
    Variant,
)

HISTORY_DAYS = 730
# The policies a seeded shop has (Settings > Policies), bodies in HTML as Shopify stores them.
POLICIES = (
    ("REFUND_POLICY", "Refund policy", "refund-policy",
     "<h2>Returns</h2><p>You can return any unused item within <strong>30 days</strong> of delivery for a full "
     "refund.</p><p>Start a return by replying to your order email; we send a prepaid label.</p>"
     "<p>Refunds go back to the original payment method within 5 business days of the return arriving.</p>"),
    ("SHIPPING_POLICY", "Shipping policy", "shipping-policy",
     "<p>Orders ship from our warehouse within two business days.</p>"),
)
FIRST_ORDER_NUMBER = 1001


# Seeded carrier events take ids of their own range (no new_id: the seed's other ids stay as they were).
SEEDED_EVENT_IDS = 10**9


def _carrier_history(parcel: Fulfillment) -> None:
    """Give a seeded parcel the carrier events its dates imply (in transit, delivered) and tracking when tracked."""
    if parcel.in_transit_at is None and parcel.delivered_at is None:
        return
    parcel.tracking_company = "UPS"
    parcel.tracking_number = f"1Z999AA1{parcel.id:010d}"
    parcel.tracking_url = f"https://www.ups.com/track?tracknum={parcel.tracking_number}"
    for k, (status, when) in enumerate((("IN_TRANSIT", parcel.in_transit_at), ("DELIVERED", parcel.delivered_at))):
        if when is not None:
            parcel.events.append(FulfillmentEvent(SEEDED_EVENT_IDS + parcel.id * 10 + k, status, when, when,
                                                  parcel.estimated_delivery_at))


@dataclass(frozen=True)
class ShopSpec:
    """Which shop to seed: its myshopify domain, display name, currency and time zone."""

    domain: str
    name: str | None = None
    currency: str = "USD"
    iana_timezone: str = "America/New_York"
    country: str = "US"


def generate_store(spec: ShopSpec, seed: int, customers: int, orders: int, now: datetime,
                   shop_index: int = 0) -> Store:
    """Build one shop's store with exactly ``customers`` customers and ``orders`` orders."""
    rng = random.Random(seed * 7919 + shop_index)
    base = (shop_index + 1) * 10_000_000_000
    gen = _Generator(rng, base, now.replace(microsecond=0))
    shop = gen.shop(spec)
    products = gen.products()
    people = gen.customers(customers)
    order_list = gen.orders(people, products, orders, spec.currency)
    store = Store(shop=shop, customers=people, products=products, orders=order_list,
                  collections=_collections(shop, products))
    store.next_id = gen.next_id
    _finish_customers(store, gen.now)
    return store


def _collections(shop: ShopRecord, products: list[Product]) -> list[Collection]:
    """Return the shop's custom collections; ids derived from the shop's (no new_id, no RNG draw, so the rest of
    the seed stays what it was)."""
    by_title = {p.title: p for p in products}
    return [Collection(id=shop.id * 100 + n, title=title, handle=handle,
                       product_ids=[by_title[t].id for t in titles if t in by_title], updated_at=shop.created_at)
            for n, (title, handle, titles) in enumerate(COLLECTION_TEMPLATES, start=1)]


class _Generator:
    """Holds the RNG, the id counter and ``now`` while one store is generated."""

    def __init__(self, rng: random.Random, base_id: int, now: datetime):
        self.rng = rng
        self.next_id = base_id
        self.now = now
        self.start = now - timedelta(days=HISTORY_DAYS)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def at(self, days_after_start: float) -> datetime:
        return (self.start + timedelta(days=days_after_start)).replace(microsecond=0)

    def shop(self, spec: ShopSpec) -> ShopRecord:
        handle = spec.domain.split(".")[0]
        created = self.at(-400)
        us = spec.country == "US"
        shop = ShopRecord(id=self.new_id(), name=spec.name or handle.replace("-", " ").title(),
                          domain=spec.domain, email=f"owner@{handle}.example.com", currency=spec.currency,
                          iana_timezone=spec.iana_timezone, country=spec.country, city="Springfield",
                          created_at=created, updated_at=created, address1="100 Main Street", address2="Suite 4",
                          province="Illinois" if us else None, province_code="IL" if us else None,
                          zip="62701" if us else "10115")
        # Ids derived from the shop's (no new_id, no RNG draw): the rest of the seed stays what it was.
        shop.policies = [ShopPolicy(id=shop.id * 10 + n, type=kind, title=title, body=body,
                                    url=f"https://{spec.domain}/policies/{slug}", created_at=created)
                         for n, (kind, title, slug, body) in enumerate(POLICIES, start=1)]
        return shop

    def products(self) -> list[Product]:
        out = []
        for n, (title, ptype, vendor, days, variants) in enumerate(PRODUCT_TEMPLATES):
            created = self.at(-300 + n * 3)
            handle = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            tags = ("consumable", ptype.lower()) if days else ("durable", ptype.lower())
            product = Product(id=self.new_id(), title=title, handle=handle, product_type=ptype, vendor=vendor,
                              tags=tags, status="ACTIVE", days_of_supply=days, created_at=created,
                              updated_at=created + timedelta(days=self.rng.randint(0, 200)),
                              image_url=f"https://cdn.shopify.com/s/files/1/0000/0001/files/{handle}.jpg",
                              image_alt=f"{title}, product photo")
            prefix = "".join(w[0] for w in title.upper().split() if w[0].isalpha())[:4]
            for pos, (vtitle, cents) in enumerate(variants, start=1):
                sku = f"{prefix}-{n:02d}{pos}"
                product.variants.append(Variant(
                    id=self.new_id(), product_id=product.id, title=vtitle, sku=sku, price_cents=cents,
                    position=pos, inventory_quantity=self.rng.randint(0, 500), created_at=created,
                    updated_at=product.updated_at))
            out.append(product)
        return out

    def customers(self, count: int) -> list[Customer]:
        locales = list(LOCALES)
        weights = [LOCALES[loc][0] for loc in locales]
        out = []
        for n in range(count):
            locale = self.rng.choices(locales, weights)[0]
            _, places, firsts, lasts = LOCALES[locale]
            country, tz, _ = self.rng.choices(places, [p[2] for p in places])[0]
            first, last = self.rng.choice(firsts), self.rng.choice(lasts)
            local = f"{first}.{last}".translate(ASCII_FOLD).lower().replace(" ", "")
            if not local.isascii():
                local = "customer"
            created = self.at(self.rng.uniform(0, HISTORY_DAYS - 1))
            state, level, consent_at = self._consent(created)
            phone = f"+1555{self.rng.randint(1000000, 9999999)}" if self.rng.random() < 0.4 else None
            out.append(Customer(
                id=self.new_id(), first_name=first, last_name=last, email=f"{local}.{n + 1}@example.com",
                phone=phone, locale=locale, country=country, city=_city(country, n), time_zone=tz,
                marketing_state=state, opt_in_level=level, consent_updated_at=consent_at, tags=(), created_at=created,
                updated_at=created))
        return out

    def _consent(self, created: datetime) -> tuple[str, str | None, datetime | None]:
        roll = self.rng.random()
        if roll < 0.55:
            level = "CONFIRMED_OPT_IN" if self.rng.random() < 0.3 else "SINGLE_OPT_IN"
            return "SUBSCRIBED", level, created + timedelta(minutes=self.rng.randint(0, 600))
        if roll < 0.65:
            later = min(created + timedelta(days=self.rng.uniform(10, 300)), self.now)
            return "UNSUBSCRIBED", "SINGLE_OPT_IN", later.replace(microsecond=0)
        return "NOT_SUBSCRIBED", "SINGLE_OPT_IN", None

    def orders(self, people: list[Customer], products: list[Product], target: int,
               currency: str) -> list[Order]:
        counts = self._order_counts(len(people), target)
        consumables = [p for p in products if p.consumable]
        durables = [p for p in products if not p.consumable]
        drafts: list[tuple[datetime, Customer, list[tuple[Variant, Product, int]]]] = []
        for person, count in zip(people, counts, strict=True):
            if count:
                drafts.extend(self._timeline(person, count, consumables, durables))
        drafts.sort(key=lambda d: (d[0], d[1].id))
        out = []
        for number, (created, person, lines) in enumerate(drafts, start=FIRST_ORDER_NUMBER):
            items = [LineItem(id=self.new_id(), product_id=p.id, variant_id=v.id, sku=v.sku, title=p.title,
                              variant_title=v.title, vendor=p.vendor, quantity=q, unit_price_cents=v.price_cents)
                     for v, p, q in lines]
            order = Order(id=self.new_id(), number=number, customer_id=person.id, email=person.email,
                          customer_locale=person.locale, currency=currency, created_at=created,
                          processed_at=created, updated_at=created, line_items=items, phone=person.phone)
            self._lifecycle(order)
            out.append(order)
        return out

    def _order_counts(self, people: int, target: int) -> list[int]:
        if people == 0:
            return []
        active = [self.rng.random() >= 0.12 for _ in range(people)]
        if not any(active):
            active[0] = True
        idx = [i for i, a in enumerate(active) if a][: max(target, 1)]
        weights = {i: self.rng.expovariate(1.0) + 0.15 for i in idx}
        total_w = sum(weights.values())
        counts = [0] * people
        for i in idx:
            counts[i] = max(1, round(target * weights[i] / total_w)) if target else 0
        diff = target - sum(counts)
        while diff != 0:
            i = self.rng.choice(idx)
            if diff > 0:
                counts[i] += 1
                diff -= 1
            elif counts[i] > 1 or (counts[i] == 1 and sum(1 for j in idx if counts[j]) > target):
                counts[i] -= 1
                diff += 1
        return counts

    def _timeline(self, person: Customer, count: int, consumables: list[Product],
                  durables: list[Product]) -> list[tuple[datetime, Customer, list[tuple[Variant, Product, int]]]]:
        rng = self.rng
        staple = rng.choice(consumables)
        staple_variant = rng.choice(staple.variants)
        cycle = staple.days_of_supply * rng.uniform(0.75, 1.35)  # personal median days per unit
        qtys = [rng.choices((1, 2, 3), (80, 17, 3))[0] for _ in range(count)]
        gaps = [cycle * q * rng.lognormvariate(0.0, 0.12) for q in qtys[:-1]]
        window = HISTORY_DAYS - 1.0
        span = sum(gaps)
        if span > window * 0.95:
            scale = window * 0.95 / span
            gaps = [g * scale for g in gaps]
            span = sum(gaps)
        t = rng.uniform(0.0, window - span)
        out = []
        for j, qty in enumerate(qtys):
            lines: list[tuple[Variant, Product, int]] = [(staple_variant, staple, qty)]
            if j == 0 and rng.random() < 0.4:
                d = rng.choice(durables)
                lines.append((rng.choice(d.variants), d, 1))
            if rng.random() < 0.25:
                extra = rng.choice(consumables)
                if extra is not staple:
                    lines.append((rng.choice(extra.variants), extra, 1))
            created = self.at(t + rng.uniform(0.3, 0.9) - 0.5)
            created = min(max(created, self.start), self.now - timedelta(minutes=5))
            out.append((created, person, lines))
            if j < len(gaps):
                t += gaps[j]
        return out

    def _lifecycle(self, order: Order) -> None:
        rng, now = self.rng, self.now
        created = order.created_at
        events = [created]
        if rng.random() < 0.03:
            cancelled = created + timedelta(hours=rng.uniform(1, 30))
            if cancelled <= now:
                order.cancelled_at = cancelled.replace(microsecond=0)
                order.cancel_reason = rng.choice(CANCEL_REASONS)
                order.closed_at = order.cancelled_at
                order.refunds.append(Refund(id=self.new_id(), created_at=order.cancelled_at,
                                            amount_cents=order.total_cents, note="Order cancelled"))
                order.updated_at = order.cancelled_at
                return
        shipped = (created + timedelta(hours=rng.uniform(4, 60))).replace(microsecond=0)
        if shipped > now or (now - created < timedelta(days=2) and rng.random() < 0.5):
            return
        in_transit = shipped + timedelta(hours=rng.uniform(2, 20))
        estimated = shipped + timedelta(days=rng.randint(2, 7))
        delivered = None
        roll = rng.random()
        if roll < 0.85:
            delivered = estimated + timedelta(hours=rng.uniform(-36, 48))
            delivered = max(delivered, in_transit + timedelta(hours=12))
        elif roll < 0.93:
            estimated = in_transit = None  # shipped without carrier tracking: no dates at all
        if in_transit is not None:
            in_transit = in_transit.replace(microsecond=0)
            if in_transit > now:
                in_transit = None
        if delivered is not None:
            delivered = delivered.replace(microsecond=0)
            if delivered > now:
                delivered = None
        quantity = sum(li.quantity for li in order.line_items)
        last = delivered or in_transit or shipped
        parcel = Fulfillment(
            id=self.new_id(), status="SUCCESS", created_at=shipped, updated_at=last, in_transit_at=in_transit,
            estimated_delivery_at=estimated.replace(microsecond=0) if estimated else None,
            delivered_at=delivered, quantity=quantity, name=f"{order.name}.1")
        order.fulfillments.append(parcel)
        _carrier_history(parcel)
        events.append(last)
        after = delivered or shipped
        roll = rng.random()
        if roll < 0.02:
            when = (after + timedelta(days=rng.uniform(2, 14))).replace(microsecond=0)
            if when <= now:
                order.returns.append(Return(id=self.new_id(), name=f"{order.name}-R1", status="CLOSED",
                                            quantity=quantity, created_at=when))
                refund_at = when + timedelta(days=rng.uniform(1, 5))
                if refund_at <= now:
                    order.refunds.append(Refund(id=self.new_id(), created_at=refund_at.replace(microsecond=0),
                                                amount_cents=order.total_cents, note="Returned"))
                events.append(max(when, refund_at if refund_at <= now else when))
        elif roll < 0.06:
            when = (after + timedelta(days=rng.uniform(3, 20))).replace(microsecond=0)
            if when <= now:
                full = rng.random() < 0.6
                line = order.line_items[0]
                amount = order.total_cents if full else line.unit_price_cents
                order.refunds.append(Refund(id=self.new_id(), created_at=when, amount_cents=amount,
                                            note="Damaged in transit" if full else "Partial refund"))
                events.append(when)
        order.updated_at = max(events).replace(microsecond=0)


def _city(country: str, n: int) -> str:
    """Pick a city without drawing from the RNG, so adding cities never reshuffles a seeded store."""
    cities = CITIES.get(country, ("",))
    return cities[n % len(cities)]


def _finish_customers(store: Store, now: datetime) -> None:
    """Align customer creation, tags and updatedAt with their orders."""
    for person in store.customers:
        orders = store.customer_orders(person.id)
        if orders:
            first = orders[0].created_at
            if person.created_at > first:
                person.created_at = (first - timedelta(hours=1)).replace(microsecond=0)
                if person.consent_updated_at and person.consent_updated_at < person.created_at:
                    person.consent_updated_at = person.created_at
            spent = sum(o.total_cents - o.refunded_cents for o in orders)
            if spent > 50_000:
                person.tags = ("vip",)
            elif len(orders) > 1:
                person.tags = ("repeat",)
        stamps = [person.created_at]
        if person.consent_updated_at:
            stamps.append(person.consent_updated_at)
        if orders:
            stamps.append(orders[-1].created_at)
        person.updated_at = min(max(stamps), now)
