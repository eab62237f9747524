"""The Deliveries page: the four views with their tickets, filters, the transit chart with its table, isolation."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from plugin import delivery_estimates
from plugin.flows import delivery_stalls
from plugin.models import Customer, DeliveryProblem, Order, Parcel
from tests.admin.seed import SHOP_B

DAY = timedelta(days=1)


def _get(client, token, **query):
    return client.get("/admin/deliveries", query_string=query, headers={"Authorization": f"Bearer {token()}"})


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _seed(app, store_id, now):
    """One silent UPS parcel, one failed DHL parcel, one late-delivered parcel, history for the chart."""
    with app.extensions["aftercare.db"].session() as s:
        made = {}

        def shipped(name, country, **kw):
            c = Customer(store_id=store_id, external_id=f"gid://shopify/Customer/d{name}", email=f"{name}@x.test",
                         country=country)
            s.add(c)
            s.flush()
            o = Order(store_id=store_id, external_id=f"gid://shopify/Order/d{name}", name=f"#D{name}",
                      customer_id=c.id, created_at_remote=kw["shipped_at"] - DAY, currency="USD",
                      financial_status="PAID", fulfilled_at=kw["shipped_at"], delivered_at=kw.get("delivered_at"))
            s.add(o)
            s.flush()
            p = Parcel(store_id=store_id, order_id=o.id, fulfillment_gid=f"gid://shopify/Fulfillment/d{name}",
                       tracking_number=f"TN{name}", **kw)
            s.add(p)
            s.flush()
            made[name] = p.id

        shipped("silent", "US", tracking_company="UPS", status="IN_TRANSIT", shipped_at=now - 20 * DAY,
                last_event_at=now - 19 * DAY)
        shipped("failed", "DE", tracking_company="DHL", status="FAILURE", shipped_at=now - 5 * DAY,
                last_event_at=now - DAY)
        shipped("late", "FR", tracking_company="DHL", status="DELIVERED", shipped_at=now - 9 * DAY,
                estimated_delivery_at=now - 6 * DAY, delivered_at=now - 4 * DAY, last_event_at=now - 4 * DAY)
        for n in range(3):
            shipped(f"h{n}", "FR", tracking_company="DHL", status="DELIVERED", shipped_at=now - 30 * DAY,
                    delivered_at=now - (30 - 2 - n) * DAY, last_event_at=now - (30 - 2 - n) * DAY)
        delivery_estimates.refresh(s, store_id, now, 180)
        delivery_stalls.run_for_store(s, app.config["AFTERCARE"], store_id, now)
        tickets = {s.get(Parcel, pid).tracking_number: tid for pid, tid in s.execute(
            select(DeliveryProblem.parcel_id, DeliveryProblem.ticket_id))}
    return made, tickets


def test_views_show_each_delivery_with_its_ticket_and_filters_narrow_them(client, tenants, token, app, clock):
    a, _ = tenants
    now = clock.now()
    _, tickets = _seed(app, a.store_id, now)
    stalled = _get(client, token, view="stalled", store=a.store_id)
    assert stalled.status_code == 200
    html = stalled.get_data(as_text=True)
    rows = re.findall(r'<s-table-row data-problem="([a-z_]+)">(.*?)</s-table-row>', html, re.S)
    # The silent parcel: no scan (3 business days) and lost (10), both tickets linked; the failure is not here.
    assert sorted(kind for kind, _ in rows) == ["lost", "no_scan"]
    assert all("TNsilent" in body for _, body in rows)
    assert f"/admin/tickets/{tickets['TNsilent']}" in html
    exceptions = _get(client, token, view="exceptions", store=a.store_id).get_data(as_text=True)
    assert re.findall(r'<s-table-row data-problem="([a-z_]+)">', exceptions) == ["failed"]
    assert f"/admin/tickets/{tickets['TNfailed']}" in exceptions
    assert re.findall(r'<s-table-row data-problem', _get(client, token, view="exceptions", carrier="UPS",
                                                store=a.store_id).get_data(as_text=True)) == []
    transit = _text(_get(client, token, view="in_transit", store=a.store_id).get_data(as_text=True))
    assert "TNsilent" in transit and "TNfailed" not in transit and "TNlate" not in transit
    assert "TNsilent" not in _text(_get(client, token, view="in_transit", country="DE",
                                        store=a.store_id).get_data(as_text=True))
    late = _text(_get(client, token, view="late", store=a.store_id).get_data(as_text=True))
    assert "TNlate" in late and "TNsilent" not in late and "TNh0" not in late
    assert _get(client, token, view="nonsense", store=a.store_id).status_code == 400


def test_transit_chart_has_a_text_alternative_and_other_merchants_see_nothing(client, tenants, token, app, clock):
    a, _ = tenants
    now = clock.now()
    _seed(app, a.store_id, now)
    html = _get(client, token, view="stalled", store=a.store_id).get_data(as_text=True)
    assert 'role="img"' in html and "Median transit days by destination country and carrier" in html
    table = html[html.index('id="transit-table"'):]
    table = table[:table.index("</s-table>")]
    # FR · DHL: transit 2, 3, 4 days and the late parcel's 5 -> median (nearest rank 2 of 4) 3.0, 90th 5.0.
    assert re.search(r"FR</s-table-cell><s-table-cell>DHL</s-table-cell><s-table-cell>3.0</s-table-cell>"
                     r"<s-table-cell>5.0</s-table-cell><s-table-cell>4</s-table-cell>", table)
    other = client.get("/admin/deliveries", query_string={"view": "stalled"},
                       headers={"Authorization": f"Bearer {token(SHOP_B)}"}).get_data(as_text=True)
    assert "TNsilent" not in other and "transit-table" not in other
