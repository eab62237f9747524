"""The shopping calendar in the admin: each country's events of a year, an event changed (moved, other segments,
off), reset, the merchant's own event added, bad input refused; the flow on the Flows page with its settings."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from plugin.models import ShoppingEvent
from tests.admin.test_pages import _get, _post, _session


def _row(html: str, country: str) -> str:
    found = re.search(rf'<tr data-country="{country}">(.*?)</tr>', html, re.S)
    assert found, country
    return found.group(1)


def _edits(app, store_id):
    with _session(app) as s:
        return {r.key: r for r in s.scalars(select(ShoppingEvent).where(ShoppingEvent.store_id == store_id))}


def test_calendar_lists_each_countrys_events_and_edits_them(client, tenants, token, app):
    a, b = tenants
    html = _get(client, token, "/admin/calendar", store=a.store_id, year=2026).get_data(as_text=True)
    jp, gb, us, india = (_row(html, c) for c in ("JP", "GB", "US", "IN"))
    assert "Golden Week" in jp and "Shichi-Go-San" in jp and 'datetime="2026-11-15"' in jp
    assert "Boxing Day" in gb and "Mothering Sunday" in gb and "Boxing Day" not in us
    assert "Black Friday" in us and 'datetime="2026-11-27"' in us
    assert "Diwali" in india and 'datetime="2026-11-08"' in india

    # Prime Day 2027 moved to 8 July, for VIPs too; the countries sent are the default ones, kept as "default".
    form = {"year": "2027", "enabled": "on", "title": "Prime Day", "on_date": "2027-07-08",
            "countries": "US, CA, GB, DE, AT, FR, ES, IT, NL, BE, JP, BR, MX, AU", "segments": ["growth", "vip"],
            "discount_percent": "", "action": "save"}
    assert _post(client, token, "/admin/calendar/prime_day", form, store=a.store_id).status_code == 200
    row = _edits(app, a.store_id)["prime_day"]
    assert (row.on_date, row.segments, row.countries, row.discount_percent, row.enabled, row.title) == (
        date(2027, 7, 8), ["growth", "vip"], None, None, True, None)
    html = _get(client, token, "/admin/calendar", store=a.store_id, year=2027).get_data(as_text=True)
    assert 'datetime="2027-07-08"' in _row(html, "US")
    # Christmas off (the box unticked).
    off = {"year": "2026", "title": "Christmas", "on_date": "2026-12-25", "countries": "US", "segments": ["growth"],
           "action": "save"}
    assert _post(client, token, "/admin/calendar/christmas", off, store=a.store_id).status_code == 200
    row = _edits(app, a.store_id)["christmas"]
    assert (row.enabled, row.countries, row.on_date) == (False, ["US"], None)
    html = _get(client, token, "/admin/calendar", store=a.store_id, year=2026).get_data(as_text=True)
    assert "Christmas" in _row(html, "US") and "Christmas" not in _row(html, "GB")
    # Reset: the shipped Christmas again.
    assert _post(client, token, "/admin/calendar/christmas", {"action": "reset"}, store=a.store_id).status_code == 200
    assert "christmas" not in _edits(app, a.store_id)

    # The merchant's own event, every year.
    own = {"year": "2026", "title": "Store anniversary", "on_date": "2026-09-03", "yearly": "on",
           "countries": "us, ca", "segments": ["growth", "active"], "discount_percent": "20"}
    assert _post(client, token, "/admin/calendar", own, store=a.store_id).status_code == 200
    row = _edits(app, a.store_id)["custom_store_anniversary"]
    assert (row.title, row.on_date, row.yearly, row.countries, row.segments, row.discount_percent) == (
        "Store anniversary", date(2026, 9, 3), True, ["US", "CA"], ["growth", "active"], 20)
    html = _get(client, token, "/admin/calendar", store=a.store_id, year=2027).get_data(as_text=True)
    assert "Store anniversary" in _row(html, "CA") and 'datetime="2027-09-03"' in _row(html, "CA")
    assert _post(client, token, "/admin/calendar", own, store=a.store_id).status_code == 400  # twice

    # Refused, nothing changed: a country that is no code, an unknown segment, an unknown event.
    bad = {**form, "countries": "US, Japan"}
    assert _post(client, token, "/admin/calendar/prime_day", bad, store=a.store_id).status_code == 400
    assert _post(client, token, "/admin/calendar/prime_day", {**form, "segments": ["whales"]},
                 store=a.store_id).status_code == 400
    assert _post(client, token, "/admin/calendar/custom_nothing", form, store=a.store_id).status_code == 404
    assert _edits(app, a.store_id)["prime_day"].countries is None
    # Another merchant's calendar holds none of this.
    assert _edits(app, b.store_id) == {}


def test_the_flow_is_on_the_flows_page_with_its_settings(client, tenants, token):
    a, _ = tenants
    page = _get(client, token, "/admin/flows", store=a.store_id).get_data(as_text=True)
    assert "Shopping calendar" in page and "/admin/calendar" in page
    detail = _get(client, token, "/admin/flows/shopping_calendar", store=a.store_id).get_data(as_text=True)
    for name in ("lead_days", "send_time", "discount_percent", "code_valid_days", "holdout_percent"):
        assert f'name="{name}"' in detail
