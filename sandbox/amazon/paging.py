"""Opaque, signed pagination tokens in standard base64 that always contain ``+``, ``/`` and ``=``.

Amazon's NextToken values are standard base64 (e.g. ``...ZWQ=``) and must be URL-encoded by clients;
making every token contain all three characters turns a missing encoding into a visible failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from typing import Any

from .http import invalid_input

_MAGIC = b"\xfb\xff\xff"  # encodes to "+///": every token starts with '+' and '/'


def encode(secret: bytes, state: dict[str, Any]) -> str:
    """Serialise ``state`` into a token signed with ``secret``."""
    payload = zlib.compress(json.dumps(state, separators=(",", ":"), sort_keys=True).encode())
    sig = hmac.new(secret, payload, hashlib.sha256).digest()[:8]
    # pad so the raw length is 1 mod 3: base64 then always ends with "==".
    pad = (1 - (len(_MAGIC) + 1 + len(sig) + len(payload))) % 3
    raw = _MAGIC + bytes([pad]) + b"\x00" * pad + sig + payload
    return base64.b64encode(raw).decode()


def decode(secret: bytes, token: str, name: str = "NextToken") -> dict[str, Any]:
    """Verify and decode a token, or raise 400 InvalidInput (e.g. a token that lost its '+')."""
    try:
        raw = base64.b64decode(token.encode(), validate=True)
        if not raw.startswith(_MAGIC):
            raise ValueError("bad magic")
        pad = raw[len(_MAGIC)]
        body = raw[len(_MAGIC) + 1 + pad:]
        sig, payload = body[:8], body[8:]
        if not hmac.compare_digest(sig, hmac.new(secret, payload, hashlib.sha256).digest()[:8]):
            raise ValueError("bad signature")
        return json.loads(zlib.decompress(payload))
    except (ValueError, zlib.error, IndexError):
        raise invalid_input(f"Invalid {name}.", f"The {name} value is invalid or was not URL-encoded.") from None
