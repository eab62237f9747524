"""Small seeded data for the messaging tests: a merchant, a Shopify store, customers, orders and messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from plugin.messaging import outbox
from plugin.models import Customer, Merchant, Message, Order, OrderLine, Product, Store, Variant

SHOP = "calm-soaps.myshopify.com"
# The sender's postal address every marketing email carries (CAN-SPAM).
POSTAL_ADDRESS = "Calm Soaps Ltd, 4 Mill Lane, Leeds LS1 4AB, United Kingdom"


def store(session: Session, **overrides: Any) -> Store:
    """Create a merchant with sender identity and an installed Shopify store."""
    merchant = Merchant(name="Calm Soaps Ltd", sender_name="Calm Soaps", sender_email="hello@calmsoaps.example",
                        reply_to="care@calmsoaps.example", alert_email="owner@calmsoaps.example")
    session.add(merchant)
    session.flush()
    values = dict(merchant_id=merchant.id, platform="shopify", external_id=SHOP, name="Calm Soaps",
                  currency="EUR", timezone="Europe/London", primary_locale="en", country="GB",
                  installed_at=datetime(2026, 1, 1, tzinfo=UTC), postal_address=POSTAL_ADDRESS)
    values.update(overrides)
    row = Store(**values)
    session.add(row)
    session.flush()
    return row


def customer(session: Session, store_row: Store, n: int, **overrides: Any) -> Customer:
    """Create customer ``n`` (email ``c{n}@example.com``), in London by default, with marketing consent."""
    values = dict(store_id=store_row.id, external_id=f"gid://shopify/Customer/{1000 + n}", email=f"c{n}@example.com",
                  first_name=f"Kim{n}", locale="en", country="GB", time_zone="Europe/London",
                  marketing_consent=True)
    values.update(overrides)
    row = Customer(**values)
    session.add(row)
    session.flush()
    return row


def order(session: Session, store_row: Store, customer_row: Customer, n: int, products: int = 1) -> Order:
    """Create a delivered order with ``products`` lines, each a product with one variant."""
    row = Order(store_id=store_row.id, external_id=f"gid://shopify/Order/{5000 + n}", name=f"#{1000 + n}",
                customer_id=customer_row.id, created_at_remote=datetime(2026, 2, 1, tzinfo=UTC), currency="EUR",
                total_price=Decimal("25.00"), delivered_at=datetime(2026, 2, 5, tzinfo=UTC))
    session.add(row)
    session.flush()
    for i in range(products):
        product = Product(store_id=store_row.id, external_id=f"gid://shopify/Product/{700 + n * 10 + i}",
                          title=f"Soap {n}-{i}", handle=f"soap-{n}-{i}", consumable=True)
        session.add(product)
        session.flush()
        variant = Variant(store_id=store_row.id, product_id=product.id,
                          external_id=f"gid://shopify/ProductVariant/{9000 + n * 10 + i}", title="Default")
        session.add(variant)
        session.flush()
        session.add(OrderLine(order_id=row.id, store_id=store_row.id, external_id=f"line-{n}-{i}",
                              product_id=product.id, variant_id=variant.id, title=product.title, quantity=2,
                              price=Decimal("12.50")))
    session.flush()
    return row


def message(session: Session, store_row: Store, customer_row: Customer | None, *, flow: str = "review_request",
            step: str = "main", key: str | None = None, when: datetime, order_row: Order | None = None,
            marketing: bool = False, payload: dict[str, Any] | None = None, **extra: Any) -> Message:
    """Enqueue one email message through the real outbox."""
    key = key or outbox.idempotency_key(store_row.id, flow, f"c={customer_row.id if customer_row else 0}",
                                        f"o={order_row.id if order_row else 0}", f"step={step}")
    row = outbox.enqueue(session, store_id=store_row.id, flow=flow, step=step, channel=extra.pop("channel", "email"),
                         idempotency_key=key, scheduled_for=when,
                         customer_id=customer_row.id if customer_row else None,
                         order_id=order_row.id if order_row else None, marketing=marketing,
                         to_address=customer_row.email if customer_row else extra.pop("to_address", None),
                         payload=payload, **extra)
    assert row is not None
    return row


def hours(n: float) -> timedelta:
    """Shorthand for timedelta(hours=n)."""
    return timedelta(hours=n)
