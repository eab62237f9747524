"""Small, fully known data for the admin tests: two merchants, each with its stores, customers, orders,
reviews, tickets and messages. Every figure a test checks is derivable by hand from this file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from plugin.analytics import SegmentRules, refresh_customer_metrics
from plugin.crypto import Vault
from plugin.models import (
    Customer,
    Merchant,
    Message,
    Order,
    OrderLine,
    Product,
    Review,
    Store,
    Suppression,
    Ticket,
)
from plugin.secrets_store import set_credential

SHOP_A = "alpha-store.myshopify.com"
SHOP_B = "bravo-store.myshopify.com"


@dataclass
class Tenant:
    """Ids of one merchant's seeded rows."""

    merchant_id: int
    shop: str
    store_id: int
    amazon_store_id: int | None = None
    customers: list[int] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    product_id: int = 0
    draft_review_id: int = 0
    feedback_review_id: int = 0
    ticket_id: int = 0
    guide_block_id: int = 0
    messages: dict[str, int] = field(default_factory=dict)


def _store(session: Session, vault: Vault, merchant: Merchant, shop: str, now: datetime) -> Store:
    store = Store(merchant_id=merchant.id, platform="shopify", external_id=shop, name=shop.split(".")[0].title(),
                  currency="USD", timezone="America/New_York", primary_locale="en", country="US",
                  status="active", installed_at=now - timedelta(days=400), marketplace_ids=[],
                  postal_address="100 Main Street, Springfield IL 62701, United States")
    set_credential(store, vault, "access_token_enc", "shpat_test_" + shop[:5])
    session.add(store)
    session.flush()
    return store


def seed_tenant(session: Session, vault: Vault, now: datetime, shop: str, *, with_amazon: bool = False,
                alert_email: str | None = "owner@example.com") -> Tenant:
    """Create one merchant with a Shopify store (and optionally an Amazon store) and known activity.

    Customers (Shopify store), first orders relative to ``now``:
      c0: orders at -200 d and -150 d (repeat within 90 days), 2 × 150.00
      c1: order at -120 d only, 80.00
      c2: orders at -100 d, -60 d, -30 d, -10 d, 4 × 150.00 (VIP: 600 in 12 months, 4 orders)
      c3: order at -20 d, 250.00 (too recent for the 90-day rate; growth)
    """
    merchant = Merchant(name=shop.split(".")[0].title() + " Inc", settings={}, alert_email=alert_email)
    session.add(merchant)
    session.flush()
    store = _store(session, vault, merchant, shop, now)
    tenant = Tenant(merchant_id=merchant.id, shop=shop, store_id=store.id)
    product = Product(store_id=store.id, external_id=f"gid://shopify/Product/{store.id}01", title="Lavender soap",
                      consumable=True, days_of_supply=30)
    session.add(product)
    session.flush()
    tenant.product_id = product.id
    plan = [(0, [200, 150], "150.00"), (1, [120], "80.00"), (2, [100, 60, 30, 10], "150.00"), (3, [20], "250.00")]
    for index, days, amount in plan:
        customer = Customer(store_id=store.id, external_id=f"{store.id}{index:03d}", email=f"c{index}@{shop}",
                            first_name=f"Cust{index}", locale="en", country="US", marketing_consent=index != 1,
                            tags=[])
        session.add(customer)
        session.flush()
        tenant.customers.append(customer.id)
        for n, ago in enumerate(days):
            order = Order(store_id=store.id, external_id=f"{customer.id}-{n}", name=f"#{1000 + customer.id * 10 + n}",
                          customer_id=customer.id, created_at_remote=now - timedelta(days=ago), currency="USD",
                          total_price=Decimal(amount), total_refunded=Decimal("0"), fulfillment_status="FULFILLED",
                          delivered_at=now - timedelta(days=ago - 3), tags=[])
            session.add(order)
            session.flush()
            session.add(OrderLine(order_id=order.id, store_id=store.id, external_id=f"{order.id}-1",
                                  product_id=product.id, quantity=1, price=Decimal(amount), title="Lavender soap"))
            tenant.orders.append(order.id)
    draft = Review(store_id=store.id, source="judgeme", external_id=f"{store.id}-r1", product_id=product.id,
                   customer_id=tenant.customers[1], order_id=tenant.orders[2], rating=2, title="Arrived broken",
                   body="The bottle was broken on arrival.", reviewer_name="Cust1",
                   created_at_remote=now - timedelta(days=5), reply_status="draft",
                   reply_body="We are sorry, Cust1. We are sending a new bottle today.")
    happy = Review(store_id=store.id, source="judgeme", external_id=f"{store.id}-r2", product_id=product.id,
                   customer_id=tenant.customers[0], rating=5, title="Lovely", body="Smells great.",
                   created_at_remote=now - timedelta(days=4), reply_status="sent", reply_body="Thank you!")
    session.add_all([draft, happy])
    session.flush()
    tenant.draft_review_id = draft.id
    ticket = Ticket(store_id=store.id, customer_id=tenant.customers[1], order_id=tenant.orders[2], review_id=draft.id,
                    source="review", severity=2, subject="Arrived broken", status="open",
                    opened_at=now - timedelta(hours=2), sla_due_at=now + timedelta(hours=22))
    session.add(ticket)
    session.flush()
    tenant.ticket_id = ticket.id
    messages = {
        "sent": dict(status="sent", sent_at=now - timedelta(days=9), clicked_at=now - timedelta(days=8)),
        "skipped_consent": dict(status="skipped", skip_reason="no_consent", marketing=True),
        "skipped_disabled": dict(status="skipped", skip_reason="flow_disabled"),
        "failed": dict(status="failed", last_error="SMTP 451 try later", attempts=5),
    }
    for n, (name, values) in enumerate(messages.items()):
        message = Message(store_id=store.id, customer_id=tenant.customers[0], order_id=tenant.orders[0],
                          flow="review_request", step="main", channel="email", locale="en",
                          idempotency_key=f"{store.id}:review_request:order={tenant.orders[0]}:n={n}",
                          scheduled_for=now - timedelta(days=9), payload={}, created_at=now - timedelta(days=9),
                          **values)
        session.add(message)
        session.flush()
        tenant.messages[name] = message.id
    session.add(Suppression(store_id=store.id, email=f"c3@{shop}", reason="unsubscribe"))
    if with_amazon:
        amazon = Store(merchant_id=merchant.id, platform="amazon", external_id="A1SELLER0001:eu", region="eu",
                       marketplace_ids=["A1PM49KL8B3DN4"], name="Amazon EU", currency="EUR", timezone="Europe/Berlin",
                       country="DE", status="active", installed_at=now - timedelta(days=100))
        session.add(amazon)
        session.flush()
        tenant.amazon_store_id = amazon.id
        buyer = Customer(store_id=amazon.id, external_id="amzn-buyer-1", first_name=None, tags=[])
        session.add(buyer)
        session.flush()
        order = Order(store_id=amazon.id, external_id="302-0000001-0000001", name="302-0000001-0000001",
                      customer_id=buyer.id, created_at_remote=now - timedelta(days=40), currency="EUR",
                      total_price=Decimal("30.00"), total_refunded=Decimal("0"), tags=[])
        session.add(order)
        session.flush()
        feedback = Review(store_id=amazon.id, source="amazon_feedback", external_id="fb-1", order_id=order.id,
                          customer_id=buyer.id, rating=1, body="Item was fake", reply_status="none",
                          created_at_remote=now - timedelta(days=3))
        session.add(feedback)
        session.flush()
        tenant.feedback_review_id = feedback.id
        session.add(Ticket(store_id=amazon.id, customer_id=buyer.id, order_id=order.id, review_id=feedback.id,
                           source="feedback", severity=1, subject="Item was fake", status="open",
                           opened_at=now - timedelta(hours=3), sla_due_at=now - timedelta(hours=2)))
    session.flush()
    rules = SegmentRules()
    refresh_customer_metrics(session, store.id, now, rules)
    if tenant.amazon_store_id:
        refresh_customer_metrics(session, tenant.amazon_store_id, now, rules)
    return tenant
