"""Birthdays: an email with a code ``lead_days`` (3) before the customer's birthday, at 09:00 their time (marketing).

Shopify has no birthday field: ``customer.birthday`` holds month and day (the year is not used). A customer born
on 29 February celebrates on 28 February in years without one. The email goes at ``send_time`` in the
customer's zone (their own, else their country's, else the store's) on the day ``lead_days`` before, once per
birthday year (the idempotency key names the year of the birthday it celebrates); the code is a single-use
percentage off, valid ``code_valid_days`` (14) from the send, created by the email channel through
``discountCodeBasicCreate`` and named from the key, so a retried dispatch never makes a second code.

The due query narrows the customers in SQL to the few whose month and day fall in the next days (every zone's
"lead_days from today" lies within a day of UTC's), then works each one's exact local moment in Python.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from connectors.shopify.metafields import customer_metafields
from plugin import flow_schemas
from plugin.context import JobContext
from plugin.flows.audience import contact_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.marketplaces import shopify_client
from plugin.messaging import sendtime
from plugin.messaging.outbox import message_row
from plugin.models import Customer, Store
from plugin.sync.state import get_sync_state, mark_sync_success

NAME = "birthday"
# A birthday email whose moment passed more than this long ago (the job was down) is not sent late.
MAX_LATE = timedelta(hours=36)


def celebrated_on(birthday: date, year: int) -> date:
    """Return the day the birthday is celebrated in ``year``: 29 February falls on the 28th in common years."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, birthday.month, birthday.day)


def send_moment(birthday: date, year: int, lead_days: int, at: time, zone: Any) -> datetime:
    """Return the UTC moment of the birthday email for the birthday celebrated in ``year``."""
    return sendtime.to_utc(celebrated_on(birthday, year) - timedelta(days=lead_days), at, zone)


def _month_days(now: datetime, lead_days: int) -> list[str]:
    """Return the 'MM-DD' birthdays that can be due around now in some zone (29 February included on the 28th)."""
    days = set()
    for offset in range(-2, 3):
        day = (now + timedelta(days=lead_days + offset)).date()
        days.add(day.strftime("%m-%d"))
        if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
            days.add("02-29")
    return sorted(days)


def due_birthdays(run: FlowRun) -> Rows:
    """Return birthday rows whose local moment has come (and is not more than MAX_LATE old)."""
    store, settings, now = run.store, run.settings, run.now
    lead = int(settings["lead_days"])
    hh, mm = (int(p) for p in settings["send_time"].split(":"))
    dialect = run.session.get_bind().dialect.name
    month_day = func.to_char(Customer.birthday, "MM-DD") if dialect == "postgresql" \
        else func.strftime("%m-%d", Customer.birthday)
    query = (select(Customer.id, Customer.birthday, Customer.email, Customer.locale, Customer.time_zone,
                    Customer.country)
             .where(Customer.store_id == store.id, Customer.birthday.is_not(None), Customer.redacted_at.is_(None),
                    month_day.in_(_month_days(now, lead)))
             .order_by(Customer.id))
    rows = []
    for cid, birthday, email, locale, zone_name, country in run.session.execute(query):
        zone = sendtime.resolve_zone(zone_name, country or store.country, store.timezone)
        for year in (now.year - 1, now.year, now.year + 1):
            moment = send_moment(birthday, year, lead, time(hh, mm), zone)
            if moment <= now < moment + MAX_LATE:
                break
        else:
            continue
        reason = contact_reason(email, store.protected_data_access)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        payload: dict[str, Any] = {"birthday_on": celebrated_on(birthday, year).isoformat(),
                                   "recommendations": settings["recommendations"]}
        if settings["discount_percent"]:
            payload.update(discount_percent=settings["discount_percent"],
                           discount_valid_days=settings["code_valid_days"])
        rows.append(message_row(store_id=store.id, flow=NAME, step="main",
                                key_parts=(f"customer={cid}", f"year={year}"), scheduled_for=moment,
                                customer_id=cid, locale=locale, marketing=True,
                                to_address=email if store.protected_data_access else None, payload=payload, **extra))
    return rows


FLOW = Flow(
    name=NAME,
    title="Birthdays",
    about="A birthday email with a code a few days before, at 09:00 the customer's time.",
    flow_class="marketing",
    platforms=("shopify",),
    trigger="due query: customers whose birthday (month and day) is lead_days away in their time zone",
    audience=("customers with a known birthday", "marketing consent (checked at send time)", "once a year"),
    timing="send_time local, lead_days before the birthday (29 February: the 28th in common years)",
    steps=(
        Step("main", due_birthdays, "the birthday email with a code valid code_valid_days", template="main",
             counter="planned", not_sent_counter="not_sent"),
    ),
    exits=(
        Exit("no_consent", "no marketing consent (checked at send time)"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
    ),
    idempotency_key="<store>:birthday:customer=<id>:year=<year celebrated>:step=main",
    settings=flow_schemas.BIRTHDAY,
    counts=("planned", "not_sent"),
)


# -- the merchant's birthday metafield -------------------------------------------------------------------------
METAFIELD_STREAM = "birthday_metafield"
PAGE = 250
PAGES_PER_RUN = 40
# Month and day only: stored in a leap year so that 29 February is a birthday like any other.
STORED_YEAR = 2000


def parse_birthday(value: str) -> date | None:
    """Read a metafield value as a month and day: ``1990-04-01`` (a ``date`` metafield), ``--04-01`` or ``04-01``."""
    text = value.strip().strip('"')
    parts = text.lstrip("-").split("-")
    try:
        if len(parts) == 3 and len(parts[0]) == 4:
            month, day = int(parts[1]), int(parts[2][:2])
        elif len(parts) == 2:
            month, day = int(parts[0]), int(parts[1])
        else:
            return None
        return date(STORED_YEAR, month, day)
    except ValueError:
        return None


def read_metafields(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: read the merchant's birthday metafield for the next customers (a rolling pass over the store).

    Customers who set their birthday on the signed page keep theirs: it is their own word.
    """
    from plugin.flows import runner

    with ctx.database.session() as session:
        settings = runner.load_settings(session, ctx.config, FLOW, store_id)
        store = session.get(Store, store_id)
        named = str(settings["metafield"]).strip()
        if runner.refusal(FLOW, store, settings) or not named:
            return {"off": 1}
        cursor = int(get_sync_state(session, store_id, METAFIELD_STREAM).cursor or 0)
    namespace, _, key = named.rpartition(".")
    client = shopify_client(ctx, store_id)
    counts = {"read": 0, "set": 0}
    for _ in range(PAGES_PER_RUN):
        with ctx.database.session() as session:
            page = session.execute(
                select(Customer.id, Customer.external_id)
                .where(Customer.store_id == store_id, Customer.id > cursor, Customer.redacted_at.is_(None),
                       Customer.birthday_changed_at.is_(None))
                .order_by(Customer.id).limit(PAGE)).all()
        found = customer_metafields(client, [ext for _cid, ext in page], namespace or None, key) if page else {}
        with ctx.database.session() as session:
            for cid, ext in page:
                birthday = parse_birthday(found[ext][1]) if ext in found else None
                if birthday is not None:
                    counts["set"] += session.execute(
                        # Not redacted meanwhile: customers/redact may land while the page's call is in flight.
                        update(Customer).where(Customer.id == cid, Customer.birthday_changed_at.is_(None),
                                               Customer.redacted_at.is_(None),
                                               or_(Customer.birthday.is_(None), Customer.birthday != birthday))
                        .values(birthday=birthday)).rowcount or 0
            counts["read"] += len(page)
            cursor = page[-1][0] if len(page) == PAGE else 0
            mark_sync_success(session, store_id, METAFIELD_STREAM, cursor=str(cursor), now=ctx.clock.now(),
                              records=len(page))
        if cursor == 0:
            break
    return counts
