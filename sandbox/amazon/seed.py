"""Seeded sellers, orders, items, returns and seller feedback: plain dataclasses, deterministic per seed.

An order carries a timeline of status changes; what the API shows is the state at the sandbox clock's
current time, so moving the clock ships orders and changes ``LastUpdateDate`` like Amazon does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from .marketplaces import CA, DE, ES, FR, IT, JP, MARKETPLACES, UK, US

HISTORY_DAYS = 120


@dataclass
class Seller:
    """A selling partner with the marketplaces it sells in."""

    seller_id: str
    name: str
    marketplace_ids: list[str]


@dataclass
class Product:
    """A listing: ASIN, SKU, title (in the marketplace's language) and price."""

    asin: str
    sku: str
    title: str
    price: Decimal


@dataclass
class OrderItem:
    """One order line."""

    order_item_id: str
    asin: str
    sku: str
    title: str
    quantity: int
    unit_price: Decimal


@dataclass
class Order:
    """An Amazon order and its status timeline ``[(when, OrderStatus), ...]`` in time order."""

    order_id: str
    seller_id: str
    marketplace_id: str
    purchase_date: datetime
    fulfillment_channel: str  # AFN (FBA) or MFN
    items: list[OrderItem]
    earliest_ship_date: datetime
    latest_ship_date: datetime
    earliest_delivery_date: datetime
    latest_delivery_date: datetime
    buyer_name: str
    buyer_email: str
    city: str
    postal_code: str
    is_prime: bool
    is_business: bool
    timeline: list[tuple[datetime, str]] = field(default_factory=list)
    delivered_at: datetime | None = None
    # Amazon omits the deliver-by window of many FBA orders (it still knows the delivery and its window).
    shows_delivery_window: bool = True
    # Raw values served in place of the rendered ones, by JSON path (a malformed amount, for tests).
    garbled: dict[tuple[str, ...], object] = field(default_factory=dict)

    @property
    def currency(self) -> str:
        """Return the marketplace's currency."""
        return MARKETPLACES[self.marketplace_id].currency

    @property
    def total(self) -> Decimal:
        """Return the order total (sum of lines)."""
        return sum((i.unit_price * i.quantity for i in self.items), Decimal("0"))

    def status_at(self, now: datetime) -> str:
        """Return the OrderStatus (v0 enum) at ``now``."""
        status = self.timeline[0][1]
        for when, value in self.timeline:
            if when <= now:
                status = value
        return status

    def last_update_at(self, now: datetime) -> datetime:
        """Return when the order last changed, as seen at ``now``: its status, or its packages' delivery."""
        changed = max(when for when, _ in self.timeline if when <= now)
        if self.delivered_by(now) and self.status_at(now) in ("Shipped", "PartiallyShipped"):
            # The packages' status turns DELIVERED then (packageStatus), which updates the order too.
            return max(changed, self.delivered_at)  # type: ignore[type-var]
        return changed

    def shipped_quantity(self, index: int, now: datetime) -> int:
        """Return how many units of line ``index`` have shipped (a partial shipment sends line 0 first)."""
        status = self.status_at(now)
        if status == "Shipped" or (status == "PartiallyShipped" and index == 0):
            return self.items[index].quantity
        return 0

    def delivered_by(self, now: datetime) -> bool:
        """Tell whether the package was delivered by ``now``."""
        return self.delivered_at is not None and self.delivered_at <= now


@dataclass
class Return:
    """A buyer return with its refund."""

    order_id: str
    order_item_id: str
    seller_id: str
    marketplace_id: str
    return_date: datetime
    reason: str
    quantity: int
    refund_amount: Decimal
    refunded_at: datetime | None


@dataclass
class Feedback:
    """Seller feedback left by a buyer (1-5 stars)."""

    seller_id: str
    marketplace_id: str
    order_id: str
    date: datetime
    rating: int
    comments: str
    response: str
    rater_email: str
    arrived_on_time: bool | None = None  # the buyer's yes/no answers on the feedback form
    item_as_described: bool | None = None
    customer_service: bool | None = None


@dataclass
class SeedData:
    """Everything the generator produced."""

    sellers: list[Seller]
    products: dict[str, list[Product]]  # marketplace id -> listings
    orders: list[Order]
    returns: list[Return]
    feedback: list[Feedback]


SELLER_PLAN = [  # (name, marketplaces): a cross-border seller, an EU+JP seller, a US-only seller
    ("Northwind Outfitters", [US, CA, UK, DE, FR, IT, ES]),
    ("Sakura Home Goods", [DE, FR, JP]),
    ("Lakeside Supplements", [US]),
]

PRODUCT_NAMES = {
    "en": ["Stainless Water Bottle 750ml", "Organic Green Tea 100 Bags", "Bamboo Toothbrush 4-Pack",
           "Vitamin D3 Softgels 120ct", "Coffee Filters No.4 (200)", "Microfiber Cloths 12-Pack"],
    "de": ["Edelstahl-Trinkflasche 750 ml", "Bio Grüntee 100 Beutel", "Bambus-Zahnbürsten 4er-Pack",
           "Vitamin D3 Kapseln 120 Stück", "Kaffeefilter Gr. 4 (200)", "Mikrofasertücher 12er-Pack"],
    "fr": ["Gourde inox 750 ml", "Thé vert bio 100 sachets", "Brosses à dents en bambou x4",
           "Vitamine D3 120 capsules", "Filtres à café n°4 (200)", "Chiffons microfibre x12"],
    "it": ["Borraccia in acciaio 750 ml", "Tè verde bio 100 bustine", "Spazzolini in bambù x4",
           "Vitamina D3 120 capsule", "Filtri caffè n.4 (200)", "Panni in microfibra x12"],
    "es": ["Botella de acero 750 ml", "Té verde ecológico 100 bolsitas", "Cepillos de bambú x4",
           "Vitamina D3 120 cápsulas", "Filtros de café n.º 4 (200)", "Paños de microfibra x12"],
    "ja": ["ステンレスボトル 750ml", "有機緑茶 ティーバッグ 100袋", "竹歯ブラシ 4本セット",
           "ビタミンD3 120粒", "コーヒーフィルター 4号 200枚", "マイクロファイバークロス 12枚"],
}
BASE_PRICES = [Decimal("19.99"), Decimal("8.49"), Decimal("6.99"), Decimal("14.95"), Decimal("4.29"),
               Decimal("12.50")]

FEEDBACK_TEXT = {  # (negative/neutral comments, positive comments) per language
    "en": (["Item arrived damaged, box crushed.", "Late delivery, took two weeks.", "Wrong item sent.",
            "Looks like a fake, not the brand I ordered.", "OK but packaging could be better."],
           ["Great seller, fast shipping!", "Exactly as described.", "Will buy again."]),
    "de": (["Ware kam beschädigt an.", "Lieferung kam zu spät.", "Falscher Artikel geliefert.",
            "Sieht aus wie eine Fälschung.", "Geht so, Verpackung mäßig."],
           ["Super Verkäufer, schnelle Lieferung!", "Wie beschrieben.", "Gerne wieder."]),
    "fr": (["Article arrivé abîmé.", "Livraison en retard.", "Mauvais article reçu.",
            "On dirait une contrefaçon.", "Correct, emballage moyen."],
           ["Vendeur au top, livraison rapide !", "Conforme à la description.", "Je recommande."]),
    "it": (["Articolo arrivato danneggiato.", "Consegna in ritardo.", "Articolo sbagliato.",
            "Sembra un falso.", "Così così, imballaggio scarso."],
           ["Ottimo venditore, spedizione veloce!", "Come descritto.", "Ricomprerò."]),
    "es": (["El artículo llegó dañado.", "Entrega con retraso.", "Me enviaron otro artículo.",
            "Parece una falsificación.", "Regular, el embalaje podría mejorar."],
           ["Gran vendedor, envío rápido.", "Tal como se describe.", "Volveré a comprar."]),
    "ja": (["商品が破損して届きました。", "配送が遅れました。", "違う商品が届きました。",
            "偽物のようです。", "普通です。梱包がいまいち。"],
           ["迅速な対応ありがとうございました。", "説明通りの商品でした。", "また購入します。"]),
}
FIRST_NAMES = ["Alex", "Maria", "Jonas", "Sophie", "Luca", "Carmen", "Yuki", "Emma", "Noah", "Lea"]
LAST_NAMES = ["Smith", "Müller", "Dubois", "Rossi", "García", "Tanaka", "Brown", "Schmidt", "Sato"]
CITIES = {US: ("Seattle", "98109"), CA: ("Toronto", "M5V 2T6"), UK: ("London", "EC1A 1BB"),
          DE: ("Berlin", "10115"), FR: ("Paris", "75001"), IT: ("Milano", "20121"),
          ES: ("Madrid", "28001"), JP: ("Tokyo", "150-0002")}
RETURN_REASONS = ["DEFECTIVE", "DAMAGED_BY_CARRIER", "NOT_AS_DESCRIBED", "UNWANTED_ITEM", "SWITCHEROO"]


def language(marketplace_id: str) -> str:
    """Return the two-letter language the marketplace's buyers write in."""
    return MARKETPLACES[marketplace_id].locale[:2]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _seller_id(rng: random.Random) -> str:
    return "A" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(13))


def _price(marketplace_id: str, base: Decimal) -> Decimal:
    if marketplace_id == JP:
        return (base * 150).quantize(Decimal("1"))
    if marketplace_id == CA:
        return (base * Decimal("1.35")).quantize(Decimal("0.01"))
    return base


def generate(seed: int, orders: int, now: datetime) -> SeedData:
    """Generate sellers and ``orders`` orders spread over the last ~120 days before ``now``."""
    rng = random.Random(seed)
    sellers = [Seller(_seller_id(rng), name, list(mps)) for name, mps in SELLER_PLAN]
    products = {
        mp: [Product("B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8)),
                     f"SKU-{MARKETPLACES[mp].country}-{i + 1:03d}", title, _price(mp, BASE_PRICES[i]))
             for i, title in enumerate(PRODUCT_NAMES[language(mp)])]
        for mp in MARKETPLACES
    }
    slots = [(s, mp) for s in sellers for mp in s.marketplace_ids]
    weights = [5 if mp == US else 2 for _, mp in slots]
    data = SeedData(sellers, products, [], [], [])
    used_ids: set[str] = set()
    for _ in range(orders):
        seller, mp = rng.choices(slots, weights)[0]
        purchase = now - timedelta(seconds=rng.randint(0, HISTORY_DAYS * 86400))
        order = make_order(rng, seller.seller_id, mp, purchase, products[mp], used_ids)
        data.orders.append(order)
        _maybe_return_and_feedback(rng, order, now, data)
    data.orders.sort(key=lambda o: (o.purchase_date, o.order_id))
    return data


def make_order(rng: random.Random, seller_id: str, mp: str, purchase: datetime,
               catalogue: list[Product], used_ids: set[str]) -> Order:
    """Build one order and its status timeline: Pending → Unshipped → (PartiallyShipped →) Shipped, or
    Pending → Canceled."""
    while True:
        order_id = f"{MARKETPLACES[mp].order_prefix}{rng.randint(1, 9)}-{_digits(rng, 7)}-{_digits(rng, 7)}"
        if order_id not in used_ids:
            used_ids.add(order_id)
            break
    purchase = purchase.replace(microsecond=0)
    afn = rng.random() < 0.55
    picks = rng.sample(catalogue, rng.choice([1, 1, 1, 2, 3]))
    items = [OrderItem(_digits(rng, 14), p.asin, p.sku, p.title, rng.choice([1, 1, 1, 2, 3]), p.price)
             for p in picks]
    ship_days = 1 if afn else rng.randint(1, 3)
    earliest_ship = purchase + timedelta(hours=4)
    latest_ship = purchase + timedelta(days=ship_days)
    earliest_delivery = (purchase + timedelta(days=ship_days + rng.randint(1, 3))).replace(
        hour=7, minute=0, second=0)
    latest_delivery = earliest_delivery + timedelta(days=rng.randint(0, 6), hours=13, minutes=59,
                                                    seconds=59)
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    city, postal = CITIES[mp]
    order = Order(order_id, seller_id, mp, purchase, "AFN" if afn else "MFN", items, earliest_ship,
                  latest_ship, earliest_delivery, latest_delivery, name,
                  f"{_digits(rng, 12)}@marketplace.{MARKETPLACES[mp].name.lower()}", city, postal,
                  afn and rng.random() < 0.7, rng.random() < 0.08)
    order.timeline.append((purchase, "Pending"))
    if rng.random() < 0.05:  # buyer cancels before shipment
        order.timeline.append((purchase + timedelta(minutes=rng.randint(5, 600)), "Canceled"))
        return order
    order.timeline.append((purchase + timedelta(minutes=rng.randint(1, 30)), "Unshipped"))
    shipped = purchase + timedelta(hours=rng.randint(6, 24 * ship_days))
    if not afn and len(items) > 1 and rng.random() < 0.2:  # the first line leaves earlier than the rest
        order.timeline.append((shipped - timedelta(hours=rng.randint(1, 5)), "PartiallyShipped"))
    order.timeline.append((shipped, "Shipped"))
    span = (latest_delivery - earliest_delivery).total_seconds()
    order.delivered_at = earliest_delivery + timedelta(seconds=int(rng.uniform(0, span) * 0.6))
    return order


def _maybe_return_and_feedback(rng: random.Random, order: Order, now: datetime, data: SeedData) -> None:
    if order.delivered_at is None or order.delivered_at > now:
        return
    if rng.random() < 0.04:
        item = order.items[0]
        when = order.delivered_at + timedelta(days=rng.randint(1, 25))
        if when <= now:
            refunded = when + timedelta(days=rng.randint(1, 5))
            data.returns.append(Return(order.order_id, item.order_item_id, order.seller_id,
                                       order.marketplace_id, when, rng.choice(RETURN_REASONS), 1,
                                       item.unit_price, refunded if refunded <= now else None))
    if rng.random() < 0.12:
        when = order.delivered_at + timedelta(days=rng.randint(1, 20), minutes=rng.randint(0, 600))
        if when <= now:
            rating = rng.choices([1, 2, 3, 4, 5], [7, 5, 8, 20, 60])[0]
            negative, positive = FEEDBACK_TEXT[language(order.marketplace_id)]
            text = rng.choice(negative if rating <= 3 else positive)
            answers = [rng.random() < 0.3 + 0.15 * rating for _ in range(3)]
            data.feedback.append(Feedback(order.seller_id, order.marketplace_id, order.order_id,
                                          when.replace(microsecond=0), rating, text, "",
                                          order.buyer_email, *answers))
