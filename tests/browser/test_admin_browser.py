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
from playwright.sync_api import Frame, Page, expect
from sqlalchemy import select

from base.clock import FrozenClock
from jobs.analytics import snapshot_metrics
from jobs.dispatch import dispatch_due
from plugin import create_app, flow_settings
from plugin.admin.standalone import create_admin_user
from plugin.context import JobContext
from plugin.flows import runner
from plugin.guides import new_from_starter, starter_texts
from plugin.models import AdminUser, Review, Store, Ticket
from plugin.secrets_store import set_credential
from plugin.sync.judgeme_run import sync_judgeme_reviews
from plugin.sync.store_run import sync_store
from sandbox.judgeme import JudgemeSandbox
from sandbox.server import ServerThread
from sandbox.shopify import ShopifySandbox, mint_session_token
from sandbox.shopify.admin_frame import AdminFrame
from sandbox.smtp import SmtpSandbox
from tests.admin.seed import SHOP_B, seed_tenant
from tests.browser.support import WAIT_CEILING_SECONDS, serious_violations, shot
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
                               ("05-tickets", "Tickets", "Tickets"), ("06-deliveries", "Deliveries", "Deliveries"),
                               ("07-messages", "Messages", "Message log"),
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
        if tab == "Tickets" and page.locator("s-table s-link").count():
            page.locator("s-table s-link[href*='/admin/tickets/']").first.click()
            page.wait_for_url(re.compile(r"/admin/tickets/\d+\?"))
            expect(page.locator("[data-sla-remaining]")).to_have_text(re.compile(r"left|Overdue"))
            shot(page, "06-ticket")
        if tab == "Customers":
            page.locator("s-table s-link").first.click()
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


# -- App Home: the app inside the sandbox's Shopify admin, every page, standalone, Arabic ------------------------

SECTIONS = [("Flows", "Flows"), ("Reviews", "Reviews"), ("Tickets", "Tickets"), ("Deliveries", "Deliveries"),
            ("Messages", "Message log"), ("Customers", "Customers"), ("Settings", "Settings")]


def frame_url(env: Env, path: str = "") -> str:
    """Return the sandbox admin's page that opens the app embedded (at ``/admin/<path>`` of the app)."""
    return f"{env.shopify.url}/admin/apps/{TEST_SHOPIFY_API_KEY}/{path}"


def app_frame(env: Env, page: Page) -> Frame:
    """Return the app's frame inside the admin page."""
    return next(f for f in page.frames if f.url.startswith(env.server.url))


def check_page(target: Page | Frame, name: str, shot_page: Page) -> None:
    """The page passes axe-core without a serious or critical violation, and is screenshotted."""
    assert serious_violations(target) == [], name
    shot(shot_page, name)


def test_in_the_admin_frame_every_page_is_reached_from_the_sidebar(env: Env, page: Page):
    env.clock.set(datetime.now(UTC).replace(microsecond=0))
    page.goto(frame_url(env))
    title = page.locator("#title-bar-heading")
    expect(title).to_have_text("Overview")
    app = page.frame_locator("#app-frame")
    expect(app.locator(".metric-value").first).to_be_visible()
    # App Bridge draws navigation and title bar; the app's own tab bar and heading stay out of sight.
    expect(app.get_by_role("navigation", name="Sections")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Aftercare").get_by_role("link")).to_have_text(
        [label for label, _ in SECTIONS])
    assert "id_token" not in app_frame(env, page).url
    check_page(app_frame(env, page), "embedded-01-overview", page)
    # The title bar's primary action is the page's s-button: clicking it in the admin runs it in the app.
    page.locator("#title-bar-actions").get_by_role("button", name="Manage flows").click()
    expect(title).to_have_text("Flows")
    sidebar = page.get_by_role("navigation", name="Aftercare")
    for number, (label, heading) in enumerate(SECTIONS, start=2):
        sidebar.get_by_role("link", name=label).click()
        expect(title).to_have_text(heading)
        expect(app.get_by_role("heading", name=heading, exact=True)).to_be_attached()
        expect(sidebar.get_by_role("link", name=label)).to_have_attribute("aria-current", "page")
        check_page(app_frame(env, page), f"embedded-{number:02d}-{label.lower()}", page)
        if label == "Flows":
            page.locator("#title-bar-actions").get_by_role("button", name="Lift report").click()
            expect(title).to_have_text("Flow lift")
            check_page(app_frame(env, page), "embedded-02b-flow-lift", page)
            page.locator("#title-bar-breadcrumb").get_by_role("button", name="Flows").click()
            app.get_by_role("link", name="Review requests").click()
            expect(title).to_have_text("Review requests")
            check_page(app_frame(env, page), "embedded-02c-flow-detail", page)
        if label == "Tickets":
            app.locator("s-table a, s-table s-link").first.click()
            expect(title).to_have_text(re.compile(r"^#\d+ "))
            check_page(app_frame(env, page), "embedded-04b-ticket", page)
        if label == "Customers":
            app.locator("s-table s-link").first.click()
            expect(app.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
            expect(page.locator("#title-bar-breadcrumb")).to_have_text("Customers")
            check_page(app_frame(env, page), "embedded-06b-customer", page)
        if label == "Settings":
            app.get_by_role("link", name="Failed webhooks").click()
            expect(title).to_have_text("Failed webhooks")
            check_page(app_frame(env, page), "embedded-07b-webhooks", page)
    # The admin's address bar follows the app's page.
    assert page.url.startswith(frame_url(env, "webhooks"))


def test_in_the_admin_frame_the_save_bar_guards_unsaved_settings_and_a_toast_confirms(env: Env, page: Page):
    env.clock.set(datetime.now(UTC).replace(microsecond=0))
    page.goto(frame_url(env, f"flows/review_request?store={env.store_id}"))
    app = page.frame_locator("#app-frame")
    days = app.get_by_label("Days after delivery")
    title = page.locator("#title-bar-heading")
    expect(title).to_have_text("Review requests")
    saved = days.input_value()
    save_bar = page.get_by_role("region", name="Unsaved changes")
    expect(save_bar).to_be_hidden()
    days.fill("11")
    expect(save_bar).to_be_visible()
    # Leaving asks first; staying keeps the edit.
    page.get_by_role("navigation", name="Aftercare").get_by_role("link", name="Reviews").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Leave page with unsaved changes?")
    shot(page, "embedded-08-leave-confirmation")
    dialog.get_by_role("button", name="Stay").click()
    expect(title).to_have_text("Review requests")
    expect(days).to_have_value("11")
    # Discard puts the form back.
    save_bar.get_by_role("button", name="Discard").click()
    expect(days).to_have_value(saved)
    expect(save_bar).to_be_hidden()
    # Save submits the form; the result is a toast in the admin.
    days.fill("12")
    shot(page, "embedded-09-save-bar")
    save_bar.get_by_role("button", name="Save").click()
    expect(page.locator("#toasts")).to_contain_text("Review requests saved.")
    expect(save_bar).to_be_hidden()
    with env.database.session() as session:
        assert flow_settings.effective(session, env.ctx.config, env.store_id, "review_request")["delay_days"] == 12
    # Leaving with a new edit, confirmed: the page changes and the edit is not saved.
    days.fill("13")
    page.get_by_role("navigation", name="Aftercare").get_by_role("link", name="Reviews").click()
    dialog.get_by_role("button", name="Leave page").click()
    expect(title).to_have_text("Reviews")
    expect(save_bar).to_be_hidden()
    with env.database.session() as session:
        assert flow_settings.effective(session, env.ctx.config, env.store_id, "review_request")["delay_days"] == 12


def tab_sequence(target: Page, presses: int) -> list[str]:
    """Press Tab from the top of the page and return the focused elements' ids (or tag names; ``-`` outside
    the main content), in order."""
    target.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    seen = []
    for _ in range(presses):
        target.keyboard.press("Tab")
        seen.append(target.evaluate(
            "() => { const e = document.activeElement; return e.closest('main') ? e.id || e.localName : '-'; }"))
    return seen


FORM_CONTROLS_JS = """() => Array.from(document.querySelectorAll(
  'main form input:not([type=hidden]), main form select, main form textarea, main form button'))
  .filter((e) => e.getClientRects().length && !e.closest('details:not([open])'))
  .map((e) => e.id || e.localName)"""


def assert_tab_reaches_every_control(tab: Page, presses: int, name: str) -> None:
    """Every visible form control of the page is reached with Tab, in the page's order."""
    controls = tab.evaluate(FORM_CONTROLS_JS)
    reached = tab_sequence(tab, presses)
    assert [c for c in reached if c in controls][:len(controls)] == controls, name


def test_standalone_every_page_from_the_tab_bar_with_keyboard_save_bar_and_toast(env: Env, page: Page):
    env.clock.set(datetime.now(UTC).replace(microsecond=0))
    with env.database.session() as session:
        merchant_id = session.get(Store, env.store_id).merchant_id
        if session.scalar(select(AdminUser).where(AdminUser.email == "owner@browser.example")) is None:
            create_admin_user(session, "owner@browser.example", "a long browser passphrase", merchant_id)
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    try:
        tab.goto(f"{env.server.url}/admin/login")
        check_page(tab, "standalone-00-login", tab)
        # Sign in with the keyboard only.
        tab.keyboard.press("Tab")
        tab.keyboard.type("owner@browser.example")
        tab.keyboard.press("Tab")
        tab.keyboard.type("a long browser passphrase")
        tab.keyboard.press("Enter")
        nav = tab.get_by_role("navigation", name="Sections")
        expect(nav).to_be_visible()
        expect(tab.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
        check_page(tab, "standalone-01-overview", tab)
        for number, (label, heading) in enumerate(SECTIONS, start=2):
            nav.get_by_role("link", name=label).click()
            expect(tab.get_by_role("heading", name=heading, exact=True)).to_be_visible()
            expect(nav.get_by_role("link", name=label)).to_have_attribute("aria-current", "page")
            check_page(tab, f"standalone-{number:02d}-{label.lower()}", tab)
            # Every visible form control is reached with Tab, in the page's order.
            assert_tab_reaches_every_control(tab, 400 if label == "Settings" else 150, label)
        tab.goto(f"{env.server.url}/admin/flows/review_request?store={env.store_id}")
        check_page(tab, "standalone-08-flow-detail", tab)
        assert_tab_reaches_every_control(tab, 60, "flow detail")
        days = tab.get_by_label("Days after delivery")
        days.fill("14")
        save_bar = tab.get_by_role("region", name="Unsaved changes")
        expect(save_bar).to_be_visible()
        shot(tab, "standalone-09-save-bar")
        # Leaving with unsaved changes asks; declining stays.
        tab.once("dialog", lambda d: d.dismiss())
        nav.get_by_role("link", name="Reviews").click()
        expect(days).to_have_value("14")
        save_bar.get_by_role("button", name="Discard").click()
        expect(save_bar).to_be_hidden()
        days.fill("15")
        days.press("Enter")
        expect(tab.get_by_role("status")).to_contain_text("Review requests saved.")
        expect(tab.get_by_label("Days after delivery")).to_have_value("15")
        assert "notice=" not in tab.url
        with env.database.session() as session:
            assert flow_settings.effective(session, env.ctx.config, env.store_id, "review_request")["delay_days"] == 15
        for path, name in ((f"/admin/tickets/{_first_ticket(env)}", "standalone-10-ticket"),
                           ("/admin/flows/lift", "standalone-11-flow-lift"),
                           ("/admin/webhooks/failed", "standalone-12-webhooks")):
            tab.goto(env.server.url + path)
            expect(tab.locator("h1.page-title")).to_be_attached()
            check_page(tab, name, tab)
            assert_tab_reaches_every_control(tab, 60, name)
        tab.goto(f"{env.server.url}/admin/customers")
        tab.locator("s-table s-link").first.click()
        expect(tab.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
        check_page(tab, "standalone-13-customer", tab)
        assert_tab_reaches_every_control(tab, 60, "customer")
    finally:
        context.close()


def _first_ticket(env: Env) -> int:
    with env.database.session() as session:
        return session.scalar(select(Ticket.id).where(Ticket.store_id == env.store_id).order_by(Ticket.id))


def test_in_arabic_the_pages_keep_arabic_text_right_to_left(env: Env, page: Page):
    env.clock.set(datetime.now(UTC).replace(microsecond=0))
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 900}, locale="ar")
    tab = context.new_page()
    try:
        tab.goto(frame_url(env, f"flows/review_request?store={env.store_id}&locale=ar"))
        app = tab.frame_locator("#app-frame")
        expect(app.get_by_label("Subject")).to_have_attribute("dir", "rtl")
        expect(app.frame_locator("#preview-frame").locator("html")).to_have_attribute("dir", "rtl")
        check_page(app_frame(env, tab), "arabic-01-flow-template", tab)
        sidebar = tab.get_by_role("navigation", name="Aftercare")
        for number, (label, heading) in enumerate(SECTIONS, start=2):
            sidebar.get_by_role("link", name=label).click()
            expect(tab.locator("#title-bar-heading")).to_have_text(heading)
            if label == "Messages":
                # Skip reasons in the merchant's language, marked as Arabic and right to left.
                reason = app.locator("s-table-cell.why [lang=ar]").first
                expect(reason).to_have_attribute("dir", "rtl")
            check_page(app_frame(env, tab), f"arabic-{number:02d}-{label.lower()}", tab)
    finally:
        context.close()


def test_guide_editor_previews_the_typing_in_the_chosen_language(env: Env, page: Page):
    page.goto(env.admin_url())  # installs the store on a first load (when this test runs alone)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    with env.database.session() as session:
        store_id = session.scalar(select(Store.id).where(Store.external_id == env.shop))
        block_id = new_from_starter(session, store_id, "coffee").id
    page.goto(env.admin_url(f"/admin/guides/{block_id}?store={store_id}&locale=fr"))
    frame = page.frame_locator("#preview-frame")
    expect(frame.locator("h2")).to_have_text(starter_texts("coffee")["fr"]["title"])
    expect(page.locator("#preview-subject")).to_have_text(re.compile("^Bien utiliser et entretenir votre commande"))
    page.get_by_label("Title (fr)").fill("Conserver vos grains")
    expect(frame.locator("h2")).to_have_text("Conserver vos grains")
    page.get_by_label("Video link (https, all languages)").fill("http://video.test/x")
    expect(page.locator("#preview-error")).to_contain_text("https")
    page.get_by_label("Video link (https, all languages)").fill("https://video.test/x")
    expect(page.locator("#preview-error")).to_be_hidden()
    expect(frame.get_by_role("link", name="Voir la vidéo")).to_have_attribute("href", "https://video.test/x")
    assert serious_violations(page) == []
    shot(page, "guide-editor")
