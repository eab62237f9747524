"""The review_reply channel posts approved replies through the real Judge.me client to the Judge.me sandbox."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs.dispatch import dispatch_due
from plugin.context import JobContext
from plugin.messaging import outbox
from plugin.models import Message, Review
from plugin.secrets_store import set_credential
from sandbox.judgeme import JudgemeSandbox
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW

TOKEN = "jm-private-token"  # noqa: S105
PRODUCTS = [{"id": 8000000001, "handle": "soap", "title": "Soap"}]
REVIEWERS = [{"email": "alice@example.com", "name": "Alice"}]


def test_reply_is_posted_and_the_review_marked_replied(app, clock) -> None:
    with JudgemeSandbox(seed=3, shops={seed.SHOP: TOKEN}, products=PRODUCTS, reviewers=REVIEWERS,
                        reviews_per_product=2, clock=clock) as judgeme:
        late = IN_WINDOW.replace(hour=23)
        clock.set(late)
        ctx = JobContext.from_app(app, sleep=lambda _s: None, extras={"judgeme_base_url": judgeme.url})
        remote = judgeme.reviews(seed.SHOP)[0]
        with ctx.database.session() as s:
            store = seed.store(s)
            set_credential(store, ctx.vault, "review_app_token_enc", TOKEN)
            review = Review(store_id=store.id, source="judgeme", external_id=str(remote.id), rating=5,
                            body="Lovely", created_at_remote=datetime(2026, 3, 1, tzinfo=UTC), reply_status="approved")
            s.add(review)
            s.flush()
            # Review replies are public posts, not customer emails: no send window applies (23:00 is fine).
            message = outbox.enqueue(s, store_id=store.id, flow="review_reply", channel="review_reply",
                                     idempotency_key=f"{store.id}:review_reply:review={review.id}",
                                     scheduled_for=late, review_id=review.id,
                                     payload={"body": "Thank you, Alice!", "review_external_id": str(remote.id)})
            ids = (message.id, review.id)
        assert dispatch_due(ctx, channels=["review_reply"]) == {"sent": 1}
        [reply] = judgeme.replies(seed.SHOP)
        assert (reply.review_id, reply.content, reply.send_reply_email) == (remote.id, "Thank you, Alice!", False)
        with ctx.database.session() as s:
            row = s.get(Message, ids[0])
            assert (row.status, row.provider_id) == ("sent", str(reply.id))
            review = s.get(Review, ids[1])
            assert (review.reply_status, review.reply_body, review.replied_at) == ("sent", "Thank you, Alice!", late)


def test_missing_token_fails_the_reply_without_calling_judgeme(ctx: JobContext) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)
        review = Review(store_id=store.id, source="judgeme", external_id="42", rating=5,
                        created_at_remote=datetime(2026, 3, 1, tzinfo=UTC))
        s.add(review)
        s.flush()
        message_id = outbox.enqueue(s, store_id=store.id, flow="review_reply", channel="review_reply",
                                    idempotency_key="r-42", scheduled_for=IN_WINDOW, review_id=review.id,
                                    payload={"body": "Thanks"}).id
    assert dispatch_due(ctx) == {"failed": 1}
    with ctx.database.session() as s:
        row = s.get(Message, message_id)
        assert (row.status, row.last_error) == ("failed", "the store has no review app token")
