"""The SMTP sandbox is a real SMTP server: smtplib talks to it over loopback and it keeps what arrives."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography import x509

from base.clock import FrozenClock
from sandbox.smtp import SmtpSandbox

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
RAW = (
    b"From: Calm Coffee <hello@calm-coffee.example>\r\n"
    b"To: ana@example.com\r\n"
    b"Subject: How was your order?\r\n"
    b"Message-ID: <review-request-1001@aftercare.example>\r\n"
    b"List-Unsubscribe: <https://aftercare.example/u/abc>, <mailto:unsub@aftercare.example>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Hi Ana,\r\n"
    b".a line that starts with a dot (SMTP dot-stuffs it in transit)\r\n"
    b"Gr\xc3\xbc\xc3\x9fe\r\n"
)


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpSandbox]:
    with SmtpSandbox(outbox_dir=tmp_path / "outbox", clock=FrozenClock(NOW)) as server:
        yield server


def test_keeps_exact_bytes_envelope_and_headers(smtp: SmtpSandbox, tmp_path: Path) -> None:
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        refused = client.sendmail("bounces@aftercare.example", ["ana@example.com", "Ben@Example.com"], RAW)
    assert refused == {}
    [kept] = smtp.messages
    assert kept.raw == RAW
    assert kept.envelope_from == "bounces@aftercare.example"
    assert kept.envelope_to == ("ana@example.com", "Ben@Example.com")
    assert kept.message_id == "<review-request-1001@aftercare.example>"
    assert kept.message["Subject"] == "How was your order?"
    assert kept.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert kept.message.get_content() == (
        "Hi Ana,\n.a line that starts with a dot (SMTP dot-stuffs it in transit)\nGrüße\n")
    assert kept.received_at == NOW
    assert kept.peer_host == "127.0.0.1"
    assert (kept.tls, kept.authenticated_as) == (False, None)
    assert kept.path is not None and kept.path.parent == tmp_path / "outbox"
    assert kept.path.read_bytes() == RAW
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [kept.path.name]
    assert smtp.messages_to("ben@example.com") == [kept]


def test_send_message_headers_survive(smtp: SmtpSandbox) -> None:
    message = EmailMessage()
    message["From"] = "Calm Coffee <hello@calm-coffee.example>"
    message["To"] = "Chloé <chloe@example.fr>"
    message["Subject"] = "Votre avis sur « Espresso » ?"
    message["Message-ID"] = "<survey-77@aftercare.example>"
    message.set_content("Bonjour Chloé,\nnotez votre commande.\n")
    message.add_alternative("<p>Bonjour Chloé</p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        client.send_message(message)
    [kept] = smtp.messages
    assert kept.envelope_from == "hello@calm-coffee.example"
    assert kept.envelope_to == ("chloe@example.fr",)
    assert kept.message["Subject"] == "Votre avis sur « Espresso » ?"
    assert kept.message["To"] == "Chloé <chloe@example.fr>"
    assert kept.message_id == "<survey-77@aftercare.example>"
    assert kept.message.get_body(("plain",)).get_content() == "Bonjour Chloé,\nnotez votre commande.\n"
    assert kept.message.get_body(("html",)).get_content() == "<p>Bonjour Chloé</p>\n"


def test_permanent_refusal_is_550_and_nothing_is_kept(smtp: SmtpSandbox) -> None:
    smtp.reject("gone@example.com")
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("bounces@aftercare.example", ["Gone@example.com"], RAW)
    code, text = refused.value.recipients["Gone@example.com"]
    assert code == 550
    assert text.startswith(b"5.1.1 <Gone@example.com>")
    assert smtp.messages == []


def test_temporary_refusal_is_451_and_others_still_get_the_message(smtp: SmtpSandbox) -> None:
    smtp.reject("busy@example.com", permanent=False)
    smtp.reject("gone@example.com", permanent=True)
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        refused = client.sendmail("bounces@aftercare.example",
                                  ["busy@example.com", "ana@example.com", "gone@example.com"], RAW)
    assert {address: code for address, (code, _) in refused.items()} == {
        "busy@example.com": 451, "gone@example.com": 550}
    assert refused["busy@example.com"][1].startswith(b"4.3.0")
    [kept] = smtp.messages
    assert kept.envelope_to == ("ana@example.com",)

    smtp.accept("busy@example.com")
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        assert client.sendmail("bounces@aftercare.example", ["busy@example.com"], RAW) == {}
    assert [m.envelope_to for m in smtp.messages] == [("ana@example.com",), ("busy@example.com",)]


def test_starttls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    with SmtpSandbox(tls=True, require_tls=True, clock=FrozenClock(NOW)) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as plain:
            plain.ehlo()
            assert plain.has_extn("starttls")
            code, _ = plain.mail("bounces@aftercare.example")
            assert code == 530  # TLS is required before MAIL
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
            code, _ = client.starttls(context=_unverified())
            assert code == 220
            client.sendmail("bounces@aftercare.example", ["ana@example.com"], RAW)
        [kept] = server.messages
        assert kept.tls is True and kept.raw == RAW
        certificate = x509.load_pem_x509_certificate(server.certificate_pem or b"")
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in names.get_values_for_type(x509.DNSName)
        # A verifying client trusting that certificate accepts it for 127.0.0.1.
        trusting = ssl.create_default_context(cadata=server.certificate_pem.decode())
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
            client.starttls(context=trusting)
            client.sendmail("bounces@aftercare.example", ["ben@example.com"], RAW)
        assert len(server.messages) == 2


def test_auth_plain_and_login(tmp_path: Path) -> None:
    with SmtpSandbox(tls=True, auth={"mailer": "s3cret-pass"}, clock=FrozenClock(NOW)) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
            client.starttls(context=_unverified())
            client.ehlo()
            code, _ = client.mail("bounces@aftercare.example")
            assert code == 530  # authentication required
            client.rset()
            with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
                client.login("mailer", "nope")
            assert wrong.value.smtp_code == 535
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
            client.starttls(context=_unverified())
            client.ehlo()
            client.user, client.password = "mailer", "s3cret-pass"
            code, _ = client.auth("PLAIN", client.auth_plain)
            assert code == 235
            client.sendmail("bounces@aftercare.example", ["ana@example.com"], RAW)
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
            client.starttls(context=_unverified())
            client.ehlo()
            client.user, client.password = "mailer", "s3cret-pass"
            code, _ = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
            assert code == 235
            client.sendmail("bounces@aftercare.example", ["ben@example.com"], RAW)
        assert [(m.authenticated_as, m.envelope_to) for m in server.messages] == [
            ("mailer", ("ana@example.com",)), ("mailer", ("ben@example.com",))]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_without_tls_is_allowed_on_loopback() -> None:
    with SmtpSandbox(auth={"mailer": "pw-123456"}) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
            client.login("mailer", "pw-123456")
            client.sendmail("bounces@aftercare.example", ["ana@example.com"], RAW)
        assert [m.authenticated_as for m in server.messages] == ["mailer"]


def test_fixed_port_and_restart_guard(tmp_path: Path) -> None:
    first = SmtpSandbox().start()
    try:
        port = first.port
        assert port > 0
        with pytest.raises(RuntimeError):
            first.start()
    finally:
        first.stop()
    with SmtpSandbox(port=port) as again:
        assert again.port == port
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            assert client.noop()[0] == 250
