"""The admin lists the records a sync could not read, per store, with the reason; the settings page counts them."""

from __future__ import annotations

import re
from datetime import timedelta

from plugin.sync.rejections import clear_read, note_rejected
from tests.admin.seed import SHOP_B


def _rows(html: str) -> list[str]:
    return re.findall(r"<s-table-row>\s*<s-table-cell><span class=\"muted small\">.*?</s-table-row>", html, flags=re.S)


def test_unreadable_records_are_listed_with_their_reasons_for_their_own_merchant_only(app, tenants, token, clock):
    a, b = tenants
    database = app.extensions["aftercare.db"]
    first = clock.now()
    with database.session() as session:
        note_rejected(session, a.amazon_store_id, "amazon_orders",
                      [("111-0000001-0000001", "proceeds.grandTotal.amount '12,99' is not a decimal amount")], first)
        note_rejected(session, a.amazon_store_id, "amazon_orders",
                      [("111-0000001-0000001", "proceeds.grandTotal.amount '12,99' is not a decimal amount"),
                       ("111-0000002-0000002", "orderItems.product.price.unitPrice.amount 'abc' is not a decimal "
                                               "amount")], first + timedelta(hours=1))
        note_rejected(session, b.store_id, "amazon_orders", [("999-B", "merchant B's own problem")], first)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token()}"}
    html = client.get("/admin/sync/rejected", headers=auth).get_data(as_text=True)
    rows = _rows(html)
    assert len(rows) == 2
    # Newest note first: the second order was first noted in the later run; the first was seen twice.
    assert "111-0000002-0000002" in rows[0] and "unitPrice.amount &#39;abc&#39; is not a decimal amount" in rows[0]
    assert re.search(r"<s-table-cell>1</s-table-cell>\s*</s-table-row>$", rows[0])
    assert "111-0000001-0000001" in rows[1] and "&#39;12,99&#39; is not a decimal amount" in rows[1]
    assert re.search(r"<s-table-cell>2</s-table-cell>\s*</s-table-row>$", rows[1])
    assert "Amazon order" in rows[0] and "999-B" not in html and "merchant B" not in html
    assert "2 unreadable in" in html
    settings = client.get("/admin/settings", headers=auth).get_data(as_text=True)
    assert "2 records from the marketplaces could not be read." in settings
    # Merchant B sees only its own note; a store with none says every record was read.
    html_b = client.get("/admin/sync/rejected", headers={"Authorization": f"Bearer {token(SHOP_B)}"}).get_data(
        as_text=True)
    assert len(_rows(html_b)) == 1 and "999-B" in html_b and "111-0000001" not in html_b
    with database.session() as session:
        clear_read(session, b.store_id, "amazon_orders", ["999-B"])
    html_b = client.get("/admin/sync/rejected", headers={"Authorization": f"Bearer {token(SHOP_B)}"}).get_data(
        as_text=True)
    assert _rows(html_b) == [] and "Every record the marketplaces sent was read." in html_b
    assert client.get("/admin/sync/rejected?before=x", headers=auth).status_code == 400
