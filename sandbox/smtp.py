"""A real SMTP server on loopback (aiosmtpd) that keeps every message it accepts, for tests and the demo.

It can offer STARTTLS with a self-signed certificate made at start, require AUTH PLAIN/LOGIN, and refuse
chosen recipients permanently (``550 5.1.1``) or temporarily (``451 4.3.0``) so bounce handling can be tested.
Messages are kept in memory and, when ``outbox_dir`` is given, written there as ``.eml`` files (the demo's
outbox viewer reads them); each file appears atomically, so a reader never sees half a message.
"""

from __future__ import annotations

import ipaddress
import itertools
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from base.clock import Clock, SystemClock
from base.smtp_listener import AnyPortController

STAGES = ("ehlo", "auth", "mail", "rcpt", "data")
PERMANENT_REFUSAL = "550 5.1.1 <{address}>: Recipient address rejected: User unknown"
TEMPORARY_REFUSAL = "451 4.3.0 <{address}>: Recipient address rejected: Temporary failure, try again later"


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: the envelope, the exact bytes received, and the parsed message."""

    envelope_from: str
    envelope_to: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    message_id: str | None
    received_at: datetime
    peer_host: str
    authenticated_as: str | None
    tls: bool
    path: Path | None


class _Handler:
    """aiosmtpd handler hooks that defer to the sandbox."""

    def __init__(self, sandbox: SmtpSandbox):
        self._sandbox = sandbox

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,  # noqa: N802
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        self._sandbox.reached("ehlo")
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          mail_options: list[str]) -> str:
        self._sandbox.reached("mail")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        self._sandbox.reached("rcpt")
        refusal = self._sandbox.refusal_for(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self._sandbox.reached("data")
        stored = self._sandbox.keep(envelope, session)
        return f"250 2.0.0 Ok: queued as {stored}"


class SmtpSandbox:
    """An SMTP server on loopback that keeps what it receives.

    ``tls=True`` offers STARTTLS with a fresh self-signed certificate (``require_tls`` makes it mandatory);
    ``auth={"user": "password"}`` requires AUTH PLAIN or LOGIN before MAIL. Without TLS, AUTH is allowed in
    clear text, which is acceptable on loopback only.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, outbox_dir: str | Path | None = None,
                 tls: bool = False, require_tls: bool = False, auth: dict[str, str] | None = None,
                 clock: Clock | None = None, hostname: str = "smtp.sandbox.local"):
        self.host = host
        self._requested_port = port
        self.outbox_dir = Path(outbox_dir) if outbox_dir is not None else None
        self.tls = tls
        self.require_tls = require_tls
        self._auth = dict(auth) if auth else None
        self.clock = clock or SystemClock()
        self.hostname = hostname
        self._messages: list[ReceivedMessage] = []
        self._refusals: dict[str, str] = {}
        self._stage_hooks: dict[str, list[Callable[[], None]]] = {}
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)
        self._controller: AnyPortController | None = None
        self._cert_dir: tempfile.TemporaryDirectory[str] | None = None
        self.certificate_pem: bytes | None = None

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> SmtpSandbox:
        """Start listening and return self (the port is known once this returns)."""
        if self._controller is not None:
            raise RuntimeError("the SMTP sandbox is already running")
        if self.outbox_dir is not None:
            self.outbox_dir.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"ident": "Aftercare SMTP sandbox", "enable_SMTPUTF8": True,
                                  "decode_data": False, "server_hostname": self.hostname}
        if self.tls:
            kwargs["tls_context"] = self._tls_context()
            kwargs["require_starttls"] = self.require_tls
        if self._auth is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = True
            kwargs["auth_require_tls"] = self.tls  # with TLS on offer, credentials only travel encrypted
        controller = AnyPortController(_Handler(self), hostname=self.host, port=self._requested_port,
                                         **kwargs)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening and remove the temporary certificate."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._cert_dir is not None:
            self._cert_dir.cleanup()
            self._cert_dir = None

    def __enter__(self) -> SmtpSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """Return the port listened on."""
        if self._controller is None:
            raise RuntimeError("the SMTP sandbox is not running")
        return self._controller.port

    # -- what was received ------------------------------------------------------------------------------
    @property
    def messages(self) -> list[ReceivedMessage]:
        """Return a snapshot of the messages accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def messages_to(self, address: str) -> list[ReceivedMessage]:
        """Return the messages whose envelope includes ``address`` (case-insensitive)."""
        wanted = address.strip().lower()
        return [m for m in self.messages if wanted in (a.lower() for a in m.envelope_to)]

    def clear(self) -> None:
        """Forget the messages kept in memory (files in ``outbox_dir`` stay)."""
        with self._lock:
            self._messages.clear()

    # -- refusing recipients ----------------------------------------------------------------------------
    def reject(self, address: str, permanent: bool = True) -> None:
        """Refuse RCPT TO for ``address``: ``550 5.1.1`` when permanent, else ``451 4.3.0``."""
        template = PERMANENT_REFUSAL if permanent else TEMPORARY_REFUSAL
        with self._lock:
            self._refusals[address.strip().lower()] = template

    def accept(self, address: str) -> None:
        """Stop refusing ``address``."""
        with self._lock:
            self._refusals.pop(address.strip().lower(), None)

    def refusal_for(self, address: str) -> str | None:
        """Return the SMTP reply refusing ``address``, or None to accept it."""
        with self._lock:
            template = self._refusals.get(address.strip().lower())
        return template.format(address=address) if template else None

    # -- acting at a protocol stage (tests force races with it) ----------------------------------------
    def on(self, stage: str, action: Callable[[], None]) -> None:
        """Run ``action`` once, the next time a client reaches ``stage``, before the server answers it.

        Stages: ``ehlo``, ``auth``, ``mail``, ``rcpt``, ``data``. The client waits for the answer meanwhile, so
        whatever ``action`` does happens exactly at that point of the client's session.
        """
        if stage not in STAGES:
            raise ValueError(f"unknown SMTP stage {stage!r}; stages are {', '.join(STAGES)}")
        with self._lock:
            self._stage_hooks.setdefault(stage, []).append(action)

    def reached(self, stage: str) -> None:
        """Run the actions waiting for ``stage`` (called by the handler)."""
        with self._lock:
            actions = self._stage_hooks.pop(stage, [])
        for action in actions:
            action()

    # -- internals --------------------------------------------------------------------------------------
    def keep(self, envelope: Envelope, session: Session) -> str:
        """Store one message (called by the handler on DATA) and return its queue id."""
        raw = envelope.original_content or b""
        # The parsed view reads like a mail client shows it (LF line ends); ``raw`` stays byte-exact.
        parsed = BytesParser(policy=policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
        received_at = self.clock.now()
        sequence = next(self._sequence)
        queue_id = f"{received_at:%Y%m%dT%H%M%S}-{sequence:06d}"
        path = None
        if self.outbox_dir is not None:
            path = self.outbox_dir / f"{queue_id}.eml"
            partial = path.with_suffix(".eml.part")
            partial.write_bytes(raw)
            partial.replace(path)
        auth = session.auth_data
        authenticated_as = auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else None
        message = ReceivedMessage(
            envelope_from=envelope.mail_from or "",
            envelope_to=tuple(envelope.rcpt_tos),
            raw=raw,
            message=parsed,  # type: ignore[arg-type]  # policy.default parses into EmailMessage
            message_id=str(parsed["Message-ID"]).strip() if parsed["Message-ID"] else None,
            received_at=received_at,
            peer_host=str(session.peer[0]) if session.peer else "",
            authenticated_as=authenticated_as,
            tls=session.ssl is not None,
            path=path,
        )
        with self._lock:
            self._messages.append(message)
        return queue_id

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        """Check AUTH PLAIN/LOGIN credentials against the configured users."""
        self.reached("auth")
        if mechanism not in ("PLAIN", "LOGIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = self._auth is not None and login in self._auth and self._auth[login] == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _tls_context(self) -> ssl.SSLContext:
        """Make a self-signed certificate for the loopback host and a server TLS context around it."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.hostname)])
        now = datetime.now(UTC)  # certificate validity must follow the wall clock, not an injected one
        alt_names: list[x509.GeneralName] = [x509.DNSName(self.hostname), x509.DNSName("localhost")]
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(self.host)))
        except ValueError:
            alt_names.append(x509.DNSName(self.host))
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=7))
                .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self._cert_dir = tempfile.TemporaryDirectory(prefix="aftercare-smtp-")
        cert_path = Path(self._cert_dir.name) / "cert.pem"
        key_path = Path(self._cert_dir.name) / "key.pem"
        self.certificate_pem = cert.public_bytes(serialization.Encoding.PEM)
        cert_path.write_bytes(self.certificate_pem)
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        return context


def serve(port: int = 2525, outbox_dir: str | Path | None = None, host: str = "127.0.0.1", *,
          tls: bool = False, auth: dict[str, str] | None = None) -> None:
    """Run the SMTP sandbox in the foreground until interrupted (``aftercare sandbox smtp --port 2525``)."""
    sandbox = SmtpSandbox(host=host, port=port, outbox_dir=outbox_dir, tls=tls, auth=auth).start()
    where = f" writing .eml files to {sandbox.outbox_dir}" if sandbox.outbox_dir else ""
    print(f"SMTP sandbox listening on {host}:{sandbox.port}{where}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
