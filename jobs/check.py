"""`aftercare check`: what a production start needs, one line per prerequisite, each problem said plainly.

Secrets and settings, the web server's (plugin/gunicorn_settings.py), the database (reachable, at the latest
migration), SMTP (connect, EHLO, STARTTLS, AUTH), each installed Shopify store's token (one cheap query), each
Amazon seller's LWA refresh token (one refresh), and a scheduler holding the lease. Nothing is sent: no email,
no SP-API call beyond the token endpoint.
Here in jobs/ because the scheduler lease is the jobs' own (jobs/schedule.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from base.clock import Clock
from base.retry import RetryPolicy
from connectors.amazon.errors import AmazonError
from connectors.amazon.lwa import refresh_once
from connectors.shopify.client import ShopifyClient
from connectors.shopify.errors import ShopifyAuthError, ShopifyError
from jobs.schedule import LEASE_NAME
from plugin.auth.tokens import ShopifyGrantError, get_access_token
from plugin.config import Config, ConfigError, load_config
from plugin.context import JobContext
from plugin.crypto import DecryptionError
from plugin.gunicorn_settings import settings as web_settings
from plugin.messaging import email as mail
from plugin.migrate import current_revision, head_revision
from plugin.models import SchedulerLease, Store
from plugin.secrets_store import get_credential

SHOP_QUERY = "{ shop { name } }"
# One attempt, at most this long: a check that hangs is worse than one that says "timed out".
CHECK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Finding:
    """The outcome of one check: its subject, whether it passed, and what an operator should know."""

    subject: str
    ok: bool
    detail: str

    def line(self) -> str:
        """Return the line printed for this finding (``OK`` or ``FAIL``, the subject, the detail)."""
        return f"{'OK' if self.ok else 'FAIL':<4} {self.subject}: {self.detail}"


def main(environ: Mapping[str, str], clock: Clock, echo: Callable[[str], None]) -> int:
    """Run every check, print one line each and a summary; return the exit code (0 only when all pass)."""
    try:
        config = load_config(environ=environ)
    except ConfigError as exc:
        findings = [Finding("configuration", False, str(exc))]
    else:
        findings = list(run_checks(config, clock))
    for finding in findings:
        echo(finding.line())
    problems = sum(not f.ok for f in findings)
    echo("all checks passed" if not problems else f"{problems} problem{'s' if problems > 1 else ''} found")
    return 1 if problems else 0


def run_checks(config: Config, clock: Clock) -> Iterator[Finding]:
    """Yield one finding per prerequisite of a production start (the configuration already loaded)."""
    yield _secrets(config)
    yield _web(config)
    ctx = JobContext.from_config(config, clock=clock, sleep=lambda _seconds: None)
    try:
        database = _database(ctx)
        yield database
        yield _smtp(config)
        if not database.ok:
            yield Finding("stores", False, "not checked: the database is not ready")
            yield Finding("scheduler", False, "not checked: the database is not ready")
            return
        yield from _shopify(ctx)
        yield from _amazon(ctx)
        yield _scheduler(ctx)
    finally:
        ctx.database.dispose()


def _secrets(config: Config) -> Finding:
    if config.generated_secrets:
        return Finding("secrets", False, "development secrets generated in the instance folder are in use "
                                         f"({', '.join(config.generated_secrets)}); set them in the environment")
    named = ["AFTERCARE_SECRET_KEY", "AFTERCARE_ENCRYPTION_KEY"]
    if config.shopify_configured:
        named += ["AFTERCARE_SHOPIFY_API_KEY", "AFTERCARE_SHOPIFY_API_SECRET"]
    if config.get("metrics.enabled"):
        named.append("AFTERCARE_METRICS_TOKEN")
    return Finding("secrets", True, f"{', '.join(named)} set")


def _web(config: Config) -> Finding:
    try:
        web = web_settings(config)
    except ConfigError as exc:
        return Finding("web", False, str(exc))
    trusted = web["forwarded_allow_ips"] or "nobody"
    return Finding("web", True, f"gunicorn {web['workers']} workers x {web['threads']} threads, timeout "
                                f"{web['timeout']} s, X-Forwarded-* from {trusted}")


def _database(ctx: JobContext) -> Finding:
    try:
        with ctx.database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = current_revision(conn)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return Finding("database", False, f"unreachable ({ctx.database.dialect}): {reason}")
    head = head_revision()
    if current is None:
        return Finding("database", False, f"not migrated (no schema version); run `aftercare db upgrade` (to {head})")
    if current != head:
        return Finding("database", False, f"at migration {current}, this release needs {head}; "
                                          "run `aftercare db upgrade`")
    return Finding("database", True, f"reachable ({ctx.database.dialect}), at migration {head}")


def _smtp(config: Config) -> Finding:
    url = config.secrets.smtp_url
    if not url:
        return Finding("smtp", False, "AFTERCARE_SMTP_URL is not set: no email can be sent")
    try:
        settings = mail.parse_smtp_url(url, min(config.get("mail.timeout_seconds"), CHECK_TIMEOUT_SECONDS))
    except mail.SmtpConfigError as exc:
        return Finding("smtp", False, f"AFTERCARE_SMTP_URL: {exc}")
    where = f"{settings.host}:{settings.port}"
    try:
        with mail.SmtpTransport(settings) as transport:
            transport.open()
    except mail.SendError as exc:
        return Finding("smtp", False, f"{where}: {exc}")
    steps = "EHLO" + (", STARTTLS" if settings.security == "starttls" else "") + (
        ", AUTH" if settings.username else "")
    return Finding("smtp", True, f"{where} answers ({steps})")


def _stores(ctx: JobContext, platform: str) -> list[Store]:
    with ctx.database.session() as session:
        return list(session.scalars(select(Store).where(Store.platform == platform, Store.uninstalled_at.is_(None))
                                    .order_by(Store.id)))


def _shopify(ctx: JobContext) -> Iterator[Finding]:
    stores = _stores(ctx, "shopify")
    if not stores:
        yield Finding("shopify", True, "no installed stores")
        return
    for store in stores:
        yield _shopify_store(ctx, store)


def _shopify_store(ctx: JobContext, store: Store) -> Finding:
    subject = f"shopify {store.external_id}"
    if store.status != "active":
        return Finding(subject, False, f"store is {store.status}: the merchant must open the app to reinstall it")
    try:
        with ctx.database.session() as session:
            token = get_access_token(session, session.merge(store), ctx)
    except ShopifyGrantError as exc:
        return Finding(subject, False, f"no working access token: {exc}")
    except DecryptionError as exc:
        return Finding(subject, False, f"stored token unreadable ({exc}); is AFTERCARE_ENCRYPTION_KEY the right key?")
    client = ShopifyClient.from_config(ctx.config, store.external_id, token, clock=ctx.clock, sleep=ctx.sleep,
                                       retry=RetryPolicy(max_attempts=1, jitter=0.0))
    client.timeout = min(client.timeout, CHECK_TIMEOUT_SECONDS)
    try:
        data = client.execute(SHOP_QUERY, estimated_cost=1)
    except ShopifyAuthError as exc:
        return Finding(subject, False, f"Shopify refused the access token ({exc.status}); the merchant must "
                                       "reinstall the app")
    except ShopifyError as exc:
        return Finding(subject, False, f"Admin API did not answer: {exc}")
    return Finding(subject, True, f"access token answers (shop {data['shop']['name']!r})")


def _amazon(ctx: JobContext) -> Iterator[Finding]:
    stores = _stores(ctx, "amazon")
    if not stores:
        yield Finding("amazon", True, "no connected sellers")
        return
    secrets = ctx.config.secrets
    missing = [name for name, value in (("AFTERCARE_LWA_CLIENT_ID", secrets.lwa_client_id),
                                        ("AFTERCARE_LWA_CLIENT_SECRET", secrets.lwa_client_secret)) if not value]
    if missing:
        yield Finding("amazon", False, f"{' and '.join(missing)} not set ({len(stores)} seller(s) connected)")
        return
    for store in stores:
        yield _amazon_store(ctx, store)


def _amazon_store(ctx: JobContext, store: Store) -> Finding:
    subject = f"amazon {store.external_id}"
    try:
        refresh_token = get_credential(store, ctx.vault, "refresh_token_enc")
    except DecryptionError as exc:
        return Finding(subject, False, f"stored refresh token unreadable ({exc}); is AFTERCARE_ENCRYPTION_KEY "
                                       "the right key?")
    if not refresh_token:
        return Finding(subject, False, "no LWA refresh token; run `aftercare stores add-amazon` again")
    secrets = ctx.config.secrets
    timeout = min(ctx.config.get("amazon.request_timeout_seconds"), CHECK_TIMEOUT_SECONDS)
    try:
        refresh_once(ctx.config.get("amazon.lwa_token_url"), secrets.lwa_client_id, secrets.lwa_client_secret,
                     refresh_token, timeout)
    except AmazonError as exc:
        hint = "; reconnect the seller (`aftercare stores add-amazon`)" if exc.code == "invalid_grant" else ""
        return Finding(subject, False, f"{exc}{hint}")
    return Finding(subject, True, "LWA refresh token works")


def _scheduler(ctx: JobContext) -> Finding:
    now = ctx.clock.now()
    with ctx.database.session() as session:
        lease = session.get(SchedulerLease, LEASE_NAME)
    if lease is None:
        return Finding("scheduler", False, "no scheduler has ever held the lease; start `aftercare scheduler`")
    if lease.expires_at <= now:
        return Finding("scheduler", False, f"no scheduler holds the lease (last holder {lease.holder}, expired "
                                           f"{lease.expires_at:%Y-%m-%d %H:%M:%S} UTC); start `aftercare scheduler`")
    return Finding("scheduler", True, f"lease held by {lease.holder} until {lease.expires_at:%Y-%m-%d %H:%M:%S} UTC")
