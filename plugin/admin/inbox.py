"""Reviews inbox (filter, edit and approve drafted replies) and complaint tickets (SLA, resolve, notes)."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from sqlalchemy import case, func, select

from plugin import flow_settings, get_clock, get_config, tickets
from plugin.admin.blueprint import PAGE_SIZE, bp, ctx, done, failed, get_scoped, page
from plugin.db import get_session
from plugin.flows import review_reply
from plugin.models import REPLY_STATUSES, REVIEW_SOURCES, TICKET_REMEDIES, Customer, Order, Review, Ticket

REVIEWS_PAGE = 25
SOURCE_NAMES = {"judgeme": "Judge.me", "amazon_feedback": "Amazon feedback", "survey": "Survey"}
SEVERITY_NAMES = {1: "Safety / counterfeit", 2: "Damaged / wrong item", 3: "Delay / other"}
REMEDY_NAMES = {"refund": "Full refund", "replacement": "Replacement", "compensation": "Compensation",
                "vip": "VIP status"}


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        abort(400)


@bp.get("/reviews")
def reviews() -> Any:
    """List reviews with filters by rating, source and reply status (newest first, keyset pages)."""
    context = ctx()
    rating, before = _int_arg("rating"), _int_arg("before")
    source, status = request.args.get("source") or None, request.args.get("status") or None
    query = select(Review).where(Review.store_id.in_(context.scope_ids))
    if rating is not None:
        query = query.where(Review.rating == rating)
    if source in REVIEW_SOURCES:
        query = query.where(Review.source == source)
    if status in REPLY_STATUSES:
        query = query.where(Review.reply_status == status)
    if before is not None:
        query = query.where(Review.id < before)
    session = get_session()
    rows = list(session.scalars(query.order_by(Review.id.desc()).limit(REVIEWS_PAGE + 1)))
    more = len(rows) > REVIEWS_PAGE
    rows = rows[:REVIEWS_PAGE]
    ids = [r.id for r in rows]
    ticket_of = dict(session.execute(select(Ticket.review_id, Ticket.id).where(Ticket.review_id.in_(ids))).all()) \
        if ids else {}
    drafts = session.scalar(select(func.count()).where(Review.store_id.in_(context.scope_ids),
                                                       Review.reply_status == "draft")) or 0
    return page("admin/reviews.html", reviews=rows, ticket_of=ticket_of, more=more,
                next_before=rows[-1].id if rows else None, filters={"rating": rating, "source": source,
                                                                     "status": status},
                sources=REVIEW_SOURCES, statuses=REPLY_STATUSES, source_names=SOURCE_NAMES, drafts=drafts,
                store_names={s.id: s.name or s.external_id for s in context.stores})


@bp.post("/reviews/<int:review_id>/reply")
def approve_reply(review_id: int) -> Any:
    """Approve a (possibly edited) reply; the dispatcher posts it to the review app."""
    review = get_scoped(Review, review_id)
    try:
        review_reply.approve_reply(get_session(), review.id, request.form.get("body") or "", get_clock().now())
    except ValueError as exc:
        return failed(f"The reply was not sent: {exc}.")
    return done("admin.reviews", "Reply approved; it is posted to Judge.me with the next dispatch.",
                status=request.args.get("status"))


@bp.get("/tickets")
def tickets_list() -> Any:
    """List tickets: open ones by SLA due time (most urgent first), then resolved ones."""
    context = ctx()
    status = request.args.get("status") or "open"
    if status not in ("open", "resolved"):
        abort(400)
    offset = max(0, _int_arg("offset") or 0)
    session = get_session()
    query = select(Ticket).where(Ticket.store_id.in_(context.scope_ids), Ticket.status == status)
    query = query.order_by(Ticket.sla_due_at, Ticket.id) if status == "open" else \
        query.order_by(Ticket.resolved_at.desc(), Ticket.id.desc())
    rows = list(session.scalars(query.offset(offset).limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    now = get_clock().now()
    counts = dict(session.execute(
        select(Ticket.status, func.count()).where(Ticket.store_id.in_(context.scope_ids))
        .group_by(Ticket.status)).all())
    breached = session.scalar(select(func.count()).where(
        Ticket.store_id.in_(context.scope_ids), Ticket.status == "open", Ticket.sla_due_at < now)) or 0
    return page("admin/tickets.html", tickets=rows[:PAGE_SIZE], more=more, offset=offset, status=status,
                counts=counts, breached=breached, severity_names=SEVERITY_NAMES,
                remaining=lambda t: int((t.sla_due_at - now).total_seconds()))


@bp.get("/tickets/<int:ticket_id>")
def ticket_detail(ticket_id: int) -> Any:
    """Show a ticket with its SLA countdown, the review or answer behind it, and its notes."""
    ticket = get_scoped(Ticket, ticket_id)
    session = get_session()
    review = session.get(Review, ticket.review_id) if ticket.review_id else None
    customer = session.get(Customer, ticket.customer_id) if ticket.customer_id else None
    order = session.get(Order, ticket.order_id) if ticket.order_id else None
    now = get_clock().now()
    followup = flow_settings.effective(session, get_config(), ticket.store_id, "ticket_followup")
    return page("admin/ticket.html", ticket=ticket, review=review, customer=customer, order=order,
                severity_names=SEVERITY_NAMES, source_names=SOURCE_NAMES,
                remaining=int((ticket.sla_due_at - now).total_seconds()),
                suggested=tickets.suggested_resolution(ticket), remedies=TICKET_REMEDIES, remedy_names=REMEDY_NAMES,
                followup_days=f"{float(followup.get('followup_days', 7)):g}")


@bp.post("/tickets/<int:ticket_id>/resolve")
def resolve_ticket(ticket_id: int) -> Any:
    """Resolve a ticket with what the store changed, and the remedy of a severity-1 ticket (held review requests and
    the follow-through then go ahead)."""
    ticket = get_scoped(Ticket, ticket_id)
    try:
        tickets.resolve_ticket(get_session(), ticket.id, request.form.get("resolution") or "", get_clock().now(),
                               remedy=request.form.get("remedy") or None)
    except ValueError as exc:
        return failed(f"The ticket was not resolved: {exc}.")
    return done("admin.ticket_detail", "Ticket resolved.", ticket_id=ticket.id)


@bp.post("/tickets/<int:ticket_id>/notes")
def add_ticket_note(ticket_id: int) -> Any:
    """Add a follow-up note to a ticket."""
    ticket = get_scoped(Ticket, ticket_id)
    context = ctx()
    author = context.user_email or (f"Shopify staff on {context.shop}" if context.shop else "")
    try:
        tickets.add_note(get_session(), ticket.id, request.form.get("body") or "", get_clock().now(), author=author)
    except ValueError as exc:
        return failed(f"The note was not added: {exc}.")
    return done("admin.ticket_detail", "Note added.", ticket_id=ticket.id)


def open_ticket_counts(store_ids: list[int]) -> dict[str, int]:
    """Return open and overdue ticket counts (for the navigation badge)."""
    now = get_clock().now()
    open_count, overdue = get_session().execute(
        select(func.count(), func.coalesce(func.sum(case((Ticket.sla_due_at < now, 1), else_=0)), 0))
        .where(Ticket.store_id.in_(store_ids), Ticket.status == "open")).one()
    return {"open": int(open_count), "overdue": int(overdue)}
