"""When a customer may receive an email: time zone, daily send window, national holidays and Ramadan.

All arithmetic happens on the customer's local calendar and is converted to UTC with ``zoneinfo``, so DST
changes are handled: a window start that does not exist locally (spring-forward gap) moves to the first
instant after the gap; an ambiguous one (autumn fold) takes the earlier of the two instants.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from babel.core import get_global
from hijridate import Gregorian

log = logging.getLogger("aftercare.messaging")

# Countries spanning several zones: the zone where most people live (Babel lists zones alphabetically).
MAIN_ZONES = {
    "US": "America/New_York", "CA": "America/Toronto", "BR": "America/Sao_Paulo", "MX": "America/Mexico_City",
    "AU": "Australia/Sydney", "RU": "Europe/Moscow", "ID": "Asia/Jakarta", "CN": "Asia/Shanghai",
    "NZ": "Pacific/Auckland", "DE": "Europe/Berlin", "ES": "Europe/Madrid", "PT": "Europe/Lisbon",
    "AR": "America/Argentina/Buenos_Aires", "CL": "America/Santiago", "KZ": "Asia/Almaty",
    "EC": "America/Guayaquil", "UA": "Europe/Kyiv", "MY": "Asia/Kuala_Lumpur", "CD": "Africa/Kinshasa",
    "MN": "Asia/Ulaanbaatar", "PG": "Pacific/Port_Moresby", "FM": "Pacific/Pohnpei", "KI": "Pacific/Tarawa",
    "PF": "Pacific/Tahiti", "GL": "America/Nuuk", "UZ": "Asia/Tashkent", "CY": "Asia/Nicosia",
}
HIJRI_RAMADAN = 9
SEARCH_DAYS = 400


@dataclass(frozen=True)
class WindowRules:
    """The daily window and quiet-day rules for one message."""

    start: time
    end: time
    respect_holidays: bool = True
    # Promotional message to a customer in one of the store's Ramadan countries.
    ramadan: bool = False
    ramadan_daytime_start: time = time(5, 0)
    ramadan_daytime_end: time = time(19, 0)


@dataclass(frozen=True)
class Slot:
    """The earliest allowed instant (UTC) and, when it is later than asked, the rule that moved it."""

    at: datetime
    reason: str | None


def parse_hhmm(value: str) -> time:
    """Parse ``HH:MM`` into a time; raise ValueError with the bad value otherwise."""
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"expected HH:MM, got {value!r}") from exc


def zone_for_country(country: str | None) -> str | None:
    """Return the main IANA zone of an ISO 3166 country, or None when unknown."""
    if not country:
        return None
    code = country.upper()
    if code in MAIN_ZONES:
        return MAIN_ZONES[code]
    zones = get_global("territory_zones").get(code)
    return zones[0] if zones else None


@functools.cache
def _zone_countries() -> dict[str, str]:
    """Map IANA zone names to the one country each stands for, from tzdata's ``zone.tab`` and ``zone1970.tab``.

    https://data.iana.org/time-zones/tzdb/zone1970.tab lists, per zone, every country it overlaps, the one of its
    most populous city first; ``zone.tab`` names one country per zone, also for the names of zones merged since
    1970 (``Europe/Stockholm``, ``Asia/Kuwait``). A zone takes the first country of its zone1970.tab list when
    zone.tab agrees; where they disagree the listing follows no population rule (``Europe/Simferopol``:
    ``RU,UA`` "alphabetically", see "territorial claims" there) and the zone stands for no country.
    """
    files = importlib.resources.files("tzdata").joinpath("zoneinfo")
    countries: dict[str, str] = {}
    for line in files.joinpath("zone.tab").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, _, zone = line.split("\t")[:3]
            countries[zone] = code
    for line in files.joinpath("zone1970.tab").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            codes, _, zone = line.split("\t")[:3]
            first = codes.split(",")[0]
            if countries.get(zone, first) == first:
                countries[zone] = first
            else:
                del countries[zone]
    return countries


def country_for_zone(zone: str | None) -> str | None:
    """Return the ISO 3166 country an IANA zone stands for (see ``_zone_countries``), or None."""
    return _zone_countries().get(zone) if zone else None


def customer_country(country: str | None, zone: str | None, store_country: str | None) -> str | None:
    """Pick the country whose holidays and Ramadan rule apply: the customer's, else their zone's, else the store's."""
    return (country or country_for_zone(zone) or store_country or "").upper() or None


def resolve_zone(customer_zone: str | None, country: str | None, store_zone: str | None) -> ZoneInfo:
    """Pick the customer's zone, else their country's main zone, else the store's, else UTC."""
    for candidate in (customer_zone, zone_for_country(country), store_zone):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone ignored", extra={"zone": candidate})
    return ZoneInfo("UTC")


def to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Convert a local wall-clock time to UTC: gaps move forward past the jump, folds take the earlier instant."""
    local = datetime.combine(day, at).replace(tzinfo=zone, fold=0)
    instant = local.astimezone(UTC)
    back = instant.astimezone(zone).replace(tzinfo=None)
    if back != datetime.combine(day, at):
        # Non-existent local time: fold=0 used the offset before the jump, landing past it (PEP 495).
        # Walk back to the transition, the first real instant whose wall time is not earlier.
        while (instant - timedelta(minutes=1)).astimezone(zone).replace(tzinfo=None) >= datetime.combine(day, at):
            instant -= timedelta(minutes=1)
    return instant


@functools.lru_cache(maxsize=512)
def _holiday_calendar(country: str, year: int) -> holidays.HolidayBase | None:
    try:
        return holidays.country_holidays(country, years=year)
    except NotImplementedError:
        return None


def is_holiday(country: str | None, day: date) -> bool:
    """Say whether ``day`` is a national holiday in ``country`` (unknown countries have none)."""
    if not country:
        return False
    calendar = _holiday_calendar(country.upper(), day.year)
    return calendar is not None and day in calendar


def is_ramadan(day: date) -> bool:
    """Say whether ``day`` falls in the Hijri month of Ramadan (Umm al-Qura calendar)."""
    try:
        return Gregorian(day.year, day.month, day.day).to_hijri().month == HIJRI_RAMADAN
    except OverflowError:
        return False


def _day_window(day: date, rules: WindowRules) -> tuple[time, time, str | None]:
    """Return the allowed window of one local day and the rule that changed it, if any."""
    if rules.ramadan and is_ramadan(day):
        start, end = rules.start, rules.end
        if start < rules.ramadan_daytime_end and end > rules.ramadan_daytime_start:
            # The usual window overlaps the fasting day: use a window of the same length after sunset.
            length = datetime.combine(day, end) - datetime.combine(day, start)
            new_start = rules.ramadan_daytime_end
            new_end_dt = datetime.combine(day, new_start) + length
            new_end = time(23, 59) if new_end_dt.date() != day else new_end_dt.time()
            return new_start, new_end, "ramadan_daytime"
    return rules.start, rules.end, None


def next_slot(now: datetime, zone: ZoneInfo, country: str | None, rules: WindowRules) -> Slot:
    """Return ``now`` when it is inside an allowed window, else the start of the next allowed window."""
    today = now.astimezone(zone).date()
    first_reason: str | None = None
    # Start with yesterday: a window like 22:00-02:00 that opened yesterday may still be open.
    for offset in range(-1, SEARCH_DAYS):
        day = today + timedelta(days=offset)
        if rules.respect_holidays and is_holiday(country, day):
            if offset >= 0:
                first_reason = first_reason or "holiday"
            continue
        start, end, changed = _day_window(day, rules)
        end_day = day + timedelta(days=1) if end <= start else day
        start_utc, end_utc = to_utc(day, start, zone), to_utc(end_day, end, zone)
        if offset < 0:
            if start_utc <= now < end_utc:
                return Slot(now, None)
            continue
        if now < start_utc:
            return Slot(start_utc, first_reason or changed or "outside_window")
        if now < end_utc:
            return Slot(now, first_reason)
        if offset == 0:
            first_reason = first_reason or changed or "outside_window"
    raise ValueError(f"no allowed send slot within {SEARCH_DAYS} days")  # only with absurd settings
