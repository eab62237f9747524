"""Surveys (due time, answers, detractor tickets, follow-ups) and tickets (SLA, breach alert once, notes)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from plugin import tickets
from plugin.flows import runner, survey
from plugin.models import Message, SurveyResponse, Ticket
from tests.jobs import factory as f

DAY = timedelta(days=1)


def _survey_messages(ctx):
    with ctx.database.session() as s:
        return {(m.order_id, m.step): (m.status, m.skip_reason, m.marketing)
                for m in s.scalars(select(Message).where(Message.flow == "survey"))}


@pytest.mark.parametrize(("text", "level"), [
    ("This is a FAKE", 1), ("contrefaçon évidente", 1), ("es falsificado", 1), ("偽物でした", 1),
    ("arrived broken", 2), ("Wrong colour", 2), ("völlig kaputt", 2), ("produit cassé", 2), ("llegó roto", 2),
    ("ケースが壊れていた", 2), ("very late", 3), ("verspätet", 3), ("grand retard", 3), ("遅い", 3),
    ("meh", 3), ("", 3), ("abroad mistake", 3), ("late and broken and fake", 1),
])
def test_severity_keywords_in_several_languages(text, level):
    assert tickets.severity_for(text) == level


def test_survey_due_answer_detractor_ticket_followups(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        a, b = f.customer(s, st.id), f.customer(s, st.id, consent=False)
        oa = f.order(s, st.id, a.id, now - 20 * DAY, delivered_at=now - 10 * DAY)
        ob = f.order(s, st.id, b.id, now - 20 * DAY, delivered_at=now - 10 * DAY - timedelta(hours=3))
        early = f.order(s, st.id, a.id, now - 20 * DAY, delivered_at=now - 9 * DAY)
        gone = f.order(s, st.id, a.id, now - 20 * DAY, delivered_at=now - 11 * DAY, returned=True)
        sid = st.id
    assert runner.run_survey(ctx, sid) == {"surveys": 2, "skipped": 1}
    assert _survey_messages(ctx) == {(oa.id, "main"): ("scheduled", None, False),
                                     (ob.id, "main"): ("scheduled", None, False),
                                     (gone.id, "main"): ("skipped", "order_returned", False)}
    assert early.id
    with ctx.database.session() as s:
        ma = s.scalar(select(Message).where(Message.order_id == oa.id)).id
        mb = s.scalar(select(Message).where(Message.order_id == ob.id)).id
        with pytest.raises(ValueError, match="0 to 10"):
            survey.record_answer(s, ma, 11, None, now, ctx.config)
        promoter = survey.record_answer(s, ma, 9, "love it", now, ctx.config)
        assert promoter.ticket_id is None
        detractor = survey.record_answer(s, mb, 3, None, now, ctx.config)
        # adding a comment later updates the same answer and does not open a second ticket
        again = survey.record_answer(s, mb, 3, "parcel was damaged", now + timedelta(minutes=5), ctx.config)
        assert again.id == detractor.id and again.comment == "parcel was damaged"
        tid = detractor.ticket_id
        t = s.get(Ticket, tid)
        assert (t.source, t.severity, t.status, t.customer_id, t.order_id) == ("survey", 3, "open", b.id, ob.id)
        assert s.scalar(select(SurveyResponse).where(SurveyResponse.id == detractor.id)).score == 3
    with ctx.database.session() as s:
        assert len(s.scalars(select(Ticket)).all()) == 1
        tickets.add_note(s, tid, "called the customer, replacement sent", now, author="ops")
        tickets.resolve_ticket(s, tid, "We now ship in stronger boxes.", now + DAY)
    # The detractor's ticket is followed through by the complaint follow-through, like every ticket.
    ctx.clock.set(now + 8 * DAY - timedelta(minutes=1))
    assert runner.run_ticket_followup(ctx, sid)["followups"] == 0
    ctx.clock.set(now + 8 * DAY)
    assert runner.run_ticket_followup(ctx, sid)["followups"] == 1
    ctx.clock.set(now + 31 * DAY)
    assert runner.run_ticket_followup(ctx, sid) == {"followups": 0, "comebacks": 1, "skipped": 0}
    with ctx.database.session() as s:
        rows = {m.step: m for m in s.scalars(select(Message).where(Message.ticket_id == tid))}
        assert rows["followup"].payload["resolution"] == "We now ship in stronger boxes."
        assert (rows["followup"].marketing, rows["comeback"].marketing) == (False, True)
        assert rows["comeback"].payload["discount_percent"] == 10
        assert rows["comeback"].to_address == b.email  # consent is the send policy's check at dispatch


def test_sla_breach_alerts_merchant_once(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s, alert_email="alerts@merchant.test")
        t1 = tickets.open_ticket(s, ctx.config, store_id=st.id, source="manual", severity=1, subject="fake",
                                 now=now)
        t2 = tickets.open_ticket(s, ctx.config, store_id=st.id, source="manual", severity=2, subject="broken",
                                 now=now)
        t3 = tickets.open_ticket(s, ctx.config, store_id=st.id, source="manual", severity=1, subject="fake 2",
                                 now=now)
        tickets.resolve_ticket(s, t3.id, "refunded", now + timedelta(minutes=30), remedy="refund")
        sid = st.id
    ctx.clock.set(now + timedelta(minutes=59))
    # Severity 1 (t1; t3 was resolved first): the urgent alert at once, before any SLA passes.
    assert runner.run_ticket_alert(ctx, sid) == {"urgent": 1, "alerts": 0, "opened": 0}
    ctx.clock.set(now + timedelta(hours=2))
    assert runner.run_ticket_alert(ctx, sid) == {"urgent": 0, "alerts": 1, "opened": 0}
    assert runner.run_ticket_alert(ctx, sid) == {"urgent": 0, "alerts": 0, "opened": 0}
    with ctx.database.session() as s:
        assert [t.id for t in tickets.breached_tickets(s, sid, ctx.clock.now())] == [t1.id]
        m = s.scalar(select(Message).where(Message.flow == "ticket_alert", Message.step == "main"))
        assert (m.ticket_id, m.to_address, m.status, m.marketing) == (t1.id, "alerts@merchant.test", "scheduled",
                                                                       False)
    ctx.clock.set(now + timedelta(hours=25))
    assert runner.run_ticket_alert(ctx, sid) == {"urgent": 0, "alerts": 1, "opened": 0}
    with ctx.database.session() as s:
        assert [t.id for t in tickets.breached_tickets(s, sid, ctx.clock.now())] == [t1.id, t2.id]
        with pytest.raises(ValueError):
            tickets.resolve_ticket(s, t1.id, " ", now)
        with pytest.raises(LookupError):
            tickets.resolve_ticket(s, 10**9, "done", now)
