"""A Shopify sandbox on loopback, a store row holding its token, a JobContext on the test database, and the
sandbox's own view of what the database should hold (computed from its seeded objects, not from our code)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased

from base.clock import FrozenClock
from plugin.config import load_config
from plugin.context import JobContext
from plugin.crypto import Vault
from plugin.db import Database
from plugin.models import Customer, Merchant, Order, OrderLine, Product, Store, Variant
from plugin.secrets_store import set_credential
from plugin.sync.store_run import sync_store
from sandbox.shopify import ShopifySandbox
from sandbox.shopify.models import money
from tests.conftest import TEST_ENCRYPTION_KEY, test_settings

CLIENT_ID = "sync-test-app"
SCOPES = ["read_orders", "read_all_orders", "read_customers", "write_customers", "read_products", "write_discounts",
          "read_discounts"]
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@dataclass
class Harness:
    """Everything a sync test needs."""

    clock: FrozenClock
    sandbox: ShopifySandbox
    ctx: JobContext
    store_id: int
    token: str

    def sync(self, full: bool = False) -> dict[str, Any]:
        """Run the sync job for the store."""
        return sync_store(self.ctx, self.store_id, full=full)

    def stop(self) -> None:
        """Stop the sandbox server."""
        self.sandbox.stop()


def make_harness(database: Database, tmp_path: Path, *, customers: int, orders: int, seed: int = 42,
                 restore_rate: float = 100.0) -> Harness:
    """Start a seeded sandbox, register and install our app, and create the store row with its token."""
    clock = FrozenClock(START)
    sandbox = ShopifySandbox(seed=seed, customers=customers, orders=orders, clock=clock, restore_rate=restore_rate)
    sandbox.start()
    sandbox.register_app(CLIENT_ID, "sync-test-secret", SCOPES)
    token = sandbox.install(CLIENT_ID)["access_token"]
    config = load_config(test_settings(database.url, tmp_path / "instance",
                                       shopify={"client_id": CLIENT_ID, "admin_base_url": sandbox.url}), environ={})
    vault = Vault(TEST_ENCRYPTION_KEY)
    with database.session() as session:
        merchant = Merchant(name="Sync test")
        session.add(merchant)
        session.flush()
        store = Store(merchant_id=merchant.id, platform="shopify", external_id=sandbox.shop_domains[0],
                      name="Sync test", installed_at=START,
                      postal_address="100 Main Street, Springfield IL 62701, United States")
        set_credential(store, vault, "access_token_enc", token)
        session.add(store)
        session.flush()
        store_id = store.id
    # Waits (pacing, backoff, bulk polling) move the shared clock, which also refills the sandbox's bucket.
    ctx = JobContext(config=config, database=database, vault=vault, clock=clock,
                     sleep=lambda seconds: clock.advance(seconds=seconds), extras={"bulk_poll_interval": 1.0})
    return Harness(clock, sandbox, ctx, store_id, token)


def _dec(cents: int) -> Decimal:
    return Decimal(money(cents))


def expected_state(sandbox: ShopifySandbox) -> dict[str, dict[Any, tuple]]:
    """Return what the database must hold, straight from the sandbox's seeded objects."""
    store = sandbox.store
    customers = {str(c.id): (c.email, c.first_name, c.locale, c.country, c.time_zone,
                             c.marketing_state == "SUBSCRIBED",
                             c.consent_updated_at,
                             list(c.tags), c.updated_at)
                 for c in store.customers}
    products = {str(p.id): (p.title, p.handle, p.product_type or None, p.vendor or None, p.status, p.updated_at,
                            p.image_url, p.image_alt)
                for p in store.products}
    variants = {str(v.id): (str(v.product_id), v.sku, v.title, _dec(v.price_cents))
                for p in store.products for v in p.variants}
    orders: dict[Any, tuple] = {}
    lines: dict[Any, tuple] = {}
    for o in store.orders:
        shipped = [f for f in o.fulfillments if f.status == "SUCCESS"]
        # Delivered when the last parcel is: every successful fulfilment delivered, the latest delivery counts.
        delivered = [f.delivered_at for f in shipped] if shipped and all(f.delivered_at for f in shipped) else []
        estimated = [f.estimated_delivery_at for f in shipped if f.estimated_delivery_at]
        orders[str(o.id)] = (
            o.name, str(o.customer_id) if o.customer_id else None, o.created_at, o.processed_at, o.updated_at,
            o.currency, _dec(o.total_cents), _dec(o.subtotal_cents), _dec(o.refunded_cents), o.financial_status,
            o.fulfillment_status, o.cancelled_at, o.financial_status == "REFUNDED", o.return_status != "NO_RETURN",
            min(f.created_at for f in shipped) if shipped else None, max(delivered) if delivered else None,
            max(estimated) if estimated else None, list(o.tags))
        for li in o.line_items:
            lines[(str(o.id), str(li.id))] = (li.quantity, _dec(li.unit_price_cents), li.sku, li.title,
                                              str(li.product_id), str(li.variant_id))
    return {"customers": customers, "products": products, "variants": variants, "orders": orders, "lines": lines}


def database_state(database: Database, store_id: int) -> dict[str, dict[Any, tuple]]:
    """Return the same shape as :func:`expected_state`, read from the database."""
    with database.session() as s:
        customers = {r[0]: tuple(r[1:]) for r in s.execute(
            select(Customer.external_id, Customer.email, Customer.first_name, Customer.locale, Customer.country,
                   Customer.time_zone, Customer.marketing_consent, Customer.marketing_consent_at, Customer.tags,
                   Customer.remote_updated_at).where(Customer.store_id == store_id))}
        products = {r[0]: tuple(r[1:]) for r in s.execute(
            select(Product.external_id, Product.title, Product.handle, Product.product_type, Product.vendor,
                   Product.status, Product.remote_updated_at, Product.image_url, Product.image_alt)
            .where(Product.store_id == store_id))}
        variants = {r[0]: tuple(r[1:]) for r in s.execute(
            select(Variant.external_id, Product.external_id, Variant.sku, Variant.title, Variant.price)
            .join(Product, Product.id == Variant.product_id).where(Variant.store_id == store_id))}
        buyer = aliased(Customer)
        orders = {r[0]: tuple(r[1:]) for r in s.execute(
            select(Order.external_id, Order.name, buyer.external_id, Order.created_at_remote, Order.processed_at,
                   Order.remote_updated_at, Order.currency, Order.total_price, Order.subtotal_price,
                   Order.total_refunded, Order.financial_status, Order.fulfillment_status, Order.cancelled_at,
                   Order.refunded, Order.returned, Order.fulfilled_at, Order.delivered_at,
                   Order.estimated_delivery_at, Order.tags)
            .outerjoin(buyer, buyer.id == Order.customer_id).where(Order.store_id == store_id))}
        lines = {(r[0], r[1]): tuple(r[2:]) for r in s.execute(
            select(Order.external_id, OrderLine.external_id, OrderLine.quantity, OrderLine.price, OrderLine.sku,
                   OrderLine.title, Product.external_id, Variant.external_id)
            .join(Order, Order.id == OrderLine.order_id)
            .outerjoin(Product, Product.id == OrderLine.product_id)
            .outerjoin(Variant, Variant.id == OrderLine.variant_id)
            .where(OrderLine.store_id == store_id))}
    return {"customers": customers, "products": products, "variants": variants, "orders": orders, "lines": lines}


def assert_mirrors(database: Database, store_id: int, sandbox: ShopifySandbox) -> None:
    """Assert the database holds exactly the sandbox's data: same keys per table, same fields per row."""
    expected = expected_state(sandbox)
    actual = database_state(database, store_id)
    for table in expected:
        assert len(actual[table]) == len(expected[table]), table
        assert set(actual[table]) == set(expected[table]), table
        wrong = [(key, actual[table][key], value) for key, value in expected[table].items()
                 if actual[table][key] != value]
        assert not wrong, f"{table}: {len(wrong)} rows differ, e.g. {wrong[:2]}"
