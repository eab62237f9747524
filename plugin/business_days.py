"""A store's business-day calendar: weekends and the national holidays of the store's country, in its time zone.

Delivery thresholds are counted in whole business days (a Friday order is not "two days late" on Monday). The
rule: an event on local day D has waited N business days once N business days lie strictly between D and today
(``cutoff``), so a threshold turns into one UTC instant that set-based SQL compares timestamps with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugin.messaging.sendtime import is_holiday

# Saturday and Sunday; stores whose weekend differs (e.g. Friday/Saturday) are not modelled yet.
WEEKEND = frozenset({5, 6})
# No threshold worth having exceeds this; it bounds the walk back through the calendar.
MAX_BUSINESS_DAYS = 365


@dataclass(frozen=True)
class Calendar:
    """The business days of one store: its country's holidays (``holidays`` package) and weekends, in its zone."""

    country: str | None
    zone: ZoneInfo

    @classmethod
    def for_store(cls, country: str | None, timezone: str | None) -> Calendar:
        """Build the calendar of a store from its country and IANA time zone (UTC when unknown)."""
        try:
            zone = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return cls((country or "").upper() or None, zone)

    def is_business_day(self, day: date) -> bool:
        """Say whether ``day`` is neither a weekend day nor a national holiday of the store's country."""
        return day.weekday() not in WEEKEND and not is_holiday(self.country, day)

    def local_day(self, instant: datetime) -> date:
        """Return the store's local date of an aware instant."""
        return instant.astimezone(self.zone).date()

    def day_start(self, day: date) -> datetime:
        """Return the UTC instant the local day begins."""
        return datetime.combine(day, time(0, 0), tzinfo=self.zone).astimezone(UTC)

    def business_days_between(self, start: datetime, now: datetime) -> int:
        """Count the business days strictly between the local days of ``start`` and ``now``."""
        first, last = self.local_day(start), self.local_day(now)
        count, day = 0, first + timedelta(days=1)
        while day < last:
            count += self.is_business_day(day)
            day += timedelta(days=1)
        return count

    def cutoff(self, now: datetime, business_days: int) -> datetime:
        """Return the instant before which an event has waited at least ``business_days`` business days at ``now``.

        That is the start of the ``business_days``-th business day before today (local): an event earlier than it
        has that many whole business days after its own day and before today. Zero days: the start of today.
        """
        if not 0 <= business_days <= MAX_BUSINESS_DAYS:
            raise ValueError(f"business days must be from 0 to {MAX_BUSINESS_DAYS}, not {business_days}")
        day = self.local_day(now)
        found = 0
        while found < business_days:
            day -= timedelta(days=1)
            found += self.is_business_day(day)
        return self.day_start(day)

    def add_business_days(self, start: datetime, business_days: int) -> datetime:
        """Return the first instant at which an event at ``start`` has waited ``business_days`` business days."""
        day, found = self.local_day(start), 0
        while found < business_days:
            day += timedelta(days=1)
            found += self.is_business_day(day)
        return self.day_start(day + timedelta(days=1))
