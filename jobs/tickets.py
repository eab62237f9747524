"""Complaint tickets: severity from keywords, SLA due times, resolution, notes, and SLA-breach alerts."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jobs.outbox_batch import message_row, write_messages
from plugin import flow_settings
from plugin.config import Config
from plugin.context import JobContext
from plugin.models import Merchant, Store, Ticket, TicketNote

# Severity 1 = counterfeit/safety, 2 = damaged/wrong item, 3 = delay/other (DESIGN.md §3).
# Stems in several languages; matched on word starts so "broken"/"brokenness" match but "abroad" does not.
SEVERITY_KEYWORDS: dict[int, tuple[str, ...]] = {
    1: ("counterfeit", "fake", "knockoff", "unsafe", "dangerous", "fälschung", "gefälscht", "contrefaçon",
        "contrefait", "falsificado", "falsificación", "contraffatto", "falso", "falsa", "偽物", "偽造", "コピー品"),
    2: ("broken", "damaged", "wrong", "defective", "missing part", "kaputt", "beschädigt", "defekt", "falsch",
        "cassé", "endommagé", "abîmé", "mauvais article", "danneggiato", "rotto", "sbagliato", "difettoso",
        "roto", "rota", "dañado", "equivocado", "otro artículo", "壊れ", "破損", "間違", "違う"),
    3: ("late", "delay", "slow", "never arrived", "verspätet", "verspätung", "spät", "retard", "lent",
        "ritardo", "retraso", "tarde", "遅い", "遅れ", "遅延"),
}
DEFAULT_SEVERITY = 3
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _matches(text: str, word: str) -> bool:
    if _CJK.search(word):
        return word in text  # Japanese has no spaces between words
    return re.search(r"(?<!\w)" + re.escape(word), text) is not None


def severity_for(*texts: str | None) -> int:
    """Return the most severe level whose keywords appear in the texts (3 when none do)."""
    text = unicodedata.normalize("NFC", " ".join(t for t in texts if t)).casefold()
    for level in sorted(SEVERITY_KEYWORDS):
        if any(_matches(text, unicodedata.normalize("NFC", w).casefold()) for w in SEVERITY_KEYWORDS[level]):
            return level
    return DEFAULT_SEVERITY


def sla_due(session: Session, config: Config, store_id: int, severity: int, opened_at: datetime) -> datetime:
    """Return when a ticket of this severity must be resolved, from the store's [flows.tickets] settings."""
    settings = flow_settings.effective(session, config, store_id, "tickets")
    hours = float(settings.get(f"sla_hours_severity_{severity}", 72))
    return opened_at + timedelta(hours=hours)


def open_ticket(session: Session, config: Config, *, store_id: int, source: str, severity: int, subject: str,
                now: datetime, customer_id: int | None = None, order_id: int | None = None,
                review_id: int | None = None) -> Ticket:
    """Open a complaint ticket with its SLA clock started now; one per review (survey answers link theirs)."""
    if review_id is not None:
        existing = session.scalar(select(Ticket).where(Ticket.review_id == review_id))
        if existing:
            return existing
    ticket = Ticket(store_id=store_id, source=source, severity=severity, subject=subject[:512], status="open",
                    opened_at=now, sla_due_at=sla_due(session, config, store_id, severity, now),
                    customer_id=customer_id, order_id=order_id, review_id=review_id, created_at=now,
                    updated_at=now)
    session.add(ticket)
    session.flush()
    return ticket


def resolve_ticket(session: Session, ticket_id: int, resolution: str, now: datetime) -> Ticket:
    """Mark a ticket resolved with what was done; waiting review requests and survey follow-ups then proceed."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise LookupError(f"ticket {ticket_id} does not exist")
    if not resolution or not resolution.strip():
        raise ValueError("a resolution is required to resolve a ticket")
    if ticket.status != "resolved":
        ticket.status = "resolved"
        ticket.resolved_at = now
    ticket.resolution = resolution.strip()
    ticket.updated_at = now
    session.flush()
    return ticket


def add_note(session: Session, ticket_id: int, body: str, now: datetime, author: str = "") -> TicketNote:
    """Add a follow-up note (what was done, what was promised) to a ticket."""
    if session.get(Ticket, ticket_id) is None:
        raise LookupError(f"ticket {ticket_id} does not exist")
    if not body or not body.strip():
        raise ValueError("a note needs a body")
    note = TicketNote(ticket_id=ticket_id, body=body.strip(), author=author, created_at=now)
    session.add(note)
    session.flush()
    return note


def breached_tickets(session: Session, store_id: int, now: datetime) -> list[Ticket]:
    """Return the store's open tickets past their SLA due time, most overdue first (for the admin)."""
    return list(session.scalars(
        select(Ticket).where(Ticket.store_id == store_id, Ticket.status == "open", Ticket.sla_due_at < now)
        .order_by(Ticket.sla_due_at, Ticket.id)))


def alert_breaches(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Job: email the merchant once per open ticket whose SLA has passed (flow "ticket_alert")."""
    now = ctx.clock.now()
    with ctx.database.session() as session:
        return alert_breaches_in(session, store_id, now)


def alert_breaches_in(session: Session, store_id: int, now: datetime) -> dict[str, Any]:
    """Write one ticket_alert message per newly breached ticket and stamp the tickets as alerted."""
    store = session.get(Store, store_id)
    if store is None:
        return {"alerts": 0}
    merchant = session.get(Merchant, store.merchant_id)
    address = (merchant.alert_email or merchant.sender_email) if merchant else None
    due = session.execute(
        select(Ticket.id, Ticket.severity, Ticket.subject, Ticket.sla_due_at, Ticket.customer_id, Ticket.order_id)
        .where(Ticket.store_id == store_id, Ticket.status == "open", Ticket.sla_due_at < now,
               Ticket.sla_alerted_at.is_(None))).all()
    rows = []
    for ticket_id, severity, subject, due_at, customer_id, order_id in due:
        extra: dict[str, Any] = {} if address else {"status": "skipped", "skip_reason": "no merchant address"}
        rows.append(message_row(
            store_id=store_id, flow="ticket_alert", step="main", key_parts=(f"ticket={ticket_id}",),
            scheduled_for=now, ticket_id=ticket_id, order_id=order_id, to_address=address,
            locale=store.primary_locale,
            subject=f"SLA breached: ticket #{ticket_id} (severity {severity})",
            payload={"ticket_id": ticket_id, "severity": severity, "ticket_subject": subject,
                     "sla_due_at": due_at.isoformat(), "customer_id": customer_id}, **extra))
    new = write_messages(session, rows, now)
    if due:
        session.execute(update(Ticket).where(Ticket.id.in_([r[0] for r in due])).values(sla_alerted_at=now)
                        .execution_options(synchronize_session=False))
    return {"alerts": len(new)}
