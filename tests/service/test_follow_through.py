"""The complaint follow-through of every resolved ticket, severity-1 alerts and remedies, Amazon sellers, and the
template check that keeps offers out of service and transactional email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from jobs.dispatch import dispatch_due
from plugin import flow_settings, tickets
from plugin.flows import FLOWS, runner
from plugin.messaging import locales, templates
from plugin.models import Message, Ticket
from sandbox.smtp import SmtpSandbox
from tests.conftest import wipe
from tests.jobs import factory as f
from tests.shopify_sync_harness import make_harness

DAY = timedelta(days=1)
SOURCES = ("review", "survey", "feedback", "delivery", "cancellation", "manual")
# Tuesday 2026-03-03 09:30 London: inside the default window.
IN_WINDOW = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)


def _messages(ctx, flow):
    with ctx.database.session() as s:
        return {(m.ticket_id, m.step): (m.status, m.marketing, m.payload) for m in
                s.scalars(select(Message).where(Message.flow == flow))}


def test_every_resolved_ticket_is_followed_through_whatever_opened_it(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        sid = st.id
        ids = {}
        for n, source in enumerate(SOURCES):
            c = f.customer(s, st.id, consent=n % 2 == 0)
            o = f.order(s, st.id, c.id, now - 20 * DAY)
            ids[source] = tickets.open_ticket(s, ctx.config, store_id=st.id, source=source, severity=3,
                                              subject=source, now=now, customer_id=c.id, order_id=o.id).id
        severe_customer = f.customer(s, st.id)
        severe = tickets.open_ticket(s, ctx.config, store_id=st.id, source="review", severity=1,
                                     subject="this is a fake", now=now, customer_id=severe_customer.id).id
        nobody = tickets.open_ticket(s, ctx.config, store_id=st.id, source="manual", severity=2, subject="no customer",
                                     now=now).id
        still_open = tickets.open_ticket(s, ctx.config, store_id=st.id, source="manual", severity=3, subject="open",
                                         now=now, customer_id=f.customer(s, st.id).id).id
        for tid in [*ids.values(), nobody]:
            tickets.resolve_ticket(s, tid, "We now pack every bottle in recycled paper.", now + DAY)
        # A severity-1 ticket cannot be resolved without choosing what the customer gets.
        with pytest.raises(ValueError, match="needs a remedy"):
            tickets.resolve_ticket(s, severe, "Supplier changed", now + DAY)
        with pytest.raises(ValueError, match="must be one of"):
            tickets.resolve_ticket(s, severe, "Supplier changed", now + DAY, remedy="voucher")
        tickets.resolve_ticket(s, severe, "We changed our supplier.", now + DAY, remedy="replacement")
        assert s.get(Ticket, still_open).status == "open"
    resolved = set(ids.values()) | {severe}  # the ticket without a customer gets nothing
    ctx.clock.set(now + 8 * DAY - timedelta(minutes=1))
    assert runner.run_ticket_followup(ctx, sid) == {"followups": 0, "comebacks": 0, "skipped": 0}
    ctx.clock.set(now + 8 * DAY)
    assert runner.run_ticket_followup(ctx, sid) == {"followups": len(resolved), "comebacks": 0, "skipped": 0}
    rows = _messages(ctx, "ticket_followup")
    assert {tid for tid, _step in rows} == resolved
    assert all(marketing is False for _status, marketing, _p in rows.values())
    assert rows[(severe, "followup")][2]["remedy"] == "replacement"
    assert rows[(ids["delivery"], "followup")][2] == {"resolution": "We now pack every bottle in recycled paper.",
                                                      "remedy": None, "source": "delivery", "severity": 3}
    ctx.clock.set(now + 31 * DAY)
    assert runner.run_ticket_followup(ctx, sid) == {"followups": 0, "comebacks": len(resolved), "skipped": 0}
    rows = _messages(ctx, "ticket_followup")
    comebacks = {tid: v for (tid, step), v in rows.items() if step == "comeback"}
    assert set(comebacks) == resolved
    assert all(marketing and payload["discount_percent"] == 10 for _s, marketing, payload in comebacks.values())
    # The survey no longer writes follow-ups of its own: one follow-through for every ticket.
    assert runner.run_survey(ctx, sid) == {"surveys": 0, "skipped": 0}
    # Switched off step by step from the declared settings.
    with ctx.database.session() as s:
        flow_settings.update(s, ctx.config, sid, "ticket_followup", {"followup_enabled": False},
                             FLOWS["ticket_followup"].settings)
        t2 = tickets.open_ticket(s, ctx.config, store_id=sid, source="manual", severity=3, subject="x",
                                 now=now + 20 * DAY, customer_id=f.customer(s, sid).id).id
        tickets.resolve_ticket(s, t2, "Fixed.", now + 23 * DAY)
    assert runner.run_ticket_followup(ctx, sid)["followups"] == 0


def test_severity_1_alerts_the_merchant_at_once(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s, alert_email="alerts@merchant.test")
        sid = st.id
        fake = tickets.open_ticket(s, ctx.config, store_id=sid, source="review", severity=tickets.severity_for(
            "this is a counterfeit"), subject="counterfeit", now=now).id
        tickets.open_ticket(s, ctx.config, store_id=sid, source="review", severity=2, subject="broken", now=now)
    # The same run that sees the ticket alerts, long before its one-hour SLA passes; a rerun alerts nobody again.
    assert runner.run_ticket_alert(ctx, sid) == {"urgent": 1, "alerts": 0, "opened": 0}
    assert runner.run_ticket_alert(ctx, sid) == {"urgent": 0, "alerts": 0, "opened": 0}
    with ctx.database.session() as s:
        [m] = s.scalars(select(Message).where(Message.flow == "ticket_alert")).all()
        assert (m.step, m.ticket_id, m.to_address, m.marketing) == ("urgent", fake, "alerts@merchant.test", False)
        assert s.get(Ticket, fake).sla_due_at == now + timedelta(hours=1)  # the shortest SLA


def test_amazon_buyers_get_none_of_the_service_emails(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s, platform="amazon")
        sid = st.id
        c = f.customer(s, sid, email=None)
        f.order(s, sid, c.id, now - 3 * 3600 * timedelta(seconds=1), cancelled_at=now - 2 * 3600 *
                timedelta(seconds=1), cancel_reason="CUSTOMER")
        f.order(s, sid, c.id, now - 3 * 3600 * timedelta(seconds=1))
        t = tickets.open_ticket(s, ctx.config, store_id=sid, source="feedback", severity=3, subject="late",
                                now=now - 40 * DAY, customer_id=c.id).id
        tickets.resolve_ticket(s, t, "Faster carrier", now - 30 * DAY)
    for run in (runner.run_first_order, runner.run_cancellation, runner.run_ticket_followup):
        assert run(ctx, sid) == {"inactive": 1}
    with ctx.database.session() as s:
        assert s.scalars(select(Message).where(Message.store_id == sid)).all() == []


def test_no_consent_no_offer_and_one_code_however_often_the_dispatch_is_retried(database, tmp_path: Path) -> None:
    harness = make_harness(database, tmp_path, customers=3, orders=3)
    try:
        with SmtpSandbox() as smtp:
            harness.ctx.extras["smtp_url"] = f"smtp://127.0.0.1:{smtp.port}"
            harness.clock.set(IN_WINDOW - 30 * DAY)
            remote = harness.sandbox.store.customers
            with database.session() as s:
                consented = f.customer(s, harness.store_id, consent=True, locale="de", time_zone="Europe/London",
                                       country="GB")
                refused = f.customer(s, harness.store_id, consent=False, time_zone="Europe/London", country="GB")
                # The code is made for the customer's Shopify id (what the sync stores: the numeric id).
                consented.external_id, refused.external_id = str(remote[0].id), str(remote[1].id)
                for c, severity in ((consented, 1), (refused, 3)):
                    t = tickets.open_ticket(s, harness.ctx.config, store_id=harness.store_id, source="survey",
                                            severity=severity, subject="x", now=IN_WINDOW - 31 * DAY,
                                            customer_id=c.id)
                    tickets.resolve_ticket(s, t.id, "Neue Verpackung.", IN_WINDOW - 30 * DAY,
                                           remedy="replacement" if severity == 1 else None)
            harness.clock.set(IN_WINDOW - 23 * DAY)
            assert runner.run_ticket_followup(harness.ctx, harness.store_id)["followups"] == 2
            harness.clock.set(IN_WINDOW)
            assert runner.run_ticket_followup(harness.ctx, harness.store_id)["comebacks"] == 2
            assert dispatch_due(harness.ctx) == {"sent": 3, "skipped": 1, "skipped:no_consent": 1}
            with database.session() as s:
                rows = {(m.customer_id, m.step): m for m in s.scalars(select(Message))}
                code = rows[(consented.id, "comeback")].payload["discount_code"]
                assert rows[(refused.id, "comeback")].skip_reason == "no_consent"
                assert rows[(refused.id, "followup")].status == "sent"  # service: no consent needed
            codes = [d for d in harness.sandbox.shop_state().discounts.values() if d.code == code]
            assert len(codes) == 1 and codes[0].usage_limit == 1
            assert codes[0].customer_ids == (f"gid://shopify/Customer/{remote[0].id}",)
            followup = next(m for m in smtp.messages if m.envelope_to == (consented.email,) and
                            code.encode() not in m.raw)
            html = followup.message.get_body(("html",)).get_content()
            # In the customer's language, naming the remedy of the severity-1 ticket.
            assert 'lang="de"' in html and "Ein Ersatz ist auf dem Weg zu Ihnen." in html
            # A crash after the code was created but before that was recorded: the retry sends again, no new code.
            with database.session() as s:
                m = s.get(Message, rows[(consented.id, "comeback")].id)
                m.status, m.payload = "scheduled", {**m.payload, "discount_created": False}
            assert dispatch_due(harness.ctx) == {"sent": 1}
            assert len([d for d in harness.sandbox.shop_state().discounts.values() if d.code == code]) == 1
            sent_codes = [m for m in smtp.messages if code.encode() in m.raw]
            assert len(sent_codes) == 2 and len({m.message_id for m in sent_codes}) == 1
    finally:
        harness.stop()
        wipe(database.engine)


# -- the template check ---------------------------------------------------------------------------------------

OFFER_FREE = [(flow, step) for flow, steps in templates.FLOW_STEPS.items() for step in steps
              if (flow, step) not in templates.OFFER_STEPS]


def test_offer_steps_are_exactly_the_declared_marketing_steps():
    marketing = {(flow.name, step.name) for flow in FLOWS.values() for step in flow.steps
                 if (step.step_class or flow.flow_class) == "marketing" and step.template}
    assert templates.OFFER_STEPS == marketing


@pytest.mark.parametrize(("flow", "step"), [("first_order", "main"), ("cancellation", "ask"),
                                            ("cancellation", "declined"), ("ticket_followup", "followup")])
@pytest.mark.parametrize("offer", ["<p>Your code {{ discount_code }}</p>", "<p>Get 10% off today</p>",
                                   "<p>Jetzt mit Rabatt bestellen</p>", "<p>クーポンをどうぞ</p>",
                                   "<p>احصل على خصم</p>", "<p>You may also like our new soap</p>"])
def test_service_and_transactional_templates_refuse_offers(flow, step, offer):
    with pytest.raises(templates.TemplateRefused, match="no offer or recommendation"):
        templates.validate_template(flow, step, "Hello", offer)


def test_shipped_templates_pass_the_check_and_the_comeback_may_hold_its_code():
    for flow, step in OFFER_FREE:
        for locale in locales.SUPPORTED:
            source = templates.default_source(flow, step, locale)
            templates.validate_template(flow, step, source.subject, source.html, source.text, locale)
    rendered = templates.validate_template("ticket_followup", "comeback", "{{ discount_percent|format_percent }} off",
                                           "<p>{{ discount_code }}</p>")
    assert "COMEBACK-1A2B3C4D5E" in rendered.html
    # Arabic words take prefixes: "not deducted" (لم يُخصم) is no discount.
    templates.validate_template("cancellation", "declined", "x", "<p>لم يُخصم منك أي مبلغ</p>", locale="ar")
