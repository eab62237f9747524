"""Email over SMTP with the standard library: MIME building, one connection reused across a batch, and
error classification (permanent 5xx → bounce and suppression, temporary 4xx or network → retry).

``AFTERCARE_SMTP_URL`` selects the transport: ``smtp://host:25`` (plain), ``smtp+starttls://user:pass@host:587``
(STARTTLS, required when asked for) or ``smtps://user:pass@host:465`` (implicit TLS). Query parameters:
``timeout`` (seconds) and, for test servers with self-signed certificates only, ``verify=false``.

Every message carries the ``Message-ID`` persisted on the outbox row before sending (so a resend after a crash
is recognisably the same message) and RFC 8058 one-click unsubscribe headers:
``List-Unsubscribe: <https://...>, <mailto:...>`` and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from plugin.messaging.templates import RenderedEmail

# Header lines up to RFC 5322's 998 characters: the default 78 would RFC 2047-encode the long signed URLs
# in List-Unsubscribe, which mail providers then fail to read.
MAIL_POLICY = policy.SMTP.clone(max_line_length=998)
SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "ssl"}


class SmtpConfigError(ValueError):
    """``AFTERCARE_SMTP_URL`` is missing or malformed."""


class SendError(Exception):
    """A message could not be delivered to the SMTP server.

    ``bounce``: the server refused this recipient or this message for good (5xx on RCPT or DATA), so the
    address goes on the suppression list. ``connection``: the server could not be reached or refused us
    (login, TLS); every other message of the batch would fail the same way.
    """

    def __init__(self, message: str, *, permanent: bool, code: int | None = None, bounce: bool = False,
                 connection: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.bounce = bounce
        self.connection = connection


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to reach the SMTP server."""

    host: str
    port: int
    security: str  # plain | starttls | ssl
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    verify: bool = True
    local_hostname: str | None = None

    def __repr__(self) -> str:
        return f"SmtpSettings({self.security}://{self.host}:{self.port}, user={self.username!r})"


def parse_smtp_url(value: str, default_timeout: float = 30.0) -> SmtpSettings:
    """Parse ``AFTERCARE_SMTP_URL``; raise SmtpConfigError naming the problem."""
    if not value:
        raise SmtpConfigError("AFTERCARE_SMTP_URL is not set (e.g. smtp+starttls://user:pass@host:587)")
    parts = urlsplit(value)
    security = SCHEMES.get(parts.scheme)
    if security is None:
        raise SmtpConfigError(f"AFTERCARE_SMTP_URL scheme must be one of {', '.join(SCHEMES)}, got {parts.scheme!r}")
    if not parts.hostname:
        raise SmtpConfigError("AFTERCARE_SMTP_URL has no host")
    query = parse_qs(parts.query)
    try:
        port = parts.port or {"plain": 25, "starttls": 587, "ssl": 465}[security]
        timeout = float(query.get("timeout", [default_timeout])[0])
    except ValueError as exc:
        raise SmtpConfigError(f"AFTERCARE_SMTP_URL: {exc}") from exc
    verify = query.get("verify", ["true"])[0].lower() not in ("false", "0", "no")
    return SmtpSettings(host=parts.hostname, port=port, security=security,
                        username=unquote(parts.username) if parts.username else None,
                        password=unquote(parts.password) if parts.password else None,
                        timeout=timeout, verify=verify)


@dataclass(frozen=True)
class Envelope:
    """Who an email is from and to, and the headers that identify it."""

    from_name: str
    from_email: str
    to: str
    message_id: str
    reply_to: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None


def new_message_id(domain: str) -> str:
    """Make a globally unique RFC 5322 Message-ID (``<...@domain>``)."""
    return make_msgid(idstring="aftercare", domain=domain or "aftercare.local")


def build_message(rendered: RenderedEmail, envelope: Envelope, date: object | None = None) -> EmailMessage:
    """Build a multipart/alternative message (plain text, then HTML) with the compliance headers."""
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = rendered.subject
    msg["From"] = Address(display_name=envelope.from_name, addr_spec=envelope.from_email)
    msg["To"] = envelope.to
    if envelope.reply_to:
        msg["Reply-To"] = envelope.reply_to
    msg["Message-ID"] = envelope.message_id
    if date is not None:
        msg["Date"] = format_datetime(date)  # type: ignore[arg-type]
    targets = []
    if envelope.unsubscribe_url:
        targets.append(f"<{envelope.unsubscribe_url}>")
    if envelope.unsubscribe_mailto:
        targets.append(f"<mailto:{envelope.unsubscribe_mailto}>")
    if targets:
        msg["List-Unsubscribe"] = ", ".join(targets)
    if envelope.unsubscribe_url:
        # RFC 8058: the https URL above accepts a POST with this body and unsubscribes at once.
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    msg["Content-Language"] = rendered.locale  # after set_content, which clears Content-* headers
    return msg


class SmtpTransport:
    """One SMTP connection, opened on first use and reused for every message of a batch."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context(),
                                                      local_hostname=s.local_hostname)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout, local_hostname=s.local_hostname)
                if s.security == "starttls":
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password or "")
            # Greet now, not inside send_message: the whole handshake is over before the last check.
            smtp.ehlo_or_helo_if_needed()
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(f"SMTP login refused: {exc.smtp_code} {_text(exc.smtp_error)}", permanent=False,
                            code=exc.smtp_code, connection=True) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise SendError(f"SMTP server does not offer what AFTERCARE_SMTP_URL asks for: {exc}",
                            permanent=False, connection=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"cannot connect to SMTP {s.host}:{s.port}: {exc}", permanent=False,
                            connection=True) from exc
        return smtp

    def open(self) -> None:
        """Connect, greet, STARTTLS and log in now unless the connection is already up; raise SendError."""
        if self._smtp is None:
            self._smtp = self._connect()

    def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Send one message; raise SendError (permanent or temporary). Reconnects once if the server hung up."""
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                self._smtp.send_message(message, from_addr=sender, to_addrs=[recipient])
                return
            except smtplib.SMTPServerDisconnected as exc:
                self._smtp = None
                if attempt == 2:
                    raise SendError(f"SMTP server disconnected: {exc}", permanent=False, connection=True) from exc
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = next(iter(exc.recipients.values()))
                self._reset()
                raise SendError(f"recipient refused: {code} {_text(reply)}", permanent=500 <= code < 600,
                                code=code, bounce=500 <= code < 600) from exc
            except smtplib.SMTPDataError as exc:
                self._reset()
                raise SendError(f"SMTP refused the message: {exc.smtp_code} {_text(exc.smtp_error)}",
                                permanent=500 <= exc.smtp_code < 600, code=exc.smtp_code,
                                bounce=500 <= exc.smtp_code < 600) from exc
            except smtplib.SMTPSenderRefused as exc:
                # Our sender address is refused: a configuration problem, never the recipient's fault.
                self._reset()
                raise SendError(f"SMTP refused the sender {exc.sender}: {exc.smtp_code} {_text(exc.smtp_error)}",
                                permanent=False, code=exc.smtp_code, connection=True) from exc
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                raise SendError(f"SMTP error: {exc}", permanent=False, connection=True) from exc

    def _reset(self) -> None:
        """Abort the failed transaction so the connection can carry the next message (RFC 5321 RSET)."""
        if self._smtp is None:
            return
        try:
            self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        """Say QUIT and close the connection (errors while closing are irrelevant)."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
