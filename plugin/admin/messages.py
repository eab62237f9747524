"""Message log: search by customer, order or email; every skip reason in words; resend where allowed.

Reasons are codes (plugin.messaging.reasons) shown in the admin's language. A failed email, or a skipped one
whose cause has gone away (plugin.flows.resend re-checks it), can be resent: a new outbox row (key
``<original key>:resend=N``) that goes through the whole send policy again at dispatch time, so nothing the
policy refuses is ever forced out from here.
"""

from __future__ import annotations

import re
from typing import Any

from flask import abort, request
from sqlalchemy import func, or_, select

from plugin import get_clock, get_config
from plugin.admin.blueprint import PAGE_SIZE, bp, ctx, done, failed, get_scoped, page
from plugin.db import get_session
from plugin.flows import resend as resending
from plugin.messaging import locales, reasons
from plugin.messaging.outbox import enqueue
from plugin.models import MESSAGE_STATUSES, Customer, Message, Order

_RESEND_SUFFIX = re.compile(r":resend=\d+$")


def reason_words(code: str | None, locale: str | None = None) -> str:
    """Return a skip reason in words in ``locale`` (English by default; the code itself when it has no label)."""
    return reasons.label(code, locale)


def admin_locale() -> str:
    """Return the shipped locale closest to the admin's browser language (English when none matches)."""
    return locales.normalize(request.accept_languages.best_match(locales.SUPPORTED)) or locales.DEFAULT


def can_resend(message: Message) -> bool:
    """Say whether the merchant may queue this message again (failed, or skipped for a cause now gone)."""
    return resending.can_resend(get_session(), get_config(), message)


def _search(query: Any, store_ids: list[int], q: str) -> Any:
    """Narrow a message query by email, order name/number or customer id."""
    session = get_session()
    q = q.strip()
    if "@" in q:
        ids = list(session.scalars(select(Customer.id).where(Customer.store_id.in_(store_ids), Customer.email == q)
                                   .limit(50)))
        if ids:
            return query.where(Message.customer_id.in_(ids))
        # Merchant emails (tests, alerts) have no customer: match the address (rare, so a scan is fine).
        return query.where(Message.to_address == q)
    # One indexed lookup per kind of key (an OR across columns would make the databases scan).
    names = sorted({q, q if q.startswith("#") else f"#{q}"})
    order_ids = set(session.scalars(select(Order.id).where(Order.store_id.in_(store_ids), Order.name.in_(names))
                                    .limit(50)))
    order_ids |= set(session.scalars(select(Order.id).where(Order.store_id.in_(store_ids), Order.external_id == q)))
    customer_ids = set(session.scalars(select(Customer.id).where(Customer.store_id.in_(store_ids),
                                                                 Customer.external_id == q)))
    if q.isdigit():
        customer_ids.add(int(q))
    return query.where(or_(Message.order_id.in_(order_ids), Message.customer_id.in_(customer_ids)))


@bp.get("/messages")
def messages() -> Any:
    """List outbox messages (newest first, keyset pages) with search and filters."""
    context = ctx()
    q = (request.args.get("q") or "").strip()
    status = request.args.get("status") or None
    flow = request.args.get("flow") or None
    before = request.args.get("before", "")
    query = select(Message).where(Message.store_id.in_(context.scope_ids))
    if q:
        query = _search(query, context.scope_ids, q)
    if status in MESSAGE_STATUSES:
        query = query.where(Message.status == status)
    if flow:
        query = query.where(Message.flow == flow)
    if before:
        if not before.isdigit():
            abort(400)
        query = query.where(Message.id < int(before))
    session = get_session()
    rows = list(session.scalars(query.order_by(Message.id.desc()).limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    customer_ids = {m.customer_id for m in rows if m.customer_id}
    order_ids = {m.order_id for m in rows if m.order_id}
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))} \
        if customer_ids else {}
    orders = dict(session.execute(select(Order.id, Order.name).where(Order.id.in_(order_ids))).all()) \
        if order_ids else {}
    return page("admin/messages.html", messages=rows, more=more, next_before=rows[-1].id if rows else None,
                q=q, status=status, flow=flow, statuses=MESSAGE_STATUSES, customers=customers, orders=orders,
                reason_words=lambda code, locale=admin_locale(): reason_words(code, locale), can_resend=can_resend,
                reason_locale=admin_locale(), reason_dir=locales.direction(admin_locale()))


@bp.post("/messages/<int:message_id>/resend")
def resend(message_id: int) -> Any:
    """Queue a failed or transiently skipped message again under a new key; the policy decides at send time."""
    message = get_scoped(Message, message_id)
    if not can_resend(message):
        return failed("This message cannot be sent again: " + (reason_words(message.skip_reason, admin_locale()) or
                                                                 f"it is {message.status}.").rstrip(".") + ".")
    session = get_session()
    base = _RESEND_SUFFIX.sub("", message.idempotency_key)
    previous = session.scalar(select(func.count()).where(Message.idempotency_key.like(
        base.replace("%", r"\%").replace("_", r"\_") + ":resend=%", escape="\\"))) or 0
    now = get_clock().now()
    created = enqueue(session, store_id=message.store_id, flow=message.flow, channel=message.channel,
                      idempotency_key=f"{base}:resend={previous + 1}", scheduled_for=now, step=message.step,
                      customer_id=message.customer_id, order_id=message.order_id, review_id=message.review_id,
                      ticket_id=message.ticket_id, product_id=message.product_id, marketing=message.marketing,
                      locale=message.locale, to_address=message.to_address,
                      payload={k: v for k, v in (message.payload or {}).items() if k != "discount_created"})
    if created is None:
        return failed("A resend of this message is already queued.")
    return done("admin.messages", "Message queued again; the send policy is checked when it goes out.")
