"""Usage guides over the Shopify sandbox: the shop's products, orders and parcels come through the real sync over
HTTP, the merchant's guides target product types and one product, and who gets which guides is worked out from the
sandbox's own objects (its orders, line items, fulfilments and product types), not from what the app stored."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from base.clock import FrozenClock
from plugin import flow_settings
from plugin.context import JobContext
from plugin.flows import FLOWS, runner
from plugin.models import GuideBlock, Message, Order, Product
from plugin.sync.store_run import sync_store
from tests.shopify_app_env import shopify_env

DAY = timedelta(days=1)
# Product type (case as the merchant typed it) → days after delivery; one product of its own.
TYPE_DAYS = {"coffee": 2, "VITAMINS": 5, "Shaving": 3, "pet food": 2, "Home": 4, "Supplements": 1}
PRODUCT_BLOCK = ("Green Tea Leaves", 1)
LATE_DAYS = 60


def _expected(shop, now):
    """Each delivered, not cancelled order whose guides are due in (now - late, now], and its new products."""
    products = {p.id: p for p in shop.products}
    days_of = {}
    for pid, p in products.items():
        if p.title == PRODUCT_BLOCK[0]:
            days_of[pid] = PRODUCT_BLOCK[1]
        elif p.product_type.casefold() in {t.casefold() for t in TYPE_DAYS}:
            days_of[pid] = next(d for t, d in TYPE_DAYS.items() if t.casefold() == p.product_type.casefold())
    out = {}
    for order in shop.orders:
        if order.customer_id is None or order.cancelled_at is not None:
            continue
        shipped = [f for f in order.fulfillments if f.status != "CANCELLED"]
        if not shipped or any(f.delivered_at is None for f in shipped):
            continue
        delivered = max(f.delivered_at for f in shipped)
        earlier = [e for e in shop.customer_orders(order.customer_id) if e.id != order.id and e.cancelled_at is None
                   and (e.created_at, e.id) < (order.created_at, order.id)]
        owned = {line.product_id for e in earlier for line in e.line_items}
        new = []
        for line in order.line_items:
            if line.product_id in days_of and line.product_id not in owned and \
                    products[line.product_id].title not in new:
                new.append(products[line.product_id].title)
        if not new:
            continue
        due = delivered + min(days_of[pid] for pid in days_of if products[pid].title in new) * DAY
        if now - LATE_DAYS * DAY < due <= now:
            out[order.name] = new
    return out


def test_guides_follow_the_synced_shop_first_time_products_only(database_url: str, tmp_path: Path,
                                                                clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock, customers=300, orders=400) as env:
        store_id = env.install()
        ctx = JobContext.from_app(env.app, sleep=lambda seconds: clock.advance(seconds=seconds),
                                  extras={"bulk_poll_interval": 1.0})
        assert sync_store(ctx, store_id, full=True)["status"] == "ok"
        with env.app.extensions["aftercare.db"].session() as s:
            tea = s.scalar(select(Product).where(Product.store_id == store_id, Product.title == PRODUCT_BLOCK[0]))
            s.add(GuideBlock(store_id=store_id, target_kind="product", target=str(tea.id), image_urls=[],
                             texts={"en": {"title": "Brewing tea", "html": "<p>80 degrees.</p>"}},
                             days_after_delivery=PRODUCT_BLOCK[1]))
            for kind, days in TYPE_DAYS.items():
                s.add(GuideBlock(store_id=store_id, target_kind="product_type", target=kind, image_urls=[],
                                 texts={"en": {"title": kind, "html": "<p>Tips.</p>"}}, days_after_delivery=days))
            flow_settings.update(s, ctx.config, store_id, "usage_guide", {"max_late_days": LATE_DAYS},
                                 FLOWS["usage_guide"].settings)
        expected = _expected(env.sandbox.store, clock.now())
        assert len(expected) >= 5 and any(len(v) > 1 for v in expected.values())
        counts = runner.run_usage_guide(ctx, store_id)
        with env.app.extensions["aftercare.db"].session() as s:
            titles = {p.id: p.title for p in s.scalars(select(Product).where(Product.store_id == store_id))}
            rows = {s.get(Order, m.order_id).name: m for m in
                    s.scalars(select(Message).where(Message.flow == "usage_guide"))}
            got = {name: [titles[g["product_id"]] for g in m.payload["guides"]] for name, m in rows.items()}
            skipped = {m.skip_reason for m in rows.values() if m.status == "skipped"}
        assert got == expected
        assert counts == {"guides": sum(m.status == "scheduled" for m in rows.values()),
                          "skipped": sum(m.status == "skipped" for m in rows.values())}
        assert skipped <= {"order_refunded", "order_returned"}
        # The next run writes nothing again: one email per order, ever.
        assert runner.run_usage_guide(ctx, store_id) == {"guides": 0, "skipped": 0}
