"""A token for store A never reads or changes store B's data: every admin route is tried with B's ids."""

from __future__ import annotations

from sqlalchemy import func, select

from plugin.models import (
    Customer,
    FlowSettings,
    GuideBlock,
    Merchant,
    Message,
    Review,
    ShoppingEvent,
    Store,
    Suppression,
    Template,
    Ticket,
    TicketNote,
)
from tests.admin.seed import SHOP_A, SHOP_B

PUBLIC = {"admin.static", "admin.login"}
SAMPLE_VALUES = {"flow": "review_request", "kind": "orders", "key": "christmas"}


def _b_ids(b) -> dict[str, int]:
    return {"customer_id": b.customers[0], "ticket_id": b.ticket_id, "review_id": b.draft_review_id,
            "message_id": b.messages["failed"], "store_id": b.store_id, "block_id": b.guide_block_id}


def _give_b_a_guide(app, b) -> None:
    """Give merchant B one usage guide, so the guide routes are tried with B's block id."""
    with app.extensions["aftercare.db"].session() as s:
        guide = GuideBlock(store_id=b.store_id, name="Soap care", target_kind="product", target=str(b.product_id),
                           texts={"en": {"title": "Caring for your soap", "html": "<p>Keep it dry.</p>"}},
                           image_urls=[], days_after_delivery=2, enabled=True)
        s.add(guide)
        s.flush()
        b.guide_block_id = guide.id


def _snapshot(app, b) -> dict:
    """Everything of merchant B a request could change."""
    with app.extensions["aftercare.db"].session() as s:
        merchant = s.get(Merchant, b.merchant_id)
        store = s.get(Store, b.store_id)
        return {
            "merchant": (merchant.cac, merchant.sender_email, merchant.alert_email, dict(merchant.settings or {}),
                         merchant.logo_url, merchant.accent_color, merchant.email_footer),
            "store": (store.timezone, store.country, store.status, store.postal_address, store.postal_address_edited),
            "customers": sorted(s.execute(select(Customer.id, Customer.email, Customer.redacted_at)
                                          .where(Customer.store_id == b.store_id)).all()),
            "messages": s.scalar(select(func.count()).where(Message.store_id == b.store_id)),
            "reviews": sorted(s.execute(select(Review.id, Review.reply_status, Review.reply_body)
                                        .where(Review.store_id == b.store_id)).all()),
            "tickets": sorted(s.execute(select(Ticket.id, Ticket.status).where(Ticket.store_id == b.store_id)).all()),
            "notes": s.scalar(select(func.count()).select_from(TicketNote).join(Ticket)
                              .where(Ticket.store_id == b.store_id)),
            "suppressions": sorted(s.execute(select(Suppression.email, Suppression.reason)
                                             .where(Suppression.store_id == b.store_id)).all()),
            "flow_settings": s.scalar(select(func.count()).where(FlowSettings.store_id == b.store_id)),
            "templates": s.scalar(select(func.count()).where(Template.store_id == b.store_id)),
            "calendar": s.scalar(select(func.count()).where(ShoppingEvent.store_id == b.store_id)),
            "guides": sorted((g.id, g.name, g.target, repr(g.texts), g.enabled)
                             for g in s.scalars(select(GuideBlock).where(GuideBlock.store_id == b.store_id))),
            "stores": s.scalar(select(func.count()).where(Store.merchant_id == b.merchant_id)),
        }


FORM = {"cac": "99", "body": "hijack", "resolution": "hijack", "confirm": "erase", "action": "add",
        "sender_email": "x@evil.example", "timezone": "UTC", "country": "FR", "email": "c0@bravo-store.myshopify.com",
        "subject": "x", "html": "<p>x</p>", "step": "main", "locale": "en", "delay_days": "1",
        "vip_min_spent_12m": "1", "vip_min_orders_12m": "1", "growth_min_order": "1", "growth_max_orders": "1",
        "dormant_after_days": "1", "ramadan_countries": "AE", "postal_address": "1 Hijack Road, Evil Town, Nowhere",
        "logo_url": "https://evil.example/logo.png", "accent_color": "#ff0000", "email_footer": "hijacked",
        "title": "Hijack day", "on_date": "2026-12-01", "countries": "US", "segments": "growth"}


def test_every_route_refuses_another_stores_ids(app, client, tenants, token):
    a, b = tenants
    _give_b_a_guide(app, b)
    before = _snapshot(app, b)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.") and r.endpoint not in PUBLIC]
    assert len(rules) >= 25
    tried = set()
    for rule in rules:
        ids = _b_ids(b)
        values = {name: ids.get(name, SAMPLE_VALUES.get(name)) for name in rule.arguments}
        assert None not in values.values(), f"no sample value for {rule.rule}"
        with app.test_request_context():
            from flask import url_for

            path = url_for(rule.endpoint, **values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            # With B's object ids, or B's store as the selected store: 404, never B's data.
            query = {} if rule.arguments & set(ids) else {"store": b.store_id}
            answer = client.open(path, method=method, query_string=query, data=FORM if method == "POST" else None,
                                 headers={"Authorization": f"Bearer {token(SHOP_A)}"})
            assert answer.status_code == 404, (method, path, answer.status_code, answer.get_data(as_text=True)[:200])
            tried.add((rule.endpoint, method))
    assert _snapshot(app, b) == before
    # Every admin endpoint except the sign-in and static files was tried.
    expected = {(r.endpoint, m) for r in rules for m in r.methods - {"HEAD", "OPTIONS"}}
    assert tried == expected


def test_combined_view_counts_only_the_merchants_own_stores(client, tenants, token):
    a, b = tenants
    html = client.get("/admin/customers", headers={"Authorization": f"Bearer {token(SHOP_A)}"}).get_data(as_text=True)
    assert SHOP_A in html and SHOP_B not in html
    html_b = client.get("/admin/customers", headers={"Authorization": f"Bearer {token(SHOP_B)}"}).get_data(as_text=True)
    assert SHOP_B in html_b and SHOP_A not in html_b
    # B's token with B's own ids works.
    answer = client.get(f"/admin/tickets/{b.ticket_id}", headers={"Authorization": f"Bearer {token(SHOP_B)}"})
    assert answer.status_code == 200
