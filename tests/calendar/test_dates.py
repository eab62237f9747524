"""The shipped calendar's dates for 2026 and 2027, written down from published calendars (not from the code):
US Thanksgiving is 26 Nov 2026 / 25 Nov 2027; the Spring Festival begins 17 Feb 2026 (Horse) / 6 Feb 2027 (Goat);
Saudi Arabia's Umm al-Qura calendar starts Ramadan 1447 on 18 Feb 2026 and 1448 on 8 Feb 2027, Eid al-Fitr on
20 Mar 2026 / 9 Mar 2027; India's gazetted Diwali is 8 Nov 2026 / 29 Oct 2027; Easter is 5 Apr 2026 / 28 Mar 2027."""

from __future__ import annotations

from datetime import date

import pytest

from plugin import shopping_calendar as cal

EXPECTED = {
    2026: {"black_friday": date(2026, 11, 27), "cyber_monday": date(2026, 11, 30), "prime_day": date(2026, 7, 14),
           "christmas": date(2026, 12, 25), "boxing_day": date(2026, 12, 26), "singles_day": date(2026, 11, 11),
           "lunar_new_year": date(2026, 2, 17), "ramadan": date(2026, 2, 18), "eid_al_fitr": date(2026, 3, 20),
           "diwali": date(2026, 11, 8), "golden_week": date(2026, 4, 29), "shichi_go_san": date(2026, 11, 15),
           "valentines_day": date(2026, 2, 14), "mothers_day": date(2026, 5, 10),
           "mothering_sunday": date(2026, 3, 15), "mid_year_618": date(2026, 6, 18),
           "dia_dos_namorados": date(2026, 6, 12)},
    2027: {"black_friday": date(2027, 11, 26), "cyber_monday": date(2027, 11, 29), "prime_day": date(2027, 7, 13),
           "christmas": date(2027, 12, 25), "boxing_day": date(2027, 12, 26), "singles_day": date(2027, 11, 11),
           "lunar_new_year": date(2027, 2, 6), "ramadan": date(2027, 2, 8), "eid_al_fitr": date(2027, 3, 9),
           "diwali": date(2027, 10, 29), "golden_week": date(2027, 4, 29), "shichi_go_san": date(2027, 11, 15),
           "valentines_day": date(2027, 2, 14), "mothers_day": date(2027, 5, 9),
           "mothering_sunday": date(2027, 3, 7), "mid_year_618": date(2027, 6, 18),
           "dia_dos_namorados": date(2027, 6, 12)},
}


@pytest.mark.parametrize("year", sorted(EXPECTED))
def test_every_default_event_falls_on_its_published_day(year):
    got = {o.key: o.day for o in cal.occurrences(None, None, [year])}
    assert got == EXPECTED[year]


def test_lunar_new_year_is_the_festival_not_its_eve():
    # The eve (除夕) is a holiday of its own the day before; the shopping moment is the first day.
    assert cal.lunar_new_year(2026) == date(2026, 2, 17)
    assert cal.lunar_new_year(2028) == date(2028, 1, 26)


def test_easter_over_known_years():
    assert [cal.easter(y) for y in (2024, 2025, 2026, 2027, 2038)] == [
        date(2024, 3, 31), date(2025, 4, 20), date(2026, 4, 5), date(2027, 3, 28), date(2038, 4, 25)]


def test_countries_of_the_regional_events():
    events = cal.DEFAULTS
    assert set(events["boxing_day"].countries) == {"GB", "IE", "CA", "AU", "NZ"}
    assert "US" not in events["boxing_day"].countries
    assert events["diwali"].countries == ("IN",)
    assert events["golden_week"].countries == ("JP",) and events["shichi_go_san"].countries == ("JP",)
    assert "CN" in events["singles_day"].countries and "CN" in events["lunar_new_year"].countries
    assert {"SA", "AE", "EG"} <= set(events["eid_al_fitr"].countries)
    assert "BR" not in events["valentines_day"].countries and events["dia_dos_namorados"].countries == ("BR",)


def test_store_edits_overlay_the_defaults(db_session):
    from tests.jobs import factory as f
    st = f.store(db_session)
    cal.save_event(db_session, st.id, "prime_day", on_date=date(2027, 7, 8))
    cal.save_event(db_session, st.id, "christmas", enabled=False)
    cal.save_event(db_session, st.id, "diwali", countries=["IN", "GB"], segments=["growth", "vip"],
                   discount_percent=25, title="Festive Diwali sale")
    cal.save_event(db_session, st.id, cal.custom_key("Store anniversary"), title="Store anniversary",
                   on_date=date(2020, 9, 3), yearly=True, countries=["US"])
    got = {(o.key, o.year): o for o in cal.occurrences(db_session, st.id, [2026, 2027])}
    # The move applies to 2027 only; 2026 keeps the computed day.
    assert got[("prime_day", 2027)].day == date(2027, 7, 8) and got[("prime_day", 2027)].moved
    assert got[("prime_day", 2026)].day == date(2026, 7, 14)
    assert not got[("christmas", 2026)].enabled and got[("boxing_day", 2026)].enabled
    d = got[("diwali", 2026)]
    assert (d.countries, d.segments, d.discount_percent, d.title, d.titled) == (
        ("IN", "GB"), ("growth", "vip"), 25, "Festive Diwali sale", True)
    own = got[("custom_store_anniversary", 2027)]
    assert (own.day, own.custom, own.countries) == (date(2027, 9, 3), True, ("US",))
    # Resetting a default brings the shipped one back.
    assert cal.reset_event(db_session, st.id, "christmas")
    assert [o.enabled for o in cal.occurrences(db_session, st.id, [2026]) if o.key == "christmas"] == [True]


def test_edits_are_checked():
    with pytest.raises(cal.CalendarError, match="country code"):
        cal.parse_countries("US, Japan")
    with pytest.raises(cal.CalendarError, match="unknown segment"):
        cal.parse_segments(["growth", "whales"])
    assert cal.parse_countries("us, jp,US") == ["US", "JP"]
    with pytest.raises(cal.CalendarError, match="at least one country"):
        cal.save_event(None, 1, "christmas", countries=[])  # refused before the session is used
    assert cal.parse_segments(["vip", "growth"]) == ["growth", "vip"]
