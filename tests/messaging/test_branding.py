"""What the law and the merchant's brand ask of every email, checked on what the real SMTP server received.

CAN-SPAM: every marketing email carries the sender's postal address (text and HTML); a store without one sends no
marketing (recorded as ``no_postal_address``, also at the last check) while its other email still goes. The
merchant's logo, accent colour and footer line, and the product's image with its alt text, are in the email.
"""

from __future__ import annotations

import html
import re
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser

from sqlalchemy import select

from jobs.dispatch import dispatch_due
from plugin.context import JobContext
from plugin.db import Database
from plugin.messaging import reasons
from plugin.models import Merchant, Message, Product, Store
from plugin.secrets_store import set_credential
from sandbox.shopify import mint_session_token
from sandbox.smtp import SmtpSandbox
from tests.conftest import TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW

REFILL = {"product_title": "Soap 1-0", "quantity": 2, "run_out_at": "2026-03-10T00:00:00+00:00"}
LOGO = "https://cdn.shopify.com/s/files/1/0000/0001/files/calm-soaps-logo.png"
IMAGE = "https://cdn.shopify.com/s/files/1/0000/0001/files/soap-1-0.jpg"


def _parts(received) -> tuple[EmailMessage, str, str]:
    parsed = BytesParser(policy=email_policy.default).parsebytes(received.raw)
    text = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    return parsed, text, parsed.get_body(("html",)).get_content()


def _element_text(page: str, css_class: str) -> list[str]:
    """Return the text of every <p> of a class in the received HTML (the inliner added style attributes)."""
    return [html.unescape(t) for t in re.findall(rf'<p class="{css_class}"[^>]*>(.*?)</p>', page, re.S)]


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "img":
            self.found.append(dict(attrs))


def _all_images(page: str) -> list[dict[str, str | None]]:
    parser = _Images()
    parser.feed(page)
    return parser.found


def _images(page: str, css_class: str = "product-image") -> list[tuple[str | None, str | None]]:
    """Return (src, alt) of every image of a class in the received HTML."""
    return [(a.get("src"), a.get("alt")) for a in _all_images(page) if a.get("class") == css_class]


def _replenishment(s, store, customer, order) -> int:
    product = s.scalar(select(Product).where(Product.store_id == store.id, Product.title == "Soap 1-0"))
    product.image_url, product.image_alt = IMAGE, "A bar of lavender soap on a slate"
    return seed.message(s, store, customer, flow="replenishment", marketing=True, when=IN_WINDOW,
                        product_id=product.id, payload=dict(REFILL), key="refill-1").id


def test_marketing_email_carries_postal_address_brand_and_product_image(ctx: JobContext, smtp: SmtpSandbox) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)
        merchant = s.get(Merchant, store.merchant_id)
        merchant.logo_url, merchant.accent_color = LOGO, "#0f766e"
        merchant.email_footer = "Handmade in Leeds since 2012 <3 & more"
        customer = seed.customer(s, store, 1)
        order = seed.order(s, store, customer, 1)
        message_id = _replenishment(s, store, customer, order)
    assert dispatch_due(ctx) == {"sent": 1}

    [received] = smtp.messages
    parsed, text, page = _parts(received)
    assert str(parsed["Subject"]) == "Running low on Soap 1-0?"
    # The text part ends with the footer: reason, unsubscribe link, footer line, postal address.
    footer = text.rstrip().rsplit("--\n", 1)[1].split("\n")
    assert footer[0] == "You are receiving this email because you bought from Calm Soaps."
    assert footer[1].startswith("Unsubscribe: https://aftercare.test/u/")
    assert footer[2:] == ["Handmade in Leeds since 2012 <3 & more",
                          "Calm Soaps Ltd, 4 Mill Lane, Leeds LS1 4AB, United Kingdom"]
    assert _element_text(page, "postal-address") == ["Calm Soaps Ltd, 4 Mill Lane, Leeds LS1 4AB, United Kingdom"]
    # Merchant text is escaped in the HTML part, never markup.
    assert _element_text(page, "footer-line") == ["Handmade in Leeds since 2012 <3 & more"]
    assert "since 2012 &lt;3 &amp; more</p>" in page
    assert [(a.get("src"), a.get("alt")) for a in _all_images(page)][:1] == [(LOGO, "Calm Soaps")]
    # The accent colour is the button's background, its text the more readable of white and near-black.
    button = re.search(r'<a class="button" href="[^"]+" style="([^"]+)">Reorder Soap 1-0</a>', page)
    assert button is not None
    assert "background-color: #0f766e;" in button.group(1) and "color: #ffffff;" in button.group(1)
    assert _images(page) == [(IMAGE, "A bar of lavender soap on a slate")]
    # Dark-mode safe: the client is told both schemes work, and the dark rules survive the inliner.
    assert '<meta name="color-scheme" content="light dark">' in page
    assert "@media (prefers-color-scheme: dark)" in page
    with ctx.database.session() as s:
        assert s.get(Message, message_id).status == "sent"


def test_review_request_shows_each_product_image_with_alt_text(ctx: JobContext, smtp: SmtpSandbox) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)
        customer = seed.customer(s, store, 1)
        order = seed.order(s, store, customer, 1, products=2)
        first, second = s.scalars(select(Product).where(Product.store_id == store.id).order_by(Product.id)).all()
        first.image_url, first.image_alt = IMAGE, "A bar of lavender soap on a slate"
        # No alt text of its own: the title describes it. A plain-http image is never shown.
        second.image_url, second.image_alt = "https://cdn.shopify.com/s/files/soap-1-1.jpg", None
        seed.message(s, store, customer, when=IN_WINDOW, order_row=order)
        other = seed.customer(s, store, 2)
        other_order = seed.order(s, store, other, 2)
        s.scalar(select(Product).where(Product.title == "Soap 2-0")).image_url = "http://insecure.example/p.jpg"
        seed.message(s, store, other, when=IN_WINDOW, order_row=other_order)
    assert dispatch_due(ctx) == {"sent": 2}

    pages = {m.envelope_to[0]: _parts(m)[2] for m in smtp.messages}
    assert _images(pages["c1@example.com"]) == [
        (IMAGE, "A bar of lavender soap on a slate"), ("https://cdn.shopify.com/s/files/soap-1-1.jpg", "Soap 1-1")]
    assert "<img" not in pages["c2@example.com"]


def test_store_without_postal_address_skips_marketing_and_sends_the_rest(ctx: JobContext, smtp: SmtpSandbox) -> None:
    with ctx.database.session() as s:
        store = seed.store(s, postal_address=None)
        customer = seed.customer(s, store, 1)
        order = seed.order(s, store, customer, 1)
        refill_id = _replenishment(s, store, customer, order)
        review_id = seed.message(s, store, customer, when=IN_WINDOW, order_row=order).id
    assert dispatch_due(ctx) == {"sent": 1, "skipped": 1, "skipped:no_postal_address": 1}

    with ctx.database.session() as s:
        refill, review = s.get(Message, refill_id), s.get(Message, review_id)
        assert (refill.status, refill.skip_reason) == ("skipped", "no_postal_address")
        assert (review.status, review.skip_reason) == ("sent", None)
    [received] = smtp.messages
    parsed, text, page = _parts(received)
    assert str(parsed["Subject"]) == "How do you like your order from Calm Soaps?"
    assert _element_text(page, "postal-address") == []
    footer = text.rstrip().rsplit("--\n", 1)[1].split("\n")
    assert len(footer) == 2 and footer[1].startswith("Unsubscribe: https://aftercare.test/u/")
    assert reasons.label("no_postal_address", "de").startswith("Der Shop hat keine Postanschrift")


def test_address_removed_before_the_hand_over_stops_marketing(app, client, clock, smtp: SmtpSandbox) -> None:
    """The merchant clears the address in the admin while the claimed reminder's connection opens (EHLO)."""
    clock.set(IN_WINDOW)
    database: Database = app.extensions["aftercare.db"]
    with database.session() as s:
        store = seed.store(s)
        set_credential(store, app.extensions["aftercare.vault"], "access_token_enc", "shpat_branding_test")
        customer = seed.customer(s, store, 1)
        order = seed.order(s, store, customer, 1)
        message_id = _replenishment(s, store, customer, order)
        store_id = store.id
    cleared: list[int] = []

    def clear_address() -> None:
        token = mint_session_token(seed.SHOP, TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, clock.now())
        answer = client.post(f"/admin/settings/stores/{store_id}/address", data={"postal_address": ""},
                             headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        cleared.append(answer.status_code)

    smtp.on("ehlo", clear_address)
    base = JobContext.from_app(app)
    # Its own engine: the admin's request commits on the app's, as a second process would.
    ctx = JobContext(config=base.config, database=Database(base.config.database_url), vault=base.vault,
                     clock=base.clock, sleep=lambda _s: None,
                     extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}", "base_url": "https://aftercare.test"})
    try:
        counts = dispatch_due(ctx)
    finally:
        ctx.database.dispose()
    assert cleared == [200]
    assert smtp.messages == []
    assert counts == {"withheld": 1, "withheld:no_postal_address": 1}
    with database.session() as s:
        message = s.get(Message, message_id)
        assert (message.status, message.skip_reason) == ("skipped", "no_postal_address")
        assert s.get(Store, store_id).postal_address is None
