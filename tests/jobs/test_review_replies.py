"""Judge.me replies: auto-reply 4-5★ in the review's language, draft + ticket for 1-3★, approval."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from plugin.flows import review_reply, runner
from plugin.models import Message, Review, Template, Ticket
from tests.jobs import factory as f


def test_positive_auto_reply_negative_draft_and_ticket(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s, primary_locale="en")
        c = f.customer(s, st.id)
        s.add(Template(store_id=st.id, flow="review_reply", step="positive", locale="fr", subject="",
                       body_html="<p>Merci {name}</p>", body_text="Merci {name} !"))
        r5 = f.review(s, st.id, rating=5, created=now - timedelta(hours=2), language="de", reviewer_name="Anna M",
                      customer_id=c.id)
        r4 = f.review(s, st.id, rating=4, created=now - timedelta(hours=2), language="fr-FR", reviewer_name="Luc")
        r1 = f.review(s, st.id, rating=1, created=now - timedelta(hours=1), body="Das ist eine Fälschung!",
                      language="de")
        r2 = f.review(s, st.id, rating=2, created=now - timedelta(hours=1), title="箱が壊れていました", language="ja")
        r3 = f.review(s, st.id, rating=3, created=now - timedelta(hours=1), body="Llegó con mucho retraso",
                      language="es")
        r3b = f.review(s, st.id, rating=3, created=now - timedelta(hours=1), body="meh", language=None)
        old = f.review(s, st.id, rating=5, created=now - timedelta(days=40))
        amazon = f.review(s, st.id, rating=1, created=now, source="amazon_feedback")
        sid = st.id
    assert runner.run_review_reply(ctx, sid) == {"auto_replies": 2, "drafts": 4, "tickets": 4}
    assert runner.run_review_reply(ctx, sid) == {"auto_replies": 0, "drafts": 0, "tickets": 0}
    with ctx.database.session() as s:
        msgs = {m.review_id: m for m in s.scalars(select(Message))}
        assert set(msgs) == {r5.id, r4.id}
        assert (msgs[r5.id].channel, msgs[r5.id].locale) == ("review_reply", "de")
        assert msgs[r5.id].payload["body"].startswith("Vielen Dank für Ihre Bewertung, Anna!")
        assert msgs[r4.id].payload["body"] == "Merci Luc !"
        tickets = {t.review_id: (t.severity, t.sla_due_at - t.opened_at, t.source, t.status)
                   for t in s.scalars(select(Ticket))}
        assert tickets == {r1.id: (1, timedelta(hours=1), "review", "open"),
                           r2.id: (2, timedelta(hours=24), "review", "open"),
                           r3.id: (3, timedelta(hours=72), "review", "open"),
                           r3b.id: (3, timedelta(hours=72), "review", "open")}
        statuses = {r.id: r.reply_status for r in s.scalars(select(Review))}
        assert statuses == {r5.id: "approved", r4.id: "approved", r1.id: "draft", r2.id: "draft", r3.id: "draft",
                            r3b.id: "draft", old.id: "none", amazon.id: "none"}
        assert "申し訳" in s.get(Review, r2.id).reply_body
        assert s.get(Review, r3b.id).reply_body.startswith("We're sorry")
    with ctx.database.session() as s:
        m = review_reply.approve_reply(s, r1.id, "  Wir ersetzen das Produkt sofort.  ", now)
        assert (m.status, m.payload["body"], m.locale, m.review_id) == ("scheduled", "Wir ersetzen das Produkt sofort.",
                                                                         "de", r1.id)
        again = review_reply.approve_reply(s, r1.id, "Neuer Text", now)
        assert again.id == m.id and again.payload["body"] == "Neuer Text"
        again.status = "sent"
        s.get(Review, r1.id).reply_status = "sent"
    with ctx.database.session() as s, pytest.raises(ValueError, match="already answered"):
        review_reply.approve_reply(s, r1.id, "x", now)
    with ctx.database.session() as s:
        with pytest.raises(ValueError, match="needs a body"):
            review_reply.approve_reply(s, r2.id, "  ", now)
        with pytest.raises(ValueError, match="amazon_feedback"):
            review_reply.approve_reply(s, amazon.id, "thanks", now)
        with pytest.raises(LookupError):
            review_reply.approve_reply(s, 10**9, "thanks", now)
