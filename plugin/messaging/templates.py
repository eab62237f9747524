"""Email templates: shipped defaults per flow, step and locale; merchant edits in the ``template`` table.

Merchant text is untrusted: it renders in Jinja2's ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``,
so it cannot reach Python internals or mutate what it is given, and a misspelt variable is an error instead of
a silently blank email. The content is wrapped in a layout we own (``lang``/``dir``, the merchant's brand, footer
with the postal address, unsubscribe link, incentive disclosure), CSS is inlined for email clients (the dark-mode
``@media`` rules stay in a ``<style>``: they cannot be inlined), and a plain-text part is derived when the
merchant wrote none. Everything is rendered before any SMTP connection opens, so a failure never sends half an email.
"""

from __future__ import annotations

import functools
import html
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import css_inline
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, meta, pass_context, select_autoescape
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.messaging import locales
from plugin.messaging.branding import Brand
from plugin.models import Template

DEFAULTS_DIR = Path(__file__).parent / "default_templates"

FLOW_STEPS: dict[str, tuple[str, ...]] = {
    "review_request": ("main", "reminder"),
    "survey": ("main",),
    "replenishment": ("main",),
    "winback": ("main", "reminder"),
    "vip": ("main",),
    "birthday": ("main",),
    "shopping_calendar": ("main",),
    "ticket_alert": ("urgent", "main", "opened"),
    "delivery_stalls": ("notice",),
    "first_order": ("main",),
    "cancellation": ("ask", "declined"),
    "ticket_followup": ("followup", "comeback"),
    "usage_guide": ("main",),
    "test": ("main",),
    "delivery_update": ("main",),
}
# The marketing steps (DESIGN §4): only their templates get ``recommendations`` (kept equal to the flows'
# declarations by tests/messaging/test_recommendation_block.py).
MARKETING_STEPS = frozenset({("replenishment", "main"), ("ticket_followup", "comeback"), ("winback", "main"),
                             ("winback", "reminder"), ("vip", "main"), ("birthday", "main"),
                             ("shopping_calendar", "main")})
# Names that make a message an offer or a recommendation: a transactional template may use none of them
# (DESIGN §4: "offers inside: never"). The flow gives no such variable either, so a template naming one is refused
# on save rather than failing at send time.
OFFER_NAMES = frozenset({"discount_code", "discount_percent", "discount_amount", "discount_free_shipping", "offer",
                         "offers", "coupon", "recommendations", "recommended", "products", "product",
                         "subscribe_offer", "subscribe_url", "reorder_url", "shop_url"})
TRANSACTIONAL_FLOWS = frozenset({"delivery_update"})
# Names a review request may never use: asking for reviews must not depend on a score (no review gating).
SCORE_NAMES = frozenset({"score", "score_links", "nps", "csat", "rating", "sentiment", "kind"})
# The only steps whose messages may hold an offer: the marketing steps (DESIGN §4). A test checks this against the
# flow declarations (plugin.flows: the step's class, else the flow's).
OFFER_STEPS = MARKETING_STEPS
# Variables that carry an offer or a recommendation: no template of another step may use them.
STEP_OFFER_NAMES = frozenset({"discount_code", "discount_percent", "discount_amount", "discount_free_shipping",
                              "offer", "reorder_url", "subscribe_offer", "subscribe_url", "recommendations"})
# Words that make a text an offer or a recommendation, in the shipped languages (matched on word starts; CJK and
# Arabic as substrings). Service and transactional mail may hold none (DESIGN §4).
OFFER_WORDS = (
    "% off", "discount", "coupon", "promo code", "promo", "voucher", "special offer", "free shipping", "buy now",
    "shop now", "you may also like", "you might also like", "recommended for you", "we recommend", "bestseller",
    "rabatt", "gutschein", "angebot", "réduction", "remise", "code promo", "offre", "nous recommandons",
    "descuento", "cupón", "oferta", "recomendamos", "sconto", "buono sconto", "offerta", "consigliamo", "desconto",
    "cupom", "割引", "クーポン", "セール", "折扣", "优惠", "優惠",
    "خصم", "قسيمة", "عرض خاص", "ننصح",
)
_NON_SPACED = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
# Arabic words take prefixes and diacritics: a word matches only after a space or at the start.
_ARABIC = re.compile(r"[\u0600-\u06ff]")


# A link written into the text that sends the customer shopping: a recommendation (not in a variable's value).
SHOP_LINK = re.compile(r"""href\s*=\s*["'][^"']*/(?:products|collections|discount)/""", re.IGNORECASE)
# Offer wording and shop product links in a transactional template's own text.
_OFFER_WORDS = re.compile(r"discount|coupon|promo\s*code|% off|/products/|/collections/|/discount/", re.IGNORECASE)


class TemplateRefused(ValueError):
    """A template that cannot be used; the message says why in words a merchant understands."""


@dataclass(frozen=True)
class TemplateSource:
    """The editable parts of one template."""

    subject: str
    html: str
    text: str | None = None


@dataclass(frozen=True)
class RenderedEmail:
    """A fully rendered email, ready for the transport."""

    subject: str
    html: str
    text: str
    locale: str


# -- filters (use the locale of the email being rendered) ---------------------------------------------------
def _loc(ctx: Context) -> Any:
    return locales.babel_locale(ctx.get("locale") or locales.DEFAULT)


@pass_context
def _format_date(ctx: Context, value: date | datetime | None, fmt: str = "long") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        tz = ctx.get("timezone")
        value = value.astimezone(tz).date() if tz else value.date()
    return format_date(value, format=fmt, locale=_loc(ctx))


@pass_context
def _format_datetime(ctx: Context, value: datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return format_datetime(value, format=fmt, tzinfo=ctx.get("timezone"), locale=_loc(ctx))


@pass_context
def _format_money(ctx: Context, amount: Decimal | float | int | None, currency: str | None = None) -> str:
    if amount is None:
        return ""
    return format_currency(amount, currency or ctx.get("currency") or "USD", locale=_loc(ctx))


@pass_context
def _format_number(ctx: Context, value: Decimal | float | int | None) -> str:
    return "" if value is None else format_decimal(value, locale=_loc(ctx))


@pass_context
def _format_percent(ctx: Context, value: Decimal | float | int | None) -> str:
    """Format a percentage given in whole numbers (10 → 10 %)."""
    return "" if value is None else format_percent(Decimal(str(value)) / 100, locale=_loc(ctx))


FILTERS = {"format_date": _format_date, "format_datetime": _format_datetime, "format_money": _format_money,
           "format_number": _format_number, "format_percent": _format_percent}


def _sandbox(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=autoescape, trim_blocks=True,
                                        lstrip_blocks=True)
    env.filters.update(FILTERS)
    return env


_HTML_ENV = _sandbox(autoescape=True)
_TEXT_ENV = _sandbox(autoescape=False)
_LAYOUT_ENV = Environment(loader=FileSystemLoader(str(DEFAULTS_DIR)), autoescape=select_autoescape(["html"]),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_LAYOUT_ENV.filters.update(FILTERS)
# At-rules stay in a <style> block: ``@media (prefers-color-scheme: dark)`` cannot be inlined.
_INLINER = css_inline.CSSInliner(keep_style_tags=False, keep_at_rules=True, load_remote_stylesheets=False)


@functools.lru_cache(maxsize=1024)
def _compile(source: str, as_html: bool) -> Any:
    return (_HTML_ENV if as_html else _TEXT_ENV).from_string(source)


# -- shipped defaults -----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=len(locales.SUPPORTED))
def _catalog(locale: str) -> dict[str, Any]:
    path = DEFAULTS_DIR / f"{locale}.toml"
    with path.open("rb") as fh:
        return tomllib.load(fh)


def ui_strings(locale: str) -> dict[str, str]:
    """Return the interface strings (email footer, public pages) of a locale, English filling any gap."""
    merged = dict(_catalog(locales.DEFAULT)["ui"])
    merged.update(_catalog(locale).get("ui", {}))
    return merged


def event_vars(payload: dict[str, Any], locale: str) -> dict[str, Any]:
    """Return a calendar event's template variables: key, title (the merchant's, else the shipped one in the
    locale) and day; the templates choose their copy by key, so each language says what fits its culture."""
    key = str(payload.get("event_key") or "")
    day = payload.get("event_on")
    title = payload.get("event_title") or ui_strings(locale).get(f"event_{key}") or key.replace("_", " ").title()
    return {"key": key, "title": title, "date": date.fromisoformat(day) if day else None,
            "country": payload.get("country")}


def default_source(flow: str, step: str, locale: str) -> TemplateSource:
    """Return the shipped template of a flow step in a locale (English when that locale lacks it)."""
    if step not in FLOW_STEPS.get(flow, ()):
        raise TemplateRefused(f"unknown template '{flow}/{step}'")
    for candidate in (locale, locales.DEFAULT):
        entry = _catalog(candidate).get(flow, {}).get(step)
        if entry:
            return TemplateSource(subject=entry["subject"], html=entry["html"], text=entry.get("text"))
    raise TemplateRefused(f"no shipped template for '{flow}/{step}'")


def get_source(session: Session, store_id: int, flow: str, step: str, locale: str) -> TemplateSource:
    """Return the store's edited template for this step and locale, else the shipped default."""
    row = session.scalar(select(Template).where(Template.store_id == store_id, Template.flow == flow,
                                                Template.step == step, Template.locale == locale))
    if row is not None:
        return TemplateSource(subject=row.subject, html=row.body_html, text=row.body_text)
    return default_source(flow, step, locale)


# -- rendering ------------------------------------------------------------------------------------------------
def render_email(flow: str, source: TemplateSource, context: dict[str, Any], locale: str,
                 brand: Brand | None = None) -> RenderedEmail:
    """Render subject, HTML (layout + inlined CSS) and text; raise TemplateRefused on any template error.

    The layout carries the brand (logo, accent colour, footer line) and the postal address when the store has
    one; the text part carries the address and footer line too.
    """
    ui = ui_strings(locale)
    ctx = {**context, "locale": locale, "dir": locales.direction(locale)}
    try:
        subject = " ".join(_compile(source.subject, False).render(ctx).split())
        content = Markup(_compile(source.html, True).render(ctx))  # noqa: S704  # sandbox output is escaped
        text_content = _compile(source.text, False).render(ctx) if source.text else html_to_text(content)
    except TemplateError as exc:
        raise TemplateRefused(_explain(exc)) from exc
    if not subject:
        raise TemplateRefused("the subject is empty")
    store_name = (context.get("store") or {}).get("name", "")
    brand = brand or Brand(store_name=store_name)
    disclosure = None
    if flow == "review_request" and context.get("incentive_text"):
        disclosure = ui["incentive_disclosure"].format(incentive=context["incentive_text"])
    footer_reason = ui["footer_reason"].format(store=store_name)
    unsubscribe_url = context.get("unsubscribe_url")
    try:
        page = _LAYOUT_ENV.get_template("layout.html").render(
            locale=locale, dir=locales.direction(locale), subject=subject, content=content, ui=ui,
            disclosure=disclosure, footer_reason=footer_reason, unsubscribe_url=unsubscribe_url, brand=brand,
            store_name=store_name or brand.store_name)
    except TemplateError as exc:
        raise TemplateRefused(_explain(exc)) from exc
    text_parts = [text_content.strip()]
    if disclosure:
        text_parts.append(disclosure)
    footer = [footer_reason]
    if unsubscribe_url:
        footer.append(f"{ui['unsubscribe']}: {unsubscribe_url}")
    footer.extend(line for line in (brand.footer_line, brand.postal_address) if line)
    text_parts.append("--\n" + "\n".join(footer))
    return RenderedEmail(subject=subject, html=_INLINER.inline(page), text="\n\n".join(text_parts) + "\n",
                         locale=locale)


def _explain(exc: TemplateError) -> str:
    """Turn a Jinja2 error into one sentence naming the problem and, when known, the line."""
    where = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
    message = getattr(exc, "message", None) or str(exc)
    undefined = re.match(r"'(\w+)' is undefined", message)
    if undefined:
        return f"unknown variable '{undefined.group(1)}'{where}"
    return f"{message}{where}"


def offer_words(text: str) -> list[str]:
    """Return the offer or recommendation words a text holds (empty when it holds none)."""
    folded = " ".join(html_to_text(text).split()).casefold() if "<" in text else " ".join(text.split()).casefold()
    found = []
    for word in OFFER_WORDS:
        if _NON_SPACED.search(word) or not word[0].isalnum():
            hit = word in folded
        elif _ARABIC.search(word):
            hit = re.search(r"(?<!\S)" + re.escape(word), folded) is not None
        else:
            hit = re.search(r"(?<!\w)" + re.escape(word), folded) is not None
        if hit:
            found.append(word)
    return found


def check_no_offer(flow: str, step: str, *parts: str) -> None:
    """Refuse a template of a step that may hold no offer when it uses an offer variable or offer words."""
    if (flow, step) in OFFER_STEPS:
        return
    used: set[str] = set()
    for part in parts:
        try:
            used |= meta.find_undeclared_variables(_HTML_ENV.parse(part))
        except TemplateError as exc:
            raise TemplateRefused(_explain(exc)) from exc
    names = sorted(used & STEP_OFFER_NAMES)
    words = sorted({w for part in parts for w in offer_words(part)})
    if any(SHOP_LINK.search(part) for part in parts):
        words.append("a link to the shop's products, collections or discounts")
    if names or words:
        what = ", ".join(names + [w if w.startswith("a link") else f'"{w}"' for w in words])
        raise TemplateRefused(f"this email may hold no offer or recommendation ({what}): only marketing emails, "
                              "sent with the customer's consent, may")


def validate_template(flow: str, step: str, subject: str, body_html: str, body_text: str | None = None,
                      locale: str = locales.DEFAULT, brand: Brand | None = None) -> RenderedEmail:
    """Check a merchant's template before it is saved; return the preview, raise TemplateRefused otherwise.

    Refused: unknown steps, errors, a review request that depends on a score, and an offer or recommendation in
    any step but a marketing one (``check_no_offer``).
    """
    if step not in FLOW_STEPS.get(flow, ()):
        raise TemplateRefused(f"unknown template '{flow}/{step}'")
    used: set[str] = set()
    for part in (subject, body_html, body_text or ""):
        try:
            used |= meta.find_undeclared_variables(_HTML_ENV.parse(part))
        except TemplateError as exc:
            raise TemplateRefused(_explain(exc)) from exc
    if flow in TRANSACTIONAL_FLOWS:
        offered = sorted(used & OFFER_NAMES)
        if offered:
            raise TemplateRefused(f"a transactional email may hold no offer or recommendation ({', '.join(offered)})")
        if _OFFER_WORDS.search(" ".join((subject, body_html, body_text or ""))):
            raise TemplateRefused("a transactional email may hold no offer or recommendation (discount, coupon, "
                                  "promo code or product links)")
    check_no_offer(flow, step, subject, body_html, body_text or "")
    if flow == "review_request":
        gated = sorted(used & SCORE_NAMES)
        if gated:
            raise TemplateRefused(f"a review request may not depend on a score or rating ({', '.join(gated)}): "
                                  "every customer must be asked the same way")
    source = TemplateSource(subject=subject, html=body_html, text=body_text or None)
    return render_email(flow, source, sample_context(flow, step, locale, brand), locale, brand)


def preview(flow: str, step: str, locale: str, source: TemplateSource | None = None,
            brand: Brand | None = None) -> RenderedEmail:
    """Render a template (the shipped one by default) with sample data and the merchant's brand for the admin."""
    chosen = source or default_source(flow, step, locale)
    return render_email(flow, chosen, sample_context(flow, step, locale, brand), locale, brand)


def sample_context(flow: str, step: str, locale: str, brand: Brand | None = None) -> dict[str, Any]:
    """Return realistic sample variables for a flow step: exactly the names real sends provide."""
    base = "https://example-store.myshopify.com"
    image = {"image_url": "https://cdn.shopify.com/s/files/1/0000/0001/files/lavender-soap.jpg",
             "image_alt": "Lavender soap, a bar wrapped in paper"}
    ctx: dict[str, Any] = {
        "customer": {"first_name": "Alex"},
        "store": {"name": (brand.store_name if brand else "") or "Example Store", "url": base},
        "unsubscribe_url": "https://aftercare.example/u/sample",
        "currency": "EUR",
        "timezone": None,
    }
    order = {"name": "#1001", "date": datetime(2026, 3, 1, 10, 0), "total": Decimal("42.50")}
    if flow == "review_request":
        ctx.update(order=order, review_url=f"{base}/products/lavender-soap#judgeme_product_reviews",
                   products=[{"title": "Lavender soap", "review_url": "https://aftercare.example/v/sample", **image}],
                   incentive_text="")
    elif flow == "survey":
        ctx.update(order=order, kind="nps",
                   score_links=[{"score": s, "url": f"https://aftercare.example/s/sample{s}"} for s in range(11)])
    elif flow == "ticket_followup":
        ctx.update(order=order, changes="We now pack every bottle in recycled paper.", remedy="replacement",
                   shop_url=base)
        if step == "comeback":
            ctx.update(discount_code="COMEBACK-1A2B3C4D5E", discount_percent=10)
    elif flow == "first_order":
        ctx.update(order=order, ship_days=2, arrive_days=5, contact_email="hello@example-store.com",
                   refund_policy={"title": "Refund policy", "url": f"{base}/policies/refund-policy",
                                  "summary": "You can return any unused item within 30 days of delivery for a "
                                             "full refund."},
                   shipping_policy_url=f"{base}/policies/shipping-policy", shop_url=base)
    elif flow == "cancellation":
        ctx.update(order=order, shop_url=base, contact_email="hello@example-store.com")
        if step == "ask":
            ctx["reason_links"] = [{"reason": r, "url": f"https://aftercare.example/c/sample-{r}"}
                                   for r in ("found_cheaper", "ordered_by_mistake", "delivery_too_slow",
                                             "changed_mind", "other")]
    elif flow == "usage_guide":
        ctx.update(order=order, guides=[sample_guide(locale)])
    elif flow == "replenishment":
        ctx.update(product={"title": "Lavender soap", **image}, quantity=2, run_out_date=date(2026, 3, 20),
                   reorder_url="https://aftercare.example/r/sample", discount_code="REFILL10",
                   discount_percent=10, subscribe_offer=True, subscribe_url=f"{base}/products/lavender-soap")
    elif flow == "winback":
        ctx.update(shop_url=base, discount_code="WELCOMEBACK-3F9A1C2B7D", discount_amount=Decimal("30"),
                   discount_min_subtotal=Decimal("100"), discount_ends_at=datetime(2026, 4, 2, 9, 0))
    elif flow == "birthday":
        ctx.update(shop_url=base, discount_code="BDAY-5C0FFEE123", discount_percent=20,
                   discount_ends_at=datetime(2026, 3, 31, 9, 0), birthday=date(2026, 3, 20))
    elif flow == "shopping_calendar":
        ctx.update(shop_url=base, discount_code="LUNARNEWYEAR-7B3D90E1AF", discount_percent=15,
                   discount_ends_at=datetime(2027, 2, 10, 9, 0),
                   event=event_vars({"event_key": "lunar_new_year", "event_on": "2027-02-06"}, locale))
    elif flow == "vip":
        ctx.update(shop_url=base, discount_code="VIP-8E21F0A4C9", discount_percent=15, discount_amount=None,
                   discount_free_shipping=False, discount_ends_at=datetime(2026, 5, 1, 9, 0),
                   perk_text="Free shipping on every order")
    elif flow == "ticket_alert":
        ctx.update(ticket={"id": 17, "subject": "Bottle arrived broken", "severity": 1 if step == "urgent" else 2,
                           "sla_due_at": datetime(2026, 3, 2, 9, 0), "url": "https://aftercare.example/admin/t/17"})
        ctx.pop("unsubscribe_url")
    elif flow == "delivery_stalls":
        ctx.update(order=order, problem="no_scan", failed=False, carrier="UPS", tracking_number="1Z999AA10123456784")
    elif flow == "test":
        ctx.pop("unsubscribe_url")
    elif flow == "delivery_update":
        ui = ui_strings(locale)
        ctx.update(order=order, milestone="OUT_FOR_DELIVERY", milestone_label=ui["m_OUT_FOR_DELIVERY"],
                   milestones=[{"code": "IN_TRANSIT", "label": ui["m_IN_TRANSIT"],
                                "when": datetime(2026, 3, 3, 7, 40, tzinfo=UTC), "place": "Louisville"},
                               {"code": "OUT_FOR_DELIVERY", "label": ui["m_OUT_FOR_DELIVERY"],
                                "when": datetime(2026, 3, 4, 8, 5, tzinfo=UTC), "place": "Chicago"}],
                   estimated_delivery=datetime(2026, 3, 4, 18, 0, tzinfo=UTC),
                   tracking_url="https://aftercare.example/t/sample",
                   parcel={"tracking_company": "UPS", "tracking_number": "1Z999AA10123456784",
                           "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784"})
    if "unsubscribe_url" in ctx:
        ctx["birthday_url"] = "https://aftercare.example/b/sample"
    if (flow, step) in MARKETING_STEPS:
        ctx["recommendations"] = [
            {"title": "Rosemary hand cream", "url": f"{base}/products/rosemary-hand-cream", **image},
            {"title": "Oat bath soak", "url": f"{base}/products/oat-bath-soak", "image_url": None,
             "image_alt": "Oat bath soak"}]
    return ctx


def sample_guide(locale: str) -> dict[str, Any]:
    """Return one guide's sample variables: the shipped coffee starter in that locale (plugin.guides.guide_vars)."""
    starter = _catalog(locale).get("guide_starters", {}).get("coffee") or \
        _catalog(locales.DEFAULT)["guide_starters"]["coffee"]
    return {"product": {"title": "House blend, whole beans"}, "title": starter["title"],
            "html": Markup(starter["html"]),  # noqa: S704  # shipped text, not merchant input
            "locale": locale, "dir": locales.direction(locale),
            "images": [{"url": "https://cdn.shopify.com/s/files/1/0000/0001/files/house-blend.jpg",
                        "alt": "House blend, whole beans"}],
            "video_url": "https://videos.example-store.com/brewing-at-home"}


# -- plain text from HTML ------------------------------------------------------------------------------------
class _TextExtractor(HTMLParser):
    """Collect readable text from an HTML fragment: blocks become lines, links keep their address."""

    BLOCKS = frozenset({"p", "div", "br", "tr", "table", "h1", "h2", "h3", "ul", "ol", "li", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self._href.append(dict(attrs).get("href"))
        if tag == "td":
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href:
            href = self._href.pop()
            if href:
                self.parts.append(f" <{href}>")
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        # Collapse HTML's own whitespace only: no-break and narrow spaces (Babel's 1 234,50 €) are content.
        self.parts.append(re.sub(r"[ \t\r\n\f]+", " ", data))


def html_to_text(fragment: str) -> str:
    """Derive a readable plain-text body from an HTML fragment."""
    parser = _TextExtractor()
    parser.feed(str(fragment))
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return html.unescape(re.sub(r"\n{3,}", "\n\n", text)).strip()
