"""The embedded admin in headless Chromium: installed on first load with a sandbox-minted session token, every
page rendered from synced data and screenshotted, settings and templates edited, a drafted reply approved
and seen arriving at the Judge.me sandbox, and missing, expired or other-store tokens refused.

App Bridge comes from the Shopify sandbox's stand-in (``/__sandbox/app-bridge.js``), so navigation fetches
fresh tokens exactly as in the Shopify admin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy import select

from base.clock import FrozenClock
from jobs.analytics import snapshot_metrics
from jobs.dispatch import dispatch_due
from plugin import create_app, flow_settings
from plugin.context import JobContext
from plugin.flows import runner
from plugin.models import Review, Store, Ticket
from plugin.secrets_store import set_credential
from plugin.sync.judgeme_run import sync_judgeme_reviews
from plugin.sync.store_run import sync_store
from sandbox.judgeme import JudgemeSandbox
from sandbox.server import ServerThread
from sandbox.shopify import ShopifySandbox, mint_session_token
from sandbox.shopify.admin_frame import AdminFrame
from sandbox.smtp import SmtpSandbox
from tests.admin.seed import SHOP_B, seed_tenant
from tests.browser.support import WAIT_CEILING_SECONDS, shot
from tests.conftest import TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, test_settings, wipe

pytestmark = pytest.mark.browser

JUDGEME_TOKEN = "judgeme-browser-test-token"  # noqa: S105 - sandbox credential
SCOPES = ("read_orders", "read_all_orders", "read_customers", "read_products", "write_discounts")


class Env:
    """The sandboxes, our app on loopback HTTP, the shared clock and the browser page."""

    def __init__(self, database_url: str, tmp: Path):
        # A frozen clock at the real time: the page's JS compares token expiry with the browser's clock.
        self.clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
        self.shopify = ShopifySandbox(seed=7, customers=60, orders=260, clock=self.clock)
        self.shop = self.shopify.shop_domains[0]
        # The sandbox behind its "Shopify admin" frame page (/admin/apps/<client id>), as in the demo.
        frame = AdminFrame(self.shopify.wsgi_app, self.shopify, lambda: self.server.url, self.shop)
        self.shopify.server = ServerThread(frame).start()
        store = self.shopify.store
        buyers = store.customers_by_id
        orders = [{"id": o.id, "email": buyers[o.customer_id].email, "name": buyers[o.customer_id].first_name,
                   "customer_id": o.customer_id, "product_ids": sorted({li.product_id for li in o.line_items})}
                  for o in store.orders if o.customer_id]
        self.judgeme = JudgemeSandbox(seed=5, shops={self.shop: JUDGEME_TOKEN}, clock=self.clock,
                                      reviews_per_product=4, orders=orders,
                                      products=[{"id": p.id, "handle": p.handle, "title": p.title}
                                                for p in store.products])
        self.judgeme.start()
        self.smtp = SmtpSandbox().start()
        settings = test_settings(database_url, tmp / "instance",
                                 shopify={"admin_base_url": self.shopify.url,
                                          "app_bridge_url": self.shopify.url + "/__sandbox/app-bridge.js",
                                          # Shopify's CDN is out of reach here: the project's stylesheet styles
                                          # the Polaris elements, as it must whenever the CDN cannot be reached.
                                          "polaris_url": self.shopify.url + "/__sandbox/no-cdn/polaris.js"},
                                 judgeme={"base_url": self.judgeme.url})
        settings["secrets"]["smtp_url"] = f"smtp://127.0.0.1:{self.smtp.port}"
        self.app = create_app(settings, clock=self.clock)
        self.server = ServerThread(self.app).start()
        self.shopify.register_app(TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, SCOPES,
                                  webhook_url=self.server.url + "/webhooks")
        self.database = self.app.extensions["aftercare.db"]
        self.ctx = JobContext.from_app(self.app, sleep=lambda _s: None,
                                       extras={"judgeme_base_url": self.judgeme.url, "base_url": self.server.url})
        self.store_id = 0

    def token(self, shop: str | None = None, ttl: timedelta = timedelta(minutes=1)) -> str:
        """Mint a session token as the Shopify admin would."""
        return mint_session_token(shop or self.shop, TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET,
                                  self.clock.now(), ttl=ttl)

    def admin_url(self, path: str = "/admin/", token: str | None = None) -> str:
        """Return the URL Shopify would frame: shop, host and a session token."""
        sep = "&" if "?" in path else "?"
        return f"{self.server.url}{path}{sep}shop={self.shop}&host=YWRtaW4&id_token={token or self.token()}"

    def fill_with_data(self) -> None:
        """Backfill the store and run the flows once, as the scheduler would."""
        sync_store(self.ctx, self.store_id, full=True)
        with self.database.session() as session:
            set_credential(session.get(Store, self.store_id), self.ctx.vault, "review_app_token_enc", JUDGEME_TOKEN)
        sync_judgeme_reviews(self.ctx, self.store_id)
        runner.run_review_reply(self.ctx, self.store_id)
        runner.run_review_request(self.ctx, self.store_id)
        runner.run_survey(self.ctx, self.store_id)
        snapshot_metrics(self.ctx, self.store_id)

    def stop(self) -> None:
        """Stop every server and wipe the database."""
        self.server.stop()
        self.judgeme.stop()
        self.shopify.stop()
        self.smtp.stop()
        wipe(self.database.engine)
        self.database.dispose()


@pytest.fixture(scope="module")
def env(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One environment for the module (the browser suite must stay fast)."""
    environment = Env(database_url, tmp_path_factory.mktemp("browser"))
    yield environment
    environment.stop()


def test_first_load_installs_the_store_and_every_page_renders(env: Env, page: Page):
    page.goto(env.admin_url())
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    with env.database.session() as session:
        store = session.scalar(select(Store).where(Store.external_id == env.shop))
        assert store is not None and store.status == "active" and store.access_token_enc is not None
        env.store_id = store.id
    env.fill_with_data()
    first_token = env.token()
    page.goto(env.admin_url(token=first_token))
    expect(page.locator(".metric-value").first).to_have_text(re.compile(r"\d+\.\d %"))
    expect(page.locator("svg.chart").first).to_be_visible()
    # Shopify's token came in the URL; the page takes it out of the address bar at once.
    expect(page).to_have_url(re.compile(r"/admin/\?shop=[^&]+&host=YWRtaW4$"))
    shot(page, "01-overview")
    loads: list = []
    page.on("request", lambda r: loads.append(r)
            if r.resource_type in ("document", "fetch") and r.url.startswith(env.server.url) else None)
    for name, tab, heading in [("02-flows", "Flows", "Flows"), ("04-reviews", "Reviews", "Reviews"),
                               ("05-tickets", "Tickets", "Tickets"), ("07-messages", "Messages", "Message log"),
                               ("08-customers", "Customers", "Customers"), ("10-settings", "Settings", "Settings")]:
        path = f"/admin/{tab.lower()}"
        loads.clear()
        page.get_by_role("navigation", name="Sections").get_by_role("link", name=tab).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        # The page was fetched with a fresh token from App Bridge (the sandbox stand-in) in a header, never in
        # a URL (URLs reach logs, history and Referer headers).
        assert [(r.resource_type, r.url.split("?")[0]) for r in loads] == [("fetch", env.server.url + path)]
        expect(page).to_have_url(f"{env.server.url}{path}?shop={env.shop}&host=YWRtaW4")
        bearer = loads[0].all_headers()["authorization"]
        assert bearer.startswith("Bearer ey") and bearer != f"Bearer {first_token}"
        assert "id_token" not in loads[0].url and "id_token" not in page.url
        shot(page, name)
        if tab == "Tickets" and page.locator("table a").count():
            page.locator("table a[href*='/admin/tickets/']").first.click()
            page.wait_for_url(re.compile(r"/admin/tickets/\d+\?"))
            expect(page.locator("[data-sla-remaining]")).to_have_text(re.compile(r"left|Overdue"))
            shot(page, "06-ticket")
        if tab == "Customers":
            page.locator("table a").first.click()
            expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
            shot(page, "09-customer")


def test_flow_setting_persists_across_a_reload(env: Env, page: Page):
    page.goto(env.admin_url(f"/admin/flows/review_request?store={env.store_id}"))
    page.get_by_label("Days after delivery").fill("9")
    page.get_by_label("Flow enabled").uncheck()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Review requests saved.")
    page.reload()
    expect(page.get_by_label("Days after delivery")).to_have_value("9")
    expect(page.get_by_label("Flow enabled")).not_to_be_checked()
    with env.database.session() as session:
        settings = flow_settings.effective(session, env.ctx.config, env.store_id, "review_request")
    assert (settings["delay_days"], settings["enabled"]) == (9, False)


def test_downloads_and_the_back_button_work_without_a_token_in_any_url(env: Env, page: Page):
    env.clock.set(datetime.now(UTC).replace(microsecond=0))
    page.goto(env.admin_url("/admin/messages"))
    expect(page.get_by_role("heading", name="Message log")).to_be_visible()
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Customers CSV").click()
    stamp = env.clock.now().strftime("%Y%m%d")
    assert download.value.suggested_filename == f"aftercare-customers-{stamp}.csv"
    with open(download.value.path(), encoding="utf-8") as csv:
        assert csv.readline().strip() == ("id,store_id,external_id,email,first_name,locale,country,time_zone,"
                                          "marketing_consent,marketing_consent_at,redacted_at")
    page.go_back()
    expect(page.get_by_role("heading", name="Message log")).to_be_visible()
    expect(page).to_have_url(f"{env.server.url}/admin/messages?shop={env.shop}&host=YWRtaW4")


def test_template_preview_follows_the_typing(env: Env, page: Page):
    page.goto(env.admin_url(f"/admin/flows/review_request?store={env.store_id}&locale=de"))
    page.get_by_label("Subject").fill("Wie gefällt Ihnen {{ products[0].title }}, {{ customer.first_name }}?")
    expect(page.locator("#preview-subject")).to_have_text("Wie gefällt Ihnen Lavender soap, Alex?")
    page.get_by_label("Body (HTML)").fill("<p>{{ score }}</p>")
    expect(page.locator("#preview-error")).to_contain_text("may not depend on a score")
    page.get_by_label("Body (HTML)").fill("<p>Danke für Ihre Bestellung {{ order.name }}!</p>")
    expect(page.locator("#preview-error")).to_be_hidden()
    expect(page.frame_locator("#preview-frame").locator("body")).to_contain_text("Danke für Ihre Bestellung #1001!")
    shot(page, "03-flow-template")


def test_brand_preview_follows_the_typing_and_a_missing_address_shows_the_banner(env: Env, page: Page):
    address = "100 Main Street, Suite 4, Springfield IL 62701, United States"
    page.goto(env.admin_url(f"/admin/settings?store={env.store_id}"))
    banner = page.locator('[data-banner="no-postal-address"]')
    # Installed from the sandbox: the shop's billing address is the postal address, so no banner.
    expect(page.locator(f"#pa-{env.store_id}")).to_have_value(address)
    expect(banner).to_have_count(0)
    frame = page.frame_locator("#brand-preview-frame")
    page.get_by_label("Footer line").fill("Roasted in Leeds <since 2012>")
    expect(frame.locator(".footer-line")).to_have_text("Roasted in Leeds <since 2012>")
    page.get_by_label("Accent colour (hex)").fill("teal")
    expect(page.locator("#brand-preview-error")).to_contain_text("Accent colour must be a hex colour like #1d4ed8")
    page.get_by_label("Accent colour (hex)").fill("#0f766e")
    expect(page.locator("#brand-preview-error")).to_be_hidden()
    expect(frame.locator("a.button")).to_have_css("background-color", "rgb(15, 118, 110)")
    expect(frame.locator(".postal-address")).to_have_text(address)
    shot(page, "10b-settings-brand")

    page.locator(f"#pa-{env.store_id}").fill("")
    page.locator(f"#pa-{env.store_id}").locator("xpath=ancestor::form").get_by_role("button").click()
    expect(page.get_by_role("status")).to_contain_text("cleared")
    expect(banner).to_have_count(1)
    expect(banner).to_contain_text("Marketing emails are paused for")
    with env.database.session() as session:
        store = session.get(Store, env.store_id)
        assert store.postal_address is None
        # Back as installed, for the tests after this one.
        store.postal_address = address


def test_approved_reply_arrives_at_judgeme(env: Env, page: Page):
    with env.database.session() as session:
        draft = session.scalar(select(Review).where(Review.store_id == env.store_id, Review.reply_status == "draft")
                               .order_by(Review.id.desc()))
        assert draft is not None, "the seeded Judge.me reviews include 1-3 star ones"
        review_id, external_id = draft.id, draft.external_id
    page.goto(env.admin_url(f"/admin/reviews?status=draft&store={env.store_id}"))
    box = page.locator(f"#reply-{review_id}")
    box.fill("We are sorry — a replacement is on its way today.")
    box.locator("xpath=ancestor::form").get_by_role("button").click()
    expect(page.get_by_role("status")).to_contain_text("Reply approved")
    dispatch_due(env.ctx)
    replies = [r for r in env.judgeme.replies(env.shop) if str(r.review_id) == external_id]
    assert [r.content for r in replies] == ["We are sorry — a replacement is on its way today."]
    with env.database.session() as session:
        assert session.get(Review, review_id).reply_status == "sent"


def test_missing_expired_and_other_store_tokens_are_refused(env: Env, page: Page):
    api = f"{env.server.url}/admin/tickets"
    missing = requests.get(api, headers={"Accept": "application/json"}, timeout=WAIT_CEILING_SECONDS)
    assert (missing.status_code, missing.headers.get("X-Shopify-Retry-Invalid-Session-Request")) == (401, "1")
    expired = env.token(ttl=timedelta(seconds=30))
    env.clock.advance(timedelta(minutes=2))
    answer = requests.get(api, headers={"Authorization": f"Bearer {expired}"}, timeout=WAIT_CEILING_SECONDS)
    assert answer.status_code == 401 and answer.json()["reason"] == "session token expired"
    # A page load with the expired token shows the friendly page, then App Bridge brings a fresh token.
    page.goto(env.admin_url("/admin/tickets", token=expired))
    expect(page.get_by_role("heading", name="Tickets", exact=True)).to_be_visible()
    assert expired not in page.url
    with env.database.session() as session:
        other = seed_tenant(session, env.ctx.vault, env.clock.now(), SHOP_B)
        ticket_of_a = session.scalar(select(Ticket.id).where(Ticket.store_id == env.store_id))
    assert other.store_id != env.store_id
    assert ticket_of_a is not None, "review replies opened tickets for the 1-3 star reviews"
    foreign = requests.get(f"{env.server.url}/admin/tickets/{ticket_of_a}", timeout=WAIT_CEILING_SECONDS,
                           headers={"Authorization": f"Bearer {env.token(SHOP_B)}"})
    assert foreign.status_code == 404
    page.goto(f"{env.server.url}/admin/?shop={env.shop}&host=YWRtaW4")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()  # the bounce fetched a token


def test_without_app_bridge_the_page_still_works_and_warns_at_expiry(env: Env, page: Page):
    page.route("**/__sandbox/app-bridge.js", lambda route: route.abort())
    try:
        env.clock.set(datetime.now(UTC).replace(microsecond=0))
        page.goto(env.admin_url("/admin/customers", token=env.token(ttl=timedelta(minutes=5))))
        expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()
        # Polaris-like look from our own CSS with the system font stack; nothing from a CDN.
        assert "-apple-system" in page.evaluate("getComputedStyle(document.documentElement).fontFamily")
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="Tickets").click()
        expect(page.get_by_role("heading", name="Tickets", exact=True)).to_be_visible()
        # A token the server still accepts (its clock is 10 minutes behind) but whose expiry the browser's
        # clock has passed: the next navigation cannot renew it, so the banner explains how to reload.
        env.clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10))
        page.goto(env.admin_url("/admin/messages", token=env.token(ttl=timedelta(minutes=1))))
        expect(page.get_by_role("heading", name="Message log")).to_be_visible()
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="Reviews").click()
        expect(page.locator("#session-banner")).to_be_visible()
        assert "/admin/messages" in page.url
        shot(page, "11-session-expired")
    finally:
        page.unroute("**/__sandbox/app-bridge.js")


AUDIT_JS = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = (c) => { const f = (v) => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const background = (el) => { for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; }
    return {r: 255, g: 255, b: 255, a: 1}; };
  const problems = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg, iframe, [hidden], [aria-hidden=true], details:not([open]) > :not(summary)')) continue;
    const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    if (!own || style.visibility === 'hidden' || style.display === 'none' || !el.getClientRects().length) continue;
    const fg = parse(style.color), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) problems.push(el.tagName + ' "' + el.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2));
  }
  for (const field of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const labelled = (field.id && document.querySelector('label[for="' + field.id + '"]'))
      || field.getAttribute('aria-label');
    if (!labelled) problems.push('unlabelled ' + field.outerHTML.slice(0, 60));
  }
  return problems;
}"""


def test_pages_meet_contrast_labels_and_keyboard_basics(env: Env, page: Page):
    env.clock.set(datetime.now(UTC).replace(microsecond=0))
    for path in ("/admin/", f"/admin/flows/review_request?store={env.store_id}", "/admin/reviews", "/admin/tickets",
                 "/admin/messages", "/admin/customers", "/admin/settings"):
        page.goto(env.admin_url(path))
        assert page.evaluate(AUDIT_JS) == [], path
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.locator("main, nav, footer").count() >= 3
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"

