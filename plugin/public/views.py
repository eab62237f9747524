"""Views of the public pages. Every URL carries a signed, expiring token (plugin.messaging.links); a forged or
expired one gets a friendly 400/410 page and changes nothing.

Link pre-fetchers (mail security scanners) open links before people do, so the one-click score is recorded on
GET but only once (the first answer wins until the customer confirms on the page, where they can change it
and add a comment); the comment form is protected by a double-submit CSRF token. Unsubscribing takes a POST:
the page's confirm button, or the RFC 8058 one-click POST mail providers send (``List-Unsubscribe=One-Click``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from babel.dates import format_date, get_month_names
from flask import Blueprint, Response, make_response, redirect, render_template, request
from sqlalchemy import select

from plugin import cookies_secure, get_clock, get_config
from plugin.db import get_session
from plugin.flows import cancellation
from plugin.flows.survey import record_answer
from plugin.messaging import links, locales, templates
from plugin.messaging.suppression import suppress
from plugin.messaging.withdrawals import stop_delivery_updates, unsubscribe_address
from plugin.models import (
    CANCELLATION_ANSWERS,
    CancellationAnswer,
    Customer,
    Message,
    OrderLine,
    Product,
    Store,
    SurveyResponse,
    Variant,
)

bp = Blueprint("public", __name__, template_folder="templates")
log = logging.getLogger("aftercare.public")

CSRF_COOKIE = "aftercare_csrf"
BIRTHDAY_COOKIE = "aftercare_birthday_csrf"
SCALES = {"nps": (0, 10), "csat": (1, 5)}


class _BadLink(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _load(purpose: str, token: str) -> tuple[dict[str, Any], Message]:
    """Verify the token and load its message, or raise _BadLink(400 forged / 410 expired or gone)."""
    secret = get_config().secrets.secret_key
    try:
        payload = links.read_token(secret, get_clock(), purpose, token)
    except links.LinkExpired as exc:
        raise _BadLink(410) from exc
    except links.LinkInvalid as exc:
        raise _BadLink(400) from exc
    message = get_session().get(Message, payload["m"])
    if message is None:
        raise _BadLink(410)
    return payload, message


@bp.errorhandler(_BadLink)
def _bad_link(exc: _BadLink) -> Response:
    locale = locales.normalize(request.accept_languages.best_match(
        [*locales.SUPPORTED, "pt", "zh"])) or locales.DEFAULT
    ui = templates.ui_strings(locale)
    expired = exc.status == 410
    body = render_template("public/message.html", locale=locale, dir=locales.direction(locale), ui=ui,
                           title=ui["expired_title" if expired else "invalid_title"],
                           text=ui["expired_body" if expired else "invalid_body"], store_name="")
    response = make_response(body, exc.status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(message: Message, template: str, status: int = 200, **values: Any) -> Response:
    session = get_session()
    store = session.get(Store, message.store_id)
    customer = session.get(Customer, message.customer_id) if message.customer_id else None
    locale = locales.choose(message.locale or (customer.locale if customer else None),
                            store.primary_locale if store else None)
    return _render(store, locale, template, status, **values)


def _render(store: Store | None, locale: str, template: str, status: int = 200, **values: Any) -> Response:
    ui = templates.ui_strings(locale)
    body = render_template(template, locale=locale, dir=locales.direction(locale), ui=ui,
                           store_name=store.name if store else "", **values)
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _mark_clicked(message: Message) -> None:
    if message.clicked_at is None:
        message.clicked_at = get_clock().now()


# -- survey ----------------------------------------------------------------------------------------------------
def _csrf_value(nonce: str, message_id: int) -> str:
    key = get_config().secrets.secret_key.encode()
    return hmac.new(key, f"survey:{message_id}:{nonce}".encode(), hashlib.sha256).hexdigest()


def _survey_page(message: Message, token: str, kind: str, score: int, **values: Any) -> Response:
    nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    low, high = SCALES[kind]
    response = _page(message, "public/survey.html", token=token, kind=kind, selected=score,
                     scores=list(range(low, high + 1)), csrf=_csrf_value(nonce, message.id), **values)
    response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="Lax", secure=cookies_secure(),
                        path="/s/", max_age=60 * 60 * 24)
    return response


def _live_customer(message: Message) -> Customer:
    """Return the message's customer; a redacted (or deleted) customer's link stores nothing (410)."""
    customer = get_session().get(Customer, message.customer_id) if message.customer_id else None
    if customer is None or customer.redacted_at is not None:
        raise _BadLink(410)
    return customer


def _survey_message(token: str) -> tuple[dict[str, Any], Message]:
    """Load a survey link; a redacted (or deleted) customer's link stores nothing (410)."""
    payload, message = _load("score", token)
    if message.customer_id is not None:
        _live_customer(message)
    return payload, message


@bp.get("/s/<token>")
def survey_score(token: str) -> Response:
    """Record a one-click score (first answer only: pre-fetchers must not overwrite) and offer the comment form."""
    payload, message = _survey_message(token)
    kind = str((message.payload or {}).get("kind") or "nps")
    score = payload.get("s")
    low, high = SCALES.get(kind, (0, 10))
    if message.flow != "survey" or not isinstance(score, int) or not low <= score <= high:
        raise _BadLink(400)
    session = get_session()
    _mark_clicked(message)
    existing = session.scalar(select(SurveyResponse).where(
        SurveyResponse.store_id == message.store_id, SurveyResponse.order_id == message.order_id,
        SurveyResponse.kind == kind))
    if existing is None:
        record_answer(session, message.id, score, None, get_clock().now(), get_config())
    return _survey_page(message, token, kind, score, done=False)


@bp.post("/s/<token>")
def survey_comment(token: str) -> Response:
    """Save the confirmed score and optional comment (CSRF-protected form)."""
    _payload, message = _survey_message(token)
    kind = str((message.payload or {}).get("kind") or "nps")
    nonce = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get("csrf", "")
    if not nonce or not hmac.compare_digest(sent, _csrf_value(nonce, message.id)):
        return _page(message, "public/message.html", status=400, title=templates.ui_strings(
            message.locale or locales.DEFAULT)["form_expired"], text="")
    low, high = SCALES[kind]
    try:
        score = int(request.form.get("score", ""))
    except ValueError:
        score = -1
    if not low <= score <= high:
        return _page(message, "public/message.html", status=400, title="400", text=f"{low}-{high}")
    comment = request.form.get("comment", "")[:5000]
    record_answer(get_session(), message.id, score, comment, get_clock().now(), get_config())
    _mark_clicked(message)
    return _survey_page(message, token, kind, score, done=True)


# -- cancellation reason -------------------------------------------------------------------------------------
def _cancel_page(message: Message, token: str, reason: str, done: bool) -> Response:
    nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = _page(message, "public/cancellation.html", token=token, selected=reason, reasons=CANCELLATION_ANSWERS,
                     csrf=_csrf_value(nonce, message.id), done=done)
    response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="Lax", secure=cookies_secure(),
                        path="/c/", max_age=60 * 60 * 24)
    return response


def _cancellation_message(token: str) -> tuple[dict[str, Any], Message]:
    """Load a cancellation question's link; a redacted (or deleted) customer's link stores nothing (410)."""
    payload, message = _load("cancel_reason", token)
    if message.flow != cancellation.NAME or message.step != "ask":
        raise _BadLink(400)
    _live_customer(message)
    return payload, message


@bp.get("/c/<token>")
def cancellation_reason(token: str) -> Response:
    """Record a one-click cancellation reason (first answer only: pre-fetchers must not overwrite), offer a comment."""
    payload, message = _cancellation_message(token)
    reason = payload.get("r")
    if reason not in CANCELLATION_ANSWERS:
        raise _BadLink(400)
    session = get_session()
    _mark_clicked(message)
    existing = session.scalar(select(CancellationAnswer).where(CancellationAnswer.store_id == message.store_id,
                                                               CancellationAnswer.order_id == message.order_id))
    if existing is None:
        cancellation.record_answer(session, get_config(), message.id, reason, None, get_clock().now())
    else:
        reason = existing.reason
    return _cancel_page(message, token, reason, done=False)


@bp.post("/c/<token>")
def cancellation_comment(token: str) -> Response:
    """Save the confirmed reason and optional comment (CSRF-protected form)."""
    _payload, message = _cancellation_message(token)
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if not nonce or not hmac.compare_digest(request.form.get("csrf", ""), _csrf_value(nonce, message.id)):
        return _page(message, "public/message.html", status=400, title=templates.ui_strings(
            message.locale or locales.DEFAULT)["form_expired"], text="")
    reason = request.form.get("reason", "")
    if reason not in CANCELLATION_ANSWERS:
        return _page(message, "public/message.html", status=400, title="400", text=", ".join(CANCELLATION_ANSWERS))
    cancellation.record_answer(get_session(), get_config(), message.id, reason, request.form.get("comment", "")[:5000],
                               get_clock().now())
    _mark_clicked(message)
    return _cancel_page(message, token, reason, done=True)


# -- unsubscribe -----------------------------------------------------------------------------------------------
def _address(message: Message) -> str | None:
    if message.to_address:
        return message.to_address
    customer = get_session().get(Customer, message.customer_id) if message.customer_id else None
    return customer.email if customer else None


def _erased(token: str) -> tuple[Store, str] | None:
    """Return the store and address digest of a genuine unsubscribe link whose message is gone, else None.

    A shop/redact after a reinstall erases the old install's messages (plugin.webhooks.compliance) while their
    emails are still in inboxes; the link carries the store and the address's SHA-256 so the unsubscribe holds.
    """
    try:
        payload = links.read_token(get_config().secrets.secret_key, get_clock(), "unsubscribe", token)
    except (links.LinkExpired, links.LinkInvalid):
        return None
    session = get_session()
    if not payload.get("a") or not isinstance(payload.get("st"), int) or session.get(Message, payload["m"]):
        return None
    store = session.get(Store, payload["st"])
    return (store, str(payload["a"])) if store is not None else None


def _erased_page(store: Store, token: str, done: bool) -> Response:
    return _render(store, locales.choose(None, store.primary_locale), "public/unsubscribe.html", token=token,
                   email="", done=done, delivery=False)


@bp.get("/u/<token>")
def unsubscribe_page(token: str) -> Response:
    """Show the confirmation page (a GET never unsubscribes: scanners follow links)."""
    erased = _erased(token)
    if erased is not None:
        return _erased_page(erased[0], token, done=False)
    _payload, message = _load("unsubscribe", token)
    return _page(message, "public/unsubscribe.html", token=token, email=_address(message) or "", done=False,
                 delivery=message.flow == "delivery_update")


@bp.post("/u/<token>")
def unsubscribe(token: str) -> Response:
    """Unsubscribe at once (RFC 8058 one-click POST or the confirm button); cancel what must not leave now."""
    erased = _erased(token)
    if erased is not None:
        store, hashed = erased
        # The address itself is erased: its digest goes on the list, which every send checks (is_suppressed).
        suppress(get_session(), store.id, hashed, "unsubscribe", detail="link of a message erased by shop/redact",
                 now=get_clock().now())
        log.info("unsubscribed through an erased message's link", extra={"store_id": store.id})
        if request.form.get("List-Unsubscribe") == "One-Click":
            return make_response("", 200)
        return _erased_page(store, token, done=True)
    _payload, message = _load("unsubscribe", token)
    address = _address(message)
    if address:
        session = get_session()
        now = get_clock().now()
        if message.flow == "delivery_update":
            # The same one-click link, but it turns off only this kind: delivery updates (transactional class).
            cancelled = stop_delivery_updates(session, message.store_id, address, now, customer_id=message.customer_id)
        else:
            cancelled = unsubscribe_address(session, message.store_id, address, "unsubscribe", now,
                                            detail=f"message {message.id}", customer_id=message.customer_id)
        log.info("unsubscribed", extra={"store_id": message.store_id, "message_id": message.id,
                                        "flow": message.flow, "cancelled": cancelled})
    if request.form.get("List-Unsubscribe") == "One-Click":
        return make_response("", 200)
    return _page(message, "public/unsubscribe.html", token=token, email=address or "", done=True,
                 delivery=message.flow == "delivery_update")


# -- reorder and review links -------------------------------------------------------------------------------
def _numeric(external_id: str) -> str:
    return external_id.rsplit("/", 1)[-1]


@bp.get("/r/<token>")
def reorder(token: str) -> Response:
    """Record the click and redirect to the Shopify cart permalink with the discount code applied.

    https://help.shopify.com/en/manual/products/details/cart-permalink
    """
    _payload, message = _load("reorder", token)
    session = get_session()
    store = session.get(Store, message.store_id)
    if store is None or store.platform != "shopify":
        raise _BadLink(410)
    payload = message.payload or {}
    lines = payload.get("lines") or [{"variant_external_id": payload.get("variant_external_id"),
                                      "variant_id": payload.get("variant_id"),
                                      "quantity": payload.get("quantity", 1)}]
    items = []
    for line in lines:
        external = line.get("variant_external_id")
        if not external and line.get("variant_id"):
            variant = session.get(Variant, line["variant_id"])
            external = variant.external_id if variant else None
        if external:
            items.append(f"{_numeric(str(external))}:{max(int(line.get('quantity') or 1), 1)}")
    if not items:
        raise _BadLink(410)
    _mark_clicked(message)
    target = f"https://{store.external_id}/cart/{','.join(items)}"
    if payload.get("discount_code"):
        target += "?discount=" + quote(str(payload["discount_code"]), safe="")
    return redirect(target, code=302)


@bp.get("/v/<token>")
def review(token: str) -> Response:
    """Record the click and redirect to the product's review form (Judge.me widget on the product page)."""
    payload, message = _load("review", token)
    session = get_session()
    store = session.get(Store, message.store_id)
    if store is None:
        raise _BadLink(410)
    _mark_clicked(message)
    urls = (message.payload or {}).get("review_urls") or {}
    product_id = payload.get("pr")
    if product_id is not None and str(product_id) in urls:
        return redirect(urls[str(product_id)], code=302)
    product = session.get(Product, product_id) if isinstance(product_id, int) else None
    if product is None and message.order_id:
        product = session.scalar(select(Product).join(OrderLine, OrderLine.product_id == Product.id)
                                 .where(OrderLine.order_id == message.order_id).order_by(OrderLine.id).limit(1))
    base = f"https://{store.external_id}"
    if product is not None and product.store_id == store.id and product.handle:
        # Judge.me's widget anchors its review form here on the product page.
        return redirect(f"{base}/products/{quote(product.handle)}#judgeme_product_reviews", code=302)
    return redirect(base, code=302)


# -- "tell us your birthday" -------------------------------------------------------------------------------------
# Month and day only: the date is stored in a leap year so that 29 February is a birthday like any other.
BIRTHDAY_YEAR = 2000
BIRTHDAY_CHANGE_DAYS = 365


def _birthday_csrf(nonce: str, message_id: int) -> str:
    key = get_config().secrets.secret_key.encode()
    return hmac.new(key, f"birthday:{message_id}:{nonce}".encode(), hashlib.sha256).hexdigest()


def _birthday_page(message: Message, token: str, customer: Customer, notice: str = "", status: int = 200
                   ) -> Response:
    now = get_clock().now()
    changed = customer.birthday_changed_at
    editable = changed is None or now >= changed + timedelta(days=BIRTHDAY_CHANGE_DAYS)
    locale = locales.choose(message.locale or customer.locale, None)
    ui = templates.ui_strings(locale)
    if not editable and not notice:
        again = (changed + timedelta(days=BIRTHDAY_CHANGE_DAYS)).date()
        notice = ui["birthday_locked"].format(date=format_date(again, format="long",
                                                               locale=locales.babel_locale(locale)))
    nonce = request.cookies.get(BIRTHDAY_COOKIE) or secrets.token_urlsafe(24)
    names = get_month_names("wide", locale=locales.babel_locale(locale))
    response = _page(message, "public/birthday.html", status=status, token=token, notice=notice,
                     editable=editable, csrf=_birthday_csrf(nonce, message.id),
                     months=[{"value": m, "label": names[m]} for m in range(1, 13)],
                     month=customer.birthday.month if customer.birthday else None,
                     day=customer.birthday.day if customer.birthday else None)
    response.set_cookie(BIRTHDAY_COOKIE, nonce, httponly=True, samesite="Lax", secure=cookies_secure(),
                        path="/b/", max_age=60 * 60 * 24)
    return response


def _birthday_customer(token: str) -> tuple[Message, Customer]:
    _payload, message = _load("birthday", token)
    return message, _live_customer(message)


@bp.get("/b/<token>")
def birthday_form(token: str) -> Response:
    """Show the month-and-day form (or when it can be changed again); a GET changes nothing."""
    message, customer = _birthday_customer(token)
    return _birthday_page(message, token, customer)


@bp.post("/b/<token>")
def birthday_save(token: str) -> Response:
    """Save the customer's month and day, at most once a year (CSRF-protected form)."""
    message, customer = _birthday_customer(token)
    ui = templates.ui_strings(locales.choose(message.locale or customer.locale, None))
    nonce = request.cookies.get(BIRTHDAY_COOKIE, "")
    if not nonce or not hmac.compare_digest(request.form.get("csrf", ""), _birthday_csrf(nonce, message.id)):
        return _page(message, "public/message.html", status=400, title=ui["form_expired"], text="")
    now = get_clock().now()
    if customer.birthday_changed_at is not None and \
            now < customer.birthday_changed_at + timedelta(days=BIRTHDAY_CHANGE_DAYS):
        return _birthday_page(message, token, customer, status=409)
    try:
        chosen = date(BIRTHDAY_YEAR, int(request.form.get("month", "")), int(request.form.get("day", "")))
    except ValueError:
        return _birthday_page(message, token, customer, notice=ui["birthday_invalid"], status=400)
    customer.birthday, customer.birthday_changed_at = chosen, now
    get_session().flush()
    log.info("birthday set", extra={"store_id": message.store_id, "customer_id": customer.id})
    return _birthday_page(message, token, customer, notice=ui["birthday_saved"])
