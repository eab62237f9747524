"""Bounces and complaints that arrive by mail after the send: every email leaves with a signed VERP return path; the
RFC 3464 report a relay sends there later, or a feedback loop's RFC 5965 complaint, reaches the real inbound SMTP
listener, which suppresses the address and cancels its waiting mail before it answers. Soft bounces, forged tokens
and mail that is not a report change nothing.
"""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import subprocess
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from plugin import create_app
from plugin.config import ConfigError, load_config
from plugin.context import JobContext
from plugin.db import Database
from plugin.messaging.dispatch import dispatch_due
from plugin.messaging.inbound import MailboxServer, UnsubscribeHandler
from plugin.models import Message, Suppression
from sandbox import mail_reports
from sandbox.smtp import SmtpSandbox
from tests.conftest import TEST_SECRET_KEY, make_settings, wipe
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW
from tests.processes import AFTERCARE, like_a_terminal, project_env

BOUNCES = "bounces@mail.calmsoaps.example"
REFILL = {"product_title": "Lavender soap", "quantity": 1, "run_out_at": "2026-03-10T00:00:00+00:00"}


@pytest.fixture
def bounce_app(database_url, tmp_path, clock):
    """The app with a bounce mailbox configured."""
    application = create_app(make_settings(database_url, tmp_path / "instance", mail={"bounce_mailbox": BOUNCES}),
                             clock=clock)
    yield application
    wipe(application.extensions["aftercare.db"].engine)
    application.extensions["aftercare.db"].dispose()


@pytest.fixture
def listener(bounce_app, clock):
    """The inbound SMTP listener serving the bounce mailbox, on a free loopback port."""
    server = MailboxServer(UnsubscribeHandler(bounce_app.extensions["aftercare.db"], TEST_SECRET_KEY, clock, "",
                                              BOUNCES), port=0)
    server.start()
    yield server
    server.stop()


def _context(app, smtp: SmtpSandbox, database: Database | None = None) -> JobContext:
    base = JobContext.from_app(app)
    return JobContext(config=base.config, database=database or base.database, vault=base.vault, clock=base.clock,
                      sleep=lambda _s: None, extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}",
                                                     "base_url": "https://aftercare.test"})


@pytest.fixture
def world(bounce_app, clock, smtp):
    """Send one email to c1; leave c1 a reminder and a survey for later, and c2 a reminder. Return names -> ids."""
    clock.set(IN_WINDOW)
    database = bounce_app.extensions["aftercare.db"]
    with database.session() as s:
        store = seed.store(s)
        c1, c2 = seed.customer(s, store, 1), seed.customer(s, store, 2)
        ids = {"first": seed.message(s, store, c1, when=IN_WINDOW, key="first").id,
               "reminder": seed.message(s, store, c1, flow="replenishment", key="reminder", marketing=True,
                                        payload=dict(REFILL), when=IN_WINDOW + timedelta(days=7)).id,
               "survey": seed.message(s, store, c1, flow="survey", key="survey",
                                      when=IN_WINDOW + timedelta(days=3)).id,
               "other": seed.message(s, store, c2, flow="replenishment", key="other", marketing=True,
                                     payload=dict(REFILL), when=IN_WINDOW + timedelta(days=7)).id,
               "store": store.id}
    assert dispatch_due(_context(bounce_app, smtp)) == {"sent": 1}
    return ids


def _state(app) -> tuple[list[tuple[int, str, str]], dict[str, tuple[str, str | None]]]:
    with app.extensions["aftercare.db"].session() as s:
        rows = sorted((r.store_id, r.email, r.reason) for r in s.scalars(select(Suppression)))
        return rows, {m.idempotency_key: (m.status, m.skip_reason) for m in s.scalars(select(Message))}


UNTOUCHED = {"first": ("sent", None), "reminder": ("scheduled", None), "survey": ("scheduled", None),
             "other": ("scheduled", None)}


def test_every_email_leaves_with_a_signed_return_path_in_the_bounce_mailbox(world, smtp) -> None:
    sent = smtp.messages[0]
    match = re.fullmatch(r"bounces\+m(\d+)-([0-9a-f]{20})@mail\.calmsoaps\.example", sent.envelope_from)
    assert match is not None, sent.envelope_from
    assert int(match.group(1)) == world["first"]
    assert len(sent.envelope_from.split("@")[0]) <= 64  # RFC 5321 local-part limit
    # The visible sender is unchanged: only the envelope (the future Return-Path) carries the token.
    assert str(sent.message["From"]) == "Calm Soaps <hello@calmsoaps.example>"


def test_a_hard_bounce_suppresses_the_address_and_cancels_its_mail_before_the_answer(world, smtp, listener,
                                                                                       bounce_app, clock) -> None:
    sent = smtp.messages[0]
    clock.advance(timedelta(hours=2))  # the relay queued it, then gave up
    report = mail_reports.dsn(sent, clock.now())
    mail_reports.send("127.0.0.1", listener.port, report, sent.envelope_from)
    # sendmail returned: the listener answered 250 only after the suppression committed.
    rows, messages = _state(bounce_app)
    assert rows == [(world["store"], "c1@example.com", "bounce")]
    assert messages == {"first": ("failed", "bounced"), "reminder": ("cancelled", "bounced"),
                        "survey": ("cancelled", "bounced"), "other": ("scheduled", None)}
    with bounce_app.extensions["aftercare.db"].session() as s:
        first = s.get(Message, world["first"])
        assert first.last_error.startswith("hard bounce (DSN): 5.1.1 failed smtp; 550 5.1.1")
        assert first.sent_at is not None
    assert listener.handler.outcomes[-1].cancelled == 2
    # The relay sends the report again: nothing more changes.
    mail_reports.send("127.0.0.1", listener.port, report, sent.envelope_from)
    assert _state(bounce_app) == (rows, messages)
    assert listener.handler.outcomes[-1].cancelled == 0


@pytest.mark.parametrize(("status", "action"), [("4.4.1", "delayed"), ("4.2.2", "failed"), ("5.1.1", "delayed"),
                                                ("2.0.0", "delivered")])
def test_a_soft_bounce_or_a_delay_changes_nothing(world, smtp, listener, bounce_app, clock, status, action) -> None:
    sent = smtp.messages[0]
    report = mail_reports.dsn(sent, clock.now(), status=status, action=action,
                              diagnostic="smtp; 452 4.2.2 Mailbox full")
    mail_reports.send("127.0.0.1", listener.port, report, sent.envelope_from)
    assert _state(bounce_app) == ([], UNTOUCHED)
    assert listener.handler.outcomes[-1].reply.startswith("250 2.0.0 Soft bounce")


def _refused(port: int, report: bytes, to: str) -> tuple[int, bytes]:
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused)) as refused:
        mail_reports.send("127.0.0.1", port, report, to)
    error: Any = refused.value
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return next(iter(error.recipients.values()))
    return error.smtp_code, error.smtp_error


def test_forged_tokens_and_mail_that_is_no_report_change_nothing(world, smtp, listener, bounce_app, clock) -> None:
    sent = smtp.messages[0]
    token_mac = sent.envelope_from.split("-", 1)[1].split("@")[0]
    other_id = world["other"]
    forged_mac = sent.envelope_from.replace(token_mac, ("0" if token_mac[0] != "0" else "1") + token_mac[1:])
    # The MAC of the first message cannot name another one (c2's reminder).
    moved = f"bounces+m{other_id}-{token_mac}@mail.calmsoaps.example"
    for address in (forged_mac, moved):
        forged = mail_reports.dsn(sent, clock.now()).replace(sent.envelope_from.encode(), address.encode())
        code, text = _refused(listener.port, forged, address)
        assert (code, b"token not recognised" in text) == (550, True)
    plain = (b"From: someone@example.net\r\nTo: " + BOUNCES.encode() + b"\r\nSubject: hello\r\n\r\nnot a report\r\n")
    code, text = _refused(listener.port, plain, sent.envelope_from)
    assert code == 550 and b"Not a delivery status notification" in text
    code, _text = _refused(listener.port, mail_reports.dsn(sent, clock.now()), "postmaster@mail.calmsoaps.example")
    assert code == 550
    assert _state(bounce_app) == ([], UNTOUCHED)


def test_a_feedback_loop_complaint_suppresses_and_cancels(world, smtp, listener, bounce_app, clock) -> None:
    sent = smtp.messages[0]
    # Feedback loops send to the address registered with them (the bare mailbox); the token is in the quoted
    # original's Original-Mail-From / Return-Path.
    not_spam = mail_reports.arf(sent, clock.now(), feedback_type="not-spam", to=BOUNCES)
    mail_reports.send("127.0.0.1", listener.port, not_spam, BOUNCES)
    assert _state(bounce_app) == ([], UNTOUCHED)
    mail_reports.send("127.0.0.1", listener.port, mail_reports.arf(sent, clock.now(), to=BOUNCES), BOUNCES)
    rows, messages = _state(bounce_app)
    assert rows == [(world["store"], "c1@example.com", "complaint")]
    # The complained-about email was delivered: it stays sent, with the complaint on its record.
    assert messages == {"first": ("sent", "complained"), "reminder": ("cancelled", "complained"),
                        "survey": ("cancelled", "complained"), "other": ("scheduled", None)}


@pytest.mark.parametrize(("stage", "delivered"), [("ehlo", False), ("mail", True)])
def test_a_bounce_landing_while_the_next_email_is_being_sent(world, smtp, listener, bounce_app, clock, stage,
                                                             delivered) -> None:
    """During the handshake the next email to the address is stopped; after its last check (MAIL FROM) it leaves."""
    first = smtp.messages[0]
    clock.advance(timedelta(days=3, minutes=1))  # the survey is due
    ctx = _context(bounce_app, smtp, Database(bounce_app.config["AFTERCARE"].database_url))
    smtp.on(stage, lambda: mail_reports.send("127.0.0.1", listener.port, mail_reports.dsn(first, clock.now()),
                                             first.envelope_from))
    try:
        counts = dispatch_due(ctx)
    finally:
        ctx.database.dispose()
    rows, messages = _state(bounce_app)
    assert rows == [(world["store"], "c1@example.com", "bounce")]
    assert len(smtp.messages_to("c1@example.com")) == (2 if delivered else 1)
    if delivered:
        assert counts == {"sent": 1}
        assert messages["survey"] == ("sent", None)
    else:
        assert counts == {"cancelled": 1}
        assert messages["survey"] == ("cancelled", "bounced")
    assert messages["reminder"] == ("cancelled", "bounced")


def test_without_a_bounce_mailbox_the_envelope_sender_is_the_from_address(app, clock, smtp) -> None:
    clock.set(IN_WINDOW)
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s)
        seed.message(s, store, seed.customer(s, store, 1), when=IN_WINDOW)
    assert dispatch_due(_context(app, smtp)) == {"sent": 1}
    assert smtp.messages[0].envelope_from == "hello@calmsoaps.example"


@pytest.mark.parametrize("mailbox", ["bounces", "bounces+x@mail.example", "a@b@c"])
def test_a_bounce_mailbox_that_cannot_work_stops_the_start_naming_the_setting(tmp_path, mailbox) -> None:
    with pytest.raises(ConfigError, match="mail.bounce_mailbox"):
        load_config(make_settings("sqlite://", tmp_path, mail={"bounce_mailbox": mailbox}), environ={})


def test_an_exchange_style_report_quoting_the_whole_original_is_read(world, smtp, listener, bounce_app) -> None:
    """A DSN that quotes the original as message/rfc822 (not only its headers), CRLF and folded fields."""
    sent = smtp.messages[0]
    boundary = "B_3857_report"
    report = (
        f"From: postmaster@outlook.example\r\nTo: {sent.envelope_from}\r\nSubject: Undeliverable: How was it?\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n"
        f' boundary="{boundary}"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset="us-ascii"\r\n\r\n'
        "Delivery has failed to these recipients or groups.\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;BN8PR.outlook.example\r\n"
        "Received-From-MTA: dns;mx.calmsoaps.example\r\n\r\nFinal-Recipient: RFC822; C1@Example.com\r\n"
        "Action: FAILED\r\nStatus: 5.2.1\r\nDiagnostic-Code: smtp;550 5.2.1 The email account that you tried\r\n"
        " to reach is disabled.\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
    ).encode() + sent.raw.replace(b"\r\n.\r\n", b"\r\n") + f"\r\n--{boundary}--\r\n".encode()
    mail_reports.send("127.0.0.1", listener.port, report, sent.envelope_from)
    rows, messages = _state(bounce_app)
    assert rows == [(world["store"], "c1@example.com", "bounce")]
    assert messages["reminder"] == ("cancelled", "bounced")
    with bounce_app.extensions["aftercare.db"].session() as s:
        assert s.get(Message, world["first"]).last_error == (
            "hard bounce (DSN): 5.2.1 failed smtp;550 5.2.1 The email account that you tried to reach is disabled.")


def test_the_cli_listener_serves_the_bounce_mailbox_alone(world, smtp, bounce_app, tmp_path, clock) -> None:
    sent = smtp.messages[0]
    config = bounce_app.config["AFTERCARE"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = project_env({"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AFTERCARE_DATABASE_URL": config.database_url,
                       "AFTERCARE_SECRET_KEY": config.secrets.secret_key,
                       "AFTERCARE_ENCRYPTION_KEY": config.secrets.encryption_key,
                       "AFTERCARE_MAIL__BOUNCE_MAILBOX": f'"{BOUNCES}"'})
    server = subprocess.Popen([*AFTERCARE, "unsubscribe-mailbox", "--host", "127.0.0.1", "--port", str(port)],
                              preexec_fn=like_a_terminal, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert f"bounces to {BOUNCES}: SMTP on 127.0.0.1:{port}" in server.stdout.readline()
        mail_reports.send("127.0.0.1", port, mail_reports.dsn(sent, clock.now()), sent.envelope_from)
        assert _state(bounce_app)[0] == [(world["store"], "c1@example.com", "bounce")]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    assert server.returncode == 0, server.stderr.read()
