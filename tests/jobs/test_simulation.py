"""120 simulated days on the Shopify sandbox's seeded store: every flow, the real dispatcher, a real SMTP server.

The store comes from ``sandbox.shopify.seed.generate_store`` (two years of history ending at the simulation's
end) and is kept aside whole. A ``ShopifySandbox`` on loopback, on the test's clock, shows the store as of each
moment: before every sync its data is replaced (``replace_store``) by copies of the seed objects holding only
what had happened by then (orders created so far, each with its fulfilment, delivery, cancellation, refund and
return events up to that moment and ``updatedAt`` the latest of them). The app's store is installed with a token
for it, and every six hours the real sync job (``plugin.sync.store_run.sync_store``) pulls what changed over
HTTP through the Shopify connector: a bulk backfill first, then incremental reads by ``updated_at`` with their
overlap. The scenario's traits live in the sandbox data too (customers without e-mail, subscription-tagged orders);
consent is each customer's final state from the start. Judge.me reviews are still upserted directly
(``plugin.sync.upsert_reviews``) at the first step after they are written. The flows and the dispatcher run
hourly, the merchant resolves each ticket three days after it opens (choosing a replacement as the remedy of a
severity-1 ticket), and some customers answer their survey, or the question why they cancelled, a day after
receiving it. The service journey runs too: first-order welcomes, cancellation questions and declined-payment
notices (by Shopify's cancel reason), the complaint follow-through of every resolved ticket (review, survey and
cancellation tickets), the merchant's immediate severity-1 alerts and usage guides (the merchant's blocks from the
shipped starters, per product type and one per product, each with its own delay after delivery). So does the
growth journey: win-back (with its reminder), birthdays (read daily from the merchant's customer metafield), VIP
welcomes (the merchant's VIP rule over the daily segments; membership compared entry by entry) and the shopping
calendar's spring events (Mothering Sunday, Eid al-Fitr, Golden Week, Mother's Day, Dia dos Namorados, 618) to the
countries and segments the merchant set, each at 09:00 in the customer's zone three days before (their dates
written here, not computed); their single-use codes are created in the sandbox as the emails leave. The seed's two
years hold few cancellations inside the 120 days, so a few more orders there are cancelled, by each reason the
cancellation flow treats differently. Not simulated: VIP tags (the app has no write_customers here;
tests/messaging/test_vip.py and the demo test check them in the sandbox), delivery updates and stalls
(tests/delivery).

The expected outcome is computed independently: a plain-Python model of the rules (DESIGN.md §4-5) over the
seed objects, stepping the same hours and seeing the store as of the last six-hourly step. The test compares
the exact map of (flow, step, natural key) → (status, reason), then checks every delivered email against the
SMTP server: exactly once, inside the customer's local 09:00-11:00 window on a non-holiday, in their language.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import func, select, update

from connectors.records import ReviewRecord
from jobs import analytics as analytics_jobs
from jobs import dispatch
from plugin import flow_settings, guides, sync, tickets
from plugin.flows import birthday, cancellation, replenishment_plan, runner, survey, vip
from plugin.models import (
    CancellationAnswer,
    Customer,
    Merchant,
    Message,
    Order,
    Product,
    Review,
    Store,
    Suppression,
    SurveyResponse,
    Ticket,
    VipMember,
)
from plugin.secrets_store import set_credential
from plugin.shopping_calendar import save_event
from plugin.sync.store_run import sync_store
from sandbox.shopify import ShopifySandbox
from sandbox.shopify.models import Refund
from sandbox.shopify.models import Store as SandboxStore
from sandbox.shopify.seed import ShopSpec, generate_store
from sandbox.smtp import SmtpSandbox
from tests.jobs.conftest import make_ctx
from tests.shopify_sync_harness import assert_mirrors

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
GRID = 6 * HOUR
END = datetime(2026, 6, 29, 0, 0, tzinfo=UTC)
DAYS = 120
START = END - DAYS * DAY
STORE_ZONE, STORE_COUNTRY = "America/New_York", "US"
LANG = {"zh-CN": "zh-Hans", "zh-TW": "zh-Hant"}
# Languages with shipped templates; any other customer locale gets the store's (English).
SHIPPED = {"en", "de", "fr", "es", "it", "pt-BR", "ja", "zh-Hans", "zh-Hant", "ar"}
COMMENTS = {"arrived broken": 2, "delivery was late": 3, "this looks fake": 1, "": 3}
NEGATIVE_BODIES = {"Box was damaged": 2, "Smells fake, counterfeit?": 1, "Shipping delay of two weeks": 3,
                   "Not for me": 3}
SEV_SLA = {1: timedelta(hours=1), 2: timedelta(hours=24), 3: timedelta(hours=72)}
CANCEL_ANSWERS = ("found_cheaper", "ordered_by_mistake", "delivery_too_slow", "changed_mind", "other")
# (Shopify's cancel reason, the customer's answer a day after being asked why, None: no answer)
CANCEL_CYCLE = (("CUSTOMER", "delivery_too_slow"), ("DECLINED", None), ("CUSTOMER", None), ("INVENTORY", None),
                ("CUSTOMER", "found_cheaper"), ("STAFF", None), ("FRAUD", None))
BIRTHDAY_FIELD = "facts.birth_date"
# The merchant's VIP rule (with the default 4 orders in 12 months): the seed's $35 orders reach $500 once.
VIP_SPEND = 300.0
# The merchant's shopping calendar inside the 120 days: event → (its day in 2026, the countries the merchant sends
# it to), each to growth, VIP and active customers (the seed's $35 orders make few growth customers).
CALENDAR = {
    "mothering_sunday": (date(2026, 3, 15), ("GB",)),
    "eid_al_fitr": (date(2026, 3, 20), ("SA", "AE", "TR", "EG")),
    "golden_week": (date(2026, 4, 29), ("JP",)),
    "mothers_day": (date(2026, 5, 10), ("US", "CA", "DE", "AT", "CH", "IT", "NL", "BE", "BR", "JP", "CN", "TW")),
    "dia_dos_namorados": (date(2026, 6, 12), ("BR",)),
    "mid_year_618": (date(2026, 6, 18), ("CN",)),
}
CALENDAR_SEGMENTS = ("growth", "vip", "active")
# The merchant's usage guides: (shipped starter, target kind, product type or product title, days after delivery).
# Shaving Cream's own guide wins over its type's; an order of blades and cream gets both, due with the first.
GUIDES = (("coffee", "product_type", "Coffee", 2), ("supplements", "product_type", "Vitamins", 5),
          ("skincare", "product", "Shaving Cream", 1), ("skincare", "product_type", "Shaving", 6),
          ("textiles", "product_type", "Pet Supplies", 4))


# -- the seed and its visible state at a given time -------------------------------------------------------


def _cancel(shop, o, reason):
    """Cancel a seed order five hours after it was placed, before anything shipped, refunded in full (as Shopify)."""
    at = (o.created_at + 5 * HOUR).replace(microsecond=0)
    o.fulfillments.clear()
    o.returns.clear()
    o.refunds[:] = [Refund(id=shop.new_id(), created_at=at, amount_cents=o.total_cents, note="Order cancelled")]
    o.cancelled_at, o.cancel_reason, o.closed_at, o.updated_at = at, reason, at, at


def seed():
    shop = generate_store(ShopSpec(domain="sim-store.myshopify.com", iana_timezone=STORE_ZONE,
                                   country=STORE_COUNTRY), seed=11, customers=150, orders=600, now=END)
    # The seed cancels 3 % of its orders over two years (one, for fraud, in the period): cancel a few more inside
    # it, by each reason the cancellation flow treats differently, so every branch runs.
    period = [o for o in shop.orders if o.customer_id is not None and not o.cancelled_at
              and START + 2 * DAY < o.created_at < END - 10 * DAY]
    picked = {}
    for n, o in enumerate(period[5::8]):
        reason, picked[o.id] = CANCEL_CYCLE[n % len(CANCEL_CYCLE)]
        _cancel(shop, o, reason)
    people = {c.id: c for c in shop.customers}
    index = {c.id: n for n, c in enumerate(shop.customers)}
    for c, n in ((c, index[c.id]) for c in shop.customers):
        if n % 3 == 1:  # a third keep a birthday in the merchant's metafield, spread over the year
            c.metafields[BIRTHDAY_FIELD] = ("date", f"{1970 + n % 30}-{1 + n % 12:02d}-{1 + (n * 7) % 28:02d}")
    traits = {
        "no_email": {cid for cid, n in index.items() if n % 17 == 5},
        "unsubscribed": {cid for cid, n in index.items() if n % 13 == 3},
        "bounce": {cid for cid, n in index.items() if n % 19 == 7},
        "subscription": {cid for cid, n in index.items() if n % 23 == 11},
    }
    reviews = []
    answers = {}
    reasons = {}
    for o in shop.orders:
        if o.id in picked:
            if picked[o.id]:
                reasons[str(o.id)] = picked[o.id]
        elif o.cancel_reason == "CUSTOMER" and random.Random(o.id * 7).random() < 0.7:
            reasons[str(o.id)] = random.Random(o.id * 11).choice(CANCEL_ANSWERS)
        rng = random.Random(o.id)
        delivered = _delivered(o)
        if delivered and START - 40 * DAY < delivered and rng.random() < 0.3:
            created = delivered + 9 * DAY + timedelta(seconds=rng.randint(0, 3 * 86400))
            if created <= END:
                rating = rng.choice([5, 5, 4, 4, 3, 2, 1])
                body = rng.choice(list(NEGATIVE_BODIES)) if rating <= 3 else "Great, thanks"
                reviews.append(dict(ext=f"r{o.id}", order=o, rating=rating, body=body, created=created,
                                    language=people[o.customer_id].locale))
        if rng.random() < 0.5:
            score = rng.choice([10, 9, 8, 6, 3, 0])
            answers[str(o.id)] = (score, rng.choice(list(COMMENTS)) if score <= 6 else "")
    answers["cancel"] = reasons
    return shop, people, traits, reviews, answers


def _shipped(o):
    return o.fulfillments[0].created_at if o.fulfillments else None


def _delivered(o):
    return o.fulfillments[0].delivered_at if o.fulfillments else None


def _refunded_at(o):
    total, paid_back = o.total_cents, 0
    for r in sorted(o.refunds, key=lambda r: r.created_at):
        paid_back += r.amount_cents
        if paid_back >= total:
            return r.created_at
    return None


def _returned_at(o):
    return min((r.created_at for r in o.returns), default=None)


def _seen(ts, t):
    return ts if ts is not None and ts <= t else None


# -- the run against the real code -------------------------------------------------------------------------


CLIENT_ID = "sim-app"
# write_discounts: win-back and birthday codes are created in the sandbox when their email leaves.
SCOPES = ("read_orders", "read_all_orders", "read_customers", "read_products", "write_discounts")
SUBSCRIPTION_TAG = "Subscription Recurring Order"


def _customer_as_of(c, t, traits, orders):
    """Return a copy of a seed customer at ``t``: the scenario's missing e-mail, the final consent from the start.

    ``updatedAt`` moves as Shopify moves it: at creation, at the consent change (here by the time the
    customer is first seen) and at each order the customer places.
    """
    consent_at = min(c.consent_updated_at, max(c.created_at, START)) if c.consent_updated_at else None
    last_order = max((o.created_at for o in orders if o.created_at <= t), default=None)
    stamps = [c.created_at, consent_at, last_order]
    return replace(c, email=None if c.id in traits["no_email"] else c.email, consent_updated_at=consent_at,
                   updated_at=max(s for s in stamps if s is not None))


def _order_as_of(o, t, traits):
    """Return a copy of a seed order holding only its events up to ``t``, ``updatedAt`` the latest of them."""
    fulfillments = []
    for f in o.fulfillments:
        if f.created_at > t:
            continue
        in_transit, delivered = _seen(f.in_transit_at, t), _seen(f.delivered_at, t)
        fulfillments.append(replace(f, in_transit_at=in_transit, delivered_at=delivered,
                                    updated_at=delivered or in_transit or f.created_at))
    refunds = [r for r in o.refunds if r.created_at <= t]
    returns = [r for r in o.returns if r.created_at <= t]
    cancelled = _seen(o.cancelled_at, t)
    stamps = [o.created_at, cancelled, *(f.updated_at for f in fulfillments), *(r.created_at for r in refunds),
              *(r.created_at for r in returns)]
    return replace(o, fulfillments=fulfillments, refunds=refunds, returns=returns, cancelled_at=cancelled,
                   cancel_reason=o.cancel_reason if cancelled else None, closed_at=_seen(o.closed_at, t),
                   updated_at=max(s for s in stamps if s is not None),
                   email=None if o.customer_id in traits["no_email"] else o.email,
                   tags=(SUBSCRIPTION_TAG,) if o.customer_id in traits["subscription"] else o.tags)


def _store_as_of(shop, t, traits):
    """Return the store as it was at ``t``: customers and orders created by then, orders' events up to then."""
    customers = [_customer_as_of(c, t, traits, shop.customer_orders(c.id)) for c in shop.customers
                 if c.created_at <= t]
    store = SandboxStore(shop=shop.shop, customers=customers, products=shop.products,
                         orders=[_order_as_of(o, t, traits) for o in shop.orders if o.created_at <= t])
    store.next_id = shop.next_id
    return store


def start_sandbox(clock, shop):
    """Serve an empty sandbox shop with the seed's domain on loopback and install our app on it."""
    spec = ShopSpec(domain=shop.shop.domain, iana_timezone=STORE_ZONE, country=STORE_COUNTRY)
    sandbox = ShopifySandbox(seed=11, customers=0, orders=0, clock=clock, shops=[spec])
    sandbox.register_app(CLIENT_ID, "sim-app-secret-0123456789abcdef", SCOPES)
    token = sandbox.install(CLIENT_ID)["access_token"]
    sandbox.start()
    return sandbox, token


def run_real(ctx, smtp, sandbox, token, shop, people, traits, reviews, answers):
    clock = ctx.clock
    clock.set(START)
    with ctx.database.session() as s:
        merchant = Merchant(name="Sim", sender_email="shop@sim.test", sender_name="Sim Store",
                            alert_email="alerts@sim.test")
        s.add(merchant)
        s.flush()
        store = Store(merchant_id=merchant.id, platform="shopify", external_id=shop.shop.domain,
                      name="Sim Store", timezone=STORE_ZONE, country=STORE_COUNTRY, primary_locale="en",
                      installed_at=START)
        set_credential(store, ctx.vault, "access_token_enc", token)
        s.add(store)
        s.flush()
        sid = store.id
        flow_settings.update(s, ctx.config, sid, "policy", {"marketing_cap_count": 1000})
        # No discount on come-back offers (their codes are the follow-up tests' business); birthdays from the
        # merchant's metafield.
        flow_settings.update(s, ctx.config, sid, "ticket_followup", {"comeback_discount_percent": 0})
        flow_settings.update(s, ctx.config, sid, "birthday", {"metafield": BIRTHDAY_FIELD})
        merchant.settings = {"segments": {"vip_min_spent_12m": VIP_SPEND}}
        for key, (_day, countries) in CALENDAR.items():
            save_event(s, sid, key, countries=list(countries), segments=list(CALENDAR_SEGMENTS))
        for cid in traits["unsubscribed"]:
            s.add(Suppression(store_id=sid, email=people[cid].email.lower(), reason="unsubscribe",
                              created_at=START))
    for cid in traits["bounce"]:
        smtp.reject(people[cid].email)
    pending_reviews = sorted(reviews, key=lambda r: r["created"])
    t, previous = START, None
    while t <= END:
        clock.set(t)
        if not _on_grid(t):
            # Between flow runs only the dispatcher works (hourly); hours with nothing due are skipped.
            dispatch.dispatch_due(ctx, limit=100_000, channels=["email"])
            t = _next_step(ctx, t)
            continue
        sandbox.replace_store(_store_as_of(shop, t, traits))
        counts = sync_store(ctx, sid)
        assert counts["status"] == "ok", counts
        assert [counts[s]["mode_bulk"] for s in ("products", "customers", "orders")] == [int(previous is None)] * 3
        if previous is None:
            with ctx.database.session() as s:
                for p in shop.products:  # the merchant's replenishment settings, once the catalogue is synced
                    s.execute(update(Product).where(Product.store_id == sid, Product.external_id == str(p.id))
                              .values(consumable=p.days_of_supply is not None, days_of_supply=p.days_of_supply))
                ids = {p.title: s.scalar(select(Product.id).where(Product.store_id == sid,
                                                                  Product.external_id == str(p.id)))
                       for p in shop.products}
                for starter, kind, target, days in GUIDES:  # the merchant's guides, from the shipped starters
                    block = guides.new_from_starter(s, sid, starter)
                    block.target_kind, block.target = kind, str(ids[target]) if kind == "product" else target
                    block.days_after_delivery, block.enabled = days, True
        arrived = [r for r in pending_reviews if r["created"] <= t and (previous is None or r["created"] > previous)]
        with ctx.database.session() as s:
            if arrived:
                sync.upsert_reviews(s, sid, [ReviewRecord(
                    source="judgeme", external_id=r["ext"], rating=r["rating"], created_at=r["created"],
                    body=r["body"], language=r["language"], reviewer_name=people[r["order"].customer_id].first_name,
                    order_external_id=str(r["order"].id), reviewer_external_id=str(r["order"].customer_id))
                    for r in arrived])
            # The merchant resolves tickets after three days; customers answer surveys a day after receiving them.
            for ticket in s.scalars(select(Ticket).where(Ticket.status == "open",
                                                         Ticket.opened_at <= t - 3 * DAY)):
                tickets.resolve_ticket(s, ticket.id, "Replaced the item and improved packing", t,
                                       remedy="replacement" if ticket.severity == 1 else None)
            for m in s.scalars(select(Message).where(Message.flow == "survey", Message.step == "main",
                                                     Message.status == "sent", Message.sent_at <= t - DAY)):
                order_ext = s.get(Order, m.order_id).external_id
                done = s.scalar(select(SurveyResponse.id).where(SurveyResponse.message_id == m.id))
                if order_ext in answers and done is None:
                    survey.record_answer(s, m.id, *answers[order_ext], t, ctx.config)
            for m in s.scalars(select(Message).where(Message.flow == "cancellation", Message.step == "ask",
                                                     Message.status == "sent", Message.sent_at <= t - DAY)):
                order_ext = s.get(Order, m.order_id).external_id
                done = s.scalar(select(CancellationAnswer.id).where(CancellationAnswer.message_id == m.id))
                if order_ext in answers["cancel"] and done is None:
                    cancellation.record_answer(s, ctx.config, m.id, answers["cancel"][order_ext], None, t)
        if t.hour == 0:
            replenishment_plan.learn(ctx, sid)
            birthday.read_metafields(ctx, sid)
            analytics_jobs.snapshot_metrics(ctx, sid)  # the segments, VIP among them
        runner.run_review_request(ctx, sid)
        runner.run_review_reply(ctx, sid)
        runner.run_survey(ctx, sid)
        runner.run_replenishment(ctx, sid)
        runner.run_first_order(ctx, sid)
        runner.run_cancellation(ctx, sid)
        runner.run_ticket_followup(ctx, sid)
        runner.run_ticket_alert(ctx, sid)
        runner.run_winback(ctx, sid)
        runner.run_birthday(ctx, sid)
        vip.run(ctx, sid)
        runner.run_usage_guide(ctx, sid)
        runner.run_shopping_calendar(ctx, sid)
        dispatch.dispatch_due(ctx, limit=100_000, channels=["email"])
        previous, t = t, _next_step(ctx, t)
    return sid


def _on_grid(t):
    """Flows, sync and the merchant's inbox run every six hours; the dispatcher every hour."""
    return (t - START) % GRID == timedelta(0)


def _next_step(ctx, t):
    """Return the next hour at which anything can happen: the next grid step or the next due message."""
    following = t + (GRID - (t - START) % GRID)
    with ctx.database.session() as s:
        due = s.scalar(select(func.min(Message.scheduled_for)).where(Message.status == "scheduled",
                                                                     Message.channel == "email"))
    if due is not None and due < following:
        hours = -((t - due) // HOUR)  # ceil to the next whole hour after START
        following = max(t + HOUR, t + hours * HOUR)
    return following


def real_outcome(ctx, sid):
    out = {}
    with ctx.database.session() as s:
        for m in s.scalars(select(Message).where(Message.store_id == sid)):
            out[_natural_key(s, m)] = (m.status, None if m.status in ("scheduled", "sent") else m.skip_reason)
    return out


def _natural_key(s, m):
    if m.flow == "replenishment":
        c, p, o = s.get(Customer, m.customer_id), s.get(Product, m.product_id), s.get(Order, m.order_id)
        return (m.flow, m.step, f"{c.external_id}:{p.external_id}:{o.external_id}")
    if m.flow == "birthday":
        year = m.idempotency_key.split("year=")[1][:4]
        return (m.flow, m.step, f"{s.get(Customer, m.customer_id).external_id}:{year}")
    if m.flow == "shopping_calendar":
        event = m.idempotency_key.split("event=")[1].split(":")[0]
        return (m.flow, m.step, f"{event}:{s.get(Customer, m.customer_id).external_id}")
    if m.flow == "vip":
        return (m.flow, m.step, s.get(Customer, m.customer_id).external_id)
    if m.flow == "review_reply":
        return (m.flow, m.step, s.get(Review, m.review_id).external_id)
    if m.flow in ("ticket_alert", "ticket_followup"):
        ticket = s.get(Ticket, m.ticket_id)
        if ticket.review_id:
            return (m.flow, m.step, s.get(Review, ticket.review_id).external_id)
        prefix = "c" if ticket.source == "cancellation" else "s"
        return (m.flow, m.step, prefix + s.get(Order, ticket.order_id).external_id)
    return (m.flow, m.step, s.get(Order, m.order_id).external_id)


# -- the independent model ----------------------------------------------------------------------------------


@dataclass
class M:
    flow: str
    step: str
    customer: int | None
    sched: datetime
    status: str = "scheduled"
    reason: str | None = None
    marketing: bool = False
    order: object = None
    sent_at: datetime | None = None
    base: tuple = ()


@dataclass
class T:
    key: str
    customer: int
    opened: datetime
    severity: int
    order_ext: str
    resolved: datetime | None = None
    alerted: bool = False
    source: str = "review"
    urgent: bool = False


@dataclass
class Model:
    msgs: dict = field(default_factory=dict)
    tickets: list = field(default_factory=list)
    learned: dict = field(default_factory=dict)
    fit: object = None  # 150 customers: fewer pairs than a still-active fit needs (MIN_FIT_PAIRS), all count as active
    suppressed: set = field(default_factory=set)
    answered: set = field(default_factory=set)
    birthdays: dict = field(default_factory=dict)
    vip: set = field(default_factory=set)
    members: dict = field(default_factory=dict)  # customer → [entered, left or None]
    segments: dict = field(default_factory=dict)  # customer → segment, as of the last daily snapshot


def _zone(c):
    return ZoneInfo(c.time_zone) if c and c.time_zone else ZoneInfo(STORE_ZONE)


def _holiday(country, day):
    return day in holidays.country_holidays(country, years=day.year)


def _slot(t, c):
    """Return t when it is inside the customer's window, else the start of the next window (09:00 local)."""
    zone, country = _zone(c), (c.country if c else None) or STORE_COUNTRY
    day = t.astimezone(zone).date()
    for offset in range(30):
        d = day + timedelta(days=offset)
        if _holiday(country, d):
            continue
        start = datetime.combine(d, time(9), tzinfo=zone).astimezone(UTC)
        end = datetime.combine(d, time(11), tzinfo=zone).astimezone(UTC)
        if t < start:
            return start
        if t < end:
            return t
    raise AssertionError("no slot")


def _purchases(orders, t):
    """Visible purchases: customer × consumable product → [(created, order id, qty, subscription)]."""
    out = {}
    for o in orders:
        if o.created_at > t or _seen(o.cancelled_at, t) or _seen(_refunded_at(o), t) or _seen(_returned_at(o), t):
            continue
        qty = {}
        for li in o.line_items:
            qty[li.product_id] = qty.get(li.product_id, 0) + li.quantity
        for pid, q in qty.items():
            out.setdefault((o.customer_id, pid), []).append((o.created_at, o.id, q))
    for v in out.values():
        v.sort()
    return out


def _gaps(seq):
    return [(b[0] - a[0]).total_seconds() / 86400 / a[2] for a, b in zip(seq, seq[1:], strict=False)
            if (b[0] - a[0]) >= DAY]


def _learned(per_customer):
    """A product's learned median gap, and the within- and between-customer variance of log gaps (the definition)."""
    every = [g for gs in per_customer for g in gs]
    df = sum(len(gs) - 1 for gs in per_customer)
    within = None
    if df >= 5:
        ss = sum(sum((math.log(g) - statistics.fmean(math.log(x) for x in gs)) ** 2 for g in gs) for gs in per_customer)
        within = max(ss / df, 0.01)
    total = statistics.variance([math.log(g) for g in every]) if len(every) > 1 else None
    between = None if within is None or total is None else max(total - within, 0.01)
    return statistics.median(every), len(every), within, between


def _plan(seq, learned, supply, t, fit, h=7.0):
    """Return (reminder time, probability) of a pair by the model's definition (plugin.flows.replenishment_model)."""
    own = _gaps(seq)
    n = len(own)
    within = learned[2] if learned and learned[2] is not None else 0.25
    between = learned[3] if learned and learned[3] is not None else 0.25
    if own and learned:
        k = within / between
        mu1 = (k * math.log(learned[0]) + n * math.log(statistics.median(own))) / (k + n)
        var = within + within / (k + n)
    elif own:
        mu1, var = math.log(statistics.median(own)), within + within / n
    elif learned:
        mu1, var = math.log(learned[0]), within + between
    else:
        mu1, var = math.log(supply), within
    created, _oid, qty = seq[-1]
    mu, sd = mu1 + math.log(qty), math.sqrt(var)
    mode = math.exp(mu - var)
    centre = math.sqrt(h * h + mode * mode)
    start = max(created + timedelta(days=centre - h), t)

    def survival(d):
        return 1.0 if d <= 0 else 0.5 * math.erfc((math.log(d) - mu) / sd / math.sqrt(2))

    def ago(when):
        return (when - created).total_seconds() / 86400

    chance = (survival(ago(start)) - survival(ago(start) + 2 * h)) / max(survival(ago(t)), 1e-200)
    alive = 1.0
    if fit is not None:
        x, t_x, big_t = n, ago(created) - ago(seq[0][0]), ago(t) - ago(seq[0][0])
        alive = 1 / (1 + fit.a / (fit.b + x) * ((fit.alpha + big_t) / (fit.alpha + t_x)) ** (fit.r + x))
    return start, alive * chance


def _segments(orders, t):
    """Each customer's segment at ``t`` by the analytics' rules (DESIGN §4 tiers; the merchant's VIP spend here)."""
    mine = {}
    for o in orders:
        if o.created_at <= t and not _seen(o.cancelled_at, t):
            mine.setdefault(o.customer_id, []).append(o)
    out = {}
    for cid, placed in mine.items():
        net = [(o, o.total_cents - sum(r.amount_cents for r in o.refunds if r.created_at <= t)) for o in placed]
        year = [n for o, n in net if o.created_at >= t - 365 * DAY]
        if sum(year) > VIP_SPEND * 100 and len(year) >= 4:
            out[cid] = "vip"
        elif max(o.created_at for o in placed) < t - 182 * DAY:
            out[cid] = "dormant"
        elif max(n for _o, n in net) >= 200_00 and len(placed) <= 2:
            out[cid] = "growth"
        else:
            out[cid] = "active"
    return out


def run_model(shop, people, traits, reviews, answers):
    model = Model()
    consumable = {p.id: p.days_of_supply for p in shop.products if p.days_of_supply}
    by_id = {o.id: o for o in shop.orders}
    has_email = {cid: cid not in traits["no_email"] for cid in people}
    model.suppressed = {people[cid].email.lower() for cid in traits["unsubscribed"]}
    orders = [o for o in shop.orders if o.customer_id is not None]
    # Each product's guide delay: its own block, else its product type's (GUIDES).
    titles = {p.title: p.id for p in shop.products}
    own = {titles[target]: days for _s, kind, target, days in GUIDES if kind == "product"}
    typed = {target: days for _s, kind, target, days in GUIDES if kind == "product_type"}
    guide_days = {p.id: own.get(p.id, typed.get(p.product_type)) for p in shop.products
                  if p.id in own or p.product_type in typed}

    def open_ticket_at(cid, t):
        # A ticket holds review requests while open, for complaint_hold_days (14) at most (delivery ones: none here).
        return any(k.customer == cid and t - 14 * DAY < k.opened <= t and (k.resolved is None or k.resolved > t)
                   for k in model.tickets)

    def order_gone(o, t):
        return (("order_cancelled" if _seen(o.cancelled_at, t) else None)
                or ("order_refunded" if _seen(_refunded_at(o), t) else None)
                or ("order_returned" if _seen(_returned_at(o), t) else None))

    def due(o, t, delay, fallback):
        d, s = _seen(_delivered(o), t), _seen(_shipped(o), t)
        if d is not None:
            return t - delay - 30 * DAY < d <= t - delay
        return s is not None and t - fallback - 30 * DAY < s <= t - fallback

    def write(key, m, reason, status="skipped"):
        if reason:
            m.status, m.reason = status, reason
        model.msgs[key] = m

    def grid_step(t):
        # merchant and customers
        for k in model.tickets:
            if k.resolved is None and k.opened <= t - 3 * DAY:
                k.resolved = t
        for key, m in list(model.msgs.items()):
            if key[:2] == ("survey", "main") and m.status == "sent" and m.sent_at <= t - DAY \
                    and key[2] in answers and key[2] not in model.answered:
                model.answered.add(key[2])
                score, comment = answers[key[2]]
                if score <= 6:
                    model.tickets.append(T(key=f"s{key[2]}", customer=m.customer, opened=t, order_ext=key[2],
                                           severity=COMMENTS[comment], source="survey"))
            if key[:2] == ("cancellation", "ask") and m.status == "sent" and m.sent_at <= t - DAY \
                    and key[2] in answers["cancel"] and ("c", key[2]) not in model.answered:
                model.answered.add(("c", key[2]))
                if answers["cancel"][key[2]] == "delivery_too_slow":  # the default ticket_reasons
                    model.tickets.append(T(key=f"c{key[2]}", customer=m.customer, opened=t, order_ext=key[2],
                                           severity=3, source="cancellation"))
        if t.hour == 0:
            gaps = {}
            for (_c, p), seq in _purchases(orders, t).items():
                if p in consumable and _gaps(seq):
                    gaps.setdefault(p, []).append(_gaps(seq))
            model.learned = {p: _learned(g) for p, g in gaps.items()}
        # review requests
        for o in orders:
            key = ("review_request", "main", str(o.id))
            if key not in model.msgs and due(o, t, 7 * DAY, 7 * DAY):
                reason = order_gone(o, t) or (None if has_email[o.customer_id] else "no_contact_access")
                if reason is None and open_ticket_at(o.customer_id, t):
                    continue
                write(key, M("review_request", "main", o.customer_id, t, order=o), reason)
        for key, m in list(model.msgs.items()):
            rkey = ("review_request", "reminder", key[2])
            if key[:2] != ("review_request", "main") or m.status != "sent" or rkey in model.msgs:
                continue
            if not (t - 37 * DAY < m.sent_at <= t - 7 * DAY):
                continue
            if any(r["created"] <= t and r["created"] >= m.sent_at and (r["order"] is m.order or
                                                                        r["order"].customer_id == m.customer)
                   for r in reviews):
                continue
            reason = order_gone(m.order, t) or (None if has_email[m.customer] else "no_contact_access")
            if reason is None and open_ticket_at(m.customer, t):
                continue
            write(rkey, M("review_request", "reminder", m.customer, t, order=m.order), reason)
        # review replies
        for r in reviews:
            key = ("review_reply", "main", r["ext"])
            if r["created"] <= t and r["created"] > t - 30 * DAY and key not in model.msgs and \
                    not any(k.key == r["ext"] for k in model.tickets):
                if r["rating"] >= 4:
                    model.msgs[key] = M("review_reply", "main", r["order"].customer_id, t)
                else:
                    model.tickets.append(T(key=r["ext"], customer=r["order"].customer_id, opened=t,
                                           order_ext=str(r["order"].id), severity=NEGATIVE_BODIES[r["body"]]))
        # surveys
        for o in orders:
            key = ("survey", "main", str(o.id))
            if key not in model.msgs and due(o, t, 10 * DAY, 10 * DAY):
                reason = order_gone(o, t) or (None if has_email[o.customer_id] else "no_contact_access")
                write(key, M("survey", "main", o.customer_id, t, order=o), reason)
        # first-order welcomes: an order placed 2 to 74 hours ago, its customer's first not cancelled (as seen now)
        for o in orders:
            key = ("first_order", "main", str(o.id))
            if not (t - 2 * HOUR - 3 * DAY < o.created_at <= t - 2 * HOUR) or _seen(o.cancelled_at, t):
                continue
            if any(k[0] == "first_order" and m.customer == o.customer_id for k, m in model.msgs.items()):
                continue
            if any(e.customer_id == o.customer_id and e.id != o.id and not _seen(e.cancelled_at, t)
                   and e.created_at < o.created_at for e in orders):
                continue
            reason = order_gone(o, t) or (None if has_email[o.customer_id] else "no_contact_access")
            write(key, M("first_order", "main", o.customer_id, t, order=o), reason)
        # cancellations: CUSTOMER asks why, DECLINED says it did not go through; other reasons get nothing
        for o in orders:
            cancelled = _seen(o.cancelled_at, t)
            step = {"CUSTOMER": "ask", "DECLINED": "declined"}.get(o.cancel_reason)
            if cancelled is None or step is None or not (t - HOUR - 3 * DAY < cancelled <= t - HOUR):
                continue
            key = ("cancellation", step, str(o.id))
            if key not in model.msgs:
                write(key, M("cancellation", step, o.customer_id, t, order=o),
                      None if has_email[o.customer_id] else "no_contact_access")
        # the complaint follow-through of every resolved ticket
        for k in model.tickets:
            if k.resolved is None or k.customer is None:
                continue
            for step, wait, marketing in (("followup", 7 * DAY, False), ("comeback", 30 * DAY, True)):
                key = ("ticket_followup", step, k.key)
                if key not in model.msgs and t - wait - 30 * DAY < k.resolved <= t - wait:
                    write(key, M("ticket_followup", step, k.customer, t, marketing=marketing,
                                 order=by_id[int(k.order_ext)]),
                          None if has_email[k.customer] else "no_contact_access")
        # replenishment: cancel on re-order, then plan
        visible = _purchases(orders, t)
        for m in model.msgs.values():
            if m.flow == "replenishment" and m.status == "scheduled":
                c, p, base_created, base_id = m.base
                if any(cr > base_created and oid != base_id for cr, oid, _q in visible.get((c, p), [])):
                    m.status, m.reason = "cancelled", "already_reordered"
        for (c, p), seq in visible.items():
            if p not in consumable:
                continue
            created, oid, qty = seq[-1]
            learned = model.learned.get(p)
            start, probability = _plan(seq, learned if learned and learned[1] >= 5 else None, consumable[p], t,
                                       model.fit)
            remind = start
            key = ("replenishment", "main", f"{c}:{p}:{oid}")
            if key in model.msgs or not (remind <= t + 7 * DAY and probability >= 0.1):  # the default floor
                continue
            m = M("replenishment", "main", c, max(remind, t), marketing=True, base=(c, p, created, oid))
            if c in traits["subscription"]:
                m.status, m.reason = "cancelled", "active_subscription"
            elif not has_email[c]:
                m.status, m.reason = "skipped", "no_contact_access"
            model.msgs[key] = m
        # ticket alerts (merchant emails: no window): severity 1 at once, every severity past its SLA
        for k in model.tickets:
            if k.resolved is None and k.severity == 1 and not k.urgent:
                k.urgent = True
                model.msgs[("ticket_alert", "urgent", k.key)] = M("ticket_alert", "urgent", None, t)
        for k in model.tickets:
            if k.resolved is None and not k.alerted and k.opened + SEV_SLA[k.severity] < t:
                k.alerted = True
                model.msgs[("ticket_alert", "main", k.key)] = M("ticket_alert", "main", None, t)
        # win-back (DESIGN §4: dormant 180 days after the last order not cancelled): first the exit on a new order,
        # then the newly dormant (a week's entry window), then one reminder 14 days after a sent email while they
        # have not ordered since. Nobody re-enters within 365 days: longer than the 120 simulated, so once is all.
        counted = {}
        for o in orders:
            if o.created_at <= t and not _seen(o.cancelled_at, t):
                counted.setdefault(o.customer_id, []).append(o)
        for m in model.msgs.values():
            if m.flow == "winback" and m.status == "scheduled" and \
                    any(e.created_at > m.order.created_at for e in counted.get(m.customer, [])):
                m.status, m.reason = "cancelled", "ordered_again"
        entered = {m.customer for k, m in model.msgs.items() if k[:2] == ("winback", "main")}
        lapsed = [max(mine, key=lambda e: (e.created_at, e.id)) for cid, mine in counted.items() if cid not in entered]
        for last in sorted(lapsed, key=lambda e: e.created_at, reverse=True):
            if t - 187 * DAY < last.created_at <= t - 180 * DAY:
                write(("winback", "main", str(last.id)), M("winback", "main", last.customer_id, t, marketing=True,
                                                           order=last),
                      None if has_email[last.customer_id] else "no_contact_access")
        for key, m in list(model.msgs.items()):
            rkey = ("winback", "reminder", key[2])
            if key[:2] != ("winback", "main") or m.status != "sent" or rkey in model.msgs:
                continue
            if t - 44 * DAY < m.sent_at <= t - 14 * DAY and \
                    not any(e.created_at > m.sent_at for e in counted.get(m.customer, [])):
                model.msgs[rkey] = M("winback", "reminder", m.customer, t, marketing=True, order=m.order)
        # birthdays: the metafield is read at each day's first step; the email is due at 09:00 local three days
        # before (and not more than 36 hours late), once per birthday year
        if t.hour == 0:
            for c in people.values():
                if c.created_at <= t and BIRTHDAY_FIELD in c.metafields:
                    _y, month, day = (int(x) for x in c.metafields[BIRTHDAY_FIELD][1].split("-"))
                    model.birthdays[c.id] = (month, day)
        # birthdays: the metafield is read at each day's first step; the email is due at 09:00 local three days
        # before (and not more than 36 hours late), once per birthday year
        if t.hour == 0:
            for c in people.values():
                if c.created_at <= t and BIRTHDAY_FIELD in c.metafields:
                    _y, month, day = (int(x) for x in c.metafields[BIRTHDAY_FIELD][1].split("-"))
                    model.birthdays[c.id] = (month, day)
        # VIP: the segment from each day's first step (net spend in 12 months over the rule and 4 orders); membership
        # follows it at every step; who entered within a week and was never welcomed gets the welcome
        if t.hour == 0:
            model.segments = _segments(orders, t)
            model.vip = {cid for cid, segment in model.segments.items() if segment == "vip"}
        for cid, member in model.members.items():
            if member[1] is None and cid not in model.vip:
                member[1] = t
            elif member[1] is not None and cid in model.vip:
                model.members[cid] = [t, None]
        for cid in sorted(model.vip - set(model.members)):
            model.members[cid] = [t, None]
        for cid, (entered, left) in sorted(model.members.items()):
            key = ("vip", "main", str(cid))
            if left is None and entered > t - 7 * DAY and key not in model.msgs:
                write(key, M("vip", "main", cid, t, marketing=True), None if has_email[cid] else "no_contact_access")
        for cid, (month, day) in sorted(model.birthdays.items()):
            c = people[cid]
            for year in (t.year - 1, t.year, t.year + 1):
                moment = datetime.combine(date(year, month, day) - 3 * DAY, time(9), tzinfo=_zone(c)).astimezone(UTC)
                key = ("birthday", "main", f"{cid}:{year}")
                if moment <= t < moment + 36 * HOUR and key not in model.msgs:
                    write(key, M("birthday", "main", cid, moment, marketing=True),
                          None if has_email[cid] else "no_contact_access")

        # usage guides: one email per delivered order whose first guide (of a product the customer never bought in
        # an earlier order that was not cancelled) is due, each guide its block's days after delivery, not >7 late
        for o in orders:
            key = ("usage_guide", "main", str(o.id))
            delivered = _seen(_delivered(o), t)
            if key in model.msgs or delivered is None or _seen(o.cancelled_at, t):
                continue
            owned = {li.product_id for e in orders if e.customer_id == o.customer_id and e.id != o.id
                     and not _seen(e.cancelled_at, t) and (e.created_at, e.id) < (o.created_at, o.id)
                     for li in e.line_items}
            days = [guide_days[li.product_id] for li in o.line_items
                    if li.product_id not in owned and li.product_id in guide_days]
            if days and t - 7 * DAY < delivered + min(days) * DAY <= t:
                write(key, M("usage_guide", "main", o.customer_id, t, order=o),
                      order_gone(o, t) or (None if has_email[o.customer_id] else "no_contact_access"))

        # shopping calendar: the customers of an event's segments (the last daily snapshot) in its countries, each at
        # 09:00 in their zone three days before the event's day, planned up to 48 hours ahead (not >36 hours late)
        planned = []
        for key, (day, countries) in CALENDAR.items():
            for cid in sorted(model.segments):
                c = people[cid]
                moment = datetime.combine(day - 3 * DAY, time(9), tzinfo=_zone(c)).astimezone(UTC)
                if model.segments[cid] in CALENDAR_SEGMENTS and c.country in countries and \
                        t - 36 * HOUR < moment <= t + 48 * HOUR and ("shopping_calendar", "main", f"{key}:{cid}") \
                        not in model.msgs:
                    planned.append((moment, key, c.time_zone, cid))
        for moment, key, _zone_name, cid in sorted(planned):
            write(("shopping_calendar", "main", f"{key}:{cid}"), M("shopping_calendar", "main", cid, moment,
                                                                  marketing=True),
                  None if has_email[cid] else "no_contact_access")

    t, known = START, START
    while t <= END:
        if _on_grid(t):
            known = t
            grid_step(t)
        # dispatch, in claim order
        due_now = sorted(((m.sched, n, key) for n, (key, m) in enumerate(model.msgs.items())
                          if m.status == "scheduled" and m.flow != "review_reply" and m.sched <= t))
        for _sched, _n, key in due_now:
            m = model.msgs[key]
            if m.flow == "ticket_alert":
                m.status, m.sent_at = "sent", t
                continue
            c = people[m.customer]
            address = c.email.lower()
            if m.marketing and c.marketing_state != "SUBSCRIBED":
                m.status, m.reason = "skipped", "no_consent"
                continue
            if address in model.suppressed:
                m.status, m.reason = "skipped", "suppressed"
                continue
            if m.flow in ("review_request", "survey", "first_order", "usage_guide") and m.order is not None \
                    and order_gone(m.order, known):
                m.status, m.reason = "skipped", "order_cancelled"
                continue
            if m.flow == "review_request" and open_ticket_at(m.customer, t):
                m.sched = t + 6 * HOUR
                continue
            slot = _slot(t, c)
            if slot > t:
                m.sched = slot
                continue
            if m.customer in traits["bounce"]:
                m.status = "failed"
                model.suppressed.add(address)
                continue
            m.status, m.sent_at = "sent", t
        t += HOUR
    return model


def model_outcome(model):
    return {key: (m.status, None if m.status in ("scheduled", "sent", "failed") else m.reason)
            for key, m in model.msgs.items()}


# -- the test -----------------------------------------------------------------------------------------------


def test_120_days_every_message_exactly_once_in_window_and_language(database, clock, tmp_path):
    from tests.conftest import wipe

    shop, people, traits, reviews, answers = seed()
    model = run_model(shop, people, traits, reviews, answers)
    expected = model_outcome(model)
    wipe(database.engine)
    with SmtpSandbox(clock=clock) as smtp:
        sandbox, token = start_sandbox(clock, shop)
        # Waits inside a sync (pacing, bulk polling) take no simulated time: each run happens at its grid step,
        # and the cost bucket, on the same clock, refills over the hours between runs.
        ctx = make_ctx(database, clock, tmp_path, shopify={"client_id": CLIENT_ID, "admin_base_url": sandbox.url})
        ctx.extras["smtp_url"] = f"smtp://127.0.0.1:{smtp.port}"
        try:
            sid = run_real(ctx, smtp, sandbox, token, shop, people, traits, reviews, answers)
            # Every change reached the database: it mirrors the store as of the last step, field by field.
            assert_mirrors(database, sid, sandbox)
            got = {k: (st, None if st == "failed" else r) for k, (st, r) in real_outcome(ctx, sid).items()}
            delivered = list(smtp.messages)
            with ctx.database.session() as s:
                sent_rows = s.scalars(select(Message).where(Message.status == "sent",
                                                            Message.channel == "email")).all()
                rows = [(m.provider_id, m.sent_at, m.to_address, m.flow, m.marketing,
                         s.get(Customer, m.customer_id) if m.customer_id else None) for m in sent_rows]
                offers = [(m.flow, m.step, m.status, (m.payload or {}).get("discount_code"),
                           s.get(Customer, m.customer_id).external_id)
                          for m in s.scalars(select(Message).where(
                              Message.flow.in_(("winback", "birthday", "vip", "shopping_calendar"))))]
                members = {s.get(Customer, v.customer_id).external_id: (v.entered_at, v.left_at)
                           for v in s.scalars(select(VipMember))}
            codes = list(sandbox.shop_state().discounts.values())
        finally:
            sandbox.stop()
            wipe(database.engine)

    # The scenario exercises every rule at least once.
    statuses = {(k[0], k[1], v) for k, v in expected.items()}
    for needed in [("review_request", "main", ("sent", None)), ("review_request", "reminder", ("sent", None)),
                   ("survey", "main", ("sent", None)), ("ticket_followup", "followup", ("sent", None)),
                   ("ticket_followup", "comeback", ("sent", None)), ("replenishment", "main", ("sent", None)),
                   ("first_order", "main", ("sent", None)), ("cancellation", "ask", ("sent", None)),
                   ("cancellation", "declined", ("sent", None)),
                   ("cancellation", "ask", ("skipped", "no_contact_access")),
                   ("winback", "main", ("sent", None)), ("winback", "reminder", ("sent", None)),
                   ("winback", "main", ("skipped", "no_consent")), ("birthday", "main", ("sent", None)),
                   ("birthday", "main", ("skipped", "no_consent")), ("birthday", "main", ("skipped", "suppressed")),
                   ("vip", "main", ("sent", None)), ("vip", "main", ("skipped", "no_consent")),
                   ("usage_guide", "main", ("sent", None)), ("usage_guide", "main", ("skipped", "no_contact_access")),
                   ("shopping_calendar", "main", ("sent", None)),
                   ("shopping_calendar", "main", ("skipped", "no_consent")),
                   ("ticket_alert", "urgent", ("sent", None)),
                   ("replenishment", "main", ("cancelled", "already_reordered")),
                   ("replenishment", "main", ("cancelled", "active_subscription")),
                   ("replenishment", "main", ("skipped", "no_consent")),
                   ("review_request", "main", ("skipped", "no_contact_access")),
                   ("review_request", "main", ("skipped", "suppressed")),
                   ("ticket_alert", "main", ("sent", None)), ("review_reply", "main", ("scheduled", None))]:
        assert needed in statuses, needed
    assert any(v == ("failed", None) for v in expected.values())
    # A cancellation answered "delivery too slow" opened a ticket whose follow-through ran.
    assert any(k[0] == "ticket_followup" and k[2].startswith("c") and v == ("sent", None) for k, v in expected.items())
    assert any(v[1] in ("order_cancelled", "order_refunded", "order_returned") for v in expected.values())

    assert got == expected
    # VIP membership followed the segment day by day: who entered when, who left when (and who came back).
    assert members == {str(cid): (entered, left) for cid, (entered, left) in model.members.items()}
    assert any(left for _entered, left in members.values()) and any(not left for _entered, left in members.values())

    # One single-use code in Shopify per win-back, birthday, VIP and shopping-calendar email that left (a bounce
    # leaves after its code is made), for that customer only; the win-back reminder shows its first email's code
    # and makes none.
    left = [(flow, step, code, customer) for flow, step, status, code, customer in offers
            if status in ("sent", "failed")]
    assert sorted((c.code, c.customer_ids) for c in codes) == sorted(
        (code, (f"gid://shopify/Customer/{customer}",)) for flow, step, code, customer in left if step == "main")
    assert all(c.usage_limit == 1 for c in codes)
    firsts = {(customer, code) for flow, step, code, customer in left if (flow, step) == ("winback", "main")}
    assert {(customer, code) for flow, step, code, customer in left if step == "reminder"} <= firsts

    # Every sent email reached the SMTP server exactly once, with its persisted Message-ID ...
    by_id = {}
    for received in delivered:
        by_id.setdefault(received.message_id, []).append(received)
    assert sorted(by_id) == sorted(r[0] for r in rows)
    assert all(len(v) == 1 for v in by_id.values())
    unsubscribed = {people[c].email.lower() for c in traits["unsubscribed"]}
    for provider_id, sent_at, to_address, flow, marketing, customer in rows:
        message = by_id[provider_id][0]
        assert message.envelope_to == (to_address,)
        if flow == "ticket_alert":
            assert to_address == "alerts@sim.test"
            continue
        # ... inside the customer's local window on a working day, in their language, never to opted-out people.
        local = sent_at.astimezone(ZoneInfo(customer.time_zone))
        assert time(9) <= local.time() < time(11), (flow, local)
        assert not _holiday(customer.country, local.date())
        html = message.message.get_body(("html",)).get_content()
        wanted = LANG.get(customer.locale, customer.locale)
        assert re.search(r'<html lang="([^"]+)"', html).group(1) == (wanted if wanted in SHIPPED else "en")
        assert to_address.lower() not in unsubscribed
        if marketing:
            assert customer.marketing_consent
