"""Shopping-calendar events: a code ``lead_days`` (3) before an event in the customer's country (marketing).

The store's calendar (plugin.shopping_calendar: shipped defaults with the merchant's edits) says which events fall
on which day in which countries and which customer segments they go to (the growth segment by default: an order of
$200 or more but at most 2 orders, plugin.analytics). For each enabled event, a customer of one of its segments
whose country (their address's, else their time zone's, else the store's) is one of the event's gets an email at
``send_time`` in their own zone ``lead_days`` before the event's day — so a customer in Tokyo hears of it about
17 hours before one in Los Angeles. Once per customer per event per year: the idempotency key names the event and
its year, so moving the date after the email went out sends nothing twice.

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

from sqlalchemy import or_, select

from plugin import flow_schemas
from plugin import shopping_calendar as cal
from plugin.flows.audience import contact_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.messaging import sendtime
from plugin.messaging.outbox import message_row
from plugin.models import Customer, CustomerMetrics

NAME = "shopping_calendar"
# An event email whose moment passed more than this long ago (the job was down) is not sent late.
MAX_LATE = timedelta(hours=36)
# Every zone's local day lies within this of UTC's (UTC-12 to UTC+14).
ZONE_SLACK = timedelta(days=2)


def send_moment(day: date, lead_days: int, at: time, zone: Any) -> datetime:
    """Return the UTC moment of the email for an event on ``day`` (local) in the customer's zone."""
    return sendtime.to_utc(day - timedelta(days=lead_days), at, zone)


def code_prefix(key: str) -> str:
    """Return the discount code's prefix for an event: its key in capitals (a merchant's own event: EVENT)."""
    if key.startswith("custom_"):
        return "EVENT"
    return re.sub(r"[^A-Z0-9]", "", key.upper())[:12] or "EVENT"


def upcoming(run: FlowRun) -> list[cal.Occurrence]:
    """Return the enabled events whose email can be due now in some zone (not more than MAX_LATE late)."""
    lead = timedelta(days=int(run.settings["lead_days"]))
    today = run.now.date()
    found = []
    for event in cal.occurrences(run.session, run.store.id, (run.now.year - 1, run.now.year, run.now.year + 1)):
        mail_day = event.day - lead
        if event.enabled and event.countries and event.segments and \
                today - ZONE_SLACK - MAX_LATE <= mail_day <= today + ZONE_SLACK:
            found.append(event)
    return found


def due_event_emails(run: FlowRun) -> Rows:
    """Return the event rows whose local moment has come, for customers of the event's countries and segments."""
    store, settings, now = run.store, run.settings, run.now
    lead = int(settings["lead_days"])
    hh, mm = (int(p) for p in settings["send_time"].split(":"))
    rows: Rows = []
    for event in upcoming(run):
        countries = set(event.countries)
        # Customers without a country are placed by their zone, else the store's country, in Python below.
        query = (select(Customer.id, Customer.email, Customer.locale, Customer.time_zone, Customer.country)
                 .join(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
                 .where(Customer.store_id == store.id, Customer.redacted_at.is_(None),
                        CustomerMetrics.segment.in_(event.segments),
                        or_(Customer.country.in_(sorted(countries)), Customer.country.is_(None),
                            Customer.country == ""))
                 .order_by(Customer.id))
        percent = event.discount_percent if event.discount_percent is not None else settings["discount_percent"]
        for cid, email, locale, zone_name, country in run.session.execute(query):
            where = sendtime.customer_country(country, zone_name, store.country)
            if where not in countries:
                continue
            zone = sendtime.resolve_zone(zone_name, country or store.country, store.timezone)
            moment = send_moment(event.day, lead, time(hh, mm), zone)
            if not moment <= now < moment + MAX_LATE:
                continue
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
