"""The demo's world: what customers and the carrier do in the Shopify store during the simulated 90 days.

The Shopify and Judge.me sandboxes are seeded at the start of the simulation, so their history ends there and
nothing in them lies in the simulated future. Every later event (an order, its shipment and delivery, a
cancellation, a Judge.me review) is made here, through the sandboxes' control methods, at the moment the
shared clock reaches it — exactly how the events would reach the app from a live store (webhooks, sync).

Each applied event is appended to a journal (plain JSON values), so a later run can rebuild the same
sandbox state by replaying it on freshly seeded sandboxes (see ``replay``).
"""

from __future__ import annotations

import heapq
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.judgeme import JudgemeSandbox
from sandbox.judgeme.texts import TEXTS
from sandbox.shopify import ShopifySandbox
from sandbox.shopify.timelines import events_for

DAY = timedelta(days=1)
# How often each scripted carrier timeline happens to a shipped parcel.
TIMELINE_WEIGHTS = {"normal": 82, "attempted_then_delivered": 6, "customs_hold": 5, "stalled": 4, "lost": 3}
HOUR = timedelta(hours=1)
# Review rating -> which kind of Judge.me sandbox text fits it.
# Why orders get cancelled in the demo (Shopify's OrderCancelReason): customers most, declined payments, fraud.
CANCEL_REASONS = ("CUSTOMER", "CUSTOMER", "CUSTOMER", "DECLINED", "DECLINED", "FRAUD", "INVENTORY")
KIND_BY_RATING = {5: "praise", 4: "praise", 3: "neutral", 2: "damaged", 1: "counterfeit"}


@dataclass(order=True)
class Event:
    """One world event due at ``at``: ``kind`` names the action, ``args`` its plain-JSON arguments."""

    at: datetime
    seq: int
    kind: str = field(compare=False)
    args: dict[str, Any] = field(compare=False, default_factory=dict)


class ShopperWorld:
    """Customers re-buying their staple consumable on personal cycles, shipments, deliveries and reviews."""

    def __init__(self, shopify: ShopifySandbox, judgeme: JudgemeSandbox, shop: str, seed: int,
                 start: datetime, end: datetime):
        self.shopify = shopify
        self.judgeme = judgeme
        self.shop = shop
        self.rng = random.Random(seed * 1_000_003 + 17)
        self.start, self.end = start, end
        self.queue: list[Event] = []
        self._seq = 0
        self.journal: list[dict[str, Any]] = []
        # customer id -> time of their next natural purchase (dropped when they reorder from a reminder).
        self.next_natural: dict[int, datetime] = {}
        self.counts = {"orders": 0, "reorders": 0, "deliveries": 0, "cancellations": 0, "reviews": 0,
                       "first orders": 0}
        # Shipped parcels per carrier timeline (sandbox/shopify/timelines.py).
        self.timelines: dict[str, int] = {}
        # The service journey's draws (first-time shoppers, cancel reasons) have their own generator, so the
        # rest of the world stays what it was for a given seed.
        self.service_rng = random.Random(seed * 7 + 3)
        self._plan_natural_purchases()
        self._plan_first_purchases()

    # -- planning ------------------------------------------------------------------------------------------
    def push(self, at: datetime, kind: str, **args: Any) -> None:
        """Schedule an event."""
        self._seq += 1
        heapq.heappush(self.queue, Event(at.replace(microsecond=0), self._seq, kind, args))

    def _plan_natural_purchases(self) -> None:
        store = self.shopify.shop_state(self.shop).store
        for person in store.customers:
            history = store.customer_orders(person.id)
            staple = self._staple(history)
            if staple is None or self.rng.random() < 0.2:  # some customers simply stop buying
                continue
            product_id, variant_id, buys = staple
            product = store.products_by_id[product_id]
            gaps = [(b[0] - a[0]).total_seconds() / 86400 / a[1] for a, b in zip(buys, buys[1:], strict=False)]
            cycle = statistics.median(gaps) if gaps else product.days_of_supply * self.rng.uniform(0.8, 1.3)
            when = buys[-1][0] + timedelta(days=cycle * buys[-1][1] * self._jitter())
            while when < self.start:
                when += timedelta(days=cycle * self._jitter())
            when = when.replace(microsecond=0)
            if when <= self.end:
                self.push(when, "natural_purchase", customer=person.id, variant=variant_id, cycle=cycle)
                self.next_natural[person.id] = when

    def _plan_first_purchases(self) -> None:
        """Some customers who never ordered place their first order during the period (the welcome's audience)."""
        store = self.shopify.shop_state(self.shop).store
        staples = [v.id for p in store.products if p.days_of_supply for v in p.variants[:1]]
        span = (self.end - self.start).total_seconds()
        for person in store.customers:
            if store.customer_orders(person.id) or not staples or self.service_rng.random() < 0.4:
                continue
            at = self.start + timedelta(seconds=self.service_rng.uniform(0.05, 0.9) * span)
            self.push(at, "purchase", customer=person.id, lines=[[self.service_rng.choice(staples), 1]],
                      first=True)

    def _staple(self, history: list[Any]) -> tuple[int, int, list[tuple[datetime, int]]] | None:
        """Return (product, variant, [(bought at, quantity)]) of the consumable a customer buys most."""
        store = self.shopify.shop_state(self.shop).store
        buys: dict[int, list[tuple[datetime, int, int]]] = {}
        for order in history:
            if order.cancelled_at is not None:
                continue
            for line in order.line_items:
                if store.products_by_id[line.product_id].days_of_supply:
                    buys.setdefault(line.product_id, []).append((order.created_at, line.quantity, line.variant_id))
        if not buys:
            return None
        product_id = max(buys, key=lambda p: (len(buys[p]), p))
        seq = sorted(buys[product_id])
        return product_id, seq[-1][2], [(at, qty) for at, qty, _ in seq]

    def _jitter(self) -> float:
        # A quarter of re-buys come early, so some planned reminders get cancelled by the reorder.
        early = 0.7 if self.rng.random() < 0.25 else 1.0
        return early * self.rng.lognormvariate(0.0, 0.1)

    # -- running ---------------------------------------------------------------------------------------------
    def due(self, now: datetime) -> int:
        """Apply every event due at or before ``now`` (the clock is at ``now``); return how many."""
        applied = 0
        while self.queue and self.queue[0].at <= now:
            event = heapq.heappop(self.queue)
            getattr(self, "_on_" + event.kind)(event)
            applied += 1
        return applied

    def reorder_from_link(self, customer_id: int, lines: list[tuple[int, int]], at: datetime) -> None:
        """A customer who followed a reorder link checks out at ``at``; their next natural re-buy moves on."""
        self.push(at, "purchase", customer=customer_id, lines=[list(line) for line in lines], reorder=True)
        natural = self.next_natural.get(customer_id)
        if natural is not None and natural - at < timedelta(days=20):
            self.next_natural[customer_id] = self.end + DAY  # their cupboard is full again

    def _on_natural_purchase(self, event: Event) -> None:
        customer = event.args["customer"]
        if self.next_natural.get(customer) != event.at:
            return  # superseded by a reorder from a reminder
        qty = self.rng.choices((1, 2), (85, 15))[0]
        self._purchase(customer, [(event.args["variant"], qty)], event.at, reorder=False)
        following = (event.at + timedelta(days=event.args["cycle"] * qty * self._jitter())).replace(microsecond=0)
        if following <= self.end:
            self.next_natural[customer] = following
            self.push(following, "natural_purchase", **event.args)

    def _on_purchase(self, event: Event) -> None:
        lines = [(int(v), int(q)) for v, q in event.args["lines"]]
        if event.args.get("first"):
            self.counts["first orders"] += 1
        self._purchase(event.args["customer"], lines, event.at, reorder=bool(event.args.get("reorder")))

    def _purchase(self, customer: int, lines: list[tuple[int, int]], at: datetime, reorder: bool) -> None:
        order = self.apply({"kind": "order", "at": at.isoformat(), "customer": customer,
                            "lines": [list(line) for line in lines]})
        self.counts["reorders" if reorder else "orders"] += 1
        if self.rng.random() < 0.03:
            self.push(at + timedelta(hours=self.rng.uniform(1, 6)), "cancel", order=order.id,
                      reason=self.service_rng.choice(CANCEL_REASONS))
            return
        shipped = (at + timedelta(hours=self.rng.uniform(6, 40))).replace(microsecond=0)
        self.push(shipped, "fulfil", order=order.id, days=self.rng.randint(3, 5))
        # The carrier's story of the parcel: one of the sandbox's scripted timelines, every case within the 90 days.
        timeline = self.rng.choices(tuple(TIMELINE_WEIGHTS), tuple(TIMELINE_WEIGHTS.values()))[0]
        self.timelines[timeline] = self.timelines.get(timeline, 0) + 1
        for step in events_for(timeline, shipped):
            if step.status == "DELIVERED":
                self.push(step.at, "deliver", order=order.id, customer=customer)
            else:
                self.push(step.at, "carrier", order=order.id, status=step.status, city=step.city,
                          country=step.country, message=step.message,
                          estimate=step.estimated_delivery_at.isoformat() if step.estimated_delivery_at else None)

    def _on_fulfil(self, event: Event) -> None:
        self.apply({"kind": "fulfil", "at": event.at.isoformat(), "order": event.args["order"],
                    "days": event.args["days"]})

    def _on_carrier(self, event: Event) -> None:
        self.apply({"kind": "carrier", "at": event.at.isoformat(), **event.args})

    def _on_cancel(self, event: Event) -> None:
        self.apply({"kind": "cancel", "at": event.at.isoformat(), "order": event.args["order"],
                    "reason": event.args.get("reason", "CUSTOMER")})
        self.counts["cancellations"] += 1

    def _on_deliver(self, event: Event) -> None:
        self.apply({"kind": "deliver", "at": event.at.isoformat(), "order": event.args["order"]})
        self.counts["deliveries"] += 1
        if self.rng.random() < 0.3:
            self.push(event.at + timedelta(days=self.rng.uniform(8, 16)), "review", order=event.args["order"],
                      customer=event.args["customer"])

    def _on_review(self, event: Event) -> None:
        store = self.shopify.shop_state(self.shop).store
        order = store.orders_by_id[event.args["order"]]
        person = store.customers_by_id[event.args["customer"]]
        product = store.products_by_id[order.line_items[0].product_id]
        rating = self.rng.choice((5, 5, 5, 5, 4, 4, 3, 2, 1))
        texts = TEXTS[KIND_BY_RATING[rating]]
        language = person.locale.split("-")[0] if person.locale.split("-")[0] in texts else "en"
        title, body = self.rng.choice(texts[language])
        self.apply({"kind": "review", "at": event.at.isoformat(), "order": order.id, "customer": person.id,
                    "product": product.id, "rating": rating, "title": title,
                    "body": body.format(product=product.title), "language": language})
        self.counts["reviews"] += 1

    # -- applying (shared with replay) -------------------------------------------------------------------------
    def apply(self, action: dict[str, Any]) -> Any:
        """Apply one journal action to the sandboxes (the clock is at its time) and journal it."""
        # Other calls (bulk operations, discount codes) also draw sandbox ids: keep the id counter in the
        # journal so a replay gives every order, line and fulfilment the id the app's database knows.
        action["next_id"] = self.shopify.shop_state(self.shop).store.next_id
        self.journal.append(action)
        return apply_action(self.shopify, self.judgeme, self.shop, action)


def apply_action(shopify: ShopifySandbox, judgeme: JudgemeSandbox, shop: str, action: dict[str, Any]) -> Any:
    """Apply one journalled action through the sandboxes' control methods."""
    at = datetime.fromisoformat(action["at"])
    kind = action["kind"]
    if "next_id" in action:
        shopify.shop_state(shop).store.next_id = action["next_id"]
    if kind == "order":
        return shopify.add_order(action["customer"], [tuple(line) for line in action["lines"]], shop=shop,
                                 created_at=at)
    if kind == "fulfil":
        return shopify.fulfil_order(action["order"], estimated_delivery_at=at + timedelta(days=action["days"]),
                                    shop=shop)
    if kind == "deliver":
        order = shopify.shop_state(shop).store.orders_by_id[action["order"]]
        if order.cancelled_at is not None or not order.fulfillments:
            return None
        return shopify.add_fulfillment_event(action["order"], "DELIVERED", at, shop=shop, city="", country="",
                                             message="Delivered")
    if kind == "carrier":
        order = shopify.shop_state(shop).store.orders_by_id[action["order"]]
        if order.cancelled_at is not None or not order.fulfillments:
            return None  # the order was cancelled before it shipped: the carrier has nothing to report
        return shopify.add_fulfillment_event(
            action["order"], action["status"], at, shop=shop, city=action.get("city"), country=action.get("country"),
            message=action.get("message"),
            estimated_delivery_at=datetime.fromisoformat(action["estimate"]) if action.get("estimate") else None)
    if kind == "cancel":
        return shopify.cancel_order(action["order"], reason=action.get("reason", "CUSTOMER"), shop=shop)
    if kind == "review":
        person = shopify.shop_state(shop).store.customers_by_id[action["customer"]]
        return judgeme.add_review(shop, product_id=action["product"], email=person.email,
                                  name=f"{person.first_name} {person.last_name[:1]}.", rating=action["rating"],
                                  title=action["title"], body=action["body"], language=action["language"],
                                  order_id=action["order"], created_at=at, customer_id=person.id)
    raise ValueError(f"unknown world action {kind!r}")


def replay(shopify: ShopifySandbox, judgeme: JudgemeSandbox, shop: str, journal: list[dict[str, Any]],
           set_time: Callable[[datetime], None]) -> int:
    """Re-apply a journal on freshly seeded sandboxes (same seed, same start) in order; return the count."""
    for action in journal:
        set_time(datetime.fromisoformat(action["at"]))
        apply_action(shopify, judgeme, shop, action)
    return len(journal)
