"""Send windows in the customer's local time: DST gaps and folds, zones without DST, holidays, Ramadan."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from plugin.messaging import sendtime
from plugin.messaging.sendtime import Slot, WindowRules, next_slot, to_utc

WINDOW = WindowRules(start=time(9, 0), end=time(11, 0))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("zone", "country", "now", "expected"), [
    # New York springs forward on 2026-03-08: 09:00 EDT is 13:00 UTC (it was 14:00 UTC the day before).
    ("America/New_York", "US", utc(2026, 3, 7, 20, 0), utc(2026, 3, 8, 13, 0)),
    ("America/New_York", "US", utc(2026, 3, 7, 13, 0), utc(2026, 3, 7, 14, 0)),
    # ... and falls back on 2026-11-01: 09:00 EST is 14:00 UTC.
    ("America/New_York", "US", utc(2026, 10, 31, 20, 0), utc(2026, 11, 1, 14, 0)),
    # Berlin: summer time from 2026-03-29 (09:00 CEST = 07:00 UTC), winter time from 2026-10-25 (08:00 UTC).
    ("Europe/Berlin", "DE", utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 7, 0)),
    ("Europe/Berlin", "DE", utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 8, 0)),
    # Kolkata is UTC+05:30 all year: 09:00 IST is 03:30 UTC.
    ("Asia/Kolkata", "IN", utc(2026, 6, 9, 6, 0), utc(2026, 6, 10, 3, 30)),
    # Auckland leaves daylight time on 2026-04-05 at 03:00 NZDT: 09:00 NZST is 21:00 UTC the day before.
    ("Pacific/Auckland", "NZ", utc(2026, 4, 4, 12, 0), utc(2026, 4, 4, 21, 0)),
    # ... and enters it on 2026-09-27: 09:00 NZDT is 20:00 UTC the day before.
    ("Pacific/Auckland", "NZ", utc(2026, 9, 26, 12, 0), utc(2026, 9, 26, 20, 0)),
])
def test_next_window_across_zones_and_dst(zone: str, country: str, now: datetime, expected: datetime) -> None:
    assert next_slot(now, ZoneInfo(zone), country, WINDOW) == Slot(expected, "outside_window")


def test_inside_the_window_sends_now() -> None:
    now = utc(2026, 6, 9, 4, 0)  # 09:30 in Kolkata
    assert next_slot(now, ZoneInfo("Asia/Kolkata"), "IN", WINDOW) == Slot(now, None)


def test_window_start_in_the_spring_gap_moves_to_the_jump() -> None:
    # 02:30 does not exist in New York on 2026-03-08; the first instant after it is 03:00 EDT = 07:00 UTC.
    assert to_utc(date(2026, 3, 8), time(2, 30), ZoneInfo("America/New_York")) == utc(2026, 3, 8, 7, 0)
    rules = WindowRules(start=time(2, 30), end=time(4, 0))
    assert next_slot(utc(2026, 3, 8, 5, 0), ZoneInfo("America/New_York"), "US", rules) == Slot(
        utc(2026, 3, 8, 7, 0), "outside_window")


def test_ambiguous_window_start_takes_the_earlier_instant() -> None:
    # 01:30 happens twice in New York on 2026-11-01 (EDT then EST): the first is 05:30 UTC.
    assert to_utc(date(2026, 11, 1), time(1, 30), ZoneInfo("America/New_York")) == utc(2026, 11, 1, 5, 30)
    # Berlin's 02:30 on 2026-10-25 is first CEST (00:30 UTC).
    assert to_utc(date(2026, 10, 25), time(2, 30), ZoneInfo("Europe/Berlin")) == utc(2026, 10, 25, 0, 30)


def test_national_holidays_move_to_the_next_working_day() -> None:
    # 25 and 26 December are public holidays in Germany: 09:30 CET on Christmas Day waits until 27 December.
    now = utc(2026, 12, 25, 8, 30)
    assert next_slot(now, ZoneInfo("Europe/Berlin"), "DE", WINDOW) == Slot(utc(2026, 12, 27, 8, 0), "holiday")
    # The same instant in the UK: Christmas Day, then Boxing Day on Saturday 26 December.
    assert next_slot(now, ZoneInfo("Europe/London"), "GB", WINDOW) == Slot(utc(2026, 12, 27, 9, 0), "holiday")
    # Switched off: Christmas morning is inside the window.
    relaxed = WindowRules(start=time(9, 0), end=time(11, 0), respect_holidays=False)
    assert next_slot(now, ZoneInfo("Europe/Berlin"), "DE", relaxed) == Slot(now, None)


def test_ramadan_moves_promotions_after_sunset() -> None:
    # 2026-03-03 is 14 Ramadan 1447. 09:30 in Riyadh (06:30 UTC) is daytime: the promotion waits for 19:00.
    assert sendtime.is_ramadan(date(2026, 3, 3)) and not sendtime.is_ramadan(date(2026, 4, 3))
    rules = WindowRules(start=time(9, 0), end=time(11, 0), ramadan=True)
    now = utc(2026, 3, 3, 6, 30)
    assert next_slot(now, ZoneInfo("Asia/Riyadh"), "SA", rules) == Slot(utc(2026, 3, 3, 16, 0), "ramadan_daytime")
    # Inside the evening window it goes at once; outside Ramadan the usual window applies.
    assert next_slot(utc(2026, 3, 3, 16, 30), ZoneInfo("Asia/Riyadh"), "SA", rules) == Slot(
        utc(2026, 3, 3, 16, 30), None)
    assert next_slot(utc(2026, 4, 7, 6, 30), ZoneInfo("Asia/Riyadh"), "SA", rules) == Slot(utc(2026, 4, 7, 6, 30), None)


def test_zone_resolution_customer_then_country_then_store() -> None:
    assert sendtime.resolve_zone("Asia/Tokyo", "US", "Europe/Paris") == ZoneInfo("Asia/Tokyo")
    assert sendtime.resolve_zone(None, "US", "Europe/Paris") == ZoneInfo("America/New_York")
    assert sendtime.resolve_zone(None, "IN", "Europe/Paris") == ZoneInfo("Asia/Kolkata")
    assert sendtime.resolve_zone("Not/AZone", None, "Europe/Paris") == ZoneInfo("Europe/Paris")
    assert sendtime.resolve_zone(None, None, None) == ZoneInfo("UTC")


def test_window_across_midnight() -> None:
    rules = WindowRules(start=time(22, 0), end=time(2, 0))
    zone = ZoneInfo("Europe/London")
    assert next_slot(utc(2026, 3, 3, 12, 0), zone, None, rules) == Slot(utc(2026, 3, 3, 22, 0), "outside_window")
    assert next_slot(utc(2026, 3, 3, 23, 30), zone, None, rules) == Slot(utc(2026, 3, 3, 23, 30), None)
    # 01:00 on the 4th is still inside the window that opened on the 3rd; 03:00 waits for 22:00.
    assert next_slot(utc(2026, 3, 4, 1, 0), zone, None, rules) == Slot(utc(2026, 3, 4, 1, 0), None)
    assert next_slot(utc(2026, 3, 4, 3, 0), zone, None, rules) == Slot(utc(2026, 3, 4, 22, 0), "outside_window")


def test_malformed_window_setting_falls_back_to_the_default(db_session, database_url, tmp_path) -> None:
    from plugin.config import load_config
    from plugin.messaging import policy
    from plugin.models import FlowSettings
    from tests.conftest import test_settings
    from tests.messaging import seed

    config = load_config(test_settings(database_url, tmp_path / "instance"), environ={})
    store = seed.store(db_session)
    # Stored as an older release or a hand edit left it: flow_settings.update refuses such a value now.
    db_session.add(FlowSettings(store_id=store.id, flow="policy", enabled=True,
                                settings={"send_window_start": "9 o'clock"}))
    db_session.flush()
    message = seed.message(db_session, store, seed.customer(db_session, store, 1), when=utc(2026, 3, 3, 9, 30))
    assert policy.evaluate(db_session, config, message, utc(2026, 3, 3, 9, 30)).action == "send"
