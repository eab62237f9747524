"""Postmark's bounce and spam-complaint webhooks: records shaped like Postmark's webhook docs, sent with the Basic
auth credentials of the webhook URL. Postmark's events carry no id of ours, so every store that emailed the address
is concerned; a store that never did is not. Wrong or missing credentials get 401 and change nothing.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from plugin.config import ConfigError, load_config
from tests.conftest import make_settings
from tests.mail_events.conftest import POSTMARK_PASSWORD, after, seed_world, state, untouched

USER = "postmark-hooks"


def basic(user: str = USER, password: str = POSTMARK_PASSWORD) -> dict[str, str]:
    """Return the Authorization header Postmark derives from https://user:password@host/... ."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def record(kind: str, type_: str, type_code: int, email: str = "c1@example.com") -> dict[str, Any]:
    """A Bounce or SpamComplaint webhook record as in Postmark's webhook docs."""
    return {"RecordType": kind, "MessageStream": "outbound", "ID": 4323372036854775807, "Type": type_,
            "TypeCode": type_code, "Name": "Hard bounce" if type_ == "HardBounce" else type_, "Tag": "review",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Metadata": {}, "ServerID": 23,
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.", "Email": email,
            "From": "hello@calmsoaps.example", "BouncedAt": "2026-03-03T09:31:54.9070259Z", "DumpAvailable": True,
            "Inactive": True, "CanActivate": True, "Subject": "How was your order?", "Content": "Return-Path: <>"}


@pytest.fixture
def app(make_app):
    """The app with Postmark's webhook credentials configured."""
    return make_app(postmark_webhook_user=USER)


def _post(app, body: Any, headers: dict[str, str]) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return app.test_client().post("/webhooks/mail/postmark", data=raw,
                                  headers={**headers, "Content-Type": "application/json"})


def test_a_hard_bounce_suppresses_in_every_store_that_emailed_the_address(app) -> None:
    world = seed_world(app)
    answer = _post(app, record("Bounce", "HardBounce", 1), basic())
    assert answer.status_code == 200, answer.get_data(as_text=True)
    expected = [(world.store_a, "c1@example.com", "bounce"), (world.store_b, "c1@example.com", "bounce")]
    assert state(app) == (sorted(expected), after("ab", "bounce"))
    assert _post(app, record("Bounce", "HardBounce", 1), basic()).status_code == 200
    assert state(app) == (sorted(expected), after("ab", "bounce"))


def test_a_spam_complaint_suppresses_and_soft_bounces_change_nothing(app) -> None:
    world = seed_world(app)
    for soft in (record("Bounce", "SoftBounce", 4096), record("Bounce", "Transient", 2),
                 record("Bounce", "DnsError", 512), record("Delivery", "", 0)):
        assert _post(app, soft, basic()).status_code == 200
    assert state(app) == ([], untouched())
    assert _post(app, record("SpamComplaint", "SpamComplaint", 512), basic()).status_code == 200
    expected = [(world.store_a, "c1@example.com", "complaint"), (world.store_b, "c1@example.com", "complaint")]
    assert state(app) == (sorted(expected), after("ab", "complaint"))


def test_wrong_credentials_get_401_and_change_nothing(app) -> None:
    seed_world(app)
    bounce = record("Bounce", "HardBounce", 1)
    for headers in ({}, basic(password="wrong"), basic(user="other"), basic(password=POSTMARK_PASSWORD + "x"),
                    {"Authorization": f"Bearer {POSTMARK_PASSWORD}"}, {"Authorization": "Basic !!!"}):
        assert _post(app, bounce, headers).status_code == 401
    assert state(app) == ([], untouched())


def test_oversize_413_unreadable_400_unconfigured_404(app, make_app) -> None:
    seed_world(app)
    limit = app.config["AFTERCARE"].get("app.max_webhook_body_bytes")
    big = {**record("Bounce", "HardBounce", 1), "Content": "x" * limit}
    assert _post(app, big, basic()).status_code == 413
    assert _post(app, b"[1]", basic()).status_code == 400
    assert state(app) == ([], untouched())
    assert _post(make_app(), record("Bounce", "HardBounce", 1), basic()).status_code == 404


def test_a_user_without_the_password_secret_stops_the_start_naming_the_variable(tmp_path) -> None:
    with pytest.raises(ConfigError, match="AFTERCARE_POSTMARK_WEBHOOK_PASSWORD"):
        load_config(make_settings("sqlite://", tmp_path, mail={"postmark_webhook_user": USER}), environ={})
