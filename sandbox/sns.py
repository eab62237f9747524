"""A stand-in for Amazon SNS's HTTPS delivery: signed envelopes, the signing certificate, subscription confirmation.

It holds an RSA key and a self-signed certificate made at start, serves the certificate on loopback under the
path a real ``SigningCertURL`` has, and signs envelopes exactly as the SNS docs describe (SignatureVersion 1:
SHA1withRSA, 2: SHA256withRSA, over ``Key\\nValue\\n`` of the type's fields in a fixed order). The envelopes name
``https://sns.<region>.amazonaws.com/...`` like real ones; the app is pointed at this server with
``mail.sns_fetch_base_url``. ``GET /?Action=ConfirmSubscription`` records confirmations as SNS would.
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from werkzeug.wrappers import Request, Response

from sandbox.server import ServerThread

_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)  # certificate validity follows the wall clock
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=7)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


class SnsSandbox:
    """SNS's side of an HTTPS subscription, on loopback."""

    def __init__(self, region: str = "eu-west-1", account: str = "123456789012"):
        self.region = region
        self.account = account
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate_pem = _certificate(self.key)
        self.cert_path = f"/SimpleNotificationService-{uuid.uuid4().hex}.pem"
        self.confirmed: list[dict[str, str]] = []
        self.certificate_fetches = 0
        self._lock = threading.Lock()
        self._server = ServerThread(self._wsgi)

    # -- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> SnsSandbox:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        """Return the loopback base URL (what ``mail.sns_fetch_base_url`` points at)."""
        return self._server.url

    @property
    def host(self) -> str:
        """Return the SNS host real envelopes of this region name."""
        return f"sns.{self.region}.amazonaws.com"

    def topic_arn(self, name: str) -> str:
        """Return the ARN of a topic of this account and region."""
        return f"arn:aws:sns:{self.region}:{self.account}:{name}"

    # -- envelopes ----------------------------------------------------------------------------------------
    def sign(self, envelope: dict[str, Any], version: str = "1") -> dict[str, Any]:
        """Add SignatureVersion, SigningCertURL and Signature to an envelope (SHA1 for 1, SHA256 for 2)."""
        signed = {**envelope, "SignatureVersion": version,
                  "SigningCertURL": f"https://{self.host}{self.cert_path}"}
        text = "".join(f"{name}\n{signed[name]}\n" for name in _FIELDS[signed["Type"]] if name in signed)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303  # SNS SignatureVersion 1
        signature = self.key.sign(text.encode("utf-8"), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def notification(self, topic_arn: str, message: dict[str, Any] | str, *, subject: str | None = None,
                     version: str = "1", when: datetime | None = None) -> dict[str, Any]:
        """Return a signed Notification envelope carrying ``message`` (a dict is sent as its JSON string)."""
        envelope: dict[str, Any] = {
            "Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic_arn,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "UnsubscribeURL": f"https://{self.host}/?Action=Unsubscribe&SubscriptionArn={topic_arn}:{uuid.uuid4()}",
        }
        if subject is not None:
            envelope["Subject"] = subject
        return self.sign(envelope, version)

    def subscription_confirmation(self, topic_arn: str, version: str = "1") -> dict[str, Any]:
        """Return a signed SubscriptionConfirmation envelope for an HTTPS endpoint of ``topic_arn``."""
        token = uuid.uuid4().hex * 4
        query = urlencode({"Action": "ConfirmSubscription", "TopicArn": topic_arn, "Token": token})
        return self.sign({
            "Type": "SubscriptionConfirmation", "MessageId": str(uuid.uuid4()), "Token": token,
            "TopicArn": topic_arn, "SubscribeURL": f"https://{self.host}/?{query}",
            "Message": (f"You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, "
                        "visit the SubscribeURL included in this message."),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }, version)

    def deliver(self, endpoint: str, envelope: dict[str, Any]) -> httpx.Response:
        """POST an envelope to an HTTPS subscription endpoint with the headers SNS sends."""
        headers = {"x-amz-sns-message-type": envelope["Type"], "x-amz-sns-message-id": envelope["MessageId"],
                   "x-amz-sns-topic-arn": envelope["TopicArn"], "Content-Type": "text/plain; charset=UTF-8",
                   "User-Agent": "Amazon Simple Notification Service Agent"}
        return httpx.post(endpoint, content=json.dumps(envelope).encode(), headers=headers, timeout=10)

    # -- HTTP -----------------------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.method == "GET" and request.path == self.cert_path:
            with self._lock:
                self.certificate_fetches += 1
            response = Response(self.certificate_pem, content_type="application/x-pem-file")
        elif request.method == "GET" and request.path == "/" and request.args.get("Action") == "ConfirmSubscription":
            with self._lock:
                self.confirmed.append({"TopicArn": request.args.get("TopicArn", ""),
                                       "Token": request.args.get("Token", "")})
            arn = f"{request.args.get('TopicArn', '')}:{uuid.uuid4()}"
            response = Response(f'<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
                                f"<ConfirmSubscriptionResult><SubscriptionArn>{arn}</SubscriptionArn>"
                                "</ConfirmSubscriptionResult></ConfirmSubscriptionResponse>",
                                content_type="text/xml")
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)
