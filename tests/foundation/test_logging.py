"""Logs are one line per event, carry the store id in context, and never show a secret."""

from __future__ import annotations

import io
import logging

from plugin.config import load_config
from plugin.logs import configure_logging, log_context

SECRET = "super-secret-value-9f8e7d6c5b4a"
SMTP_PASSWORD = "smtp-pass-31415926"


def test_secrets_from_the_environment_never_reach_the_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"AFTERCARE_SECRET_KEY": SECRET, "AFTERCARE_ENCRYPTION_KEY": "4Ok1U0Tg5m4bVdXqEJ6kQYAqgQd0yXm8Dq1T7r2V2kE=",
           "AFTERCARE_SHOPIFY_API_KEY": "client", "AFTERCARE_SHOPIFY_API_SECRET": SECRET + "-shopify",
           "AFTERCARE_SMTP_URL": f"smtp+starttls://mailer:{SMTP_PASSWORD}@127.0.0.1:587"}
    cfg = load_config(environ=env)
    out = io.StringIO()
    configure_logging("DEBUG", cfg.secrets.values(), stream=out)
    log = logging.getLogger("aftercare.test")
    log.info("connecting with %s", cfg.secrets.smtp_url)
    log.warning("token refresh failed", extra={"detail": f"secret={cfg.secrets.shopify_api_secret}"})
    try:
        raise RuntimeError(f"boom {cfg.secrets.secret_key}")
    except RuntimeError:
        log.exception("crashed")
    text = out.getvalue()
    assert SECRET not in text
    assert SMTP_PASSWORD not in text
    assert "4Ok1U0Tg5m4bVdXqEJ6kQYAqgQd0yXm8Dq1T7r2V2kE=" not in text
    assert text.count("[redacted]") == 3  # the Shopify secret contains SECRET: hidden whole
    assert len(text.strip().splitlines()) == 3  # one line per event, tracebacks folded


def test_store_id_is_on_every_line_inside_its_context():
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    log = logging.getLogger("aftercare.test")
    with log_context(store_id=42):
        log.info("sync started")
        log.info("sync finished", extra={"orders": 10})
    log.info("outside")
    lines = out.getvalue().strip().splitlines()
    assert lines[0].endswith("sync started store_id=42")
    assert lines[1].endswith("sync finished store_id=42 orders=10")
    assert "store_id" not in lines[2]


def test_credentials_in_event_fields_and_tracebacks_are_redacted():
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    log = logging.getLogger("aftercare.test")
    url = "https://shop.example/auth/callback?code=abc123def&hmac=f00dfeed99&shop=s.myshopify.com"
    log.warning("callback failed", extra={"url": url, "code": 400})
    try:
        raise RuntimeError("refused Authorization: Bearer shpat_0123456789abcdef")
    except RuntimeError:
        log.exception("request failed")
    first, second = out.getvalue().strip().splitlines()
    assert first.endswith('callback failed url="https://shop.example/auth/callback?code=[redacted]&hmac=[redacted]'
                          '&shop=s.myshopify.com" code=400')
    assert "Bearer [redacted]" in second and "shpat_0123456789abcdef" not in second
