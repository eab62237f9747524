"""Incremental replenishment planner: after every kind of change, the refreshed purchase_cycle/purchase_gap
rows equal both a full rebuild and an independent Python computation from the orders, and so do the
learned medians and the planned reminders; only the customers whose orders changed are recomputed."""

from __future__ import annotations

import json
import math
import random
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text, update

from connectors.records import CustomerRecord, OrderLineRecord, OrderRecord
from plugin.flows import replenishment, replenishment_plan, runner
from plugin.models import Customer, Order, Product, PurchaseCycle, PurchaseGap, ReplenishmentFit, Store
from plugin.sync import upsert_orders
from plugin.webhooks.compliance import redact_customer
from plugin.webhooks.deletions import delete_customer, delete_order, delete_product
from tests.jobs import factory as f

DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SETTINGS = {"lead_days": 7, "min_product_samples": 3}


def _days(when: datetime) -> float:
    return (when - EPOCH).total_seconds() / 86400


def _expected(session: Any, store_id: int) -> tuple[dict[tuple[int, int], tuple], dict[tuple[int, int], float]]:
    """Compute the pairs and gaps from the ORM rows in plain Python (the definition, not the SQL)."""
    consumable = {p.id for p in session.scalars(select(Product).where(Product.store_id == store_id,
                                                                      Product.consumable))}
    redacted = {c.id for c in session.scalars(select(Customer).where(Customer.redacted_at.is_not(None)))}
    purchases: dict[tuple[int, int], dict[int, list]] = {}
    for order in session.scalars(select(Order).where(Order.store_id == store_id, Order.customer_id.is_not(None))):
        if order.cancelled_at is not None or order.refunded or order.returned:
            continue
        for line in order.lines:
            if line.product_id not in consumable or line.quantity <= 0:
                continue
            entry = purchases.setdefault((order.customer_id, line.product_id), {}).setdefault(
                order.id, [_days(order.created_at_remote), 0, None, "subscription" in json.dumps(order.tags).lower()])
            entry[1] += line.quantity
            if line.variant_id is not None:
                entry[2] = max(entry[2] or 0, line.variant_id)
    pairs, gaps = {}, {}
    for (c, p), by_order in purchases.items():
        # One purchase: the orders within a day of its first order (quantities add up, dated by the first order).
        grouped: list[list] = []
        for t, oid, q, v, sub in sorted(((t, oid, q, v, sub) for oid, (t, q, v, sub) in by_order.items())):
            if grouped and t - grouped[-1][0] < 1:
                last = grouped[-1]
                last[2] += q
                last[3] = v if last[3] is None else (last[3] if v is None else max(last[3], v))
                last[4] = last[4] or sub
            else:
                grouped.append([t, oid, q, v, sub])
        own = []
        for (t, oid, q, _v, _s), (t2, *_rest) in zip(grouped, grouped[1:], strict=False):
            gaps[(oid, p)] = (t2 - t) / q
            own.append((t2 - t) / q)
        t, oid, q, v, sub = grouped[-1]
        if c not in redacted:
            pairs[(c, p)] = (oid, t, q, v, sub, statistics.median(own) if own else None, len(own), grouped[0][0],
                             min(own) if own else None, max(own) if own else None)
    return pairs, gaps


def _stored(session: Any, store_id: int) -> tuple[dict[tuple[int, int], tuple], dict[tuple[int, int], float]]:
    pairs = {(r.customer_id, r.product_id): (r.last_order_id, r.last_purchase_day, r.last_quantity, r.variant_id,
                                             r.subscription, r.own_cycle_days, r.gap_count, r.first_purchase_day,
                                             r.own_min_gap, r.own_max_gap)
             for r in session.scalars(select(PurchaseCycle).where(PurchaseCycle.store_id == store_id))}
    gaps = {(g.order_id, g.product_id): g.gap
            for g in session.scalars(select(PurchaseGap).where(PurchaseGap.store_id == store_id))}
    return pairs, gaps


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=0, abs_tol=1e-6)
    return a == b


def _assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    wrong = {k: (got[k], want[k]) for k in want if not _close(got[k], want[k])}
    assert wrong == {}


def _reminder_rows(session: Any, store_id: int, now: datetime) -> list[tuple]:
    rows = replenishment_plan.due_reminders(f.plan_run(session, session.get(Store, store_id), SETTINGS, now))
    return [(r["customer_id"], r["product_id"], r["order_id"], r["status"], r["scheduled_for"],
             r["payload"]["cycle_days"], r["payload"]["cycle_source"], r["payload"]["run_out_at"],
             r["payload"]["probability"], r["payload"]["reason"]) for r in rows]


def _check(ctx: Any, sid: int) -> dict[str, int]:
    """Refresh incrementally (committed); assert it equals the Python definition and a full rebuild."""
    now = ctx.clock.now()
    with ctx.database.session() as s:
        counts = replenishment_plan.refresh_cycles(s, sid)
    with ctx.database.session() as s:
        pairs, gaps = _stored(s, sid)
        want_pairs, want_gaps = _expected(s, sid)
        _assert_same(pairs, want_pairs)
        _assert_same(gaps, want_gaps)
        medians = replenishment_plan.product_medians(s, sid)
        by_product: dict[int, list[float]] = {}
        for (_oid, p), gap in want_gaps.items():
            by_product.setdefault(p, []).append(gap)
        assert {p: n for p, (_m, n) in medians.items()} == {p: len(g) for p, g in by_product.items()}
        assert all(abs(medians[p][0] - statistics.median(g)) < 1e-6 for p, g in by_product.items())
        incremental = (pairs, gaps, medians, _reminder_rows(s, sid, now))
    session = ctx.database.sessionmaker()
    try:  # a full rebuild from scratch, rolled back
        assert replenishment_plan.refresh_cycles(session, sid, full=True)["full"] == 1
        rebuilt = (*_stored(session, sid), replenishment_plan.product_medians(session, sid),
                   _reminder_rows(session, sid, now))
    finally:
        session.rollback()
        session.close()
    assert incremental == rebuilt
    _age_orders(ctx)
    return counts


def _seed(ctx: Any) -> dict[str, Any]:
    rng = random.Random(11)
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        soap = f.product(s, st.id, days_of_supply=30)
        tea = f.product(s, st.id)
        mug = f.product(s, st.id, consumable=False, days_of_supply=60)
        customers = [f.customer(s, st.id) for _ in range(12)]
        orders: dict[int, list[int]] = {}
        for c in customers:
            t = now - timedelta(days=rng.randint(100, 160), hours=rng.randint(0, 23))
            for _ in range(rng.randint(1, 5)):
                lines = [(rng.choice((soap.id, soap.id, tea.id)), rng.randint(1, 3))]
                if rng.random() < 0.3:
                    lines.append((mug.id, 1))
                tags = ["Subscription"] if rng.random() < 0.15 else []
                o = f.order(s, st.id, c.id, t, lines=lines, tags=tags)
                orders.setdefault(c.id, []).append(o.id)
                t += timedelta(days=rng.randint(0, 40), hours=rng.randint(0, 23))
        ids = {"store": st.id, "soap": soap.id, "tea": tea.id, "mug": mug.id,
               "customers": [c.id for c in customers], "orders": orders}
    _age_orders(ctx)
    return ids


def _age_orders(ctx: Any) -> None:
    """Stamp every order as written two days ago (database clock): later refreshes must not see them as changed.

    The planner re-reads what was written within CHANGE_OVERLAP of its last run, and a test runs in seconds.
    """
    with ctx.database.session() as s:
        old = s.execute(text("SELECT CURRENT_TIMESTAMP")).scalar_one()
        old = datetime.fromisoformat(old).replace(tzinfo=UTC) if isinstance(old, str) else old
        s.execute(update(Order).values(updated_at=old - 2 * DAY).execution_options(synchronize_session=False))


def test_incremental_refresh_equals_full_rebuild_after_every_change(ctx):
    ids = _seed(ctx)
    sid, soap, tea, mug = ids["store"], ids["soap"], ids["tea"], ids["mug"]
    customers, orders = ids["customers"], ids["orders"]
    now = ctx.clock.now()
    first = _check(ctx, sid)
    assert first["full"] == 1 and first["pairs"] > 0
    # Nothing changed: nothing recomputed.
    assert _check(ctx, sid) == {"products_dropped": 0, "products_built": 0, "product_pairs": 0,
                                "customers": 0, "pairs": 0}

    # New orders: an existing customer re-buys, a new customer buys for the first time.
    with ctx.database.session() as s:
        f.order(s, sid, customers[0], now - 2 * DAY, lines=[(soap, 2), (tea, 1)])
        newbie = f.customer(s, sid)
        f.order(s, sid, newbie.id, now - DAY, lines=[(soap, 1)])
    assert _check(ctx, sid)["customers"] == 2

    # A cancellation and a refund of old orders in the middle of two customers' histories.
    with ctx.database.session() as s:
        s.get(Order, orders[customers[1]][0]).cancelled_at = now
        s.get(Order, orders[customers[2]][-1]).refunded = True
    assert _check(ctx, sid)["customers"] == 2

    # An order moved to another customer: both customers' pairs are recomputed.
    with ctx.database.session() as s:
        s.get(Order, orders[customers[3]][-1]).customer_id = customers[4]
    assert _check(ctx, sid)["customers"] == 2

    # A line's quantity edited together with its order (what a sync of an edited order writes).
    with ctx.database.session() as s:
        order = s.get(Order, orders[customers[5]][0])
        order.lines[0].quantity += 2
        order.financial_status = "PAID"
    assert _check(ctx, sid)["customers"] == 1

    # customers/redact: the customer's planning rows go, their anonymous re-buys still count.
    with ctx.database.session() as s:
        victim = s.get(Customer, customers[6])
        redact_customer(s, s.get(Store, sid), s.get(Store, sid).external_id,
                        {"customer": {"id": victim.external_id, "email": victim.email}, "orders_to_redact": []}, now)
    with ctx.database.session() as s:
        assert s.scalars(select(PurchaseCycle).where(PurchaseCycle.customer_id == customers[6])).all() == []
    _check(ctx, sid)

    # Shopify deletions: an order (its customer recomputed at once, nothing left for updated_at to show),
    # a customer (erased to a tombstone, like a redaction).
    with ctx.database.session() as s:
        store = s.get(Store, sid)
        gone = s.get(Order, orders[customers[7]][0])
        assert delete_order(s, store, gone.external_id, now) == "deleted"
        assert delete_customer(s, store, s.get(Customer, customers[8]).external_id, now) == "deleted"
    _check(ctx, sid)

    # The merchant's product settings: mug becomes consumable (its pairs built), tea stops being one (dropped),
    # soap's days of supply changes (read when planning, nothing to rebuild).
    with ctx.database.session() as s:
        s.get(Product, mug).consumable = True
        s.get(Product, tea).consumable = False
        s.get(Product, soap).days_of_supply = 45
    counts = _check(ctx, sid)
    assert (counts["products_built"], counts["products_dropped"], counts["customers"]) == (1, 1, 0)
    with ctx.database.session() as s:
        assert s.scalar(select(PurchaseCycle.product_id).where(PurchaseCycle.product_id == mug).limit(1)) == mug
        assert s.scalar(select(PurchaseCycle.product_id).where(PurchaseCycle.product_id == tea).limit(1)) is None
    # ... and back: tea is rebuilt from its full history.
    with ctx.database.session() as s:
        s.get(Product, tea).consumable = True
    assert _check(ctx, sid)["products_built"] == 1

    # A product deleted in Shopify: its lines lose the product, its rows go.
    with ctx.database.session() as s:
        extra = f.product(s, sid, days_of_supply=10)
        f.order(s, sid, customers[9], now - 50 * DAY, lines=[(extra.id, 1)])
        f.order(s, sid, customers[9], now - 20 * DAY, lines=[(extra.id, 1)])
    _check(ctx, sid)
    with ctx.database.session() as s:
        assert delete_product(s, s.get(Store, sid), extra.external_id, now) == "deleted"
    _check(ctx, sid)

    # Planning with stored learned medians gives what a full rebuild gives too.
    with ctx.database.session() as s:
        with_gaps = len({p for _o, p in _expected(s, sid)[1]})
    assert replenishment_plan.learn(ctx, sid) == {"products": with_gaps, "fitted": False}
    _check(ctx, sid)


def test_incremental_plan_equals_full_plan_through_the_job(ctx):
    """The hourly job keeps planning exactly what a from-scratch computation plans, day after day."""
    ids = _seed(ctx)
    sid, soap = ids["store"], ids["soap"]
    runner.run_replenishment(ctx, sid)
    planned = 0
    for day in range(1, 40, 3):
        ctx.clock.advance(days=3)
        _age_orders(ctx)
        with ctx.database.session() as s:
            c = ids["customers"][day % len(ids["customers"])]
            f.order(s, sid, c, ctx.clock.now() - DAY, lines=[(soap, 1 + day % 2)])
        session = ctx.database.sessionmaker()
        try:
            replenishment_plan.refresh_cycles(session, sid, full=True)
            want = _reminder_rows(session, sid, ctx.clock.now())
        finally:
            session.rollback()
            session.close()
        with ctx.database.session() as s:
            assert _reminder_rows(s, sid, ctx.clock.now()) == want
        planned += runner.run_replenishment(ctx, sid)["planned"]
    assert planned > 0


def test_refresh_touching_most_customers_does_a_full_build(ctx, monkeypatch):
    """After a backfill rewrote most orders, one full build replaces the per-customer recomputation."""
    monkeypatch.setattr(replenishment_plan, "REBUILD_MIN_CUSTOMERS", 0)
    ids = _seed(ctx)
    sid, soap, customers = ids["store"], ids["soap"], ids["customers"]
    assert _check(ctx, sid)["full"] == 1
    with ctx.database.session() as s:  # 2 of 12 customers: below REBUILD_SHARE, incremental
        for c in customers[:2]:
            f.order(s, sid, c, ctx.clock.now() - DAY, lines=[(soap, 1)])
    assert _check(ctx, sid)["customers"] == 2
    with ctx.database.session() as s:  # 8 of 12 customers: more than a quarter of the pairs, full build
        for c in customers[:8]:
            f.order(s, sid, c, ctx.clock.now(), lines=[(soap, 1)])
    assert _check(ctx, sid)["full"] == 1


def test_changes_written_by_the_sync_reach_the_planner(ctx):
    """The real writer (plugin.sync.upsert_orders, both dialects' paths) moves updated_at on every change."""
    now = ctx.clock.now()
    with ctx.database.session() as s:
        sid = f.store(s).id

    def rec(n: int, who: str, days_ago: int, qty: int = 1, edited: int = 0, **kw: Any) -> OrderRecord:
        return OrderRecord(external_id=f"o{n}", created_at=now - days_ago * DAY, currency="USD",
                           total_price=Decimal("10"), updated_at=now - days_ago * DAY + edited * timedelta(hours=1),
                           customer=CustomerRecord(external_id=who, email=f"{who}@example.test"),
                           lines=(OrderLineRecord(external_id=f"l{n}", quantity=qty, price=Decimal("10"),
                                                  product_external_id="soap", variant_external_id="soap-1"),), **kw)

    history = [rec(1, "ann", 90), rec(2, "ann", 60), rec(3, "ann", 30), rec(4, "bob", 80), rec(5, "bob", 40),
               rec(6, "cy", 70), rec(7, "cy", 35)]
    with ctx.database.session() as s:
        upsert_orders(s, sid, history)
        s.execute(update(Product).where(Product.store_id == sid).values(consumable=True, days_of_supply=30))
    _age_orders(ctx)
    assert _check(ctx, sid)["full"] == 1
    with ctx.database.session() as s:  # the same data again writes nothing
        upsert_orders(s, sid, history)
    assert _check(ctx, sid)["customers"] == 0
    with ctx.database.session() as s:  # ann's middle order cancelled, bob's first edited to 3 units, cy unchanged
        upsert_orders(s, sid, [rec(2, "ann", 60, edited=1, cancelled_at=now), rec(4, "bob", 80, qty=3, edited=1),
                               rec(6, "cy", 70), rec(8, "bob", 5)])
    assert _check(ctx, sid)["customers"] == 2


PLANNED = {"lead_days": 7, "min_product_samples": 3, "min_probability": 0.2}


def _full_rows(session: Any, store_id: int) -> dict[tuple[int, int], tuple]:
    """Every column of the store's purchase_cycle rows, the stored plan included."""
    columns = [c.name for c in PurchaseCycle.__table__.columns]
    return {(r.customer_id, r.product_id): tuple(getattr(r, c) for c in columns)
            for r in session.scalars(select(PurchaseCycle).where(PurchaseCycle.store_id == store_id))}


def _due(session: Any, store_id: int, now: datetime, settings: dict[str, Any]) -> list[tuple]:
    rows = replenishment_plan.due_reminders(f.plan_run(session, session.get(Store, store_id), settings, now))
    return [(r["customer_id"], r["product_id"], r["order_id"], r["status"], r["scheduled_for"], r["payload"])
            for r in rows]


def _every_pair(session: Any, store_id: int, now: datetime, settings: dict[str, Any]) -> list[tuple]:
    """The reminders the model gives when evaluated on every pair now (the planner before plans were stored)."""
    dialect = session.get_bind().dialect.name
    loaded = f.plan_run(session, session.get(Store, store_id), settings, now).settings
    params = replenishment_plan.plan_params(store_id, loaded, now, replenishment_plan.store_fit(session, store_id))
    params.update(horizon=params["now_days"] + replenishment_plan.PLAN_AHEAD_DAYS, floor=loaded["min_probability"])
    sql = (f"SELECT c, p, order_id, start_day, alive * chance AS probability, run_out FROM ("  # noqa: S608
           f"{replenishment_plan.plan_sql(dialect, 'purchase_cycle')}) pl "
           "WHERE start_day <= :horizon AND alive * chance >= :floor ORDER BY c, p")
    rows = session.execute(text(sql), params).all()
    return [(c, p, o, max(EPOCH + timedelta(days=float(start)), now), round(float(prob), 4), round(float(run_out), 4))
            for c, p, o, start, prob, run_out in rows]


def _due_as_every_pair(session: Any, store_id: int, now: datetime, settings: dict[str, Any]) -> list[tuple]:
    return [(c, p, o, when, pl["probability"], round(_days(datetime.fromisoformat(pl["predicted_run_out_at"])), 4))
            for c, p, o, _status, when, pl in _due(session, store_id, now, settings)]


def _plan_check(ctx: Any, sid: int, settings: dict[str, Any] = PLANNED) -> dict[tuple[int, int], tuple]:
    """Run the hourly plan (committed); assert its stored rows and reminders equal a full recomputation's."""
    now = ctx.clock.now()
    with ctx.database.session() as s:
        due = _due(s, sid, now, settings)
    with ctx.database.session() as s:
        stored = _full_rows(s, sid)
    session = ctx.database.sessionmaker()
    try:  # every pair rebuilt and replanned from the orders, rolled back
        replenishment_plan.refresh_cycles(session, sid, full=True)
        assert _full_rows(session, sid) == stored
        assert _due(session, sid, now, settings) == due
    finally:
        session.rollback()
        session.close()
    _age_orders(ctx)
    return stored


def _refit(ctx: Any, sid: int, settings: dict[str, Any] = PLANNED) -> None:
    """The daily learning job at the clock's time, then the same fitted model kept (too few pairs to fit one)."""
    now = ctx.clock.now()
    loaded = replenishment.FLOW.settings.load(settings)
    with ctx.database.session() as s:
        replenishment_plan.learn_product_cycles(s, sid, now, loaded)
        s.merge(ReplenishmentFit(store_id=sid, r=0.8, alpha=40.0, a=0.6, b=2.5, pairs=500, log_likelihood=-1.0,
                                 fitted_at=now))
        s.flush()
        replenishment_plan.learn_product_cycles(s, sid, None, loaded)  # replanned with the fit, same day


def test_stored_plans_equal_a_full_recomputation_after_every_kind_of_change(ctx):
    """The hourly run keeps each pair's reminder day stored; after each change it equals planning from scratch."""
    ids = _seed(ctx)
    sid, soap, tea = ids["store"], ids["soap"], ids["tea"]
    customers, orders = ids["customers"], ids["orders"]
    now = ctx.clock.now()
    _refit(ctx, sid)
    before = _plan_check(ctx, sid)
    assert all(row[-1] is not None or row[-2] is not None for row in before.values())  # every pair is planned
    with ctx.database.session() as s:  # on the refit's day the stored plan gives what evaluating every pair gives
        assert _due_as_every_pair(s, sid, now, PLANNED) == _every_pair(s, sid, now, PLANNED)
        assert _due(s, sid, now, PLANNED)

    # A new order re-buys soap: only that pair's plan moves.
    with ctx.database.session() as s:
        f.order(s, sid, customers[0], now - timedelta(hours=2), lines=[(soap, 2)])
    after = _plan_check(ctx, sid)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {(customers[0], soap)}

    # A split order: a second order 5 hours after that one is the same purchase (quantities add, no new gap).
    with ctx.database.session() as s:
        f.order(s, sid, customers[0], now + timedelta(hours=3), lines=[(soap, 1)])
    split = _plan_check(ctx, sid)
    pc = [c.name for c in PurchaseCycle.__table__.columns]
    row, old = dict(zip(pc, split[(customers[0], soap)], strict=True)), dict(zip(pc, after[(customers[0], soap)],
                                                                                   strict=True))
    assert (row["last_quantity"], row["gap_count"], row["last_order_id"]) == (3, old["gap_count"],
                                                                             old["last_order_id"])
    assert row["plan_cycle_days"] == old["plan_cycle_days"] and row["plan_mu"] != old["plan_mu"]

    # A cancellation, a refund and a quantity edit in the middle of other customers' histories.
    with ctx.database.session() as s:
        s.get(Order, orders[customers[1]][0]).cancelled_at = now
        s.get(Order, orders[customers[2]][-1]).refunded = True
        order = s.get(Order, orders[customers[5]][0])
        order.lines[0].quantity += 2
        order.financial_status = "PAID"
    _plan_check(ctx, sid)

    # Time passing without a refit: nothing stored changes; the hourly run scores the due pairs at the new time.
    with ctx.database.session() as s:
        stored = _full_rows(s, sid)
    ctx.clock.advance(days=20)
    assert _plan_check(ctx, sid) == stored

    # The refit (daily learning) replans every pair as of its day.
    _refit(ctx, sid)
    refitted = _plan_check(ctx, sid)
    assert refitted != stored
    with ctx.database.session() as s:
        later = ctx.clock.now()
        assert _due_as_every_pair(s, sid, later, PLANNED) == _every_pair(s, sid, later, PLANNED)

    # The merchant's settings: the store's lead days and floor (every pair), a product's days of supply and lead days.
    _plan_check(ctx, sid, {**PLANNED, "lead_days": 10})
    _plan_check(ctx, sid, {**PLANNED, "lead_days": 10, "min_probability": 0.05})
    with ctx.database.session() as s:
        s.get(Product, tea).days_of_supply = 20
        s.get(Product, soap).reminder_lead_days = 3
    relaid = _plan_check(ctx, sid, {**PLANNED, "lead_days": 10, "min_probability": 0.05})
    lead = pc.index("plan_lead_days")
    assert {row[lead] for (_c, p), row in relaid.items() if p == soap} == {3}
    assert {row[lead] for (_c, p), row in relaid.items() if p == tea} == {10}

    # customers/redact: the customer's rows go, the rest are as planned from scratch.
    with ctx.database.session() as s:
        victim = s.get(Customer, customers[6])
        redact_customer(s, s.get(Store, sid), s.get(Store, sid).external_id,
                        {"customer": {"id": victim.external_id, "email": victim.email}, "orders_to_redact": []},
                        ctx.clock.now())
    assert not [k for k in _plan_check(ctx, sid, {**PLANNED, "lead_days": 10, "min_probability": 0.05})
                if k[0] == customers[6]]
