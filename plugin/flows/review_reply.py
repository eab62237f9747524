"""Judge.me review replies: 4-5★ get the store's auto-reply; 1-3★ get a draft to approve and a ticket.

The reply itself is an outbox message on the ``review_reply`` channel; the dispatcher posts it with
Judge.me's ``POST /api/v1/replies`` (https://judge.me/api/docs#tag/Replies).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from plugin import flow_schemas
from plugin.config import Config
from plugin.flows.base import Flow, FlowRun, Rows, Step
from plugin.messaging.outbox import find, idempotency_key, message_row, schedule
from plugin.models import Message, Review, Store, Template, Ticket
from plugin.tickets import open_ticket, severity_for

NAME = "review_reply"
SOURCE = "judgeme"
# Reviews older than this when first seen (a backfill on install) are left alone.
MAX_AGE_DAYS = 30

# Shipped texts; a merchant's Template row (flow review_reply, step "positive"/"draft", locale) wins.
POSITIVE = {
    "en": "Thank you so much for your review, {name}! We're delighted you're happy with it.",
    "de": "Vielen Dank für Ihre Bewertung, {name}! Es freut uns sehr, dass Sie zufrieden sind.",
    "fr": "Merci beaucoup pour votre avis, {name} ! Nous sommes ravis que vous soyez satisfait.",
    "es": "¡Muchas gracias por tu reseña, {name}! Nos alegra mucho que estés contento.",
    "it": "Grazie mille per la tua recensione, {name}! Siamo felici che tu sia soddisfatto.",
    "nl": "Hartelijk dank voor je review, {name}! Fijn dat je tevreden bent.",
    "pt": "Muito obrigado pela sua avaliação, {name}! Ficamos felizes por estar satisfeito.",
    "ja": "{name}様、レビューをありがとうございます！ご満足いただけて大変嬉しく思います。",
}
DRAFT = {
    "en": "We're sorry to hear this, {name}. We've opened a case and will contact you shortly to make it right.",
    "de": "Das tut uns leid, {name}. Wir haben einen Fall eröffnet und melden uns in Kürze, um das zu klären.",
    "fr": "Nous sommes désolés, {name}. Nous avons ouvert un dossier et vous contacterons très vite.",
    "es": "Sentimos mucho lo ocurrido, {name}. Hemos abierto un caso y te contactaremos en breve.",
    "it": "Ci dispiace, {name}. Abbiamo aperto una pratica e ti contatteremo a breve per rimediare.",
    "nl": "Wat vervelend, {name}. We hebben een melding aangemaakt en nemen snel contact met je op.",
    "pt": "Lamentamos muito, {name}. Abrimos um caso e entraremos em contacto em breve.",
    "ja": "{name}様、ご迷惑をおかけし申し訳ございません。担当者より早急にご連絡いたします。",
}


def language_of(review_language: str | None, store_locale: str | None) -> str:
    """Return the two-letter language to answer in: the review's, else the store's, else English."""
    for candidate in (review_language, store_locale):
        if candidate:
            return candidate.replace("_", "-").split("-")[0].lower()
    return "en"


def reply_text(session: Session, store_id: int, step: str, language: str, name: str | None) -> tuple[str, str]:
    """Return (text, language used) for a reply: the store's template for the language, else the shipped one."""
    shipped = POSITIVE if step == "positive" else DRAFT
    for lang in (language, "en"):
        template = session.scalar(select(Template).where(Template.store_id == store_id, Template.flow == NAME,
                                                         Template.step == step, Template.locale == lang))
        text = template.body_text or template.body_html if template else shipped.get(lang)
        if text:
            return text.replace("{name}", (name or "").split(" ")[0] or "there").replace("  ", " "), lang
    raise LookupError(f"no {step} reply text")  # unreachable: English is shipped


def due_replies(run: FlowRun) -> Rows:
    """Step: auto-reply rows for positive new reviews; drafts and tickets for the negative ones (counted)."""
    counts, rows = handle_new_reviews(run.session, run.config, run.store, run.settings, run.now)
    for name, value in counts.items():
        run.counts[name] += value
    return rows


def handle_new_reviews(session: Session, config: Config, store: Store, settings: Mapping[str, Any],
                       now: datetime) -> tuple[dict[str, int], Rows]:
    """Approve replies to positive new reviews and draft + ticket the negative ones; return counts and rows."""
    threshold = int(settings["auto_reply_min_rating"])
    has_ticket = exists().where(Ticket.review_id == Review.id)
    reviews = session.scalars(
        select(Review).where(Review.store_id == store.id, Review.source == SOURCE, Review.reply_status == "none",
                             Review.created_at_remote > now - timedelta(days=MAX_AGE_DAYS), ~has_ticket)
        .order_by(Review.id)).all()
    counts = {"auto_replies": 0, "drafts": 0, "tickets": 0}
    rows = []
    texts: dict[tuple[str, str], tuple[str, str]] = {}

    def text_for(step: str, language: str, name: str | None) -> tuple[str, str]:
        # One template lookup per step and language per run, not per review.
        if (step, language) not in texts:
            texts[(step, language)] = reply_text(session, store.id, step, language, "{name}")
        template, used = texts[(step, language)]
        return template.replace("{name}", (name or "").split(" ")[0] or "there"), used

    for review in reviews:
        language = language_of(review.language, store.primary_locale)
        if review.rating >= threshold:
            text, used = text_for("positive", language, review.reviewer_name)
            review.reply_body, review.reply_status = text, "approved"
            rows.append(_reply_row(review, text, used, now))
            counts["auto_replies"] += 1
        else:
            text, _used = text_for("draft", language, review.reviewer_name)
            review.reply_body, review.reply_status = text, "draft"
            subject = f"{review.rating}★ review: {review.title or (review.body or '')[:80]}"
            open_ticket(session, config, store_id=store.id, source="review",
                        severity=severity_for(review.title, review.body), subject=subject, now=now,
                        customer_id=review.customer_id, order_id=review.order_id, review_id=review.id)
            counts["drafts"] += 1
            counts["tickets"] += 1
    return counts, rows


def _reply_row(review: Review, body: str, locale: str, now: datetime) -> dict[str, Any]:
    return message_row(store_id=review.store_id, flow=NAME, step="main", key_parts=(f"review={review.id}",),
                       scheduled_for=now, channel="review_reply", review_id=review.id, order_id=review.order_id,
                       customer_id=review.customer_id, product_id=review.product_id, locale=locale,
                       payload={"body": body, "review_external_id": review.external_id, "source": review.source})


def approve_reply(session: Session, review_id: int, body: str, now: datetime) -> Message:
    """Approve a (possibly edited) reply from the inbox and queue it for posting; return its message."""
    review = session.get(Review, review_id)
    if review is None:
        raise LookupError(f"review {review_id} does not exist")
    if review.source != SOURCE:
        raise ValueError(f"{review.source} reviews cannot be answered through an API")
    if not body or not body.strip():
        raise ValueError("a reply needs a body")
    if review.reply_status in ("sending", "sent"):
        raise ValueError(f"review {review_id} was already answered")
    review.reply_body, review.reply_status = body.strip(), "approved"
    store = session.get(Store, review.store_id)
    locale = language_of(review.language, store.primary_locale if store else None)
    schedule(session, [_reply_row(review, review.reply_body, locale, now)], now)
    message = find(session, idempotency_key(review.store_id, NAME, f"review={review.id}", "step=main"))
    if message is None:
        raise LookupError("reply message missing after enqueue")  # the insert-if-absent guarantees one
    if message.status in ("scheduled", "failed"):
        # A re-approval after an edit (or a failed post) sends the latest text.
        message.payload = {**(message.payload or {}), "body": review.reply_body}
        message.status = "scheduled"
    session.flush()
    return message


FLOW = Flow(
    name=NAME,
    title="Review replies",
    about="Thank 4-5 star reviews automatically; draft replies to 1-3 stars for approval.",
    flow_class="service",
    platforms=("shopify",),
    trigger="event: a new Judge.me review synced (read by the run's due query: reviews with no reply yet)",
    audience=(f"Judge.me reviews younger than {MAX_AGE_DAYS} days with no reply and no ticket",),
    timing="on the next run after the review arrives (every 15 minutes)",
    steps=(
        Step("main", due_replies, "public reply: automatic from auto_reply_min_rating up, else a draft to "
             "approve in the inbox and a complaint ticket"),
    ),
    exits=(),
    idempotency_key="<store>:review_reply:review=<review id>:step=main",
    settings=flow_schemas.REVIEW_REPLY,
    counts=("auto_replies", "drafts", "tickets"),
    # A public reply on the review, not a message to the customer: no holdout.
    customer_facing=False,
)
