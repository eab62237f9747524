"""The dispatcher against the real SMTP sandbox: valid MIME with RFC 8058 headers, bounces, retries, reconcile."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from email import policy as email_policy
from email.parser import BytesParser
from urllib.parse import urlsplit

from sqlalchemy import select

from jobs.dispatch import dispatch_due
from plugin.context import JobContext
from plugin.messaging import outbox
from plugin.models import Message, Suppression, SurveyResponse, Template
from sandbox.smtp import SmtpSandbox
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW


def only(session, model):
    rows = list(session.scalars(select(model)))
    assert len(rows) == 1
    return rows[0]


def test_sends_valid_mime_with_unsubscribe_headers(ctx: JobContext, smtp: SmtpSandbox) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)
        customer = seed.customer(s, store, 1)
        order = seed.order(s, store, customer, 1, products=2)
        message_id = seed.message(s, store, customer, when=IN_WINDOW, order_row=order).id
    assert dispatch_due(ctx) == {"sent": 1}

    [received] = smtp.messages
    parsed = BytesParser(policy=email_policy.default).parsebytes(received.raw)
    with ctx.database.session() as s:
        row = s.get(Message, message_id)
        assert (row.status, row.attempts, row.sent_at, row.locale) == ("sent", 1, IN_WINDOW, "en")
        assert row.claimed_by is not None and row.last_error is None
        assert parsed["Message-ID"] == row.provider_id == received.message_id
    assert received.envelope_from == "hello@calmsoaps.example"
    assert received.envelope_to == ("c1@example.com",)
    assert str(parsed["From"]) == "Calm Soaps <hello@calmsoaps.example>"
    assert str(parsed["Reply-To"]) == "care@calmsoaps.example"
    assert str(parsed["Subject"]) == "How do you like your order from Calm Soaps?"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    unsubscribe = re.fullmatch(r"<(https://aftercare\.test/u/[A-Za-z0-9_.\-]+)>", str(parsed["List-Unsubscribe"]))
    assert unsubscribe is not None
    assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    html = parsed.get_body(("html",)).get_content()
    text = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")  # SMTP line ends are CRLF
    assert 'Review Soap 1-0</a>' in html and 'Review Soap 1-1</a>' in html
    assert f'href="{unsubscribe.group(1)}"' in html
    assert text.startswith("Hi Kim1,\n\nYour order #1001 arrived a few days ago.")
    # A review request is no marketing, and still carries the store's postal address when it has one.
    assert text.rstrip().endswith(f"Unsubscribe: {unsubscribe.group(1)}\n{seed.POSTAL_ADDRESS}")


class SessionCountingSmtp(SmtpSandbox):
    """The SMTP sandbox, remembering which SMTP session (connection) carried each message."""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.sessions: list[object] = []

    def keep(self, envelope, session) -> str:  # noqa: ANN001
        self.sessions.append(session)  # aiosmtpd makes one Session object per connection
        return super().keep(envelope, session)


def test_one_connection_serves_the_batch_and_each_message_once(app, clock) -> None:
    with SessionCountingSmtp() as smtp:
        clock.set(IN_WINDOW)
        ctx = JobContext.from_app(app, extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}",
                                               "base_url": "https://aftercare.test"})
        with ctx.database.session() as s:
            store = seed.store(s)
            for n in range(12):
                seed.message(s, store, seed.customer(s, store, n), when=IN_WINDOW)
        assert dispatch_due(ctx, limit=5) == {"sent": 5}
        assert dispatch_due(ctx) == {"sent": 7}
        assert dispatch_due(ctx) == {}
        assert sorted(m.envelope_to[0] for m in smtp.messages) == sorted(f"c{n}@example.com" for n in range(12))
        assert len({m.message_id for m in smtp.messages}) == 12
        first, second = smtp.sessions[0], smtp.sessions[5]
        assert first is not second
        assert [s is first for s in smtp.sessions] == [True] * 5 + [False] * 7
        assert all(s is second for s in smtp.sessions[5:])


def test_permanent_refusal_bounces_and_suppresses(ctx: JobContext, smtp: SmtpSandbox) -> None:
    smtp.reject("c1@example.com", permanent=True)
    with ctx.database.session() as s:
        store = seed.store(s)
        message_id = seed.message(s, store, seed.customer(s, store, 1), when=IN_WINDOW).id
        later_id = seed.message(s, store, seed.customer(s, store, 1, external_id="dup", email="C1@example.com"),
                                key="later", when=IN_WINDOW + timedelta(days=2)).id
    assert dispatch_due(ctx) == {"failed": 1, "bounced": 1}
    with ctx.database.session() as s:
        row = s.get(Message, message_id)
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.last_error.startswith("recipient refused: 550 5.1.1 <c1@example.com>")
        suppression = only(s, Suppression)
        assert (suppression.email, suppression.reason) == ("c1@example.com", "bounce")
    ctx.clock.advance(days=2)
    assert dispatch_due(ctx) == {"skipped": 1, "skipped:suppressed": 1}
    with ctx.database.session() as s:
        assert (s.get(Message, later_id).status, s.get(Message, later_id).skip_reason) == ("skipped", "suppressed")
    assert smtp.messages == []


def test_temporary_refusal_retries_with_backoff_then_gives_up(ctx: JobContext, smtp: SmtpSandbox) -> None:
    smtp.reject("c1@example.com", permanent=False)
    with ctx.database.session() as s:
        store = seed.store(s)
        message_id = seed.message(s, store, seed.customer(s, store, 1), when=IN_WINDOW).id
    delays = []
    for attempt in range(1, 6):
        before = ctx.clock.now()
        result = dispatch_due(ctx)
        with ctx.database.session() as s:
            row = s.get(Message, message_id)
            assert row.attempts == attempt
            if attempt < 5:
                assert result == {"retried": 1} and row.status == "scheduled"
                delays.append(row.scheduled_for - before)
                ctx.clock.set(row.scheduled_for)
            else:
                assert result == {"failed": 1} and row.status == "failed"
                assert row.last_error.startswith("gave up after 5 attempts: recipient refused: 451 4.3.0")
    assert delays == [timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=40)]
    with ctx.database.session() as s:
        assert list(s.scalars(select(Suppression))) == []


def test_template_error_fails_without_sending(ctx: JobContext, smtp: SmtpSandbox) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)
        s.add(Template(store_id=store.id, flow="review_request", step="main", locale="en", subject="Hi",
                       body_html="<p>{{ voucher_code }}</p>"))
        message_id = seed.message(s, store, seed.customer(s, store, 1), when=IN_WINDOW).id
    assert dispatch_due(ctx) == {"failed": 1}
    with ctx.database.session() as s:
        row = s.get(Message, message_id)
        assert row.status == "failed"
        assert row.last_error == "template review_request/main (en): unknown variable 'voucher_code'"
    assert smtp.messages == []


def test_arabic_email_is_right_to_left(ctx: JobContext, smtp: SmtpSandbox) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)
        seed.message(s, store, seed.customer(s, store, 1, locale="ar-SA", first_name="ليلى"), when=IN_WINDOW)
    assert dispatch_due(ctx) == {"sent": 1}
    parsed = smtp.messages[0].message
    assert str(parsed["Subject"]) == "ما رأيك في طلبك من Calm Soaps؟"
    assert str(parsed["Content-Language"]) == "ar"
    html = parsed.get_body(("html",)).get_content()
    assert '<html lang="ar" dir="rtl">' in html and "مرحبًا ليلى،" in html


def test_outside_window_is_rescheduled_not_dropped(ctx: JobContext, smtp: SmtpSandbox) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)
        tokyo = seed.customer(s, store, 1, time_zone="Asia/Tokyo", country="JP")
        message_id = seed.message(s, store, tokyo, when=IN_WINDOW).id
    assert dispatch_due(ctx) == {"rescheduled": 1}
    with ctx.database.session() as s:
        row = s.get(Message, message_id)
        # 09:30 UTC is 18:30 in Tokyo: next 09:00 JST is 00:00 UTC on 4 March.
        assert (row.status, row.skip_reason, row.attempts) == ("scheduled", "outside_window", 0)
        assert row.scheduled_for == IN_WINDOW.replace(day=4, hour=0, minute=0)
        wake = row.scheduled_for
    ctx.clock.set(wake)
    assert dispatch_due(ctx) == {"sent": 1}
    assert smtp.messages[0].envelope_to == ("c1@example.com",)


def test_stale_claim_is_resent_once_with_the_same_message_id(ctx: JobContext, smtp: SmtpSandbox) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)
        row = seed.message(s, store, seed.customer(s, store, 1), when=IN_WINDOW)
        # What a dispatcher killed mid-send leaves behind: claimed, Message-ID stored, never recorded.
        outbox.mark_claimed(row, "dead-host:123", IN_WINDOW)
        row.provider_id = "<kept@calmsoaps.example>"
        message_id = row.id
    assert dispatch_due(ctx) == {}  # the claim is fresh: never resent blindly
    ctx.clock.advance(minutes=10, seconds=1)
    assert dispatch_due(ctx) == {"reconciled": 1, "sent": 1}
    assert [m.message_id for m in smtp.messages] == ["<kept@calmsoaps.example>"]
    with ctx.database.session() as s:
        row = s.get(Message, message_id)
        assert (row.status, row.attempts) == ("sent", 2)


def test_a_message_that_always_crashes_gives_up(ctx: JobContext, smtp: SmtpSandbox) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)
        row = seed.message(s, store, seed.customer(s, store, 1), when=IN_WINDOW)
        row.status, row.attempts, row.claimed_at, row.claimed_by = "sending", 5, IN_WINDOW, "dead-host:9"
        message_id = row.id
    ctx.clock.advance(minutes=11)
    assert dispatch_due(ctx) == {"reconciled": 1}
    with ctx.database.session() as s:
        row = s.get(Message, message_id)
        assert row.status == "failed" and row.last_error.startswith("gave up after 5 attempts: dispatcher dead-host:9")
    assert smtp.messages == []


def test_starttls_and_auth(app, clock) -> None:
    with SmtpSandbox(tls=True, require_tls=True, auth={"mailer": "s3cr3t p@ss"}) as server:
        clock.set(IN_WINDOW)
        ctx = JobContext.from_app(app, extras={
            "smtp_url": f"smtp+starttls://mailer:s3cr3t%20p%40ss@127.0.0.1:{server.port}?verify=false",
            "base_url": "https://aftercare.test"})
        with ctx.database.session() as s:
            store = seed.store(s)
            seed.message(s, store, seed.customer(s, store, 1), when=IN_WINDOW)
        assert dispatch_due(ctx) == {"sent": 1}
        [received] = server.messages
        assert (received.tls, received.authenticated_as) == (True, "mailer")


def test_links_in_the_email_work_through_the_app(ctx: JobContext, smtp: SmtpSandbox, client) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)
        customer = seed.customer(s, store, 1)
        order = seed.order(s, store, customer, 1)
        message_id = seed.message(s, store, customer, flow="survey", order_row=order, when=IN_WINDOW,
                                  payload={"kind": "nps", "order_name": "#1001"}).id
        reminder_id = seed.message(s, store, customer, flow="replenishment", marketing=True, key="refill",
                                   when=IN_WINDOW + timedelta(minutes=1),
                                   payload={"product_title": "Soap 1-0", "quantity": 3,
                                            "variant_external_id": "gid://shopify/ProductVariant/9010",
                                            "run_out_at": "2026-03-10T12:00:00+00:00", "subscribe_offer": True,
                                            "discount_code": "REFILL-1", "discount_percent": 10,
                                            "discount_created": True}).id
    assert dispatch_due(ctx) == {"sent": 1}
    html = smtp.messages[0].message.get_body(("html",)).get_content()
    score_links = re.findall(r'<a class="score" href="([^"]+)"[^>]*>(\d+)</a>', html)
    assert [int(score) for _, score in score_links] == list(range(11))
    nine = urlsplit(dict((score, url) for url, score in score_links)["9"]).path
    assert client.get(nine).status_code == 200
    with ctx.database.session() as s:
        response = only(s, SurveyResponse)
        assert (response.score, response.message_id, response.kind) == (9, message_id, "nps")
        assert s.get(Message, message_id).clicked_at == IN_WINDOW
    # The comment page (CSRF token in the form) lets the customer change the score and add a comment.
    page = client.get(nine).get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    assert client.post(nine, data={"csrf": csrf, "score": "10", "comment": "Great soap"}).status_code == 200
    with ctx.database.session() as s:
        response = only(s, SurveyResponse)
        assert (response.score, response.comment) == (10, "Great soap")
    # The replenishment reminder's reorder link lands on the cart permalink with its discount.
    ctx.clock.advance(minutes=1)
    assert dispatch_due(ctx) == {"sent": 1}
    reminder = smtp.messages[1].message
    assert str(reminder["Subject"]) == "Running low on Soap 1-0?"
    reorder = re.search(r'<a class="button" href="([^"]+)"[^>]*>Reorder Soap 1-0</a>',
                        reminder.get_body(("html",)).get_content()).group(1)
    redirect = client.get(urlsplit(reorder).path)
    assert (redirect.status_code, redirect.headers["Location"]) == (
        302, "https://calm-soaps.myshopify.com/cart/9010:3?discount=REFILL-1")
    with ctx.database.session() as s:
        assert s.get(Message, reminder_id).clicked_at == IN_WINDOW + timedelta(minutes=1)
    one_click = urlsplit(str(smtp.messages[0].message["List-Unsubscribe"]).strip("<>")).path
    assert client.post(one_click, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with ctx.database.session() as s:
        assert only(s, Suppression).reason == "unsubscribe"
        assert s.get(Message, reminder_id).status == "sent"  # already sent before the unsubscribe


def test_unreachable_server_stops_the_batch_and_retries_later(app, clock) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock.set(IN_WINDOW)
    ctx = JobContext.from_app(app, extras={"smtp_url": f"smtp://127.0.0.1:{port}", "base_url": "https://a.test"})
    with ctx.database.session() as s:
        store = seed.store(s)
        ids = [seed.message(s, store, seed.customer(s, store, n), when=IN_WINDOW).id for n in range(3)]
    assert dispatch_due(ctx) == {"retried": 1, "stopped": 1}
    with ctx.database.session() as s:
        rows = [s.get(Message, i) for i in ids]
        assert [(r.status, r.attempts) for r in rows] == [("scheduled", 1), ("scheduled", 0), ("scheduled", 0)]
        assert rows[0].scheduled_for == IN_WINDOW + timedelta(minutes=5)
        assert rows[0].last_error.startswith(f"cannot connect to SMTP 127.0.0.1:{port}")


def test_comeback_offer_gets_a_stable_code_and_no_token_fails_it_cleanly(ctx: JobContext, smtp: SmtpSandbox) -> None:
    with ctx.database.session() as s:
        store = seed.store(s)  # a Shopify store without an access token: the code cannot be created
        message_id = seed.message(s, store, seed.customer(s, store, 1), flow="ticket_followup", step="comeback",
                                  marketing=True, when=IN_WINDOW, key="7:ticket_followup:ticket=3:step=comeback",
                                  payload={"resolution": "New box", "discount_percent": 10}).id
    assert dispatch_due(ctx) == {"failed": 1}
    with ctx.database.session() as s:
        row = s.get(Message, message_id)
        digest = hashlib.sha256(b"7:ticket_followup:ticket=3:step=comeback").hexdigest()[:10].upper()
        assert row.payload["discount_code"] == f"COMEBACK-{digest}"
        assert row.status == "failed" and row.last_error.startswith("cannot create the discount code")
    assert smtp.messages == []


def test_concurrent_dispatchers_never_send_a_message_twice(ctx: JobContext, smtp: SmtpSandbox) -> None:
    import threading

    with ctx.database.session() as s:
        store = seed.store(s)
        for n in range(40):
            seed.message(s, store, seed.customer(s, store, n), when=IN_WINDOW)
    results: dict[str, dict[str, int]] = {}

    def run(worker: str) -> None:
        results[worker] = dispatch_due(ctx, limit=100, worker_id=worker)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(r.get("sent", 0) for r in results.values()) == 40
    assert len(smtp.messages) == 40 and len({m.message_id for m in smtp.messages}) == 40
    with ctx.database.session() as s:
        claimed_by = {row.claimed_by for row in s.scalars(select(Message))}
        assert claimed_by <= {"w0", "w1", "w2"}


def test_mailto_unsubscribe_when_a_mailbox_is_configured(app, clock, smtp: SmtpSandbox, tmp_path) -> None:
    from plugin.config import load_config
    from tests.conftest import test_settings

    clock.set(IN_WINDOW)
    database = app.extensions["aftercare.db"]
    config = load_config(test_settings(database.url, tmp_path / "i", mail={"unsubscribe_mailto": "leave@calm.example"}),
                         environ={})
    ctx = JobContext(config=config, database=database, vault=app.extensions["aftercare.vault"], clock=clock,
                     extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}", "base_url": "https://aftercare.test"})
    with ctx.database.session() as s:
        store = seed.store(s)
        seed.message(s, store, seed.customer(s, store, 1), when=IN_WINDOW)
    assert dispatch_due(ctx) == {"sent": 1}
    header = str(smtp.messages[0].message["List-Unsubscribe"])
    assert re.fullmatch(r"<https://aftercare\.test/u/(?P<t>[\w.\-]+)>, "
                        r"<mailto:leave@calm\.example\?subject=unsubscribe%20(?P=t)>", header), header
