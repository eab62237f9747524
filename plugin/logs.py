"""Structured logging: one line per event, the store id on every line that concerns a store, no secrets."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("aftercare_log_context",
                                                                                  default=None)

# Query parameters that carry a live credential: Shopify's session token (id_token) and legacy session, the
# OAuth callback's code, hmac and state, and generic token/signature/secret names.
SECRET_PARAMETERS = ("id_token", "session", "hmac", "code", "state", "token", "signature", "access_token",
                     "refresh_token", "subject_token", "client_secret", "password")
REDACTED = "[redacted]"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # ?id_token=... &hmac=... in request lines and URLs (a field like ` code=400` in our own lines is kept).
    (re.compile(r"([?&;](?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&;#\s\"'<>]*", re.IGNORECASE), r"\1" + REDACTED),
    # Signed links of the public pages (/s/ /u/ /r/ /v/ /c/ + an itsdangerous token: payload.timestamp.signature).
    (re.compile(r"(/[survc]/)\.?[\w-]+\.[\w-]+\.[\w-]+"), r"\1" + REDACTED),
    (re.compile(r"(\bBearer\s+)[\w.~+/=-]{8,}", re.IGNORECASE), r"\1" + REDACTED),
    (re.compile(r"(\bAuthorization[\"']?\s*[:=]\s*[\"']?\w+\s+)[\w.~+/=-]+", re.IGNORECASE), r"\1" + REDACTED),
    # Any JWT (a session token outside the places above).
    (re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]{4,}"), REDACTED),
)


def redact_credentials(text: str) -> str:
    """Replace session tokens, OAuth codes, hmacs and signed-link tokens in a log text by ``[redacted]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redacting_factory(previous: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            return record  # a malformed call: logging reports it when a handler formats the record
        cleaned = redact_credentials(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    factory.aftercare_redacting = True  # type: ignore[attr-defined]
    return factory


def install_record_redaction() -> None:
    """Redact credentials from every log record as it is created (once per process).

    A handler's filter would only clean the lines of that handler and a logger's filter only the records of
    that exact logger; the record factory sees every record of every logger (werkzeug's request log, a
    gunicorn access log, pytest's capture) before any handler does.
    """
    current = logging.getLogRecordFactory()
    if not getattr(current, "aftercare_redacting", False):
        logging.setLogRecordFactory(_redacting_factory(current))


# Attributes every LogRecord has; anything else came in through `extra=` and is an event field.
_RESERVED = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (e.g. ``store_id``) to every log line emitted inside the block."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class EventFormatter(logging.Formatter):
    """Render ``ts level logger event key=value ...`` (or JSON) with context fields and redaction."""

    def __init__(self, secrets: Iterable[str] = (), as_json: bool = False):
        super().__init__()
        # Longest first so a secret that contains another is hidden whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)
        self._json = as_json

    def _redact(self, text: str) -> str:
        # Event fields (``extra=``) and tracebacks are only text here.
        text = redact_credentials(text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text

    def format(self, record: logging.LogRecord) -> str:
        """Format one record as a single line."""
        fields: dict[str, Any] = dict(_context.get() or {})
        fields.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = record.getMessage()
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info).replace("\n", " | ")
        if self._json:
            line = json.dumps({"ts": ts, "level": record.levelname, "logger": record.name, "event": event,
                               **fields}, default=str, ensure_ascii=False)
        else:
            parts = [ts, record.levelname, record.name, event]
            parts += [f"{k}={_quote(v)}" for k, v in fields.items()]
            line = " ".join(parts)
        return self._redact(line.replace("\n", "\\n"))


def _quote(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "='):
        return json.dumps(text, ensure_ascii=False)
    return text


def configure_logging(level: str = "INFO", secrets: Iterable[str] = (), as_json: bool = False,
                      stream: Any = None) -> logging.Handler:
    """Route every logger (ours and the libraries') through one redacting event formatter."""
    install_record_redaction()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(EventFormatter(secrets, as_json=as_json))
    handler.set_name("aftercare")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "aftercare"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    # Our own loggers speak at the configured level; libraries only from WARNING up.
    for name in ("aftercare", "plugin", "connectors", "jobs", "sandbox"):
        logging.getLogger(name).setLevel(level)
    return handler
