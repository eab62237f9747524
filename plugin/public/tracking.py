"""The tracking page of a delivery update: the order's lines, each parcel's timeline, the estimate, the store's
refund policy and a "something is wrong" button that opens a ticket with the order attached.

Reached by the signed link of a delivery-update email (purpose ``track``), no login. Shown in the customer's
language and time zone; right-to-left for Arabic (plugin.messaging.locales). The problem form is protected like
the survey's (double-submit CSRF cookie); sending it twice adds to the same open ticket instead of opening another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from babel.dates import format_date, format_datetime
from flask import Response, request
from sqlalchemy import select

from plugin import cookies_secure, delivery_estimates, get_clock, get_config
from plugin.db import get_session
from plugin.messaging import locales, sendtime, templates
from plugin.models import Customer, Message, Order, OrderLine, Parcel, Store, Ticket, TicketNote
from plugin.public.views import _BadLink, _load, _page, bp
from plugin.tickets import open_ticket, severity_for

CSRF_COOKIE = "aftercare_track_csrf"
FLOW = "delivery_update"


def _csrf_value(nonce: str, message_id: int) -> str:
    key = get_config().secrets.secret_key.encode()
    return hmac.new(key, f"track:{message_id}:{nonce}".encode(), hashlib.sha256).hexdigest()


def _view(message: Message) -> dict[str, Any]:
    """Return what the page shows, dated in the customer's zone and worded in their language."""
    session = get_session()
    store = session.get(Store, message.store_id)
    order = session.get(Order, message.order_id) if message.order_id else None
    if store is None or order is None:
        raise _BadLink(410)
    customer = session.get(Customer, order.customer_id) if order.customer_id else None
    locale = locales.choose(message.locale or (customer.locale if customer else None), store.primary_locale)
    zone = sendtime.resolve_zone(customer.time_zone if customer else None,
                                 (customer.country if customer else None) or store.country, store.timezone)
    where = locales.babel_locale(locale)
    ui = templates.ui_strings(locale)

    def when(value: Any) -> str:
        return format_datetime(value, format="medium", tzinfo=zone, locale=where) if value else ""

    def day(value: Any) -> str:
        return format_date(value.astimezone(zone).date(), format="full", locale=where) if value else ""

    stats = None
    parcels = []
    for n, parcel in enumerate(session.scalars(select(Parcel).where(
            Parcel.order_id == order.id, Parcel.fulfillment_status == "SUCCESS").order_by(Parcel.id)), start=1):
        events = sorted(parcel.events, key=lambda e: (e.happened_at, e.id), reverse=True)
        timeline = [{"label": ui.get(f"m_{e.status}", e.status), "when": when(e.happened_at),
                     "iso": e.happened_at.isoformat(), "place": ", ".join(p for p in (e.city, e.country) if p),
                     "message": e.message or "", "status": e.status} for e in events]
        if parcel.shipped_at is not None:
            timeline.append({"label": ui["m_SHIPPED"], "when": when(parcel.shipped_at),
                             "iso": parcel.shipped_at.isoformat(), "place": "", "message": "", "status": "SHIPPED"})
        usually = ""
        if parcel.delivered_at is None and parcel.estimated_delivery_at is None:
            # No carrier estimate: the store's own history (plugin.delivery_estimates), "usually 4–6 days".
            if stats is None:
                stats = delivery_estimates.stored_stats(session, store.id)
            guess = delivery_estimates.estimate(session, get_config(), parcel, get_clock().now(), stats)
            if guess is not None and guess.low_days is not None:
                usually = ui["track_usually"].format(low=guess.low_days, high=guess.high_days)
        parcels.append({"title": ui["track_parcel"].format(n=n), "usually": usually,
                        "status": ui.get(f"m_{parcel.status or 'SHIPPED'}"),
                        "code": parcel.status or "SHIPPED", "company": parcel.tracking_company,
                        "number": parcel.tracking_number, "url": parcel.tracking_url,
                        "expected": "" if parcel.delivered_at else day(parcel.estimated_delivery_at),
                        "timeline": timeline, "has_events": bool(events)})
    lines = [{"title": line.title, "quantity": line.quantity}
             for line in session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                                         .order_by(OrderLine.id))]
    policy = store.refund_policy or {}
    return {"order_name": order.name or "", "lines": lines, "parcels": parcels,
            "policy_title": policy.get("title") or ui["track_policy"],
            "policy_text": templates.html_to_text(policy.get("body") or "").split("\n\n") if policy else [],
            "policy_url": policy.get("url")}


def _render(message: Message, token: str, sent: bool = False, status: int = 200) -> Response:
    nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    view = _view(message)
    response = _page(message, "public/tracking.html", status=status, token=token, sent=sent,
                     csrf=_csrf_value(nonce, message.id), **view)
    response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="Lax", secure=cookies_secure(), path="/t/",
                        max_age=60 * 60 * 24)
    return response


def _message(token: str) -> Message:
    _payload, message = _load("track", token)
    if message.flow != FLOW:
        raise _BadLink(400)
    # A redacted customer's link shows nothing and stores nothing (GDPR erasure, DESIGN §1): not the parcels'
    # places, not the lines, not a new ticket with their words.
    session = get_session()
    order = session.get(Order, message.order_id) if message.order_id else None
    for customer_id in {message.customer_id, order.customer_id if order else None} - {None}:
        customer = session.get(Customer, customer_id)
        if customer is None or customer.redacted_at is not None:
            raise _BadLink(410)
    return message


@bp.get("/t/<token>")
def tracking_page(token: str) -> Response:
    """Show the order's parcels and their timelines (and count the click)."""
    message = _message(token)
    if message.clicked_at is None:
        message.clicked_at = get_clock().now()
    return _render(message, token)


@bp.post("/t/<token>")
def report_problem(token: str) -> Response:
    """Open a delivery ticket with the order attached (or add to the open one); CSRF-protected."""
    message = _message(token)
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if not nonce or not hmac.compare_digest(request.form.get("csrf", ""), _csrf_value(nonce, message.id)):
        locale = message.locale or locales.DEFAULT
        return _page(message, "public/message.html", status=400, title=templates.ui_strings(locale)["form_expired"],
                     text="")
    text = request.form.get("problem", "").strip()[:5000]
    session = get_session()
    now = get_clock().now()
    order = session.get(Order, message.order_id) if message.order_id else None
    ticket = session.scalar(select(Ticket).where(
        Ticket.store_id == message.store_id, Ticket.order_id == message.order_id, Ticket.source == "delivery",
        Ticket.status == "open").order_by(Ticket.id).limit(1))
    if ticket is None:
        ticket = open_ticket(session, get_config(), store_id=message.store_id, source="delivery",
                             severity=severity_for(text), now=now, customer_id=message.customer_id,
                             order_id=message.order_id,
                             subject=f"Delivery problem, order {order.name if order else ''}: {text[:80]}".rstrip(": "))
    if text:
        session.add(TicketNote(ticket_id=ticket.id, author="customer (tracking page)", body=text, created_at=now))
    session.flush()
    return _render(message, token, sent=True)
