"""SES bounces and complaints through SNS: envelopes signed as the SNS docs describe (SignatureVersion 1 and 2) with
a key made in the test, posted over real HTTP to the running app, which fetches the signing certificate from the
SNS stand-in. A hard bounce or a complaint suppresses at once; forged, tampered, wrongly certified or foreign-topic
messages get 401 and change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from plugin.config import ConfigError, load_config
from plugin.messaging import bounces
from plugin.models import Message
from sandbox.server import ServerThread
from sandbox.sns import SnsSandbox
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.mail_events.conftest import FIRST_ID, after, seed_world, state, untouched

TOPIC = "aftercare-ses-events"


@pytest.fixture
def sns() -> Iterator[SnsSandbox]:
    """The SNS stand-in on loopback (signing certificate and subscription confirmation)."""
    with SnsSandbox() as server:
        yield server


@pytest.fixture
def served(make_app, sns):
    """The app allowing the test topic, served over real HTTP; return (app, endpoint URL)."""
    app = make_app(ses_topic_arns=[sns.topic_arn(TOPIC)], sns_fetch_base_url=sns.url)
    with ServerThread(app) as server:
        yield app, f"{server.url}/webhooks/mail/ses"


def ses_mail(destination: str = "c1@example.com", message_id: str = FIRST_ID) -> dict[str, Any]:
    """The ``mail`` object of an SES notification (shape of the SES notification-contents examples)."""
    return {"timestamp": "2026-03-02T09:30:00.000Z", "source": "hello@calmsoaps.example",
            "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/calmsoaps.example",
            "sourceIp": "127.0.3.0", "callerIdentity": "IAM_user_or_role_name", "sendingAccountId": "123456789012",
            "messageId": "01020188b4a4b4d1-4ec5a4e1-3d35-4b2a-9e16-33c1c0d9f3a1-000000",
            "destination": [destination], "headersTruncated": False,
            "headers": [{"name": "From", "value": "Calm Soaps <hello@calmsoaps.example>"},
                        {"name": "To", "value": destination}, {"name": "Message-ID", "value": message_id},
                        {"name": "Subject", "value": "How was your order?"}],
            "commonHeaders": {"from": ["Calm Soaps <hello@calmsoaps.example>"], "to": [destination],
                              "messageId": message_id, "subject": "How was your order?"}}


def bounce(kind: str = "Permanent", sub: str = "General", status: str = "5.1.1") -> dict[str, Any]:
    """An SES Bounce notification for c1."""
    return {"notificationType": "Bounce",
            "bounce": {"bounceType": kind, "bounceSubType": sub,
                       "bouncedRecipients": [{"emailAddress": "c1@example.com", "action": "failed", "status": status,
                                              "diagnosticCode": f"smtp; 550 {status} user unknown"}],
                       "timestamp": "2026-03-02T09:31:00.000Z",
                       "feedbackId": "01020188b4a4b4d1-7b3e1a36-0000-0000-0000-000000000000-000000",
                       "remoteMtaIp": "127.0.2.0", "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com"},
            "mail": ses_mail()}


def complaint() -> dict[str, Any]:
    """An SES Complaint notification for c1 (a feedback loop's abuse report)."""
    return {"notificationType": "Complaint",
            "complaint": {"userAgent": "ExampleCorp Feedback Loop (V0.01)",
                          "complainedRecipients": [{"emailAddress": "c1@example.com"}],
                          "complaintFeedbackType": "abuse", "arrivalDate": "2026-03-02T10:00:00.000Z",
                          "timestamp": "2026-03-02T10:01:00.000Z",
                          "feedbackId": "01020188b4a4b4d1-2c5a1f3c-0000-0000-0000-000000000000-000000"},
            "mail": ses_mail()}


def test_a_subscription_is_confirmed_only_for_an_allowed_topic(served, sns) -> None:
    app, endpoint = served
    answer = sns.deliver(endpoint, sns.subscription_confirmation(sns.topic_arn(TOPIC)))
    assert (answer.status_code, answer.json()) == (200, {"status": "confirmed"})
    assert [c["TopicArn"] for c in sns.confirmed] == [sns.topic_arn(TOPIC)]
    foreign = sns.deliver(endpoint, sns.subscription_confirmation(sns.topic_arn("someone-elses-topic")))
    assert foreign.status_code == 401
    assert len(sns.confirmed) == 1


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_hard_bounce_suppresses_and_cancels_once(served, sns, version) -> None:
    app, endpoint = served
    world = seed_world(app)
    envelope = sns.notification(sns.topic_arn(TOPIC), bounce(), version=version)
    answer = sns.deliver(endpoint, envelope)
    assert answer.status_code == 200, answer.text
    # Our Message-ID in the SES headers names store A's email: only store A is concerned.
    assert state(app) == ([(world.store_a, "c1@example.com", "bounce")], after("a", "bounce"))
    assert answer.json()["cancelled"] == 2
    again = sns.deliver(endpoint, envelope)  # SNS retries until it gets a 2xx
    assert (again.status_code, again.json()["cancelled"], again.json()["suppressed"]) == (200, 0, 0)
    assert state(app) == ([(world.store_a, "c1@example.com", "bounce")], after("a", "bounce"))
    assert sns.certificate_fetches == 1  # fetched once, then cached


def test_the_signed_return_path_names_the_email_when_ses_quotes_no_headers(make_app, sns) -> None:
    """With a bounce mailbox, ``mail.source`` is our VERP address: it alone names store B's email."""
    mailbox = "bounces@mail.calmsoaps.example"
    app = make_app(ses_topic_arns=[sns.topic_arn(TOPIC)], sns_fetch_base_url=sns.url, bounce_mailbox=mailbox)
    world = seed_world(app)
    with app.extensions["aftercare.db"].session() as s:
        b_first = s.scalar(select(Message.id).where(Message.idempotency_key == "b-first"))
    body = bounce()
    body["mail"] = {"source": bounces.return_path(TEST_SECRET_KEY, mailbox, b_first), "destination": ["c1@example.com"],
                    "messageId": "0102-ses-own-id", "headersTruncated": True}
    with ServerThread(app) as server:
        answer = sns.deliver(f"{server.url}/webhooks/mail/ses", sns.notification(sns.topic_arn(TOPIC), body))
    assert answer.status_code == 200
    assert state(app) == ([(world.store_b, "c1@example.com", "bounce")], after("b", "bounce"))


def test_a_complaint_suppresses_and_a_transient_bounce_changes_nothing(served, sns) -> None:
    app, endpoint = served
    world = seed_world(app)
    for soft in (bounce("Transient", "MailboxFull", "4.2.2"), bounce("Undetermined", "Undetermined", "5.0.0"),
                 {"notificationType": "Delivery", "mail": ses_mail(), "delivery": {"recipients": ["c1@example.com"]}}):
        assert sns.deliver(endpoint, sns.notification(sns.topic_arn(TOPIC), soft)).status_code == 200
    assert state(app) == ([], untouched())
    answer = sns.deliver(endpoint, sns.notification(sns.topic_arn(TOPIC), complaint(), subject="Amazon SES Email "
                                                                                               "Event Notification"))
    assert answer.status_code == 200
    assert state(app) == ([(world.store_a, "c1@example.com", "complaint")], after("a", "complaint"))


def test_forged_tampered_and_foreign_messages_get_401_and_change_nothing(served, sns) -> None:
    app, endpoint = served
    seed_world(app)
    topic = sns.topic_arn(TOPIC)
    genuine = sns.notification(topic, bounce())
    tampered = {**genuine, "Message": genuine["Message"].replace("c1@example.com", "c2@example.com")}
    with SnsSandbox() as impostor:  # another key: its signature cannot match SNS's certificate
        wrong_key = {**impostor.notification(topic, bounce()), "SigningCertURL": genuine["SigningCertURL"]}
    off_host = []
    for url in ("https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem", f"http://{sns.host}{sns.cert_path}",
                f"https://evil.example{sns.cert_path}", f"https://{sns.host}/not-a-certificate.txt",
                f"https://user@{sns.host}{sns.cert_path}", f"https://{sns.host}:8443{sns.cert_path}",
                f"https://{sns.host}:99999{sns.cert_path}"):
        off_host.append({**sns.notification(topic, bounce()), "SigningCertURL": url})
    cases: list[Any] = [tampered, wrong_key, *off_host,
                        sns.notification(sns.topic_arn("someone-elses-topic"), bounce()),
                        {**genuine, "SignatureVersion": "3"}, {**genuine, "Signature": "not base64!"},
                        {k: v for k, v in genuine.items() if k != "Signature"}]
    for case in cases:
        answer = sns.deliver(endpoint, case)
        assert answer.status_code == 401, (case, answer.text)
    for raw in (b"not json", b"[1, 2]"):
        assert httpx.post(endpoint, content=raw, timeout=10).status_code == 401
    assert state(app) == ([], untouched())
    # The off-host URLs were refused before any fetch (only the genuine certificate was ever fetched).
    assert sns.certificate_fetches == 1


def test_an_oversized_body_gets_413_and_an_unconfigured_endpoint_404(served, sns, make_app) -> None:
    app, endpoint = served
    seed_world(app)
    limit = app.config["AFTERCARE"].get("app.max_webhook_body_bytes")
    big = sns.notification(sns.topic_arn(TOPIC), {**bounce(), "padding": "x" * limit})
    answer = httpx.post(endpoint, content=json.dumps(big).encode(), timeout=10)
    assert answer.status_code == 413
    assert state(app) == ([], untouched())
    plain = make_app().test_client()
    assert plain.post("/webhooks/mail/ses", data=json.dumps(sns.notification(sns.topic_arn(TOPIC), bounce()))
                      ).status_code == 404


def test_a_topic_arn_that_is_no_arn_stops_the_start_naming_the_setting(tmp_path) -> None:
    with pytest.raises(ConfigError, match="mail.ses_topic_arns"):
        load_config(make_settings("sqlite://", tmp_path, mail={"ses_topic_arns": ["aftercare-bounces"]}), environ={})
