"""The growth flows on the admin's Flows page: listed, settings from their declarations (saved and refused like
any flow's), template previews, and the recommendations block refused in a review request's template."""

from __future__ import annotations

from plugin import flow_settings
from tests.admin.test_pages import _get, _post, _session


def test_growth_flows_are_listed_with_their_settings(client, tenants, token, app):
    a, _ = tenants
    page = _get(client, token, "/admin/flows", store=a.store_id).get_data(as_text=True)
    for title in ("Win-back", "VIP welcome and perks", "Birthdays"):
        assert title in page
    detail = _get(client, token, "/admin/flows/winback", store=a.store_id).get_data(as_text=True)
    for name in ("dormant_after_days", "spend_amount", "save_amount", "backfill_daily_cap", "holdout_percent"):
        assert f'name="{name}"' in detail
    form = {"dormant_after_days": "150", "spend_amount": "80", "save_amount": "20", "code_valid_days": "30",
            "reminder_enabled": "on", "reminder_delay_days": "14", "reentry_days": "365", "backfill_daily_cap": "50",
            "recommendations": "3", "holdout_percent": "10", "enabled": "on"}
    assert _post(client, token, "/admin/flows/winback", form, store=a.store_id).status_code == 200
    with _session(app) as s:
        saved = flow_settings.effective(s, app.config["AFTERCARE"], a.store_id, "winback")
    assert (saved["dormant_after_days"], saved["save_amount"], saved["backfill_enabled"]) == (150, 20.0, False)
    assert _post(client, token, "/admin/flows/winback", {**form, "dormant_after_days": "5"},
                 store=a.store_id).status_code == 400
    for flow in ("vip", "birthday"):
        assert _get(client, token, f"/admin/flows/{flow}", store=a.store_id).status_code == 200


def test_previews_offer_the_block_only_to_marketing(client, tenants, token):
    block = "<p>{% for item in recommendations %}{{ item.title }} {% endfor %}</p>"
    data = {"step": "main", "locale": "fr", "subject": "Bonjour", "html": block}
    ok = _post(client, token, "/admin/flows/winback/preview", data).get_json()
    assert ok["ok"] is True and "Rosemary hand cream" in ok["html"]
    refused = _post(client, token, "/admin/flows/review_request/preview", data).get_json()
    assert refused["ok"] is False and "recommendations" in refused["error"]
