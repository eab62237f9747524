"""What each admin page shows and changes, checked against figures worked out by hand from tests/admin/seed.py."""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import event, select

from jobs.analytics import count_uncounted_store, refresh_store_figures
from plugin import flow_settings
from plugin.flows import runner
from plugin.models import (
    Customer,
    Merchant,
    Message,
    Order,
    OrderLine,
    Review,
    Store,
    StoreMetrics,
    Suppression,
    Template,
    Ticket,
    TicketNote,
)
from tests.admin.seed import SHOP_A, SHOP_B
from tests.jobs.conftest import make_ctx


def _get(client, token, path, **query):
    return client.get(path, query_string=query, headers={"Authorization": f"Bearer {token()}"})


def _post(client, token, path, data, **query):
    return client.post(path, data=data, query_string=query,
                       headers={"Authorization": f"Bearer {token()}", "Accept": "application/json"})


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _session(app):
    return app.extensions["aftercare.db"].session()


def test_a_store_without_counts_shows_counting_and_its_request_reads_no_order(client, tenants, token, app, clock,
                                                                              tmp_path):
    a, _ = tenants
    engine = app.extensions["aftercare.db"].engine
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _many):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        page = _text(_get(client, token, "/admin/", store=a.store_id).get_data(as_text=True))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert "counting…" in page and "first-time customers ordered again" not in page
    # The request ran its queries (session token, store, segments, CLV) and none of them read an order or message.
    assert any("customer_metrics" in s for s in statements)
    assert [s for s in statements if re.search(r"\b(FROM|JOIN)\s+(orders|order_line|message)\b", s)] == []
    with _session(app) as session:
        assert session.get(StoreMetrics, a.store_id) is None
    ctx = make_ctx(app.extensions["aftercare.db"], clock, tmp_path)
    assert count_uncounted_store(ctx, a.store_id) == {"stores": 1}
    assert count_uncounted_store(ctx, a.store_id) == {"stores": 0}  # counted: nothing more to do
    with _session(app) as session:
        assert session.get(StoreMetrics, a.store_id).figures["repurchase"] == [3, 2]
    page = _text(_get(client, token, "/admin/", store=a.store_id).get_data(as_text=True))
    assert "2 of 3 first-time customers ordered again within 90 days" in page and "counting…" not in page


def test_overview_figures_match_the_seeded_orders(client, tenants, token, app, clock, tmp_path):
    a, _ = tenants
    count_uncounted_store(make_ctx(app.extensions["aftercare.db"], clock, tmp_path), a.store_id)
    page = _text(_get(client, token, "/admin/", store=a.store_id).get_data(as_text=True))
    # Eligible first-time customers: c0 (-200 d), c1 (-120 d), c2 (-100 d); c0 and c2 came back within 90 days.
    assert "66.7 %" in page
    assert "2 of 3 first-time customers ordered again within 90 days" in page
    assert "Loyalty mode" in page
    # c2 is VIP (600 in 12 months, 4 orders); c3 growth (one 250 order); c0, c1 active.
    assert "1 VIP · 0 dormant" in page
    # CLV = mean(150·2·3, 80·1·3, 150·4·3, 250·1·3) = (900 + 240 + 1800 + 750) / 4.
    assert "922.50 USD" in page
    # Flow performance: one sent (clicked) review request, two skipped, one failed.
    row = re.search(r"Review request ([\d ]+)", page).group(1).split()
    assert row[:3] == ["1", "2", "1"]


def test_overview_shows_the_hourly_counts_until_the_next_count(client, tenants, token, app, clock, tmp_path):
    a, _ = tenants
    ctx = make_ctx(app.extensions["aftercare.db"], clock, tmp_path)
    assert refresh_store_figures(ctx, a.store_id) == {"stores": 1, "eligible_first_time_customers": 3}
    counted_at = clock.now()
    clock.advance(timedelta(minutes=20))
    with _session(app) as session:  # c3 (growth, first order 20 days ago) orders again.
        c3 = session.scalars(select(Customer).where(Customer.store_id == a.store_id,
                                                    Customer.email == f"c3@{SHOP_A}")).one()
        session.add(Order(store_id=a.store_id, external_id="late", customer_id=c3.id, currency="USD",
                          total_price=Decimal("12"), created_at_remote=clock.now()))
    page = _text(_get(client, token, "/admin/", store=a.store_id).get_data(as_text=True))
    assert f"figures as of {counted_at.strftime('%b %d, %Y %H:%M')} UTC" in page
    with _session(app) as session:
        stored = session.get(StoreMetrics, a.store_id).figures
    orders_now = stored["monthly"].get(str(clock.now().year * 12 + clock.now().month), [0, 0])[0]
    clock.advance(timedelta(minutes=40))
    refresh_store_figures(ctx, a.store_id)
    with _session(app) as session:
        recounted = session.get(StoreMetrics, a.store_id).figures
    assert recounted["monthly"][str(clock.now().year * 12 + clock.now().month)][0] == orders_now + 1
    page = _text(_get(client, token, "/admin/", store=a.store_id).get_data(as_text=True))
    assert f"figures as of {clock.now().strftime('%b %d, %Y %H:%M')} UTC" in page


def test_overview_of_all_stores_adds_the_amazon_buyer(client, tenants, token):
    page = _text(_get(client, token, "/admin/").get_data(as_text=True))
    # Five customers scored (four Shopify + one Amazon buyer, active); still one VIP.
    assert re.search(r"Customers scored 5 ", page)
    assert "amounts mix EUR, USD" in page


def test_cac_gives_clv_to_cac(client, tenants, token, app):
    a, _ = tenants
    answer = _post(client, token, "/admin/cac", {"cac": "45", "cac_currency": "usd"})
    assert answer.status_code == 200 and answer.get_json()["ok"] is True
    with _session(app) as s:
        merchant = s.get(Merchant, a.merchant_id)
        assert (merchant.cac, merchant.cac_currency) == (Decimal("45.00"), "USD")
    page = _text(_get(client, token, "/admin/", store=a.store_id).get_data(as_text=True))
    assert "CLV:CAC 20.5 : 1" in page  # 922.50 / 45
    assert _post(client, token, "/admin/cac", {"cac": "lots"}).status_code == 400


def test_segment_rules_are_saved_and_segments_recomputed(client, tenants, token, app):
    a, _ = tenants
    rules = {"vip_min_spent_12m": "100", "vip_min_orders_12m": "2", "growth_min_order": "200",
             "growth_max_orders": "2", "dormant_after_days": "182"}
    assert _post(client, token, "/admin/segments", rules).status_code == 200
    page = _text(_get(client, token, "/admin/", store=a.store_id).get_data(as_text=True))
    # With VIP = over 100 and 2+ orders in 12 months: c0 (300, 2 orders) and c2 join VIP.
    assert "2 VIP · 0 dormant" in page
    assert _post(client, token, "/admin/segments", {**rules, "vip_min_orders_12m": "x"}).status_code == 400


def test_flow_settings_persist_and_bad_values_change_nothing(client, tenants, token, app):
    a, _ = tenants
    form = {"delay_days": "10", "fallback_after_fulfilment_days": "7", "reminder_delay_days": "5",
            "reminder_enabled": "on", "incentive_text": ""}
    answer = _post(client, token, "/admin/flows/review_request", form, store=a.store_id)
    assert answer.status_code == 200
    assert answer.get_json()["redirect"].startswith(f"/admin/flows/review_request?store={a.store_id}")
    with _session(app) as s:
        settings = flow_settings.effective(s, app.config["AFTERCARE"], a.store_id, "review_request")
    assert (settings["enabled"], settings["delay_days"], settings["reminder_delay_days"]) == (False, 10, 5)
    assert _post(client, token, "/admin/flows/review_request", {**form, "delay_days": "soon"},
                 store=a.store_id).status_code == 400
    assert _post(client, token, "/admin/flows/policy", {"send_window_start": "25:00"},
                 store=a.store_id).status_code == 400
    with _session(app) as s:
        assert flow_settings.effective(s, app.config["AFTERCARE"], a.store_id, "review_request")["delay_days"] == 10
    page = _get(client, token, "/admin/flows/review_request", store=a.store_id).get_data(as_text=True)
    assert 'name="delay_days" value="10"' in page


def test_template_preview_save_and_reset(client, tenants, token, app):
    a, _ = tenants
    data = {"step": "main", "locale": "en", "subject": "Hi {{ customer.first_name }}",
            "html": "<p>How is your {{ products[0].title }}?</p>"}
    preview = _post(client, token, "/admin/flows/review_request/preview", data).get_json()
    assert preview["ok"] is True and preview["subject"] == "Hi Alex"
    assert "How is your Lavender soap?" in preview["html"]
    gated = _post(client, token, "/admin/flows/review_request/preview",
                  {**data, "html": "{% if score > 8 %}Review us{% endif %}"}).get_json()
    assert gated["ok"] is False and "may not depend on a score" in gated["error"]
    unknown = {**data, "html": "{{ nope }}"}
    assert _post(client, token, "/admin/flows/review_request/template", unknown).status_code == 400
    assert _post(client, token, "/admin/flows/review_request/template", data).status_code == 200
    with _session(app) as s:
        row = s.scalar(select(Template).where(Template.store_id == a.store_id))
        assert (row.flow, row.step, row.locale, row.subject) == ("review_request", "main", "en", data["subject"])
    assert _post(client, token, "/admin/flows/review_request/template", {**data, "action": "reset"}).status_code == 200
    with _session(app) as s:
        assert s.scalar(select(Template).where(Template.store_id == a.store_id)) is None


def test_test_send_queues_a_merchant_email(client, tenants, token, app):
    a, _ = tenants
    assert _post(client, token, "/admin/flows/survey/test-send", {"locale": "de"}).status_code == 200
    with _session(app) as s:
        rows = s.scalars(select(Message).where(Message.flow == "test")).all()
    assert [(m.store_id, m.to_address, m.status, m.channel, m.locale) for m in rows] == \
        [(a.store_id, "owner@example.com", "scheduled", "email", "de")]


def test_reply_approval_queues_the_edited_text_and_amazon_feedback_is_read_only(client, tenants, token, app):
    a, _ = tenants
    page = _text(_get(client, token, "/admin/reviews", status="draft").get_data(as_text=True))
    assert "1 draft waiting for approval" in page and "Arrived broken" in page
    edited = {"body": "  Sorry! A new one is on its way.  "}
    answer = _post(client, token, f"/admin/reviews/{a.draft_review_id}/reply", edited)
    assert answer.status_code == 200
    with _session(app) as s:
        review = s.get(Review, a.draft_review_id)
        message = s.scalar(select(Message).where(Message.review_id == review.id))
    assert (review.reply_status, review.reply_body) == ("approved", "Sorry! A new one is on its way.")
    assert (message.flow, message.channel, message.status, message.payload["body"]) == \
        ("review_reply", "review_reply", "scheduled", "Sorry! A new one is on its way.")
    refused = _post(client, token, f"/admin/reviews/{a.feedback_review_id}/reply", {"body": "hello"})
    assert refused.status_code == 400
    feedback = _text(_get(client, token, "/admin/reviews", source="amazon_feedback").get_data(as_text=True))
    assert "Amazon offers no API to answer seller feedback" in feedback and "Open its ticket" in feedback


def test_tickets_show_sla_and_resolve_with_notes(client, tenants, token, app):
    a, _ = tenants
    listing = _get(client, token, "/admin/tickets").get_data(as_text=True)
    # Amazon ticket (severity 1) is 2 h overdue and listed first; the review ticket has 22 h left.
    assert re.findall(r'data-sla-remaining="(-?\d+)"', listing) == ["-7200", "79200"]
    assert "1 past SLA" in _text(listing)
    url = f"/admin/tickets/{a.ticket_id}"
    assert _post(client, token, f"{url}/notes", {"body": "Called the customer"}).status_code == 200
    assert _post(client, token, f"{url}/resolve", {"resolution": " "}).status_code == 400
    assert _post(client, token, f"{url}/resolve", {"resolution": "Sent a new bottle"}).status_code == 200
    with _session(app) as s:
        ticket = s.get(Ticket, a.ticket_id)
        notes = s.scalars(select(TicketNote.body).where(TicketNote.ticket_id == a.ticket_id)).all()
    assert (ticket.status, ticket.resolution, notes) == ("resolved", "Sent a new bottle", ["Called the customer"])


def test_message_log_search_reasons_and_resend(client, tenants, token, app):
    a, _ = tenants
    with _session(app) as s:  # the consent skip's cause still holds: c0 has not agreed to marketing (yet)
        s.get(Customer, a.customers[0]).marketing_consent = False
    page = _text(_get(client, token, "/admin/messages", q=f"c0@{SHOP_A}").get_data(as_text=True))
    assert "The customer has not agreed to receive marketing emails." in page
    assert "This flow is switched off for the store." in page
    assert "SMTP 451 try later" in page
    assert page.count("Resend") == 2  # the failed one and the flow_disabled skip (the flow is on again)
    assert "No messages match." in _get(client, token, "/admin/messages", q="nobody@example.com").get_data(as_text=True)
    by_order = _get(client, token, "/admin/messages", q=f"#{1000 + a.customers[0] * 10}").get_data(as_text=True)
    assert by_order.count("<s-table-row>") == 4  # the four messages of c0's first order
    for expected in (1, 2):
        assert _post(client, token, f"/admin/messages/{a.messages['failed']}/resend", {}).status_code == 200
        with _session(app) as s:
            keys = s.scalars(select(Message.idempotency_key).where(Message.idempotency_key.like("%resend=%"))
                             .order_by(Message.id)).all()
        assert len(keys) == expected and keys[-1].endswith(f":resend={expected}")
    assert _post(client, token, f"/admin/messages/{a.messages['skipped_consent']}/resend", {}).status_code == 400
    with _session(app) as s:  # consent given since: the cause has gone away, the skip may be resent
        s.get(Customer, a.customers[0]).marketing_consent = True
    assert _post(client, token, f"/admin/messages/{a.messages['skipped_consent']}/resend", {}).status_code == 200
    with _session(app) as s:
        keys = s.scalars(select(Message.idempotency_key).where(Message.idempotency_key.like("%resend=%"))
                         .order_by(Message.id)).all()
    assert len(keys) == 3
    keys = keys[:2]
    with _session(app) as s:
        again = s.scalar(select(Message).where(Message.idempotency_key == keys[-1]))
    assert (again.status, again.flow, again.customer_id) == ("scheduled", "review_request", a.customers[0])


def test_customer_search_by_name_email_part_or_id_stays_in_the_store(client, tenants, token):
    a, b = tenants

    def found(q):
        page = _get(client, token, "/admin/customers", q=q, store=a.store_id).get_data(as_text=True)
        return sorted(int(n) for n in re.findall(r"/admin/customers/(\d+)", page))

    assert found("cust2") == [a.customers[2]]  # part of a first name, any case
    assert found("CUST") == sorted(a.customers)
    assert found(f"c3@{SHOP_A}") == [a.customers[3]]  # a whole address: exact, indexed
    assert found(f"C3@{SHOP_A.upper()}") == [a.customers[3]]
    assert found(f"{a.store_id}001") == [a.customers[1]]  # the platform's customer id
    assert found("%") == [] and found("_") == []  # wildcards are literal characters
    assert found(f"c1@{SHOP_B}") == []  # another merchant's customer is never found
    assert b.customers


def test_customer_page_suppression_and_erasure(client, tenants, token, app, clock, tmp_path):
    a, _ = tenants
    c2 = a.customers[2]
    _run_the_flow(app, clock, tmp_path, a.store_id)
    page = _text(_get(client, token, f"/admin/customers/{c2}").get_data(as_text=True))
    # Own gaps between purchases: 40, 30, 20 days per unit -> median 30, nothing learned for the product yet (the
    # assumed spread 0.25 of log days, + 0.25/3 for the estimate); last order 10 days ago. The model's definition:
    mu, var = math.log(30), 0.25 + 0.25 / 3
    start = math.sqrt(49 + math.exp(2 * (mu - var))) - 7  # days after the last order: the 14-day window's start

    def survival(d):
        return 0.5 * math.erfc((math.log(d) - mu) / math.sqrt(var) / math.sqrt(2))

    chance = (survival(start) - survival(start + 14)) / survival(10)
    assert "3 own gaps of 20–40 days, bought 1" in page
    assert f"{chance * 100:.0f} %" in page and "still active 100 %" in page
    assert "Agreed to marketing" in page
    assert _post(client, token, f"/admin/customers/{c2}/suppression", {"action": "add"}).status_code == 200
    with _session(app) as s:
        assert s.scalar(select(Suppression.reason).where(Suppression.email == f"c2@{SHOP_A}")) == "manual"
    assert _post(client, token, f"/admin/customers/{c2}/suppression", {"action": "remove"}).status_code == 200
    c3 = a.customers[3]
    assert _post(client, token, f"/admin/customers/{c3}/suppression", {"action": "remove"}).status_code == 400
    assert _post(client, token, f"/admin/customers/{c2}/delete", {"confirm": "no"}).status_code == 400
    assert _post(client, token, f"/admin/customers/{c2}/delete", {"confirm": "erase"}).status_code == 200
    with _session(app) as s:
        customer = s.get(Customer, c2)
        assert (customer.email, customer.first_name, customer.redacted_at is not None) == (None, None, True)


def _runs_out(last, now, median, quantity, gaps, within=365.0):
    """The model's predicted run-out with no learned product (plugin.flows.replenishment_model), in plain Python.

    Log-normal gap, centre log(own median × quantity), variance s_w² + s_w²/n with s_w² = 0.25; the run-out is its
    median given no purchase by ``now`` and one within ``within`` days of it.
    """
    mu, sd = math.log(median * quantity), math.sqrt(0.25 + 0.25 / gaps)
    a = (now - last) / timedelta(days=1)

    def tail(d):
        return 0.5 * math.erfc((math.log(d) - mu) / sd / math.sqrt(2))

    mid = (tail(a) + tail(a + within)) / 2
    return last + timedelta(days=math.exp(mu - sd * statistics.NormalDist().inv_cdf(mid)))


def _run_the_flow(app, clock, tmp_path, store_id):
    """Run the hourly replenishment job: the customer page shows the plans it stores."""
    runner.run_replenishment(make_ctx(app.extensions["aftercare.db"], clock, tmp_path), store_id)


def test_customer_page_predicts_from_purchases_as_the_flow_counts_them(client, tenants, token, app, clock, tmp_path):
    a, _ = tenants
    c2 = a.customers[2]
    with _session(app) as s:
        last = s.scalars(select(Order).where(Order.customer_id == c2).order_by(Order.created_at_remote.desc())).first()
        s.add(OrderLine(order_id=last.id, store_id=a.store_id, external_id=f"{last.id}-2", product_id=a.product_id,
                        quantity=1, price=Decimal("150.00"), title="Lavender soap"))
        refunded = Order(store_id=a.store_id, external_id="refunded-1", name="#R1", customer_id=c2, currency="USD",
                         created_at_remote=clock.now() - timedelta(days=5), total_price=Decimal("150.00"),
                         total_refunded=Decimal("150.00"), refunded=True, tags=[])
        s.add(refunded)
        s.flush()
        s.add(OrderLine(order_id=refunded.id, store_id=a.store_id, external_id="refunded-1-1",
                        product_id=a.product_id, quantity=1, price=Decimal("150.00"), title="Lavender soap"))
    _run_the_flow(app, clock, tmp_path, a.store_id)
    page = _text(_get(client, token, f"/admin/customers/{c2}").get_data(as_text=True))
    # Gaps 40, 30, 20 days per unit (median 30); the last order now holds two units; the refunded order is no
    # purchase (counted, it would make the last purchase 5 days ago and the median 25).
    assert "3 own gaps of 20–40 days, bought 2" in page
    assert f"Lavender soap {_runs_out(clock.now() - timedelta(days=10), clock.now(), 30, 2, 3):%b %d, %Y}" in page


def test_customer_page_adds_up_a_split_order_as_one_purchase(client, tenants, token, app, clock, tmp_path):
    a, _ = tenants
    c2 = a.customers[2]
    with _session(app) as s:
        last = s.scalars(select(Order).where(Order.customer_id == c2).order_by(Order.created_at_remote.desc())).first()
        split = Order(store_id=a.store_id, external_id="split-1", name="#S1", customer_id=c2, currency="USD",
                      created_at_remote=last.created_at_remote + timedelta(hours=3), total_price=Decimal("150.00"),
                      tags=[])
        s.add(split)
        s.flush()
        s.add(OrderLine(order_id=split.id, store_id=a.store_id, external_id="split-1-1", product_id=a.product_id,
                        quantity=1, price=Decimal("150.00"), title="Lavender soap"))
    _run_the_flow(app, clock, tmp_path, a.store_id)
    page = _text(_get(client, token, f"/admin/customers/{c2}").get_data(as_text=True))
    # The order three hours after the last one is part of that purchase: 1 + 1 units bought 10 days ago, own gaps
    # 40, 30, 20 days per unit (median 30) -> runs out about 10 days ago + 30 × 2 days.
    assert "3 own gaps of 20–40 days, bought 2" in page
    assert f"Lavender soap {_runs_out(clock.now() - timedelta(days=10), clock.now(), 30, 2, 3):%b %d, %Y}" in page


def test_settings_sender_store_and_quiet_days(client, tenants, token, app):
    a, _ = tenants
    assert _post(client, token, "/admin/settings/sender", {"sender_email": "not an email"}).status_code == 400
    assert _post(client, token, "/admin/settings/sender", {"sender_name": "Alpha", "sender_email": "hi@alpha.example",
                                                           "alert_email": "ops@alpha.example"}).status_code == 200
    assert _post(client, token, f"/admin/settings/stores/{a.store_id}",
                 {"timezone": "Mars/Olympus", "country": "DE"}).status_code == 400
    assert _post(client, token, f"/admin/settings/stores/{a.store_id}",
                 {"timezone": "Europe/Berlin", "country": "de"}).status_code == 200
    assert _post(client, token, "/admin/settings/quiet-days", {"ramadan_countries": "ae, sa"}).status_code == 200
    with _session(app) as s:
        merchant = s.get(Merchant, a.merchant_id)
        store = s.get(Store, a.store_id)
        policy = flow_settings.effective(s, app.config["AFTERCARE"], a.amazon_store_id, "policy")
    assert (merchant.sender_name, merchant.sender_email, merchant.alert_email) == \
        ("Alpha", "hi@alpha.example", "ops@alpha.example")
    assert (store.timezone, store.country) == ("Europe/Berlin", "DE")
    assert (policy["ramadan_countries"], policy["respect_holidays"]) == (["AE", "SA"], False)


def test_amazon_connection_needs_lwa_credentials(client, tenants, token, app):
    answer = _post(client, token, "/admin/settings/amazon", {"seller_id": "A2SELLER", "region": "na",
                                                             "marketplaces": "US", "refresh_token": "Atzr|x"})
    assert answer.status_code == 400
    assert "AFTERCARE_LWA_CLIENT_ID" in answer.get_json()["error"]


def test_csv_export_streams_every_order_of_the_scope(client, tenants, token):
    a, _ = tenants
    answer = _get(client, token, "/admin/export/orders.csv")
    assert answer.headers["Content-Disposition"] == 'attachment; filename="aftercare-orders-20260302.csv"'
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0][:4] == ["id", "store_id", "external_id", "name"]
    assert len(rows) == 1 + 8 + 1  # 8 Shopify orders + 1 Amazon order; none of merchant B's
    only_shopify = list(csv.reader(io.StringIO(_get(client, token, "/admin/export/customers.csv",
                                                    store=a.store_id).get_data(as_text=True))))
    assert sorted(r[3] for r in only_shopify[1:]) == [f"c{i}@{SHOP_A}" for i in range(4)]
