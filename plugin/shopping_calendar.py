"""Each country's shopping calendar: shipped default events with their dates computed per year, and the store's edits.

A default event is a rule (a fixed day, "the day after the 4th Thursday of November", a lunar or Hijri date) and
the countries where it is a shopping moment. A store's ``shopping_event`` rows overlay the defaults by key: a row
may disable an event, rename it, change its countries, the customer segments it goes to or its discount, or move
its date in one year (Amazon announces Prime Day a few weeks ahead). A row whose key is no default is the
merchant's own event, on a given date (once, or every year on the same month and day).

Moving dates come from the ``holidays`` package (Chinese lunisolar calendar, India's Diwali) and ``hijridate``
(the Umm al-Qura calendar Saudi Arabia publishes), so nothing is hard-coded per year.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import holidays
from dateutil.easter import easter
from hijridate import Gregorian, Hijri
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from plugin.models import Message, ShoppingEvent

# Segments of plugin.analytics (customer_metrics.segment) an event may go to.
SEGMENTS = ("growth", "vip", "active", "dormant")
DEFAULT_SEGMENTS = ("growth",)
# The flow that mails the calendar's events (plugin.flows.shopping_calendar; named here to keep imports one way).
FLOW_NAME = "shopping_calendar"
HIJRI_RAMADAN, HIJRI_SHAWWAL = 9, 10
# Holiday names the holidays package gives (English): the first day of the Spring Festival, not its eve
# ("Chinese New Year's Eve"), and India's Diwali.
SPRING_FESTIVAL = "Chinese New Year (Spring Festival)"
DIWALI = "Diwali"


class CalendarError(ValueError):
    """An event edit the calendar refuses; the message says why in the merchant's words."""


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """Return the ``n``-th ``weekday`` (0 = Monday) of a month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def black_friday(year: int) -> date:
    """Return the day after the US Thanksgiving (the 4th Thursday of November)."""
    return nth_weekday(year, 11, calendar.THURSDAY, 4) + timedelta(days=1)


def cyber_monday(year: int) -> date:
    """Return the Monday after Black Friday."""
    return black_friday(year) + timedelta(days=3)


def prime_day(year: int) -> date:
    """Return the default Prime Day: the 2nd Tuesday of July (Amazon announces the real one; the merchant moves it)."""
    return nth_weekday(year, 7, calendar.TUESDAY, 2)


@functools.cache
def _named_day(country: str, name: str, year: int) -> date:
    """Return the first day of ``year`` that the holidays package names exactly ``name`` in ``country``."""
    found = holidays.country_holidays(country, years=year, language="en_US")
    days = sorted(day for day, names in found.items() if name in [n.strip() for n in names.split(";")])
    if not days:
        raise LookupError(f"the holidays package has no {name!r} in {country} {year}")
    return days[0]


def lunar_new_year(year: int) -> date:
    """Return the first day of the Spring Festival (China's calendar; the eve is a different holiday)."""
    return _named_day("CN", SPRING_FESTIVAL, year)


def diwali(year: int) -> date:
    """Return Diwali as India's national calendar gives it."""
    return _named_day("IN", DIWALI, year)


def _hijri_month_start(year: int, month: int) -> date:
    """Return the first Gregorian day of Hijri ``month`` whose start falls in Gregorian ``year``."""
    for hijri_year in range(Gregorian(year, 1, 1).to_hijri().year, Gregorian(year, 12, 31).to_hijri().year + 1):
        start = Hijri(hijri_year, month, 1).to_gregorian()
        if start.year == year:
            return date(start.year, start.month, start.day)
    raise LookupError(f"no Hijri month {month} starts in {year}")


def ramadan_start(year: int) -> date:
    """Return the first day of Ramadan (Umm al-Qura) in ``year``."""
    return _hijri_month_start(year, HIJRI_RAMADAN)


def eid_al_fitr(year: int) -> date:
    """Return Eid al-Fitr, the 1st of Shawwal (Umm al-Qura) in ``year``."""
    return _hijri_month_start(year, HIJRI_SHAWWAL)


def mothering_sunday(year: int) -> date:
    """Return Mothering Sunday (UK, Ireland): the 4th Sunday of Lent, three weeks before (Western) Easter."""
    return easter(year) - timedelta(days=21)


def fixed(month: int, day: int) -> Callable[[int], date]:
    """Return a rule for the same month and day every year."""
    def rule(year: int) -> date:
        return date(year, month, day)
    return rule


@dataclass(frozen=True)
class DefaultEvent:
    """A shipped event: its key, English title, the countries it is a shopping moment in, and its date rule."""

    key: str
    title: str
    countries: tuple[str, ...]
    rule: Callable[[int], date]
    note: str = ""


WESTERN_RETAIL = ("US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "ES", "PT", "IT", "BR", "MX", "AU",
                  "NZ")
ARAB_AND_MUSLIM = ("SA", "AE", "QA", "KW", "BH", "OM", "EG", "JO", "MA", "DZ", "TN", "TR", "PK", "ID", "MY")
PRIME_DAY_COUNTRIES = ("US", "CA", "GB", "DE", "AT", "FR", "ES", "IT", "NL", "BE", "JP", "BR", "MX", "AU")

DEFAULT_EVENTS: tuple[DefaultEvent, ...] = (
    DefaultEvent("lunar_new_year", "Lunar New Year", ("CN", "HK", "TW", "SG", "MY"), lunar_new_year,
                 "First day of the Spring Festival (China's lunisolar calendar)."),
    # Brazil keeps its lovers' day in June (Dia dos Namorados), not in February.
    DefaultEvent("valentines_day", "Valentine's Day", tuple(c for c in WESTERN_RETAIL if c != "BR") + ("JP",),
                 fixed(2, 14)),
    DefaultEvent("ramadan", "Ramadan", ARAB_AND_MUSLIM, ramadan_start,
                 "First day of Ramadan (Umm al-Qura calendar)."),
    DefaultEvent("mothering_sunday", "Mothering Sunday", ("GB", "IE"), mothering_sunday,
                 "Three weeks before Easter."),
    DefaultEvent("eid_al_fitr", "Eid al-Fitr", ARAB_AND_MUSLIM, eid_al_fitr,
                 "1 Shawwal (Umm al-Qura calendar); local moon sighting may differ by a day."),
    DefaultEvent("golden_week", "Golden Week", ("JP",), fixed(4, 29), "From Showa Day, 29 April."),
    DefaultEvent("mothers_day", "Mother's Day", ("US", "CA", "AU", "NZ", "DE", "AT", "CH", "IT", "NL", "BE", "BR",
                                                 "JP", "CN", "HK", "TW", "SG", "MY", "IN"),
                 lambda year: nth_weekday(year, 5, calendar.SUNDAY, 2), "2nd Sunday of May."),
    DefaultEvent("dia_dos_namorados", "Dia dos Namorados", ("BR",), fixed(6, 12), "Brazil's Valentine's Day."),
    DefaultEvent("mid_year_618", "618 Shopping Festival", ("CN",), fixed(6, 18)),
    DefaultEvent("prime_day", "Prime Day", PRIME_DAY_COUNTRIES, prime_day,
                 "Default: 2nd Tuesday of July. Amazon announces the real dates; move it when it does."),
    DefaultEvent("diwali", "Diwali", ("IN",), diwali, "As India's national calendar gives it."),
    DefaultEvent("singles_day", "Singles' Day", ("CN", "HK", "TW", "SG", "MY"), fixed(11, 11), "11.11"),
    DefaultEvent("shichi_go_san", "Shichi-Go-San", ("JP",), fixed(11, 15)),
    DefaultEvent("black_friday", "Black Friday", WESTERN_RETAIL, black_friday,
                 "The day after the 4th Thursday of November."),
    DefaultEvent("cyber_monday", "Cyber Monday", WESTERN_RETAIL, cyber_monday, "The Monday after Black Friday."),
    DefaultEvent("christmas", "Christmas", WESTERN_RETAIL + ("JP",), fixed(12, 25)),
    DefaultEvent("boxing_day", "Boxing Day", ("GB", "IE", "CA", "AU", "NZ"), fixed(12, 26)),
)
DEFAULTS: dict[str, DefaultEvent] = {event.key: event for event in DEFAULT_EVENTS}


@dataclass(frozen=True)
class Occurrence:
    """One event on one day: what the flow and the admin read (a default with the store's edits applied)."""

    key: str
    year: int
    day: date
    title: str
    countries: tuple[str, ...]
    segments: tuple[str, ...]
    discount_percent: int | None
    enabled: bool
    custom: bool
    # The merchant renamed it (or made it): emails show that title instead of the shipped localized one.
    titled: bool = False
    moved: bool = False


def _overlay(base: Occurrence, row: ShoppingEvent) -> Occurrence:
    changes: dict[str, Any] = {"enabled": bool(row.enabled)}
    if row.title:
        changes.update(title=row.title, titled=True)
    if row.countries is not None:
        changes["countries"] = tuple(row.countries)
    if row.segments is not None:
        changes["segments"] = tuple(row.segments)
    if row.discount_percent is not None:
        changes["discount_percent"] = row.discount_percent
    if row.on_date is not None and row.on_date.year == base.year:
        changes.update(day=row.on_date, moved=True)
    return replace(base, **changes)


def _custom_day(row: ShoppingEvent, year: int) -> date | None:
    if row.on_date is None:
        return None
    if row.yearly:
        if row.on_date.month == 2 and row.on_date.day == 29 and not calendar.isleap(year):
            return date(year, 2, 28)
        return date(year, row.on_date.month, row.on_date.day)
    return row.on_date if row.on_date.year == year else None


def occurrences(session: Session | None, store_id: int | None, years: Iterable[int]) -> list[Occurrence]:
    """Return every event of the store (disabled ones too) in those years, by day then key."""
    rows = {} if session is None else {r.key: r for r in session.scalars(
        select(ShoppingEvent).where(ShoppingEvent.store_id == store_id))}
    found = []
    for year in years:
        for event in DEFAULT_EVENTS:
            base = Occurrence(key=event.key, year=year, day=event.rule(year), title=event.title,
                              countries=event.countries, segments=DEFAULT_SEGMENTS, discount_percent=None,
                              enabled=True, custom=False)
            found.append(_overlay(base, rows[event.key]) if event.key in rows else base)
        for key, row in rows.items():
            if key in DEFAULTS:
                continue
            day = _custom_day(row, year)
            if day is not None:
                found.append(Occurrence(key=key, year=year, day=day, title=row.title or key,
                                        countries=tuple(row.countries or ()),
                                        segments=tuple(row.segments if row.segments is not None else DEFAULT_SEGMENTS),
                                        discount_percent=row.discount_percent, enabled=bool(row.enabled),
                                        custom=True, titled=True))
    return sorted(found, key=lambda o: (o.day, o.key))


# -- the merchant's edits ----------------------------------------------------------------------------------------
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_]{0,47}$")


def parse_countries(text: str | Iterable[str]) -> list[str]:
    """Return ISO 3166 country codes from a comma-separated text (or a list); a bad code raises CalendarError."""
    items = text.split(",") if isinstance(text, str) else list(text)
    codes = []
    for item in items:
        code = item.strip().upper()
        if not code:
            continue
        if not _COUNTRY.match(code):
            raise CalendarError(f"{item.strip()!r} is not a two-letter country code (e.g. US, JP)")
        if code not in codes:
            codes.append(code)
    return codes


def parse_segments(items: Iterable[str]) -> list[str]:
    """Return the segments named, in their usual order; an unknown one raises CalendarError."""
    wanted = {s.strip() for s in items if s.strip()}
    unknown = wanted - set(SEGMENTS)
    if unknown:
        raise CalendarError(f"unknown segment {sorted(unknown)[0]!r} (known: {', '.join(SEGMENTS)})")
    return [s for s in SEGMENTS if s in wanted]


def custom_key(title: str) -> str:
    """Return the key a merchant's new event gets from its title (``custom_`` and the title's letters)."""
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:40] or "event"
    return f"custom_{slug}"


def store_edit(session: Session, store_id: int, key: str) -> ShoppingEvent | None:
    """Return the store's edit of the event ``key``, if it has one."""
    return session.scalar(select(ShoppingEvent).where(ShoppingEvent.store_id == store_id, ShoppingEvent.key == key))


def withdraw_planned(session: Session, store_id: int, key: str) -> int:
    """Delete the event's planned calendar emails not sent yet (every year); return how many.

    Called on every edit: the flow's next run plans them again from the edited event (a moved date, other
    countries or segments, another discount, or none when it is off). Rows already sent, and decisions recorded
    (held out, skipped), stay, so nobody gets the event twice in a year.
    """
    # The flow writes keys "<store>:shopping_calendar:event=<key>:year=<year>:customer=<id>:step=main".
    head = f"{store_id}:{FLOW_NAME}:event={key}:year="
    return session.execute(delete(Message).where(
        Message.store_id == store_id, Message.flow == FLOW_NAME, Message.status == "scheduled",
        Message.idempotency_key.startswith(head, autoescape=True))
        .execution_options(synchronize_session=False)).rowcount or 0


def save_event(session: Session, store_id: int, key: str, *, title: str | None = None,
               countries: list[str] | None = None, segments: list[str] | None = None,
               discount_percent: int | None = None, on_date: date | None = None, yearly: bool = False,
               enabled: bool = True) -> ShoppingEvent:
    """Create or replace the store's edit of one event (a default's key, or a custom event's)."""
    if not _KEY.match(key):
        raise CalendarError("an event key is lower-case letters, digits and underscores")
    if key not in DEFAULTS:
        if not (title or "").strip():
            raise CalendarError("your own event needs a name")
        if on_date is None:
            raise CalendarError("your own event needs a date")
        if not countries:
            raise CalendarError("your own event needs at least one country")
    if segments is not None and not segments:
        raise CalendarError("pick at least one customer segment")
    if countries is not None and not countries:
        raise CalendarError("name at least one country (switch the event off instead)")
    if discount_percent is not None and not 0 <= discount_percent <= 100:
        raise CalendarError("the discount is a percentage from 0 to 100")
    row = store_edit(session, store_id, key)
    if row is None:
        row = ShoppingEvent(store_id=store_id, key=key)
        session.add(row)
    row.title = (title or "").strip() or None
    row.countries, row.segments = countries, segments
    row.discount_percent, row.on_date, row.yearly, row.enabled = discount_percent, on_date, yearly, enabled
    withdraw_planned(session, store_id, key)
    session.flush()
    return row


def reset_event(session: Session, store_id: int, key: str) -> bool:
    """Drop the store's edit of an event (a default returns to its shipped form; a custom one is deleted)."""
    row = store_edit(session, store_id, key)
    if row is None:
        return False
    session.delete(row)
    withdraw_planned(session, store_id, key)
    session.flush()
    return True
