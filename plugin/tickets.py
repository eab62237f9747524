"""Complaint tickets: severity from keywords, SLA due times, resolution, notes (alerts: plugin.flows.ticket_alert)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.config import Config
from plugin.messaging.templates import offer_words
from plugin.models import TICKET_REMEDIES, Ticket, TicketNote

SETTINGS_SECTION = "tickets"
DEFAULT_SLA_HOURS = 72

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
    settings = flow_settings.effective(session, config, store_id, SETTINGS_SECTION)
    hours = float(settings.get(f"sla_hours_severity_{severity}", DEFAULT_SLA_HOURS))
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


# The words the admin offers when a ticket is resolved, by what opened it; the merchant edits them.
SUGGESTED_CHANGES: dict[str, str] = {
    "review": "Thank you for your review. We looked into what went wrong and changed how we check every order "
              "before it leaves.",
    "survey": "Thank you for your honest score. We looked into what went wrong and changed how we handle "
              "orders like yours.",
    "feedback": "Thank you for your feedback. We changed how we check every order before it ships.",
    "delivery": "We have spoken to our carrier about your delivery and now check every parcel's tracking until it "
                "arrives.",
    "cancellation": "You told us delivery was too slow. We now ship orders faster and tell you the expected "
                    "delivery date up front.",
    "manual": "Thank you for telling us. Here is what we changed so it does not happen again.",
}
SUGGESTED_SEVERITY_1 = ("Thank you for alerting us. We withdrew the item, checked our supplier and our stock, "
                        "and changed how we check every batch before it ships.")


def suggested_resolution(ticket: Ticket) -> str:
    """Return the suggested "what we changed" text for a ticket (by severity and source), for the merchant to edit."""
    if ticket.severity == 1:
        return SUGGESTED_SEVERITY_1
    return SUGGESTED_CHANGES.get(ticket.source, SUGGESTED_CHANGES["manual"])


def resolve_ticket(session: Session, ticket_id: int, resolution: str, now: datetime,
                   remedy: str | None = None) -> Ticket:
    """Mark a ticket resolved with what the store changed; waiting review requests and the follow-through proceed.

    A severity-1 ticket (counterfeit or safety) also needs the remedy the customer was given (TICKET_REMEDIES):
    the follow-up names it.
    """
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise LookupError(f"ticket {ticket_id} does not exist")
    if not resolution or not resolution.strip():
        raise ValueError("a resolution is required to resolve a ticket")
    # The follow-through quotes the resolution in a service email, sent without marketing consent: no offer.
    offered = offer_words(resolution)
    if offered:
        raise ValueError(f"a resolution is quoted to the customer and may hold no offer ({', '.join(offered)}); "
                         "offer a discount in the come-back offer instead")
    remedy = (remedy or "").strip().lower() or None
    if remedy is not None and remedy not in TICKET_REMEDIES:
        raise ValueError(f"the remedy must be one of: {', '.join(TICKET_REMEDIES)}")
    if ticket.severity == 1 and remedy is None:
        raise ValueError("a severity-1 ticket (counterfeit or safety) needs a remedy: "
                         f"{', '.join(TICKET_REMEDIES)}")
    if ticket.status != "resolved":
        ticket.status = "resolved"
        ticket.resolved_at = now
    ticket.remedy = remedy
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

