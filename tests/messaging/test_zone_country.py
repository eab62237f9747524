"""A customer without a country gets the holidays and Ramadan rule of their time zone's country, not the store's.

The store is in London (GB); Riyadh is UTC+3 all year (no DST), so 09:00 there is 06:00 UTC and 19:00 is 16:00 UTC.
Saudi holidays of 2026 (python-holidays): Eid al-Fitr 19-24 March; 1 Ramadan 1447 is 18 February 2026.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.config import Config, load_config
from plugin.messaging import policy, sendtime
from tests.conftest import test_settings
from tests.messaging import seed


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Config:
    """Return the test configuration (the data lives in the rolled-back db_session)."""
    return load_config(test_settings(database_url, tmp_path / "instance"), environ={})


@pytest.mark.parametrize("zone, country", [
    ("Asia/Riyadh", "SA"),
    ("Asia/Kuwait", "KW"),         # merged into Asia/Riyadh since 1970: zone.tab still names its country
    ("Europe/Stockholm", "SE"),    # likewise merged into Europe/Berlin (zone1970.tab: DE,DK,NO,SE,SJ)
    ("Europe/Berlin", "DE"),
    ("America/New_York", "US"),
    ("Europe/Simferopol", None),   # zone1970.tab lists RU,UA alphabetically (claims), zone.tab says UA
    ("Etc/UTC", None),
    ("Mars/Olympus_Mons", None),
    (None, None),
])
def test_country_for_zone(zone: str | None, country: str | None) -> None:
    assert sendtime.country_for_zone(zone) == country


def test_ramadan_rule_of_the_customers_zone_at_a_gb_store(db_session: Session, config: Config) -> None:
    store = seed.store(db_session)
    flow_settings.update(db_session, config, store.id, "policy", {"ramadan_countries": ["SA"]})
    riyadh = seed.customer(db_session, store, 1, time_zone="Asia/Riyadh", country=None)
    now = datetime(2026, 3, 3, 6, 30, tzinfo=UTC)  # 09:30 in Riyadh, 14 Ramadan 1447
    promo = seed.message(db_session, store, riyadh, flow="replenishment", marketing=True, when=now)
    assert policy.evaluate(db_session, config, promo, now) == policy.Decision(
        "reschedule", "ramadan_daytime", at=datetime(2026, 3, 3, 16, 0, tzinfo=UTC))
    # A country of their own wins over the zone: a British customer travelling in Riyadh gets the GB rules.
    visitor = seed.customer(db_session, store, 2, time_zone="Asia/Riyadh", country="GB")
    promo = seed.message(db_session, store, visitor, flow="replenishment", marketing=True, when=now, key="visitor")
    assert policy.evaluate(db_session, config, promo, now).action == "send"


def test_holidays_of_the_customers_zone_at_a_gb_store(db_session: Session, config: Config) -> None:
    store = seed.store(db_session)
    riyadh = seed.customer(db_session, store, 1, time_zone="Asia/Riyadh", country=None)
    eid = datetime(2026, 3, 19, 6, 30, tzinfo=UTC)  # 09:30 in Riyadh on the first day of Eid al-Fitr
    request = seed.message(db_session, store, riyadh, when=eid)
    assert policy.evaluate(db_session, config, request, eid) == policy.Decision(
        "reschedule", "holiday", at=datetime(2026, 3, 25, 6, 0, tzinfo=UTC))
    # Christmas is the store's holiday, not theirs: 09:30 in Riyadh on 25 December is inside the window.
    christmas = datetime(2026, 12, 25, 6, 30, tzinfo=UTC)
    request = seed.message(db_session, store, riyadh, when=christmas, key="christmas")
    assert policy.evaluate(db_session, config, request, christmas).action == "send"


def test_a_zone_that_stands_for_no_country_keeps_the_stores_rules(db_session: Session, config: Config) -> None:
    store = seed.store(db_session)
    crimea = seed.customer(db_session, store, 1, time_zone="Europe/Simferopol", country=None)
    christmas = datetime(2026, 12, 25, 7, 30, tzinfo=UTC)  # 10:30 in Simferopol (UTC+3)
    request = seed.message(db_session, store, crimea, when=christmas)
    # GB holidays: 25, 26 and (Boxing Day observed) 28 December; 09:00 on the 27th (a Sunday) is 06:00 UTC.
    assert policy.evaluate(db_session, config, request, christmas) == policy.Decision(
        "reschedule", "holiday", at=datetime(2026, 12, 27, 6, 0, tzinfo=UTC))
