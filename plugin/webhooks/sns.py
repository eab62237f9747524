"""Amazon SNS message verification: the signing certificate, the string to sign, and subscription confirmation.

An HTTPS subscription receives JSON envelopes (``Type`` ``Notification``, ``SubscriptionConfirmation`` or
``UnsubscribeConfirmation``) signed with RSA: SignatureVersion 1 over SHA1, 2 over SHA256, with the certificate at
``SigningCertURL``. That URL is only believed when it is https on ``sns.<region>.amazonaws.com`` (or the China
partition's ``amazonaws.com.cn``) and names a ``.pem``; anything else is a forgery, whoever serves it.
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html

Certificates are fetched once per URL and kept (``CertificateCache``). ``mail.sns_fetch_base_url`` only changes
*where* an already-validated URL is fetched from (the demo and the tests serve certificates on loopback); the
validation of the URL in the message is the same in every deployment.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# The fields signed, in the order AWS concatenates them ("Subject" only when the notification has one).
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
FETCH_TIMEOUT = 10.0
MAX_CERT_BYTES = 64 * 1024


class SnsRejected(Exception):
    """The message is not a genuine SNS message (the webhook answers 401 and changes nothing)."""


def string_to_sign(message: dict[str, Any]) -> bytes:
    """Build the canonical ``Key\\nValue\\n`` string SNS signs for this message type."""
    kind = message.get("Type")
    if kind not in SIGNED_FIELDS:
        raise SnsRejected(f"unknown SNS message type {kind!r}")
    lines: list[str] = []
    for name in SIGNED_FIELDS[kind]:
        value = message.get(name)
        if value is None and name == "Subject":
            continue
        if not isinstance(value, str):
            raise SnsRejected(f"SNS field {name} missing")
        lines += [name, value]
    return ("\n".join(lines) + "\n").encode("utf-8")


def check_sns_url(url: object, what: str, suffix: str | None = None) -> str:
    """Return the URL when it is https on an SNS host (and ends with ``suffix``); raise SnsRejected otherwise."""
    if not isinstance(url, str):
        raise SnsRejected(f"{what} missing")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SnsRejected(f"{what} is not a URL") from exc
    if parts.scheme != "https" or not SNS_HOST.match(parts.hostname or "") or parts.username or port not in (None, 443):
        raise SnsRejected(f"{what} is not an https URL on sns.<region>.amazonaws.com")
    if suffix and not parts.path.endswith(suffix):
        raise SnsRejected(f"{what} does not name a {suffix} file")
    return url


def fetch_url(url: str, fetch_base: str) -> str:
    """Return where to fetch a validated SNS URL: itself, or the same path and query under ``fetch_base``."""
    if not fetch_base:
        return url
    parts = urlsplit(url)
    return fetch_base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


class CertificateCache:
    """SNS signing certificates' public keys by URL, fetched on first use (thread-safe)."""

    def __init__(self, fetch_base: str = ""):
        self.fetch_base = fetch_base
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def public_key(self, url: str) -> rsa.RSAPublicKey:
        """Return the RSA public key of the certificate at a validated SigningCertURL; raise SnsRejected."""
        with self._lock:
            known = self._keys.get(url)
        if known is not None:
            return known
        try:
            response = httpx.get(fetch_url(url, self.fetch_base), timeout=FETCH_TIMEOUT, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise SnsRejected(f"cannot fetch the signing certificate: {exc}") from exc
        if response.status_code != 200 or len(response.content) > MAX_CERT_BYTES:
            raise SnsRejected(f"signing certificate not available (HTTP {response.status_code})")
        try:
            key = x509.load_pem_x509_certificate(response.content).public_key()
        except ValueError as exc:
            raise SnsRejected("signing certificate is not a PEM certificate") from exc
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsRejected("signing certificate does not hold an RSA key")
        with self._lock:
            self._keys[url] = key
        return key


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message: its type, topic, id and body (and the subscription URL of a confirmation)."""

    type: str
    topic_arn: str
    message_id: str
    message: str
    subscribe_url: str | None


def verify(message: dict[str, Any], certificates: CertificateCache) -> SnsMessage:
    """Check an SNS envelope's signature against its certificate; return it verified or raise SnsRejected."""
    version = str(message.get("SignatureVersion") or "")
    algorithm = HASHES.get(version)
    if algorithm is None:
        raise SnsRejected(f"unsupported SignatureVersion {version!r}")
    url = check_sns_url(message.get("SigningCertURL"), "SigningCertURL", ".pem")
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsRejected("Signature is not base64") from exc
    signed = string_to_sign(message)
    key = certificates.public_key(url)
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SnsRejected("signature does not match") from exc
    subscribe_url = message.get("SubscribeURL") if message["Type"] != "Notification" else None
    if subscribe_url is not None:
        check_sns_url(subscribe_url, "SubscribeURL")
    return SnsMessage(type=message["Type"], topic_arn=str(message["TopicArn"]), message_id=str(message["MessageId"]),
                      message=str(message["Message"]), subscribe_url=subscribe_url)


def confirm_subscription(verified: SnsMessage, fetch_base: str) -> int:
    """Visit a verified confirmation's SubscribeURL (what confirms an HTTPS subscription); return the HTTP status."""
    if verified.subscribe_url is None:
        raise ValueError("not a subscription confirmation")
    try:
        response = httpx.get(fetch_url(verified.subscribe_url, fetch_base), timeout=FETCH_TIMEOUT,
                             follow_redirects=False)
    except httpx.HTTPError:
        return 0
    return response.status_code
