"""The ``review_reply`` channel: a public reply to a review, posted through the review app (Judge.me).

Judge.me keeps one reply per review and a second post replaces it, so resending after a crash is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session

from connectors.reviews.judgeme import JudgemeClient, JudgemeError, JudgemeRequestRejected
from plugin.context import JobContext
from plugin.messaging.channels.base import DeliveryError, Sender
from plugin.messaging.policy import Decision
from plugin.models import Message, Review, Store
from plugin.secrets_store import get_credential


@dataclass(frozen=True)
class PreparedReply:
    """A reply ready to post."""

    shop_domain: str
    api_token: str
    review_external_id: str
    body: str


class ReviewReplyChannel:
    """Posts approved or automatic review replies through Judge.me's ``POST /api/v1/replies``."""

    name = "review_reply"

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.base_url = str(ctx.extras.get("judgeme_base_url") or ctx.config.get("judgeme.base_url"))
        self.timeout = ctx.config.get("judgeme.request_timeout_seconds")

    def prepare(self, session: Session, message: Message, decision: Decision) -> PreparedReply:
        """Read the review, the reply text and the store's Judge.me token."""
        review = session.get(Review, message.review_id) if message.review_id else None
        payload = message.payload or {}
        external_id = payload.get("review_external_id") or (review.external_id if review else None)
        body = payload.get("body") or (review.reply_body if review else None)
        if not external_id or not body:
            raise DeliveryError("the reply has no review or no text", permanent=True)
        store = session.get(Store, message.store_id)
        token = get_credential(store, self.ctx.vault, "review_app_token_enc") if store else None
        if not token:
            raise DeliveryError("the store has no review app token", permanent=True)
        return PreparedReply(shop_domain=store.external_id, api_token=token, review_external_id=str(external_id),
                             body=str(body))

    @contextmanager
    def connection(self) -> Iterator[Sender]:
        """Yield a sender that posts each reply with a client per shop (clients share nothing across shops)."""
        clients: dict[tuple[str, str], JudgemeClient] = {}

        def send(prepared: PreparedReply, check: Callable[[], None]) -> str | None:
            key = (prepared.shop_domain, prepared.api_token)
            if key not in clients:
                clients[key] = JudgemeClient(prepared.shop_domain, prepared.api_token, base_url=self.base_url,
                                             timeout=self.timeout, sleep=self.ctx.sleep)
            check()
            try:
                posted = clients[key].post_reply(prepared.review_external_id, prepared.body)
            except JudgemeRequestRejected as exc:
                raise DeliveryError(f"Judge.me rejected the reply: {exc}", permanent=True) from exc
            except JudgemeError as exc:
                raise DeliveryError(f"Judge.me: {exc}", permanent=False) from exc
            return posted.reply_external_id

        try:
            yield send
        finally:
            for client in clients.values():
                client.close()

    def after_sent(self, session: Session, message_id: int, prepared: PreparedReply) -> None:
        """Mark the review as replied."""
        message = session.get(Message, message_id)
        if message is None or message.review_id is None:
            return
        review = session.get(Review, message.review_id)
        if review is not None:
            review.reply_body = prepared.body
            review.reply_status = "sent"
            review.replied_at = self.ctx.clock.now()
