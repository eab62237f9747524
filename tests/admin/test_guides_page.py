"""The Guides page: starters in every language, the editor's live preview in the customer's language, sanitised
saving, the marketing notice for a guide holding an offer, the test send, and isolation between merchants."""

from __future__ import annotations

import re

from sqlalchemy import select

from jobs.dispatch import dispatch_due
from plugin.guides import starter_texts
from plugin.messaging import locales
from plugin.models import GuideBlock, Message, ProductCollection
from sandbox.smtp import SmtpSandbox
from tests.admin.seed import SHOP_B
from tests.admin.test_pages import _get, _post, _session, _text
from tests.jobs.conftest import make_ctx


def _block_id(answer) -> int:
    return int(re.search(r"/admin/guides/(\d+)", answer.get_json()["redirect"]).group(1))


def test_a_starter_is_edited_previewed_in_the_customer_language_saved_clean_and_test_sent(client, tenants, token, app,
                                                                                          clock, tmp_path):
    a, _ = tenants
    listing = _text(_get(client, token, "/admin/guides").get_data(as_text=True))
    assert "No guides yet" in listing and "Coffee" in listing and "Supplements" in listing
    block_id = _block_id(_post(client, token, "/admin/guides/starter", {"starter": "coffee"}))
    with _session(app) as s:
        block = s.get(GuideBlock, block_id)
        assert (block.store_id, block.target_kind, block.target, block.days_after_delivery, block.enabled) == \
            (a.store_id, "product_type", "Coffee", 2, False)
        assert set(block.texts) == set(locales.SUPPORTED) and block.texts == starter_texts("coffee")

    # The editor in German: the German starter text and the German email around it.
    de = starter_texts("coffee")["de"]
    page = _get(client, token, f"/admin/guides/{block_id}", locale="de").get_data(as_text=True)
    assert de["title"] in page and "So verwenden und pflegen Sie Ihre Bestellung" in page
    assert 'id="template-form"' in page and 'data-preview-url="/admin/guides/preview' in page

    # The live preview of what is being typed, in Japanese; the Arabic one right to left.
    form = {"block_id": str(block_id), "locale": "ja", "target_kind": "product_type", "target_type": "Coffee",
            "days_after_delivery": "3", "title": "豆の保存", "html": "<p>密閉容器で保存してください。</p>",
            "image_urls": "https://cdn.example.test/beans.jpg", "video_url": ""}
    answer = _post(client, token, "/admin/guides/preview", form).get_json()
    assert answer["ok"] is True and answer["marketing"] is False
    assert answer["subject"].endswith("からお届けした商品の使い方とお手入れ")
    assert "密閉容器で保存してください。" in answer["html"]
    assert 'src="https://cdn.example.test/beans.jpg"' in answer["html"]
    ar = starter_texts("coffee")["ar"]
    arabic = _post(client, token, "/admin/guides/preview", {**form, "locale": "ar", **ar}).get_json()
    assert arabic["ok"] and f'<h2 lang="ar" dir="rtl">{ar["title"]}</h2>' in arabic["html"]
    # Emptying a language removes it: the preview falls back to the store's language (English).
    emptied = _post(client, token, "/admin/guides/preview",
                    {**form, "locale": "ar", "title": "", "html": ""}).get_json()
    assert f'<h2 lang="en" dir="ltr">{starter_texts("coffee")["en"]["title"]}</h2>' in emptied["html"]
    offer = _post(client, token, "/admin/guides/preview", {**form, "html": "<p>20% off: use code BEANS</p>"}).get_json()
    assert offer["ok"] is True and offer["marketing"] is True and offer["offers"] == ['"% off"']
    refused = _post(client, token, "/admin/guides/preview", {**form, "video_url": "http://video.test/x"}).get_json()
    assert refused["ok"] is False and "https" in refused["error"]

    # Saving the Japanese text: scripts and handlers are gone, the other languages are kept, the guide is on.
    dirty = '<p onmouseover="steal()">密閉容器で保存<script>alert(1)</script></p>'
    saved = _post(client, token, f"/admin/guides/{block_id}", {**form, "html": dirty, "enabled": "on"})
    assert saved.status_code == 200 and saved.get_json()["message"] == "Guide saved."
    with _session(app) as s:
        block = s.get(GuideBlock, block_id)
        assert block.texts["ja"] == {"title": "豆の保存", "html": "<p>密閉容器で保存</p>"}
        assert block.texts["de"] == de and len(block.texts) == len(locales.SUPPORTED)
        assert (block.enabled, block.days_after_delivery, block.image_urls) == \
            (True, 3, ["https://cdn.example.test/beans.jpg"])
    marketing = _post(client, token, f"/admin/guides/{block_id}", {**form, "html": "<p>Gutschein: BEANS</p>",
                                                                  "locale": "de", "enabled": "on"}).get_json()
    assert "sent as marketing, only to customers who consented" in marketing["message"]
    listing = _text(_get(client, token, "/admin/guides").get_data(as_text=True))
    assert "Marketing" in listing and "3 day(s) after delivery" in listing
    _post(client, token, f"/admin/guides/{block_id}", {**form, "locale": "de", "title": de["title"],
                                                      "html": de["html"], "enabled": "on"})

    # The test send: the guide's email, in the language chosen, to the merchant's alert address.
    queued = _post(client, token, f"/admin/guides/{block_id}/test-send", {"locale": "de"}).get_json()
    assert queued["message"] == "Test email queued to owner@example.com."
    ctx = make_ctx(app.extensions["aftercare.db"], clock, tmp_path)
    with SmtpSandbox() as smtp:
        ctx.extras.update(smtp_url=f"smtp://127.0.0.1:{smtp.port}", base_url="https://aftercare.test")
        assert dispatch_due(ctx)["sent"] == 1
        [mail] = smtp.messages_to("owner@example.com")
    assert mail.message["Subject"].startswith("So verwenden und pflegen Sie Ihre Bestellung")
    html = mail.message.get_body(("html",)).get_content()
    assert f'<h2 lang="de" dir="ltr">{de["title"]}</h2>' in html and "Bewahren Sie die Bohnen luftdicht" in html
    with _session(app) as s:
        [m] = s.scalars(select(Message).where(Message.flow == "test")).all()
        assert (m.status, m.payload["guide_block_id"], m.locale) == ("sent", block_id, "de")


def test_a_product_guide_needs_one_of_the_store_s_products_and_other_merchants_see_nothing(client, tenants, token,
                                                                                          app):
    a, b = tenants
    form = {"locale": "en", "target_kind": "product", "target_product": str(a.product_id), "title": "Use it",
            "html": "<p>Shake well.</p>", "days_after_delivery": "2"}
    block_id = _block_id(_post(client, token, "/admin/guides", form))
    with _session(app) as s:
        block = s.get(GuideBlock, block_id)
        assert (block.target_kind, block.target, block.enabled) == ("product", str(a.product_id), False)
    assert "Product: " in _text(_get(client, token, "/admin/guides").get_data(as_text=True))
    foreign = _post(client, token, "/admin/guides", {**form, "target_product": str(b.product_id)})
    assert foreign.status_code == 400 and "choose one of the store's products" in foreign.get_json()["error"]
    empty = _post(client, token, "/admin/guides", {**form, "title": "", "html": ""})
    assert empty.status_code == 400 and "at least one language" in empty.get_json()["error"]
    # Merchant B cannot open, change, test-send or delete A's guide.
    b_token = lambda: token(SHOP_B)  # noqa: E731
    assert _get(client, b_token, f"/admin/guides/{block_id}").status_code == 404
    assert _post(client, b_token, f"/admin/guides/{block_id}", form).status_code == 404
    assert _post(client, b_token, f"/admin/guides/{block_id}/test-send", {}).status_code == 404
    assert _post(client, b_token, f"/admin/guides/{block_id}/delete", {}).status_code == 404
    assert _post(client, token, f"/admin/guides/{block_id}/delete", {}).status_code == 200
    with _session(app) as s:
        assert s.scalars(select(GuideBlock)).all() == []


def test_a_collection_guide_offers_the_store_s_synced_collections_only(client, tenants, token, app):
    a, b = tenants
    with _session(app) as s:
        # Each store's synced memberships (as plugin.sync.collections writes them); B's collection must not show.
        s.add(ProductCollection(store_id=a.store_id, product_id=a.product_id, collection_external_id="7001",
                                collection_title="Bath Time", collection_handle="bath-time"))
        s.add(ProductCollection(store_id=b.store_id, product_id=b.product_id, collection_external_id="8001",
                                collection_title="B's Secret Range", collection_handle="b-secret"))
    editor = _get(client, token, "/admin/guides/new").get_data(as_text=True)
    assert '<option value="7001" >Bath Time</option>' in editor and "B&#39;s Secret Range" not in editor
    assert '<option value="collection" >A collection</option>' in editor
    form = {"locale": "en", "target_kind": "collection", "target_collection": "7001", "title": "Bath care",
            "html": "<p>Keep the soap dry.</p>", "days_after_delivery": "3", "enabled": "on"}
    block_id = _block_id(_post(client, token, "/admin/guides", form))
    with _session(app) as s:
        block = s.get(GuideBlock, block_id)
        assert (block.store_id, block.target_kind, block.target, block.days_after_delivery, block.enabled) == \
            (a.store_id, "collection", "7001", 3, True)
    assert "Collection: Bath Time" in _text(_get(client, token, "/admin/guides").get_data(as_text=True))
    page = _get(client, token, f"/admin/guides/{block_id}").get_data(as_text=True)
    assert '<option value="7001" selected>Bath Time</option>' in page
    # Another store's collection, or one the store does not have, is refused.
    for other in ("8001", "9999", ""):
        refused = _post(client, token, "/admin/guides", {**form, "target_collection": other})
        assert refused.status_code == 400, other
        assert ("choose one of the store's collections" if other else "Choose which product") in \
            refused.get_json()["error"]
    with _session(app) as s:
        assert [g.id for g in s.scalars(select(GuideBlock))] == [block_id]
    assert _get(client, lambda: token(SHOP_B), f"/admin/guides/{block_id}").status_code == 404
