"""Small builders for job tests: a merchant with a store, customers, products and orders."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from itertools import count
from typing import Any

from sqlalchemy.orm import Session

from plugin.flows import replenishment
from plugin.flows.base import FlowRun
from plugin.models import Customer, Merchant, Order, OrderLine, Product, Review, Store, Variant

_seq = count(1)
POSTAL_ADDRESS = "100 Main Street, Springfield IL 62701, United States"


def store(session: Session, *, platform: str = "shopify", name: str = "Shop", **kw: Any) -> Store:
    """Create a merchant and one active store."""
    merchant = Merchant(name=f"{name} Ltd", sender_email="owner@shop.test", alert_email=kw.pop("alert_email",
                                                                                              "alerts@shop.test"))
    session.add(merchant)
    session.flush()
    n = next(_seq)
    ext = f"shop{n}.myshopify.com" if platform == "shopify" else f"SELLER{n}:na"
    if platform == "shopify":
        # Marketing email needs the sender's postal address (CAN-SPAM); the billing address a shop has.
        kw.setdefault("postal_address", POSTAL_ADDRESS)
    row = Store(merchant_id=merchant.id, platform=platform, external_id=ext, name=name, **kw)
    session.add(row)
    session.flush()
    return row


def customer(session: Session, store_id: int, *, email: str | None = "", locale: str | None = "en",
             consent: bool = True, **kw: Any) -> Customer:
    """Create a customer (email defaults to a unique address; pass None for no contact access)."""
    n = next(_seq)
    row = Customer(store_id=store_id, external_id=f"gid://shopify/Customer/{n}",
                   email=f"c{n}@example.test" if email == "" else email, locale=locale,
                   marketing_consent=consent, first_name=f"C{n}", **kw)
    session.add(row)
    session.flush()
    return row


def product(session: Session, store_id: int, *, consumable: bool = True, days_of_supply: int | None = None,
            **kw: Any) -> Product:
    """Create a product with one variant."""
    n = next(_seq)
    kw.setdefault("title", f"P{n}")
    row = Product(store_id=store_id, external_id=f"gid://shopify/Product/{n}", consumable=consumable,
                  days_of_supply=days_of_supply, **kw)
    session.add(row)
    session.flush()
    session.add(Variant(store_id=store_id, product_id=row.id, external_id=f"gid://shopify/ProductVariant/{n}",
                        sku=f"SKU{n}", price=Decimal("10")))
    session.flush()
    return row


def order(session: Session, store_id: int, customer_id: int | None, created: datetime, *,
          lines: list[tuple[int, int]] = (), **kw: Any) -> Order:
    """Create an order with (product_id, quantity) lines."""
    n = next(_seq)
    kw.setdefault("total_price", Decimal("10"))
    row = Order(store_id=store_id, external_id=f"gid://shopify/Order/{n}", name=f"#{n}", customer_id=customer_id,
                created_at_remote=created, currency="USD", **kw)
    session.add(row)
    session.flush()
    for i, (product_id, qty) in enumerate(lines):
        session.add(OrderLine(order_id=row.id, store_id=store_id, external_id=f"{n}-{i}", product_id=product_id,
                              quantity=qty, price=Decimal("10")))
    session.flush()
    return row


def review(session: Session, store_id: int, *, rating: int, created: datetime, order_id: int | None = None,
           customer_id: int | None = None, body: str = "", language: str | None = "en",
           source: str = "judgeme", **kw: Any) -> Review:
    """Create a review row."""
    n = next(_seq)
    row = Review(store_id=store_id, source=source, external_id=str(n), rating=rating, body=body, language=language,
                 order_id=order_id, customer_id=customer_id, created_at_remote=created, **kw)
    session.add(row)
    session.flush()
    return row


def plan_run(session: Session, store_row: Store, settings: dict[str, Any], now: datetime) -> FlowRun:
    """Return a replenishment FlowRun whose settings are ``settings`` over the flow's declared defaults."""
    return FlowRun(session=session, config=None, store=store_row,  # type: ignore[arg-type] - unused by the step
                   settings=replenishment.FLOW.settings.load(settings), now=now)
