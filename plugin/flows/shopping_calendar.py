"""Shopping-calendar events: a code ``lead_days`` (3) before an event in the customer's country (marketing).

The store's calendar (plugin.shopping_calendar: shipped defaults with the merchant's edits) says which events fall
on which day in which countries and which customer segments they go to (the growth segment by default: an order of
$200 or more but at most 2 orders, plugin.analytics). For each enabled event, a customer of one of its segments
whose country (their address's, else their time zone's, else the store's) is one of the event's gets an email at
``send_time`` in their own zone ``lead_days`` before the event's day — so a customer in Tokyo hears of it about
17 hours before one in Los Angeles. Once per customer per event per year: the idempotency key names the event and
its year, so moving the date after the email went out sends nothing twice.

Rows are planned up to ``PLAN_AHEAD`` (48 hours) before their moment, the soonest first and at most ``PER_RUN`` a
run, and the dispatcher sends each at its moment: the hundred thousand growth customers of a large store's
Black Friday morning are written over the hourly runs of the two days before, not in one. An edit of the event in the
calendar withdraws its planned rows that are not sent yet (plugin.shopping_calendar.withdraw_planned), so the
next run plans them again with the new date, countries, segments or discount.

The code is a single-use percentage off (the event's discount, else ``discount_percent``), valid
``code_valid_days``, created by the email channel through ``discountCodeBasicCreate`` just before the email
leaves and named from the key, so a retried dispatch meets Shopify's ``TAKEN`` for its own code and never makes a
second one. Consent, suppression, frequency cap, send window, national holidays and the Ramadan daytime rule are
the send policy's, at send time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, exists, literal, or_, select

from plugin import flow_schemas
from plugin import shopping_calendar as cal
from plugin.flows.audience import contact_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.messaging import outbox, sendtime
from plugin.messaging.outbox import message_row
from plugin.models import Customer, CustomerMetrics, Message

NAME = "shopping_calendar"
# An event email whose moment passed more than this long ago (the job was down) is not sent late.
MAX_LATE = timedelta(hours=36)
# Every zone's local day lies within this of UTC's (UTC-12 to UTC+14).
ZONE_SLACK = timedelta(days=2)
# Rows are planned this far ahead of their moment (the dispatcher sends each at its moment), at most PER_RUN a run,
# so a million customers due on Black Friday morning are written over the hourly runs of the day before.
PLAN_AHEAD = timedelta(hours=48)
PER_RUN = 10_000


def send_moment(day: date, lead_days: int, at: time, zone: Any) -> datetime:
    """Return the UTC moment of the email for an event on ``day`` (local) in the customer's zone."""
    return sendtime.to_utc(day - timedelta(days=lead_days), at, zone)


def code_prefix(key: str) -> str:
    """Return the discount code's prefix for an event: its key in capitals (a merchant's own event: EVENT)."""
    if key.startswith("custom_"):
        return "EVENT"
    return re.sub(r"[^A-Z0-9]", "", key.upper())[:12] or "EVENT"


def upcoming(run: FlowRun) -> list[cal.Occurrence]:
    """Return the enabled events whose email can be planned now in some zone (due within PLAN_AHEAD, or not more
    than MAX_LATE late)."""
    lead = timedelta(days=int(run.settings["lead_days"]))
    today = run.now.date()
    found = []
    for event in cal.occurrences(run.session, run.store.id, (run.now.year - 1, run.now.year, run.now.year + 1)):
        mail_day = event.day - lead
        if event.enabled and event.countries and event.segments and \
                today - ZONE_SLACK - MAX_LATE <= mail_day <= today + ZONE_SLACK + PLAN_AHEAD:
            found.append(event)
    return found


def _audience(run: FlowRun, event: cal.Occurrence) -> list[Any]:
    """Return the conditions on Customer (joined to its metrics) of the event's segments and possible countries."""
    # Customers without a country are placed by their zone, else the store's country (checked per zone below).
    return [Customer.store_id == run.store.id, Customer.redacted_at.is_(None),
            CustomerMetrics.segment.in_(event.segments),
            or_(Customer.country.in_(sorted(event.countries)), Customer.country.is_(None), Customer.country == "")]


def _not_written(run: FlowRun, event: cal.Occurrence) -> Any:
    """Return the condition that the customer's row for this event and year is not in the outbox yet."""
    # The key message_row builds, in SQL, so the hours after a big event do not re-plan every customer.
    head = outbox.idempotency_key(run.store.id, NAME, f"event={event.key}", f"year={event.year}", "customer=")
    key = literal(head) + cast(Customer.id, String) + literal(":step=main")
    return ~exists().where(Message.idempotency_key == key)


Place = tuple[str | None, str | None]


def _store_places(run: FlowRun) -> set[Place]:
    """Return the (time zone, country) pairs of the store's customers, in one grouped statement.

    The moment depends only on the zone and country, so a million customers are a few hundred pairs to work out
    (once a run for every event; an index-only scan of ``ix_customer_store_zone_country``), and only the customers
    of the due ones are read, one pair at a time along the same index.
    """
    return {(zone_name, country) for zone_name, country in run.session.execute(
        select(Customer.time_zone, Customer.country).where(Customer.store_id == run.store.id)
        .group_by(Customer.time_zone, Customer.country))}


def _due_places(run: FlowRun, event: cal.Occurrence, at: time,
                store_places: set[Place]) -> dict[Place, tuple[datetime, str]]:
    """Return {(time zone, country): (moment, country the rules place it in)} of the event's audience whose local
    moment lies within (now - MAX_LATE, now + PLAN_AHEAD]."""
    store, now = run.store, run.now
    lead = int(run.settings["lead_days"])
    due = {}
    for zone_name, country in store_places:
        where = sendtime.customer_country(country, zone_name, store.country)
        if where not in event.countries:
            continue
        zone = sendtime.resolve_zone(zone_name, country or store.country, store.timezone)
        moment = send_moment(event.day, lead, at, zone)
        if now - MAX_LATE < moment <= now + PLAN_AHEAD:
            due[(zone_name, country)] = (moment, where)
    return due


def _at_place(place: Place) -> Any:
    """Return the condition selecting the customers of one (time zone, country) pair (NULLs compared as NULLs)."""
    zone_name, country = place
    return and_(Customer.time_zone.is_(None) if zone_name is None else Customer.time_zone == zone_name,
                Customer.country.is_(None) if country is None else Customer.country == country)


def due_event_emails(run: FlowRun) -> Rows:
    """Return the event rows planned now: customers of the event's countries and segments whose local moment is
    within the next PLAN_AHEAD (or passed less than MAX_LATE ago), the soonest first, at most PER_RUN a run."""
    store, settings = run.store, run.settings
    hh, mm = (int(p) for p in settings["send_time"].split(":"))
    planned: list[tuple[datetime, cal.Occurrence, Place]] = []
    events = upcoming(run)
    store_places = _store_places(run) if events else set()
    for event in events:
        planned += [(moment, event, place)
                    for place, (moment, _where) in _due_places(run, event, time(hh, mm), store_places).items()]
    rows: Rows = []
    # Soonest first; a pair whose customers are all written costs one range of the zone index.
    for moment, event, place in sorted(planned, key=lambda p: (p[0], p[1].key, str(p[2]))):
        room = PER_RUN - len(rows)
        if room <= 0:
            break
        query = (select(Customer.id, Customer.email, Customer.locale, Customer.time_zone, Customer.country)
                 .join(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
                 .where(*_audience(run, event), _at_place(place), _not_written(run, event))
                 .order_by(Customer.id).limit(room))
        percent = event.discount_percent if event.discount_percent is not None else settings["discount_percent"]
        for cid, email, locale, zone_name, country in run.session.execute(query):
            where = sendtime.customer_country(country, zone_name, store.country)
            reason = contact_reason(email, store.protected_data_access)
            extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
            payload: dict[str, Any] = {"event_key": event.key, "event_on": event.day.isoformat(),
                                       "event_title": event.title if event.titled else None,
                                       "country": where, "recommendations": settings["recommendations"]}
            if percent:
                payload.update(discount_percent=percent, discount_valid_days=settings["code_valid_days"],
                               code_prefix=code_prefix(event.key))
            rows.append(message_row(store_id=store.id, flow=NAME, step="main",
                                    key_parts=(f"event={event.key}", f"year={event.year}", f"customer={cid}"),
                                    scheduled_for=moment, customer_id=cid, locale=locale, marketing=True,
                                    to_address=email if store.protected_data_access else None, payload=payload,
                                    **extra))
    return rows


FLOW = Flow(
    name=NAME,
    title="Shopping calendar",
    about="A code a few days before each country's shopping events (Black Friday, Lunar New Year, Diwali ...).",
    flow_class="marketing",
    platforms=("shopify",),
    trigger="due query: enabled events of the store's calendar lead_days away in the customer's time zone",
    audience=("customers whose country is one of the event's", "in one of the event's segments (default: growth)",
              "marketing consent (checked at send time)", "once per event per year"),
    timing="send_time local, lead_days before the event's day",
    steps=(
        Step("main", due_event_emails, "the event email with a single-use code valid code_valid_days",
             template="main", counter="planned", not_sent_counter="not_sent"),
    ),
    exits=(
        Exit("no_consent", "no marketing consent (checked at send time)"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
    ),
    idempotency_key="<store>:shopping_calendar:event=<key>:year=<year>:customer=<id>:step=main",
    settings=flow_schemas.SHOPPING_CALENDAR,
    counts=("planned", "not_sent"),
)
