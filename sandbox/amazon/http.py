"""Request parsing and Amazon-shaped JSON answers shared by every SP-API handler."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response


class ApiError(Exception):
    """An SP-API error answer: HTTP status plus one ``{"code","message","details"}`` entry."""

    def __init__(self, status: int, code: str, message: str, details: str | None = ""):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        """Return the ``ErrorList`` body Amazon sends."""
        entry = {"code": self.code, "message": self.message}
        if self.details is not None:
            entry["details"] = self.details
        return {"errors": [entry]}


def invalid_input(message: str, details: str = "") -> ApiError:
    """Build Amazon's 400 ``InvalidInput`` error."""
    return ApiError(400, "InvalidInput", message, details)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> Response:
    """Serialise ``body`` as compact JSON (``None`` → empty body)."""
    data = (b"" if body is None or status == 204
            else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    response = Response(data, status=status, content_type=content_type)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def list_param(args: MultiDict, name: str) -> list[str]:
    """Read an array query parameter sent either repeated or comma-separated (SDKs do both)."""
    values: list[str] = []
    for raw in args.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def iso(when: datetime) -> str:
    """Format like Amazon: ISO 8601 UTC with a ``Z`` and no fractional seconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str, name: str) -> datetime:
    """Parse an ISO 8601 query parameter, or raise 400 InvalidInput naming it."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise invalid_input(f"Invalid {name}: {value!r} is not an ISO 8601 date-time.",
                            "Invalid Input") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def json_body(raw: bytes) -> dict[str, Any]:
    """Decode a JSON object body (empty → {}), or raise 400."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid_input("Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise invalid_input("Request body must be a JSON object.")
    return body
