"""Settings for what every email carries: the postal address (with a banner while a store has none) and the
merchant's brand (logo, accent colour, footer line) with its preview; bad values are refused, naming the field."""

from __future__ import annotations

from html.parser import HTMLParser

from plugin.models import Merchant, Store
from tests.admin.seed import SHOP_A, SHOP_B

BANNER = 'data-banner="no-postal-address"'
LOGO = "https://cdn.shopify.com/s/files/1/0000/0001/files/alpha-logo.png"


def _get(client, token, path, shop=SHOP_A):
    return client.get(path, headers={"Authorization": f"Bearer {token(shop)}"})


def _post(client, token, path, data, shop=SHOP_A):
    return client.post(path, data=data, headers={"Authorization": f"Bearer {token(shop)}",
                                                 "Accept": "application/json"})


def _session(app):
    return app.extensions["aftercare.db"].session()


class _Page(HTMLParser):
    """Collect the brand preview's srcdoc, and in an email the images and the footer paragraphs."""

    def __init__(self) -> None:
        super().__init__()
        self.srcdoc: str | None = None
        self.images: list[tuple[str | None, str | None]] = []
        self.paragraphs: dict[str, list[str]] = {}
        self.buttons: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        if tag == "iframe" and a.get("id") == "brand-preview-frame":
            self.srcdoc = a.get("srcdoc")
        if tag == "img":
            self.images.append((a.get("src"), a.get("alt")))
        if tag == "p" and a.get("class"):
            self._open = a["class"]
            self.paragraphs.setdefault(self._open, []).append("")
        if tag == "a" and a.get("class") == "button":
            self.buttons.append(a.get("style") or "")

    def handle_data(self, data) -> None:
        if self._open:
            self.paragraphs[self._open][-1] += data

    def handle_endtag(self, tag) -> None:
        if tag == "p":
            self._open = None


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_the_banner_shows_while_a_store_has_no_postal_address(client, tenants, token, app) -> None:
    a, b = tenants
    assert BANNER not in _get(client, token, "/admin/").get_data(as_text=True)
    with _session(app) as s:
        s.get(Store, a.store_id).postal_address = None
    for path in ("/admin/", "/admin/settings", "/admin/flows"):
        page = _get(client, token, path).get_data(as_text=True)
        # Once, for the Shopify store; the Amazon store (no address either) sends no marketing at all.
        assert page.count(BANNER) == 1, path
        assert "Marketing emails are paused for Alpha-Store:" in page
    assert BANNER not in _get(client, token, "/admin/", shop=SHOP_B).get_data(as_text=True)

    saved = _post(client, token, f"/admin/settings/stores/{a.store_id}/address",
                  {"postal_address": "Alpha Goods\r\n1 Dock Street\r\nHull HU1 1AA\r\nUnited Kingdom"})
    assert saved.status_code == 200
    with _session(app) as s:
        store = s.get(Store, a.store_id)
        assert (store.postal_address, store.postal_address_edited) == (
            "Alpha Goods, 1 Dock Street, Hull HU1 1AA, United Kingdom", True)
    assert BANNER not in _get(client, token, "/admin/").get_data(as_text=True)


def test_a_postal_address_is_refused_or_cleared_with_words(client, tenants, token, app) -> None:
    a, _ = tenants
    refused = _post(client, token, f"/admin/settings/stores/{a.store_id}/address", {"postal_address": "Hull"})
    assert refused.status_code == 400
    assert refused.get_json() == {"error": "The postal address was not saved: Postal address needs a street or PO "
                                           "box, a town and a country (one per line, or separated by commas)."}
    with _session(app) as s:
        assert s.get(Store, a.store_id).postal_address == "100 Main Street, Springfield IL 62701, United States"
    cleared = _post(client, token, f"/admin/settings/stores/{a.store_id}/address", {"postal_address": "  "})
    assert cleared.status_code == 200
    with _session(app) as s:
        store = s.get(Store, a.store_id)
        assert (store.postal_address, store.postal_address_edited) == (None, False)


def test_bad_brand_values_are_refused_naming_the_field_and_change_nothing(client, tenants, token, app) -> None:
    a, _ = tenants
    cases = {
        ("accent_color", "red"): "The brand was not saved: Accent colour must be a hex colour like #1d4ed8 "
                                 "(got 'red').",
        ("accent_color", "#12345"): "The brand was not saved: Accent colour must be a hex colour like #1d4ed8 "
                                    "(got '#12345').",
        ("logo_url", "http://cdn.example.com/logo.png"): "The brand was not saved: Logo URL must be an https:// "
                                                          "address of an image, e.g. https://cdn.shopify.com/logo.png.",
        ("logo_url", "javascript:alert(1)"): "The brand was not saved: Logo URL must be an https:// address of an "
                                             "image, e.g. https://cdn.shopify.com/logo.png.",
        ("logo_url", 'https://cdn.example.com/a.png" onerror="x'): "The brand was not saved: Logo URL may not "
                                                                    "contain spaces, quotes, angle brackets or a "
                                                                    "login.",
    }
    for (field, value), message in cases.items():
        form = {"logo_url": LOGO, "accent_color": "#0f766e", "email_footer": "Hi", field: value}
        answer = _post(client, token, "/admin/settings/brand", form)
        assert (answer.status_code, answer.get_json()) == (400, {"error": message}), (field, value)
        preview = _post(client, token, "/admin/settings/brand/preview", form).get_json()
        assert (preview["ok"], preview["field"]) == (False, field)
    with _session(app) as s:
        merchant = s.get(Merchant, a.merchant_id)
        assert (merchant.logo_url, merchant.accent_color, merchant.email_footer) == (None, None, None)


def test_the_brand_is_saved_and_shown_in_the_preview(client, tenants, token, app) -> None:
    a, _ = tenants
    answer = _post(client, token, "/admin/settings/brand",
                   {"logo_url": f"  {LOGO} ", "accent_color": "#0F766E", "email_footer": "Made in Hull <since 1990>"})
    assert answer.status_code == 200
    with _session(app) as s:
        merchant = s.get(Merchant, a.merchant_id)
        assert (merchant.logo_url, merchant.accent_color, merchant.email_footer) == (
            LOGO, "#0f766e", "Made in Hull <since 1990>")

    settings = _parse(_get(client, token, "/admin/settings").get_data(as_text=True))
    assert settings.srcdoc is not None
    email = _parse(settings.srcdoc)
    assert email.images[0] == (LOGO, "Alpha-Store")
    assert email.paragraphs["footer-line"] == ["Made in Hull <since 1990>"]
    assert email.paragraphs["postal-address"] == ["100 Main Street, Springfield IL 62701, United States"]
    assert "background-color: #0f766e;" in email.buttons[0] and "color: #ffffff;" in email.buttons[0]

    # The live preview renders what is being typed, before it is saved.
    typed = _post(client, token, "/admin/settings/brand/preview",
                  {"logo_url": "", "accent_color": "#fde047", "email_footer": "Typed, not saved"}).get_json()
    assert typed["ok"] is True
    live = _parse(typed["html"])
    assert [src for src, _ in live.images if src == LOGO] == []
    assert live.paragraphs["footer-line"] == ["Typed, not saved"]
    # A light accent gets dark button text (contrast), and links are darkened until they read on white.
    assert "background-color: #fde047;" in live.buttons[0] and "color: #111827;" in live.buttons[0]
    assert "Typed, not saved" in typed["text"]
    with _session(app) as s:
        assert s.get(Merchant, a.merchant_id).email_footer == "Made in Hull <since 1990>"
