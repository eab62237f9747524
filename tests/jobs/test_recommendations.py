"""Co-purchase recommendations: the daily SQL job against a brute-force count in Python (pairs, lift over
popularity, ranking, cancelled orders), and what a customer is shown (never owned, never out of stock)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from itertools import permutations

from sqlalchemy import select

from plugin import flow_settings, recommendations
from plugin.models import ProductRecommendation, Store
from tests.jobs import factory as f


def _expected(baskets: dict[int, set[int]], min_co: int, min_lift: float, per_product: int
              ) -> dict[tuple[int, int], tuple[int, int]]:
    """Return {(x, y): (co_customers, rank)} by counting every customer's basket in Python."""
    buyers = Counter(p for basket in baskets.values() for p in basket)
    total = sum(1 for basket in baskets.values() if basket)
    pairs = Counter(pair for basket in baskets.values() for pair in permutations(sorted(basket), 2))
    kept: dict[int, list[tuple[float, int, int]]] = {}
    for (x, y), n in pairs.items():
        lift = n * total / (buyers[x] * buyers[y])
        if n >= min_co and lift > min_lift:
            kept.setdefault(x, []).append((lift, n, y))
    out = {}
    for x, ys in kept.items():
        ys.sort(key=lambda t: (-t[0], -t[1], t[2]))
        for rank, (_lift, n, y) in enumerate(ys[:per_product], start=1):
            out[(x, y)] = (n, rank)
    return out


def test_pairs_lift_and_ranks_match_a_count_in_python(ctx):
    rng = random.Random(15)
    now = ctx.clock.now()
    baskets: dict[int, set[int]] = {}
    with ctx.database.session() as s:
        st = f.store(s)
        other = f.store(s, name="Other")
        products = [f.product(s, st.id, consumable=False) for _ in range(9)]
        weights = [9, 7, 6, 5, 4, 3, 2, 2, 1]
        for _ in range(160):
            c = f.customer(s, st.id)
            basket: set[int] = set()
            for _ in range(rng.randint(1, 3)):
                lines = {p.id for p in rng.choices(products, weights=weights, k=rng.randint(1, 3))}
                cancelled = rng.random() < 0.1
                f.order(s, st.id, c.id, now - timedelta(days=rng.randint(1, 400)), lines=[(p, 1) for p in lines],
                        cancelled_at=now if cancelled else None)
                if not cancelled:
                    basket |= lines
            baskets[c.id] = basket
        # Guest orders and another store's orders never count.
        f.order(s, st.id, None, now, lines=[(products[0].id, 1), (products[8].id, 1)])
        foreign = f.product(s, other.id)
        oc = f.customer(s, other.id)
        f.order(s, other.id, oc.id, now, lines=[(foreign.id, 1)])
        flow_settings.update(s, ctx.config, st.id, "recommendations", {"min_co_customers": 4, "per_product": 3})
        sid = st.id
    with ctx.database.session() as s:
        counts = recommendations.rebuild_store(s, ctx.config, sid, now)
    expected = _expected(baskets, min_co=4, min_lift=1.0, per_product=3)
    assert expected, "the data must produce some pairs for the test to mean anything"
    with ctx.database.session() as s:
        got = {(r.product_id, r.recommended_id): (r.co_customers, r.rank)
               for r in s.scalars(select(ProductRecommendation).where(ProductRecommendation.store_id == sid))}
        lifts = {(r.product_id, r.recommended_id): r.lift for r in s.scalars(select(ProductRecommendation))}
    assert got == expected
    assert counts == {"pairs": len(expected), "products": len({x for x, _ in expected}),
                      "customers": sum(1 for b in baskets.values() if b)}
    buyers = Counter(p for b in baskets.values() for p in b)
    total = sum(1 for b in baskets.values() if b)
    for (x, y), (n, _rank) in expected.items():
        assert abs(lifts[(x, y)] - n * total / (buyers[x] * buyers[y])) < 1e-9
    # A second run replaces the rows instead of adding to them.
    with ctx.database.session() as s:
        recommendations.rebuild_store(s, ctx.config, sid, now + timedelta(days=1))
    with ctx.database.session() as s:
        assert len(s.scalars(select(ProductRecommendation)).all()) == len(expected)


def test_popular_products_are_not_recommended_for_being_popular(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        staple, a, b = (f.product(s, st.id, consumable=False) for _ in range(3))
        # Everyone buys the staple; a and b go together. Staple beside a has lift exactly 1: not kept.
        for i in range(12):
            c = f.customer(s, st.id)
            lines = [(staple.id, 1)] + ([(a.id, 1), (b.id, 1)] if i < 4 else [])
            f.order(s, st.id, c.id, now - timedelta(days=3), lines=lines)
        sid = st.id
    with ctx.database.session() as s:
        recommendations.rebuild_store(s, ctx.config, sid, now)
        pairs = {(r.product_id, r.recommended_id): r.lift for r in s.scalars(select(ProductRecommendation))}
    assert pairs == {(a.id, b.id): 3.0, (b.id, a.id): 3.0}


def test_a_customer_is_never_shown_what_they_own_or_what_is_out_of_stock(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        base = f.product(s, st.id, consumable=False, title="Base")
        best = f.product(s, st.id, consumable=False, title="Best", handle="best",
                         image_url="https://cdn.example/best.jpg")
        owned_cancelled = f.product(s, st.id, consumable=False, title="Cancelled")
        sold_out = f.product(s, st.id, consumable=False, title="Sold out", total_inventory=0, tracks_inventory=True)
        untracked = f.product(s, st.id, consumable=False, title="Made to order", total_inventory=0,
                              tracks_inventory=False)
        archived = f.product(s, st.id, consumable=False, title="Archived", status="ARCHIVED")
        filler = f.product(s, st.id, consumable=False, title="Filler")
        # Buyers of base also bought every other product (more often the better ones).
        companions = [(best, 6), (owned_cancelled, 5), (sold_out, 5), (untracked, 4), (archived, 4)]
        for product, n in companions:
            for _ in range(n):
                c = f.customer(s, st.id)
                f.order(s, st.id, c.id, now - timedelta(days=30), lines=[(base.id, 1), (product.id, 1)])
        for _ in range(30):
            c = f.customer(s, st.id)
            f.order(s, st.id, c.id, now - timedelta(days=30), lines=[(filler.id, 1)])
        me = f.customer(s, st.id)
        f.order(s, st.id, me.id, now - timedelta(days=200), lines=[(base.id, 1)])
        f.order(s, st.id, me.id, now - timedelta(days=100), lines=[(owned_cancelled.id, 1)], cancelled_at=now)
        fresh = f.customer(s, st.id)
        sid, me_id, fresh_id = st.id, me.id, fresh.id
        flow_settings.update(s, ctx.config, sid, "recommendations", {"min_co_customers": 1})
    with ctx.database.session() as s:
        recommendations.rebuild_store(s, ctx.config, sid, now)
        store = s.get(Store, sid)
        shown = recommendations.for_customers(s, store, [me_id, fresh_id], limit=5)
    assert [r.title for r in shown[me_id]] == ["Best", "Made to order"]
    assert shown[me_id][0].as_vars() == {"title": "Best", "url": f"https://{store.external_id}/products/best",
                                         "image_url": "https://cdn.example/best.jpg", "image_alt": "Best"}
    assert shown[fresh_id] == []
    with ctx.database.session() as s:
        assert [r.title for r in recommendations.for_customers(s, s.get(Store, sid), [me_id], limit=1)[me_id]] == \
            ["Best"]


def test_disabled_store_keeps_no_rows_and_the_job_runs_by_name(ctx):
    from jobs.schedule import run_named

    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        a, b = f.product(s, st.id), f.product(s, st.id)
        for _ in range(3):
            c = f.customer(s, st.id)
            f.order(s, st.id, c.id, now, lines=[(a.id, 1), (b.id, 1)])
        c = f.customer(s, st.id)
        f.order(s, st.id, c.id, now, lines=[(a.id, 1)])
        lone = f.product(s, st.id)
        for _ in range(2):
            c = f.customer(s, st.id)
            f.order(s, st.id, c.id, now, lines=[(lone.id, 1)])
        sid = st.id
    # Three co-buyers of a and b among six customers: lift 3 x 6 / (4 x 3) = 1.5.
    result = run_named(ctx, "recommendations", sid)
    assert result.ok, result
    with ctx.database.session() as s:
        assert len(s.scalars(select(ProductRecommendation)).all()) == 2
        flow_settings.update(s, ctx.config, sid, "recommendations", {"enabled": False})
    with ctx.database.session() as s:
        assert recommendations.rebuild_store(s, ctx.config, sid, now) == {"disabled": 1}
    with ctx.database.session() as s:
        assert s.scalars(select(ProductRecommendation)).all() == []
