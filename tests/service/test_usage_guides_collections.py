"""Usage guides per collection over the Shopify sandbox: the shop's collections come through the real sync over
HTTP, and a guide per collection reaches exactly the first-time buyers of the products in it, with a product's own
guide winning over its collections' and a collection's over its product type's.

Who gets which guide is worked out from the sandbox's own objects (its seeded collections, orders, line items and
fulfilments), not from what the app stored.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from base.clock import FrozenClock
from plugin import flow_settings
from plugin.context import JobContext
from plugin.flows import FLOWS, runner
from plugin.models import Customer, GuideBlock, Message, Order, Product, ProductCollection
from plugin.sync.store_run import sync_store
from tests.shopify_app_env import shopify_env

DAY = timedelta(days=1)
LATE_DAYS = 60
# Blocks in the order the merchant adds them (older first): (kind, sandbox target, days after delivery).
# Espresso Blend is in Coffee Corner (its own block wins); Burr Coffee Grinder is in Coffee Corner and of type
# Coffee Equipment (the collection wins); the kettle is in Coffee Corner and Gift Ideas (the older block wins);
# the water bottle is in Gift Ideas and of type Home (the collection wins); the filter jug is only of type Home.
BLOCKS = (("collection", "Coffee Corner", 2), ("product_type", "Coffee Equipment", 5), ("collection", "Gift Ideas", 3),
          ("product", "Espresso Blend", 1), ("product_type", "Home", 4), ("collection", "Pet Care", 1))


def _block_of(shop) -> dict[int, str]:
    """Each sandbox product's block label by the rule: own product, else its oldest collection block, else type."""
    held = {p.id: [c.title for c in shop.collections if p.id in c.product_ids] for p in shop.products}
    out = {}
    for p in shop.products:
        own = [t for k, t, _ in BLOCKS if k == "product" and t == p.title]
        coll = [t for k, t, _ in BLOCKS if k == "collection" and t in held[p.id]]
        kind = [t for k, t, _ in BLOCKS if k == "product_type" and t.casefold() == p.product_type.casefold()]
        if own:
            out[p.id] = f"product:{own[0]}"
        elif coll:
            out[p.id] = f"collection:{coll[0]}"
        elif kind:
            out[p.id] = f"product_type:{kind[0]}"
    return out


def _expected(shop, now) -> dict[str, list[tuple[str, str]]]:
    """Each delivered, not cancelled order due in (now - late, now]: its new products and their block labels."""
    block_of, days = _block_of(shop), {f"{k}:{t}": d for k, t, d in BLOCKS}
    titles = {p.id: p.title for p in shop.products}
    out = {}
    for order in shop.orders:
        if order.customer_id is None or order.cancelled_at is not None:
            continue
        shipped = [f for f in order.fulfillments if f.status != "CANCELLED"]
        if not shipped or any(f.delivered_at is None for f in shipped):
            continue
        earlier = [e for e in shop.customer_orders(order.customer_id) if e.id != order.id and e.cancelled_at is None
                   and (e.created_at, e.id) < (order.created_at, order.id)]
        owned = {line.product_id for e in earlier for line in e.line_items}
        new: dict[int, str] = {}
        for line in order.line_items:
            if line.product_id in block_of and line.product_id not in owned:
                new.setdefault(line.product_id, block_of[line.product_id])
        if not new:
            continue
        due = max(f.delivered_at for f in shipped) + min(days[b] for b in new.values()) * DAY
        if now - LATE_DAYS * DAY < due <= now:
            out[order.name] = [(titles[p], b) for p, b in new.items()]
    return out


def test_a_guide_per_collection_reaches_exactly_the_first_time_buyers_of_its_products(
        database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock, customers=300, orders=500) as env:
        store_id = env.install()
        shop = env.sandbox.store
        ctx = JobContext.from_app(env.app, sleep=lambda seconds: clock.advance(seconds=seconds),
                                  extras={"bulk_poll_interval": 1.0})
        result = sync_store(ctx, store_id, full=True)
        assert result["status"] == "ok"
        assert result["collections"] == {"collections": len(shop.collections),
                                         "memberships": sum(len(c.product_ids) for c in shop.collections)}
        db = env.app.extensions["aftercare.db"]
        with db.session() as s:
            assert _memberships(s, store_id) == {(str(pid), str(c.id), c.title) for c in shop.collections
                                                 for pid in c.product_ids}
            collection_id = {c.title: str(c.id) for c in shop.collections}
            product_id = {p.title: p.id for p in s.scalars(select(Product).where(Product.store_id == store_id))}
            for kind, target, days in BLOCKS:
                ref = (collection_id[target] if kind == "collection" else
                       str(product_id[target]) if kind == "product" else target)
                s.add(GuideBlock(store_id=store_id, target_kind=kind, target=ref, image_urls=[],
                                 name=f"{kind}:{target}", days_after_delivery=days,
                                 texts={"en": {"title": target, "html": "<p>Tips.</p>"}}))
                s.flush()  # ids in the merchant's order: "older" is the lower id
            flow_settings.update(s, ctx.config, store_id, "usage_guide", {"max_late_days": LATE_DAYS},
                                 FLOWS["usage_guide"].settings)
        expected = _expected(shop, clock.now())
        labels = {b for guides in expected.values() for _t, b in guides}
        # The story holds every rule: each collection block, the product's own, a type block where no collection is.
        assert {"collection:Coffee Corner", "collection:Gift Ideas", "collection:Pet Care", "product:Espresso Blend",
                "product_type:Home"} <= labels, labels
        runner.run_usage_guide(ctx, store_id)
        with db.session() as s:
            titles = {p.id: p.title for p in s.scalars(select(Product).where(Product.store_id == store_id))}
            names = {b.id: b.name for b in s.scalars(select(GuideBlock))}
            rows = {s.get(Order, m.order_id).name: m for m in
                    s.scalars(select(Message).where(Message.flow == "usage_guide"))}
            got = {name: [(titles[g["product_id"]], names[g["block_id"]]) for g in m.payload["guides"]]
                   for name, m in rows.items()}
            external = {c.id: int(c.external_id) for c in s.scalars(select(Customer))}
            customers = {name: external[m.customer_id] for name, m in rows.items()}
        assert got == expected
        # Per collection: exactly the customers who received one of its products for the first time.
        buyer = {o.name: o.customer_id for o in shop.orders}
        for title in ("Coffee Corner", "Gift Ideas", "Pet Care"):
            want = {buyer[n] for n, guides in expected.items() if any(b == f"collection:{title}" for _t, b in guides)}
            have = {customers[n] for n, guides in got.items() if any(b == f"collection:{title}" for _t, b in guides)}
            assert have == want and want, title


def test_a_membership_change_in_shopify_reaches_the_app_at_the_next_sync(database_url: str, tmp_path: Path,
                                                                         clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        shop = env.sandbox.store
        ctx = JobContext.from_app(env.app, sleep=lambda seconds: clock.advance(seconds=seconds),
                                  extras={"bulk_poll_interval": 1.0})
        assert sync_store(ctx, store_id, full=True)["status"] == "ok"
        gifts = next(c for c in shop.collections if c.title == "Gift Ideas")
        pets = next(c for c in shop.collections if c.title == "Pet Care")
        kept, moved = gifts.product_ids[0], gifts.product_ids[1]
        # The merchant moves a product out of Gift Ideas into Pet Care: no product changes, no webhook.
        env.sandbox.set_collection_products(gifts.id, [p for p in gifts.product_ids if p != moved])
        env.sandbox.set_collection_products(pets.id, [*pets.product_ids, moved])
        clock.advance(hours=1)
        assert sync_store(ctx, store_id)["status"] == "ok"
        with env.app.extensions["aftercare.db"].session() as s:
            got = _memberships(s, store_id)
        assert (str(moved), str(gifts.id), "Gift Ideas") not in got
        assert {(str(kept), str(gifts.id), "Gift Ideas"), (str(moved), str(pets.id), "Pet Care")} <= got
        assert got == {(str(pid), str(c.id), c.title) for c in shop.collections for pid in c.product_ids}


def _memberships(s, store_id: int) -> set[tuple[str, str, str]]:
    """Return the stored memberships as (product external id, collection id, collection title)."""
    return set(s.execute(select(Product.external_id, ProductCollection.collection_external_id,
                                ProductCollection.collection_title)
                         .join(Product, Product.id == ProductCollection.product_id)
                         .where(ProductCollection.store_id == store_id)).all())
