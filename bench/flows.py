"""How long each flow needs to decide who is due, on 1,000,000 customers and 3,000,000 orders.

Usage:
    .venv/bin/python bench/flows.py sqlite   [--path /tmp/aftercare-bench-flows.sqlite] [--customers N] [--orders N]
    .venv/bin/python bench/flows.py postgres [--url postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_flows]
    either with [--reuse] (the data of an earlier run) and [--only replenishment] (time that flow alone)

Data is generated with bulk SQL (a recursive CTE on SQLite, generate_series on PostgreSQL): three years of
orders, one consumable line each (quantity 1-3) over 30 products, 90% delivered three days after the order,
2% cancelled, reviews on 5% of orders, and a steady-state outbox (the requests and surveys of the last
weeks already written), so each flow's query sees what it sees on a live store. Every flow runs in a
transaction that is rolled back, so runs are repeatable. Raw figures (a full count of the orders and
order lines, table sizes) are printed beside the flows for comparison.

Replenishment keeps its own tables (purchase_cycle, purchase_gap), so it is timed as it runs: the first
full build of the store (committed; the tables are emptied first), the daily refit (learning, MBG/NBD fit
and every pair's stored plan recomputed; committed) and the hourly plan in steady state, then the hour after 1%
of the customers ordered (half of them with a planned reminder, which the run cancels) and 0.1% of the orders
were cancelled: refresh + cancel + plan, then refresh + refit.

The VIP job and birthdays come last (rolled back): the orders are all $10, so nobody reaches the VIP segment;
``customer_metrics`` is seeded with one VIP in 50 (what the daily segment refresh would leave), and every
customer gets a birthday spread over the year, before the timed part.
"""

# The data-generation SQL is assembled from integer constants of this script, never from input.
# ruff: noqa: S608, S108

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pg_database import open_database
from sqlalchemy import text
from sqlalchemy.orm import Session

from plugin import flow_settings, recommendations
from plugin.config import load_config
from plugin.db import Database
from plugin.flows import (
    birthday,
    cancellation,
    first_order,
    get_flow,
    replenishment_plan,
    review_reply,
    review_request,
    survey,
    ticket_alert,
    ticket_followup,
    usage_guide,
    vip,
    winback,
)
from plugin.flows.base import FlowRun
from plugin.messaging.outbox import schedule
from plugin.models import Base, GuideBlock, Store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PRODUCTS = 30


def _sqlite_ts(expr: str) -> str:
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC); generate the same text.
    return f"strftime('%Y-%m-%d %H:%M:%f000', {expr})"


def _product(g: str, customers: int) -> str:
    # Each customer has a staple product (re-bought), and one order in seven is for another one.
    return f"1 + ((1 + ({g} * 7919) % {customers}) * 13 + CASE WHEN {g} % 7 = 0 THEN 1 ELSE 0 END) % {PRODUCTS}"


def _reason(g: str) -> str:
    # The cancelled orders (one in 50) cycle through Shopify's six cancel reasons.
    reasons = ("CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER")
    cases = " ".join(f"WHEN {n} THEN '{r}'" for n, r in enumerate(reasons))
    return f"CASE WHEN {g} % 50 = 0 THEN CASE ({g} / 50) % 6 {cases} END END"


def generate(db: Database, customers: int, orders: int) -> None:
    """Fill an empty schema with one store's customers, products, orders, lines, reviews and outbox."""
    pg = db.dialect == "postgresql"
    now_days = (NOW - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86400
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO merchant (id, name, settings, alert_email) "
                          "VALUES (1, 'Bench', '{}', 'alerts@bench.test')"))
        conn.execute(text("INSERT INTO store (id, merchant_id, platform, external_id, name, currency, timezone, "
                          "primary_locale, status, scopes, protected_data_access, marketplace_ids) VALUES "
                          "(1, 1, 'shopify', 'bench.myshopify.com', 'Bench', 'USD', 'UTC', 'en', 'active', '', "
                          ":t, '[]')"), {"t": True})
        for n in range(1, PRODUCTS + 1):
            conn.execute(text("INSERT INTO product (id, store_id, external_id, title, consumable, days_of_supply, "
                              "learned_cycle_samples) VALUES (:id, 1, :ext, :title, :c, :d, 0)"),
                         {"id": n, "ext": f"p{n}", "title": f"Product {n}", "c": n <= 20,
                          "d": 30 if n <= 20 else None})
            conn.execute(text("INSERT INTO variant (id, store_id, product_id, external_id, title) "
                              "VALUES (:id, 1, :id, :ext, '')"), {"id": n, "ext": f"v{n}"})
    started = time.perf_counter()
    with db.engine.begin() as conn:
        if pg:
            conn.execute(text(f"""
                INSERT INTO customer (id, store_id, external_id, email, locale, marketing_consent, tags,
                                      created_at, updated_at)
                SELECT g, 1, 'c' || g, 'c' || g || '@bench.test', 'en', (g % 2 = 0), '[]', '2026-01-01', '2026-01-01'
                FROM generate_series(1::bigint, {customers}) g"""))
            # Order g: customer hash, created within three years, delivered 3 days later (90%).
            conn.execute(text(f"""
                INSERT INTO orders (id, store_id, external_id, customer_id, created_at_remote, currency, total_price,
                                    total_refunded, refunded, returned, fulfilled_at, delivered_at, cancelled_at,
                                    cancel_reason, tags, created_at, updated_at)
                SELECT g, 1, 'o' || g, 1 + (g * 7919) % {customers}, ts, 'USD', 10, 0, false, false,
                       CASE WHEN g % 50 <> 0 THEN ts + interval '1 day' END,
                       CASE WHEN g % 50 <> 0 AND g % 10 <> 0 THEN ts + interval '3 days' END,
                       CASE WHEN g % 50 = 0 THEN ts + interval '2 hours' END, {_reason('g')}, '[]', '2026-01-01',
                       '2026-01-01'
                FROM (SELECT g, timestamptz '{NOW.isoformat()}' - ((g * 104729) % (1095 * 86400)) * interval '1 second'
                             AS ts FROM generate_series(1::bigint, {orders}) g) s"""))
            conn.execute(text(f"""
                INSERT INTO order_line (id, order_id, store_id, external_id, product_id, variant_id, title, quantity,
                                        price)
                SELECT g, g, 1, 'l' || g, {_product('g', customers)}, {_product('g', customers)}, '', 1 + g % 3, 10
                FROM generate_series(1::bigint, {orders}) g"""))
        else:
            seq = "WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < {n})"
            conn.execute(text(seq.format(n=customers) + """
                INSERT INTO customer (id, store_id, external_id, email, locale, marketing_consent, tags,
                                      created_at, updated_at)
                SELECT g, 1, 'c' || g, 'c' || g || '@bench.test', 'en', (g % 2 = 0), '[]', '2026-01-01', '2026-01-01'
                FROM seq"""))
            created = f"{now_days} + 2440587.5 - ((g * 104729) % (1095 * 86400)) / 86400.0"
            conn.execute(text(seq.format(n=orders) + f"""
                INSERT INTO orders (id, store_id, external_id, customer_id, created_at_remote, currency, total_price,
                                    total_refunded, refunded, returned, fulfilled_at, delivered_at, cancelled_at,
                                    cancel_reason, tags, created_at, updated_at)
                SELECT g, 1, 'o' || g, 1 + (g * 7919) % {customers}, {_sqlite_ts(created)}, 'USD', 10, 0, 0, 0,
                       CASE WHEN g % 50 <> 0 THEN {_sqlite_ts(created + ' + 1')} END,
                       CASE WHEN g % 50 <> 0 AND g % 10 <> 0 THEN {_sqlite_ts(created + ' + 3')} END,
                       CASE WHEN g % 50 = 0 THEN {_sqlite_ts(created + ' + 2 / 24.0')} END, {_reason('g')}, '[]',
                       '2026-01-01', '2026-01-01'
                FROM seq"""))
            conn.execute(text(seq.format(n=orders) + f"""
                INSERT INTO order_line (id, order_id, store_id, external_id, product_id, variant_id, title, quantity,
                                        price)
                SELECT g, g, 1, 'l' || g, {_product('g', customers)}, {_product('g', customers)}, '', 1 + g % 3, 10
                FROM seq"""))
    print(f"  generated customers/orders/lines in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    day = "interval '1 day'" if pg else "1"

    def shifted(col: str, days: float) -> str:
        if pg:
            return f"{col} + {days} * {day}"
        return _sqlite_ts(f"julianday({col}) + {days}")

    false, true = ("false", "true") if pg else ("0", "1")
    stamp = "'2026-01-01'"
    now_sql = f"timestamptz '{NOW.isoformat()}'" if pg else f"'{NOW.strftime('%Y-%m-%d %H:%M:%S')}.000000'"

    def recent(delay: int) -> str:
        # Orders whose message came due within the flow's 30-day look-back, up to a day ago.
        return (f"{shifted('o.delivered_at', 30 + delay)} > {now_sql} "
                f"AND {shifted('o.delivered_at', delay + 1)} <= {now_sql}")
    with db.engine.begin() as conn:
        # Reviews on 5% of the orders, a few days after delivery (ratings 1-5).
        conn.execute(text(f"""
            INSERT INTO review (store_id, source, external_id, product_id, order_id, customer_id, rating, body,
                                language, created_at_remote, reply_status, created_at, updated_at)
            SELECT 1, 'judgeme', 'r' || o.id, {_product('o.id', customers)}, o.id, o.customer_id, 1 + (o.id / 20) % 5,
                   'ok', 'en', {shifted('o.delivered_at', 5)},
                   CASE WHEN {shifted('o.delivered_at', 5)} < {shifted(now_sql, -1)} THEN 'sent' ELSE 'none' END,
                   {stamp}, {stamp}
            FROM orders o WHERE o.id % 20 = 3 AND o.delivered_at IS NOT NULL"""))
        # Steady state: the requests and surveys of orders already due were written (and sent) before.
        for flow, delay in (("review_request", 7), ("survey", 10)):
            conn.execute(text(f"""
                INSERT INTO message (store_id, customer_id, order_id, flow, step, channel, marketing,
                                     idempotency_key, scheduled_for, status, attempts, payload, sent_at,
                                     created_at, updated_at)
                SELECT 1, o.customer_id, o.id, '{flow}', 'main', 'email', {false},
                       '1:{flow}:order=' || o.id || '\\:step=main', {shifted('o.delivered_at', delay)}, 'sent', 1,
                       '{{}}', {shifted('o.delivered_at', delay)}, {stamp}, {stamp}
                FROM orders o WHERE {recent(delay)}"""))
        # Complaint tickets on one order in 300, opened five days after delivery and resolved three days later.
        conn.execute(text(f"""
            INSERT INTO ticket (store_id, customer_id, order_id, source, severity, subject, status, opened_at,
                                sla_due_at, resolved_at, resolution, created_at, updated_at)
            SELECT 1, o.customer_id, o.id, 'survey', 1 + o.id % 3, 'bench', 'resolved', {shifted('o.delivered_at', 5)},
                   {shifted('o.delivered_at', 6)}, {shifted('o.delivered_at', 8)}, 'We changed the box', {stamp},
                   {stamp}
            FROM orders o WHERE o.id % 300 = 7 AND o.delivered_at IS NOT NULL"""))
        # Steady state: the first-order welcomes of the customers' first orders were written before.
        conn.execute(text(f"""
            INSERT INTO message (store_id, customer_id, order_id, flow, step, channel, marketing, idempotency_key,
                                 scheduled_for, status, attempts, payload, sent_at, created_at, updated_at)
            SELECT 1, o.customer_id, o.id, 'first_order', 'main', 'email', {false},
                   '1:first_order:customer=' || o.customer_id || '\\:step=main', o.created_at_remote, 'sent', 1,
                   '{{}}', o.created_at_remote, {stamp}, {stamp}
            FROM orders o WHERE o.id IN (SELECT min(e.id) FROM orders e GROUP BY e.customer_id)
              AND {shifted('o.created_at_remote', 3)} <= {now_sql}"""))
        del true
    print(f"  generated reviews and outbox in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    if pg:
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    print(f"  analyzed in {time.perf_counter() - started:.1f} s", flush=True)


def timed(label: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    print(f"  {label:<48} {elapsed:8.2f} s   {result}", flush=True)
    return elapsed, result


def run_flows(db: Database, only: str | None = None) -> dict[str, float]:
    """Time each flow's who-is-due computation (plus its writes) in rolled-back transactions (or ``only`` one)."""
    config = load_config({"database_url": db.url, "secrets": {"secret_key": "bench-secret-key-0123456789",
                                                               "encryption_key": _fernet()}}, environ={})
    figures: dict[str, float] = {}

    def in_tx(fn: Callable[[Session], Any]) -> Callable[[], Any]:
        def call() -> Any:
            with db.sessionmaker() as session:
                try:
                    return fn(session)
                finally:
                    session.rollback()
        return call

    def store(session: Session) -> Store:
        return session.get(Store, 1)

    settings = {name: get_flow(name).settings.load(flow_settings.defaults(config, get_flow(name).settings_section))
                for name in ("review_request", "survey", "replenishment", "review_reply", "ticket_alert", "winback",
                             "first_order", "cancellation", "ticket_followup", "usage_guide")}
    settings["winback_backfill"] = get_flow("winback").settings.load(
        {**flow_settings.defaults(config, "winback"), "backfill_enabled": True})
    # A cap above the week's newly dormant, so the backfill itself reads older customers (newest lapsed first).
    settings["winback_backfill_room"] = get_flow("winback").settings.load(
        {**flow_settings.defaults(config, "winback"), "backfill_enabled": True, "backfill_daily_cap": 10_000})

    def run_of(s: Session, name: str) -> FlowRun:
        flow = get_flow(name.removesuffix("_room").removesuffix("_backfill"))
        return FlowRun(session=s, config=config, store=store(s), settings=settings[name], now=NOW,
                       counts={c: 0 for c in flow.counts})

    if only == "replenishment":
        return time_replenishment(db, settings["replenishment"], in_tx)
    print("raw figures:")
    for table in ("customer", "orders", "order_line", "review", "message"):
        timed(f"SELECT count(*) FROM {table}", in_tx(lambda s, t=table: s.execute(
            text(f"SELECT count(*) FROM {t}")).scalar_one()))
    figures["raw_scan_orders_lines"], _ = timed(
        "raw: scan all orders x lines (sum quantity)", in_tx(lambda s: s.execute(text(
            "SELECT sum(ol.quantity) FROM orders o JOIN order_line ol ON ol.order_id = o.id")).scalar_one()))
    print("flows (who is due, rolled back):")
    figures["review_requests"], _ = timed("review requests: due requests + reminders", in_tx(lambda s: (
        len(review_request.due_requests(run_of(s, "review_request"))),
        len(review_request.due_reminders(run_of(s, "review_request"))))))
    figures["surveys"], _ = timed("surveys: due surveys", in_tx(lambda s: len(survey.due_surveys(run_of(s, "survey")))))
    figures["first_order"], _ = timed("first-order welcomes: first orders due", in_tx(lambda s: len(
        first_order.due_welcomes(run_of(s, "first_order")))))
    figures["cancellation"], _ = timed("cancellations: questions + declined notices", in_tx(lambda s: (
        len(cancellation.due_questions(run_of(s, "cancellation"))),
        len(cancellation.due_declined(run_of(s, "cancellation"))))))
    figures["ticket_followup"], _ = timed("complaint follow-through: follow-ups + offers", in_tx(lambda s: (
        len(ticket_followup.due_followups(run_of(s, "ticket_followup"))),
        len(ticket_followup.due_comebacks(run_of(s, "ticket_followup"))))))

    def guides_due(s: Session) -> int:
        # A guide on each of the 30 products (rolled back with the run) and no guide row written yet: the first run
        # after the merchant switches guides on, the heaviest (every order delivered in the look-back is read).
        s.add_all(GuideBlock(store_id=1, name=f"P{n}", target_kind="product", target=str(n), image_urls=[],
                             texts={"en": {"title": "Tips", "html": "<p>Tips.</p>"}}, days_after_delivery=2)
                  for n in range(1, PRODUCTS + 1))
        s.flush()
        return len(usage_guide.due_guides(run_of(s, "usage_guide")))
    figures["usage_guide"], _ = timed("usage guides: delivered orders with new products (first run)",
                                      in_tx(guides_due))
    figures.update(time_replenishment(db, settings["replenishment"], in_tx))
    figures["review_replies"], _ = timed("review replies: new reviews (replies, drafts, tickets)", in_tx(
        lambda s: review_reply.handle_new_reviews(s, config, store(s), settings["review_reply"], NOW)[0]))
    figures["ticket_alerts"], _ = timed("tickets: severity-1 alerts + SLA breaches", in_tx(lambda s: (
        len(ticket_alert.due_urgent(run_of(s, "ticket_alert"))),
        len(ticket_alert.due_alerts(run_of(s, "ticket_alert"))))))
    figures["winback"], _ = timed("win-back: exit + newly dormant + reminders", in_tx(lambda s: (
        winback.cancel_ordered_again(run_of(s, "winback")), len(winback.due_winbacks(run_of(s, "winback"))),
        len(winback.due_reminders(run_of(s, "winback"))))))
    figures["winback_backfill"], _ = timed("win-back: the same with the backfill on (cap 200)", in_tx(lambda s: (
        winback.cancel_ordered_again(run_of(s, "winback_backfill")),
        len(winback.due_winbacks(run_of(s, "winback_backfill"))),
        len(winback.due_reminders(run_of(s, "winback_backfill"))))))
    figures["winback_backfill_room"], _ = timed("win-back: the same with a cap of 10,000 (backfill reads)", in_tx(
        lambda s: (winback.cancel_ordered_again(run_of(s, "winback_backfill_room")),
                   len(winback.due_winbacks(run_of(s, "winback_backfill_room"))),
                   len(winback.due_reminders(run_of(s, "winback_backfill_room"))))))
    figures["recommendations"], _ = timed("recommendations: daily co-purchase rebuild", in_tx(
        lambda s: recommendations.rebuild_store(s, config, 1, NOW)))

    def shown(s: Session) -> int:
        recommendations.rebuild_store(s, config, 1, NOW)
        started = time.perf_counter()
        found = recommendations.for_customers(s, store(s), range(1, 1001), 3)
        figures["recommendations_read"] = time.perf_counter() - started
        return sum(len(v) for v in found.values())

    timed("recommendations: (rebuild) + read for 1,000 customers", in_tx(shown))
    print(f"  {'  of which the read':<48} {figures['recommendations_read']:8.2f} s", flush=True)
    figures.update(time_vip_and_birthdays(db, config, in_tx))
    return figures


VIP_EVERY = 50  # one customer in 50 is in the VIP segment (20,000 of 1,000,000)
VIP_CHURN_EVERY = 5_000  # the hour after the daily refresh: this share of customers enter, as many leave


def time_vip_and_birthdays(db: Database, config: Any,
                           in_tx: Callable[[Callable[[Session], Any]], Callable[[], Any]]) -> dict[str, float]:
    """Time the VIP job's database work and the birthday due query (rolled back) on seeded segments / birthdays.

    The generated orders are all $10, so the analytics put nobody in the VIP segment: ``customer_metrics`` is
    seeded instead (one customer in ``VIP_EVERY`` VIP), untimed, as the daily segment refresh leaves it. Shopify's
    tagsAdd/tagsRemove calls are network time per member and not counted; what is timed is what the job asks the
    database: membership, whose tag is out of line, and the welcomes due. Birthdays: every customer gets one,
    spread over the year (untimed), then the hourly due query runs.
    """
    figures: dict[str, float] = {}
    pg = db.dialect == "postgresql"
    vip_settings = get_flow("vip").settings.load(flow_settings.defaults(config, "vip"))
    birthday_settings = get_flow("birthday").settings.load(flow_settings.defaults(config, "birthday"))

    def flow_run(s: Session, settings: Any) -> FlowRun:
        return FlowRun(session=s, config=config, store=s.get(Store, 1), settings=settings, now=NOW)

    def seed_segments(s: Session) -> None:
        s.execute(text(f"""
            INSERT INTO customer_metrics (customer_id, store_id, orders_count, total_spent, spent_12m, orders_12m,
                                          largest_order, segment, computed_at)
            SELECT id, 1, 4, 600, 600, 4, 150,
                   CASE WHEN id % {VIP_EVERY} = 0 THEN 'vip' ELSE 'regular' END, :now FROM customer"""),
                  {"now": NOW if pg else NOW.replace(tzinfo=None)})

    def vip_job(s: Session, tag: str) -> tuple[dict[str, int], int, int]:
        members = vip.refresh_members(s, 1, NOW, tag)
        return members, len(vip._tag_work(s, 1, tag)), len(vip.due_welcomes(flow_run(s, vip_settings)))

    def first_run(s: Session) -> Any:
        seed_segments(s)
        started = time.perf_counter()
        result = vip_job(s, "VIP")
        figures["vip_first"] = time.perf_counter() - started
        return result

    timed("vip: (seed segments) + first run", in_tx(first_run))
    print(f"  {'  of which members + tag work + welcomes':<48} {figures['vip_first']:8.2f} s", flush=True)

    def steady(s: Session) -> Any:
        # The state an earlier run left: members in, tagged, welcomed; then the day's refresh moves a few.
        seed_segments(s)
        vip.refresh_members(s, 1, NOW - timedelta(days=1), "VIP")
        s.execute(text("UPDATE vip_member SET tagged = :t"), {"t": True})
        schedule(s, vip.due_welcomes(FlowRun(session=s, config=config, store=s.get(Store, 1),
                                             settings=vip_settings, now=NOW - timedelta(hours=23))),
                 NOW - timedelta(hours=23))
        s.execute(text(f"UPDATE customer_metrics SET segment = CASE WHEN segment = 'vip' THEN 'regular' ELSE 'vip' "
                       f"END WHERE customer_id % {VIP_CHURN_EVERY} IN (0, 1)"))
        started = time.perf_counter()
        result = vip_job(s, "VIP")
        figures["vip"] = time.perf_counter() - started
        started = time.perf_counter()
        renamed = len(vip._tag_work(s, 1, "Gold"))
        figures["vip_rename"] = time.perf_counter() - started
        return result, renamed

    timed("vip: (seed steady state) + hourly run + rename", in_tx(steady))
    print(f"  {'  of which the hourly run (members, tags, welcomes)':<48} {figures['vip']:8.2f} s", flush=True)
    print(f"  {'  of which the tag work after a rename':<48} {figures['vip_rename']:8.2f} s", flush=True)

    def birthdays(s: Session) -> Any:
        # Month and day only, stored in the year 2000 (plugin.flows.birthday.STORED_YEAR), spread over the year.
        spread = ("date '2000-01-01' + (id % 366)::int" if pg
                  else "date('2000-01-01', '+' || (id % 366) || ' days')")
        s.execute(text(f"UPDATE customer SET birthday = {spread}"))
        started = time.perf_counter()
        result = len(birthday.due_birthdays(flow_run(s, birthday_settings)))
        figures["birthdays"] = time.perf_counter() - started
        return result

    timed("birthdays: (give every customer one) + due query", in_tx(birthdays))
    print(f"  {'  of which the due query':<48} {figures['birthdays']:8.2f} s", flush=True)
    return figures


def _plan_run(s: Session, settings: Any) -> FlowRun:
    return FlowRun(session=s, config=None, store=s.get(Store, 1), settings=settings, now=NOW)  # type: ignore[arg-type]


def time_replenishment(db: Database, settings: Any,
                       in_tx: Callable[[Callable[[Session], Any]], Callable[[], Any]]) -> dict[str, float]:
    """Time the planner's first full build (committed), then learning and planning in steady state."""
    figures: dict[str, float] = {}
    with db.sessionmaker.begin() as session:  # --reuse: start from a store never built
        for table in ("purchase_cycle", "purchase_gap"):
            session.execute(text(f"DELETE FROM {table}"))
        session.execute(text("DELETE FROM sync_state WHERE stream IN (:s, :p, :c)"),
                        {"s": replenishment_plan.CYCLES_STREAM, "p": replenishment_plan.PLAN_STREAM,
                         "c": replenishment_plan.CANCEL_STREAM})
        session.execute(text("DELETE FROM replenishment_fit"))
        session.execute(text("UPDATE product SET cycles_built = :f, learned_cycle_samples = 0, "
                             "learned_cycle_days = NULL, plan_inputs = NULL"), {"f": False})
    if db.dialect == "postgresql":  # as a store's first build finds them: no dead rows of an earlier run
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE purchase_cycle, purchase_gap"))
    with db.sessionmaker.begin() as session:
        figures["replenishment_build"], _ = timed("replenishment: first full build (committed)",
                                                  lambda: replenishment_plan.refresh_cycles(session, 1))
    with db.sessionmaker.begin() as session:  # the daily refit: learn, fit, then replan every pair (committed)
        figures["replenishment_learn"], _ = timed("replenishment: refit: learn, MBG/NBD fit, replan all", lambda: (
            replenishment_plan.learn_product_cycles(session, 1, NOW, settings)))

    def plan(s: Session) -> tuple[int, int]:
        return (replenishment_plan.cancel_reordered(s, 1, NOW),
                len(replenishment_plan.due_reminders(_plan_run(s, settings))))

    figures["replenishment"], _ = timed("replenishment: cancel re-ordered + due reminders", in_tx(plan))

    def after_new_orders(s: Session) -> Any:
        # The previous hour's run (cancel, plan) is in the outbox, then 1% of the customers order (half of them
        # customers with a planned reminder) and 0.1% of older orders are cancelled; none of this is timed.
        replenishment_plan.cancel_reordered(s, 1, NOW)
        schedule(s, replenishment_plan.due_reminders(_plan_run(s, settings)), NOW)
        changed = _new_orders(s, db.dialect)
        started = time.perf_counter()
        result = (changed, plan(s))
        figures["replenishment_steady"] = time.perf_counter() - started
        started = time.perf_counter()
        learned = replenishment_plan.learn_product_cycles(s, 1, NOW, settings)
        figures["replenishment_learn_steady"] = time.perf_counter() - started
        return result, learned

    _, result = timed("replenishment: 1% new orders: (seed) + refresh, cancel, plan", in_tx(after_new_orders))
    print(f"  {'  of which refresh + cancel + plan':<48} {figures['replenishment_steady']:8.2f} s", flush=True)
    print(f"  {'  then refresh + refit (replan all)':<48} {figures['replenishment_learn_steady']:8.2f} s", flush=True)
    return figures


def _new_orders(session: Session, dialect: str) -> dict[str, int]:
    """Insert one new order for 1% of the customers and cancel 0.1% of the orders; return the counts."""
    customers = session.execute(text("SELECT count(*) FROM customer")).scalar_one()
    wanted = max(customers // 100, 1)
    planned = session.execute(text(
        "SELECT customer_id, product_id FROM message WHERE flow = 'replenishment' AND status = 'scheduled' "
        "ORDER BY id LIMIT :n"), {"n": wanted // 2}).all()
    picks = {c: p for c, p in planned}
    k = 0
    while len(picks) < wanted:
        k += 1
        c = 1 + (k * 104723) % customers
        picks.setdefault(c, 1 + (c * 13) % PRODUCTS)  # the customer's staple product
    first = session.execute(text("SELECT max(id) FROM orders")).scalar_one() + 1
    created = NOW - timedelta(hours=1)
    stamp = created.replace(tzinfo=None) if dialect == "sqlite" else created
    orders, lines = [], []
    for i, (c, p) in enumerate(sorted(picks.items())):
        oid = first + i
        orders.append({"id": oid, "c": c, "ext": f"n{oid}", "t": stamp})
        lines.append({"id": oid, "o": oid, "ext": f"nl{oid}", "p": p, "q": 1 + i % 3})
    false = False if dialect == "postgresql" else 0
    session.execute(text("INSERT INTO orders (id, store_id, external_id, customer_id, created_at_remote, currency, "
                         "total_price, total_refunded, refunded, returned, tags) VALUES "
                         "(:id, 1, :ext, :c, :t, 'USD', 10, 0, :f, :f, '[]')"),
                    [{**o, "f": false} for o in orders])
    session.execute(text("INSERT INTO order_line (id, order_id, store_id, external_id, product_id, variant_id, title, "
                         "quantity, price) VALUES (:id, :o, 1, :ext, :p, :p, '', :q, 10)"), lines)
    # Cancelled after the fact (what an orders/cancelled webhook writes): the history of their pairs changes.
    cancelled = session.execute(text("UPDATE orders SET cancelled_at = :t, updated_at = CURRENT_TIMESTAMP "
                                     "WHERE id % 1000 = 7 AND cancelled_at IS NULL"), {"t": stamp}).rowcount
    return {"new_orders": len(orders), "cancelled_orders": cancelled}


def _add_missing_columns(db: Database) -> None:
    """--reuse: add the (nullable) columns and the indexes added to the models since the data was generated."""
    from sqlalchemy import inspect
    from sqlalchemy.schema import CreateIndex

    with db.engine.begin() as conn:
        inspector = inspect(conn)  # on the writing connection: SQLite's BEGIN IMMEDIATE allows one writer
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    kind = column.type.compile(dialect=db.engine.dialect)
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
            indexes = {i["name"] for i in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in indexes:
                    conn.execute(CreateIndex(index))


def _fernet() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dialect", choices=["sqlite", "postgres"])
    parser.add_argument("--path", default="/tmp/aftercare-bench-flows.sqlite")
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_flows")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=3_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep existing data (skip generation)")
    parser.add_argument("--only", choices=["replenishment"], help="time only this flow")
    args = parser.parse_args()
    url, db = open_database(args.dialect, args.path, args.url, args.reuse)
    print(f"{db.dialect}: {args.customers:,} customers, {args.orders:,} orders", flush=True)
    if not args.reuse:
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        generate(db, args.customers, args.orders)
    else:
        Base.metadata.create_all(db.engine)  # tables added to the models since the data was generated
        _add_missing_columns(db)
    run_flows(db, args.only)
    db.dispose()


if __name__ == "__main__":
    main()
