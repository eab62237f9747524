"""SendGrid's signed Event Webhook: bodies shaped like the Event Webhook reference, signed with an ECDSA P-256 key
made in the test over timestamp + raw body (as the Event Webhook security docs describe). A bounce or spam report
suppresses at once; a tampered body, another key or a missing header gets 401 and changes nothing.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from plugin.config import ConfigError, load_config
from tests.conftest import make_settings
from tests.mail_events.conftest import FIRST_ID, after, seed_world, state, untouched

TIMESTAMP = "1772443800"


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """Return the verification key as SendGrid shows it (base64 of the DER SubjectPublicKeyInfo)."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def signed(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: str = TIMESTAMP) -> dict[str, str]:
    """Return the headers SendGrid sends with a signed batch."""
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp, "Content-Type": "application/json"}


def event(name: str, email: str = "c1@example.com", **extra: Any) -> dict[str, Any]:
    """One event as in SendGrid's Event Webhook reference."""
    return {"email": email, "timestamp": 1772443790, "smtp-id": FIRST_ID, "event": name, "category": ["review"],
            "sg_event_id": f"{name}-{email}", "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            **extra}


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    """The Event Webhook signing key (SendGrid keeps the private half)."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def app(make_app, key):
    """The app with the SendGrid verification key configured."""
    return make_app(sendgrid_public_key=public_key_b64(key))


def _post(app, body: bytes, headers: dict[str, str]) -> Any:
    return app.test_client().post("/webhooks/mail/sendgrid", data=body, headers=headers)


def test_a_bounce_in_a_batch_suppresses_and_cancels_once(app, key) -> None:
    world = seed_world(app)
    body = json.dumps([
        event("processed"), event("deferred", response="400 try again later", attempt="5"),
        event("bounce", reason="500 unknown recipient", status="5.0.0", type="bounce",
              bounce_classification="Invalid Address"),
        event("bounce", email="c2@example.com", reason="550 blocked by policy", status="5.7.1", type="blocked"),
        event("delivered", email="c2@example.com", response="250 OK"),
    ]).encode()
    answer = _post(app, body, signed(key, body))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    # smtp-id is the Message-ID we sent from store A; c2's "blocked" is a soft bounce.
    assert state(app) == ([(world.store_a, "c1@example.com", "bounce")], after("a", "bounce"))
    assert _post(app, body, signed(key, body)).status_code == 200
    assert state(app) == ([(world.store_a, "c1@example.com", "bounce")], after("a", "bounce"))


def test_a_spam_report_suppresses_as_a_complaint(app, key) -> None:
    world = seed_world(app)
    body = json.dumps([event("spamreport")]).encode()
    assert _post(app, body, signed(key, body)).status_code == 200
    assert state(app) == ([(world.store_a, "c1@example.com", "complaint")], after("a", "complaint"))


def test_forged_batches_get_401_and_change_nothing(app, key) -> None:
    seed_world(app)
    body = json.dumps([event("bounce", reason="500 unknown recipient", status="5.0.0", type="bounce")]).encode()
    headers = signed(key, body)
    other = ec.generate_private_key(ec.SECP256R1())
    cases = [
        (body.replace(b"c1@example.com", b"c2@example.com"), headers),  # tampered body
        (body, signed(other, body)),  # another key
        (body, {**headers, "X-Twilio-Email-Event-Webhook-Timestamp": "1772443801"}),  # timestamp changed
        (body, {k: v for k, v in headers.items() if "Signature" not in k}),
        (body, {k: v for k, v in headers.items() if "Timestamp" not in k}),
        (body, {**headers, "X-Twilio-Email-Event-Webhook-Signature": "bm90IGEgc2lnbmF0dXJl"}),
        (body, {**headers, "X-Twilio-Email-Event-Webhook-Signature": "%%%"}),
    ]
    for raw, hdrs in cases:
        assert _post(app, raw, hdrs).status_code == 401
    assert state(app) == ([], untouched())


def test_oversize_413_unreadable_400_unconfigured_404(app, key, make_app) -> None:
    seed_world(app)
    limit = app.config["AFTERCARE"].get("app.max_webhook_body_bytes")
    big = json.dumps([event("bounce", type="bounce", reason="x" * limit)]).encode()
    assert _post(app, big, signed(key, big)).status_code == 413
    not_a_list = json.dumps(event("bounce", type="bounce")).encode()
    assert _post(app, not_a_list, signed(key, not_a_list)).status_code == 400
    assert state(app) == ([], untouched())
    body = json.dumps([event("bounce", type="bounce")]).encode()
    assert _post(make_app(), body, signed(key, body)).status_code == 404


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"garbage").decode()])
def test_a_key_that_is_no_p256_key_stops_the_start_naming_the_setting(tmp_path, value) -> None:
    with pytest.raises(ConfigError, match="mail.sendgrid_public_key"):
        load_config(make_settings("sqlite://", tmp_path, mail={"sendgrid_public_key": value}), environ={})


def test_a_key_of_another_curve_is_refused(tmp_path) -> None:
    der = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ConfigError, match="P-256"):
        load_config(make_settings("sqlite://", tmp_path, mail={"sendgrid_public_key": base64.b64encode(der).decode()}),
                    environ={})
