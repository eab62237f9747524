"""Configuration: defaults, then app.toml, then AFTERCARE_* environment variables, then a test override.

Non-secret settings live in app.toml; secrets only ever come from environment variables. Every error
names the setting or variable at fault so an operator can fix it in one go.
"""

from __future__ import annotations

import copy
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from plugin.config_errors import ConfigError
from plugin.flow_schemas import SCHEMAS as FLOW_SCHEMAS

ENV_PREFIX = "AFTERCARE_"

# Secrets are interface: their names are documented in the README and must not change.
SECRET_VARIABLES = {
    "secret_key": "AFTERCARE_SECRET_KEY",
    "encryption_key": "AFTERCARE_ENCRYPTION_KEY",
    "shopify_api_key": "AFTERCARE_SHOPIFY_API_KEY",
    "shopify_api_secret": "AFTERCARE_SHOPIFY_API_SECRET",
    "lwa_client_id": "AFTERCARE_LWA_CLIENT_ID",
    "lwa_client_secret": "AFTERCARE_LWA_CLIENT_SECRET",
    "smtp_url": "AFTERCARE_SMTP_URL",
    "postmark_webhook_password": "AFTERCARE_POSTMARK_WEBHOOK_PASSWORD",
    # The bearer token a Prometheus scrape of /metrics must send (required once metrics.enabled is true).
    "metrics_token": "AFTERCARE_METRICS_TOKEN",
}
PLAIN_VARIABLES = {"AFTERCARE_DATABASE_URL", "AFTERCARE_CONFIG", "AFTERCARE_TEST_DATABASE_URL",
                   "AFTERCARE_SHARED_DIR", "AFTERCARE_ENV"}


class UnknownSettingError(ConfigError):
    """Code asked for a setting that is not declared (a misspelt name would otherwise read a silent default)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"setting '{name}' is not declared in plugin/config.py")
        self.name = name


@dataclass(frozen=True)
class Setting:
    """One declared setting of app.toml: its dotted name, its type and its default."""

    name: str
    type: Any  # bool, int, float, str or list[str]
    default: Any

    def check(self, value: Any) -> Any:
        """Return ``value`` if it has this setting's type (an integer is accepted for a float), else raise."""
        if self.type is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"setting '{self.name}' must be true or false, got {value!r}")
            return value
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"setting '{self.name}' must be an integer, got {value!r}")
            return value
        if self.type is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"setting '{self.name}' must be a number, got {value!r}")
            return float(value)
        if self.type is str:
            if not isinstance(value, str):
                raise ConfigError(f"setting '{self.name}' must be a str, got {value!r}")
            return value
        if self.type == list[str]:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ConfigError(f"setting '{self.name}' must be a list of strings, got {value!r}")
            return list(value)
        raise TypeError(f"setting '{self.name}' is declared with an unsupported type {self.type!r}")


# Every setting outside [flows.*], declared once: app.toml and AFTERCARE_<SECTION>__<KEY> may set only these,
# and Config.get reads only these. Call sites never repeat a default.
SETTINGS: tuple[Setting, ...] = (
    Setting("app.name", str, "Aftercare"),
    # Public URL of this deployment; signed links in emails and Shopify's application_url use it.
    Setting("app.base_url", str, "http://127.0.0.1:8000"),
    Setting("app.instance_path", str, ""),
    Setting("app.log_level", str, "INFO"),
    Setting("app.log_format", str, "text"),
    # Development mode generates missing local secrets into the instance folder.
    Setting("app.development", bool, False),
    Setting("app.max_webhook_body_bytes", int, 1024 * 1024),
    # Reverse proxies in front of the app (TLS terminator, load balancer): how many hops of X-Forwarded-For,
    # -Proto, -Host and -Port to believe. 0 ignores those headers (a client could forge them).
    Setting("app.trusted_proxies", int, 0),

    Setting("database.url", str, ""),
    Setting("database.echo", bool, False),
    Setting("database.pool_size", int, 5),
    Setting("database.sqlite_busy_timeout_ms", int, 15000),
    # A sync run that writes at least this many rows (or backfills) refreshes the planner's statistics after it.
    Setting("database.analyze_after_rows", int, 5000),

    Setting("shopify.client_id", str, ""),
    Setting("shopify.app_name", str, "Aftercare"),
    Setting("shopify.api_version", str, "2025-01"),
    Setting("shopify.scopes", list[str],
            ["read_orders", "read_all_orders", "read_customers", "write_customers", "read_products",
             "write_discounts"]),
    Setting("shopify.application_url", str, "http://127.0.0.1:8000"),
    Setting("shopify.redirect_path", str, "/auth/callback"),
    Setting("shopify.embedded", bool, True),
    # App Bridge, loaded first by every embedded admin page; the demo and tests use the sandbox's stand-in.
    Setting("shopify.app_bridge_url", str, "https://cdn.shopify.com/shopifycloud/app-bridge.js"),
    # Polaris web components, loaded by embedded pages after App Bridge; empty: the project's stylesheet alone
    # styles the same elements (as it does whenever the CDN cannot be reached, and in standalone mode).
    Setting("shopify.polaris_url", str, "https://cdn.shopify.com/shopifycloud/polaris.js"),
    Setting("shopify.expiring_offline_tokens", bool, True),
    # Default: the real shop (https://{shop}); the demo and tests point it at the sandbox.
    Setting("shopify.admin_base_url", str, ""),
    Setting("shopify.webhook_path", str, "/webhooks"),
    Setting("shopify.webhook_topics", list[str], [
        "orders/create", "orders/updated", "orders/fulfilled", "orders/cancelled",
        "fulfillments/create", "fulfillments/update", "refunds/create", "customers/update", "app/uninstalled",
        "bulk_operations/finish",
        # Carrier events: every milestone of each parcel (an order is delivered when its last one is).
        "fulfillment_events/create",
        # Deletions reach us only by webhook: the GraphQL sync lists what exists, never what was removed.
        "orders/delete", "products/delete", "customers/delete",
        # Since API 2025-01 e-mail consent is only in this topic (customer payloads no longer carry it).
        "customers_email_marketing_consent/update",
    ]),
    Setting("shopify.compliance_topics", list[str], ["customers/data_request", "customers/redact", "shop/redact"]),
    Setting("shopify.request_timeout_seconds", float, 30.0),

    Setting("amazon.regions", list[str], ["na", "eu", "fe"]),
    # Empty: python-amazon-sp-api's regional endpoints; the demo and tests point it at the sandbox.
    Setting("amazon.endpoint", str, ""),
    Setting("amazon.lwa_token_url", str, "https://api.amazon.com/auth/o2/token"),
    Setting("amazon.request_timeout_seconds", float, 30.0),
    # Bounded retries of 429/5xx/network failures (exponential backoff from backoff_seconds).
    Setting("amazon.max_attempts", int, 6),
    Setting("amazon.backoff_seconds", float, 1.0),
    # Orders sync: first run reaches back this far; later runs re-read this overlap before the cursor.
    Setting("amazon.backfill_days", int, 180),
    Setting("amazon.sync_overlap_minutes", int, 10),
    # Returns/refunds come from the returns reports, fetched by the sync at most this often.
    Setting("amazon.returns_every_hours", float, 6.0),
    # Seller-feedback reports: how far back each request reaches, poll interval and give-up time.
    Setting("amazon.feedback_days", int, 30),
    Setting("amazon.report_poll_seconds", float, 30.0),
    Setting("amazon.report_max_wait_seconds", float, 1800.0),
    # A solicitation left in "sending" longer than this is reconciled by the next run.
    Setting("amazon.solicitation_claim_timeout_minutes", int, 15),

    Setting("judgeme.base_url", str, "https://judge.me"),
    Setting("judgeme.request_timeout_seconds", float, 20.0),

    Setting("mail.from_name", str, ""),
    Setting("mail.from_email", str, ""),
    Setting("mail.reply_to", str, ""),
    Setting("mail.timeout_seconds", float, 30.0),
    # Dispatcher: a claim older than this is presumed crashed and reconciled (one resend at most).
    Setting("mail.claim_timeout_seconds", float, 600.0),
    Setting("mail.max_attempts", int, 5),
    Setting("mail.retry_base_seconds", float, 300.0),
    Setting("mail.retry_max_seconds", float, 21600.0),
    Setting("mail.batch_size", int, 100),
    # Optional mailbox for the mailto: part of List-Unsubscribe (RFC 2369); empty: https link only. Its mail
    # must reach `aftercare unsubscribe-mailbox` (plugin.messaging.inbound), which honours each at once.
    Setting("mail.unsubscribe_mailto", str, ""),
    # Bounces that arrive later (plugin.messaging.bounces). Set: every email leaves with a signed VERP return
    # path inside this mailbox (bounces+<token>@domain), whose mail must reach `aftercare unsubscribe-mailbox`.
    Setting("mail.bounce_mailbox", str, ""),
    # Event webhooks of the sending provider (plugin.webhooks.mail_views); each endpoint answers 404 until set.
    # SES via SNS: the topic ARNs whose signed messages are believed (any other topic gets 401).
    Setting("mail.ses_topic_arns", list[str], []),
    # Where SNS signing certificates and subscription confirmations are fetched from. Empty (production): the
    # https://sns.<region>.amazonaws.com URL of the message itself; the demo and tests point it at a sandbox.
    # The URL in the message must name an SNS host either way.
    Setting("mail.sns_fetch_base_url", str, ""),
    # SendGrid Event Webhook: the verification key (base64 DER, shown when signing is switched on).
    Setting("mail.sendgrid_public_key", str, ""),
    # Postmark: the Basic auth user of the webhook URL (password: AFTERCARE_POSTMARK_WEBHOOK_PASSWORD).
    Setting("mail.postmark_webhook_user", str, ""),

    # Production web server: gunicorn with the shipped configuration (plugin/gunicorn_settings.py, README "Production").
    Setting("web.bind", list[str], ["127.0.0.1:8000"]),
    # 0: from the core count (workers 2 x cores + 1, threads 2 x cores per worker).
    Setting("web.workers", int, 0),
    Setting("web.threads", int, 0),
    # Below Shopify's 5 s webhook limit: a worker silent this long is replaced, an idle keep-alive connection closed.
    Setting("web.timeout_seconds", int, 4),
    Setting("web.keepalive_seconds", int, 2),
    # With app.trusted_proxies > 0: the addresses of those proxies, the only peers whose X-Forwarded-* gunicorn
    # passes on ("*": any peer, when the app is reachable only through the proxies).
    Setting("web.proxy_addresses", list[str], ["127.0.0.1"]),

    # GET /metrics in the Prometheus text format; off by default, and then only with AFTERCARE_METRICS_TOKEN.
    Setting("metrics.enabled", bool, False),

    Setting("scheduler.timezone", str, "UTC"),
    Setting("scheduler.lease_seconds", int, 60),
    Setting("scheduler.misfire_grace_seconds", int, 300),
    Setting("scheduler.engine", str, "apscheduler"),
    Setting("scheduler.celery_broker_url", str, ""),

    # The 90-day repurchase rate looks at first-time buyers of the last `cohort_days` whose
    # first order is at least `repurchase_window_days` old.
    Setting("analytics.repurchase_window_days", int, 90),
    Setting("analytics.cohort_days", int, 365),
    Setting("analytics.acquisition_below", float, 0.15),
    Setting("analytics.loyalty_above", float, 0.30),
    Setting("analytics.expected_lifetime_years", float, 3.0),
    Setting("analytics.attribution_days", int, 7),
    # RFM segment rules (merchant-editable; amounts in the store currency).
    Setting("analytics.vip_min_spent_12m", float, 500.0),
    Setting("analytics.vip_min_orders_12m", int, 4),
    Setting("analytics.growth_min_order", float, 200.0),
    Setting("analytics.growth_max_orders", int, 2),
    Setting("analytics.dormant_after_days", int, 182),
)
DECLARED: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
SECTIONS: tuple[str, ...] = (*dict.fromkeys(name.split(".", 1)[0] for name in DECLARED), "flows")


def _defaults() -> dict[str, Any]:
    """Return a fresh nested copy of every default, shaped like app.toml."""
    tree: dict[str, Any] = {section: {} for section in SECTIONS}
    for setting in SETTINGS:
        section, key = setting.name.split(".", 1)
        tree[section][key] = copy.deepcopy(setting.default)
    return tree


# Shown to tests and tools; load_config builds its own copy, so nothing can change the defaults it starts from.
DEFAULTS: Mapping[str, Any] = _defaults()


@dataclass(frozen=True)
class Secrets:
    """Secrets read from the environment (never from app.toml)."""

    secret_key: str = ""
    encryption_key: str = ""
    shopify_api_key: str = ""
    shopify_api_secret: str = ""
    lwa_client_id: str = ""
    lwa_client_secret: str = ""
    smtp_url: str = ""
    postmark_webhook_password: str = ""
    metrics_token: str = ""

    def values(self) -> list[str]:
        """Return every non-empty secret value (the log redactor hides them)."""
        found = [v for v in (self.secret_key, self.shopify_api_secret, self.lwa_client_secret,
                             self.postmark_webhook_password, self.metrics_token) if v]
        found += [k for k in self.encryption_key.split(",") if k.strip()]
        if self.smtp_url and "@" in self.smtp_url:
            found.append(self.smtp_url)
            creds = self.smtp_url.split("://", 1)[-1].rsplit("@", 1)[0]
            if ":" in creds:
                found.append(creds.split(":", 1)[1])
        return found


@dataclass(frozen=True)
class Config:
    """The effective configuration of one app instance (immutable once built)."""

    settings: Mapping[str, Any]
    secrets: Secrets
    instance_path: Path
    database_url: str
    sources: tuple[str, ...] = field(default=())
    generated_secrets: tuple[str, ...] = field(default=())

    def get(self, name: str) -> Any:
        """Return a declared setting by dotted name, e.g. ``shopify.api_version``; raise if it is not declared."""
        if name not in DECLARED:
            raise UnknownSettingError(name)
        section, key = name.split(".", 1)
        return self.settings[section][key]

    def section(self, name: str) -> Mapping[str, Any]:
        """Return one top-level section; raise if it is not declared.

        ``flows`` holds only the deployment's checked overrides; plugin.flow_settings lays them over the
        defaults declared in plugin.flow_schemas.
        """
        if name not in SECTIONS:
            raise UnknownSettingError(name)
        return self.settings[name]

    @property
    def shopify_configured(self) -> bool:
        """Say whether this deployment talks to Shopify at all."""
        return bool(self.get("shopify.client_id") or self.secrets.shopify_api_key)


@dataclass(frozen=True)
class _EnvValue:
    """An override as written in the environment: read by the setting's type, named by its variable."""

    variable: str
    raw: str

    def parsed(self) -> Any:
        """Read the value the way TOML would, falling back to a plain string."""
        try:
            return tomllib.loads(f"v = {self.raw}")["v"]
        except tomllib.TOMLDecodeError:
            return self.raw


def _merge(settings: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Overlay app.toml, environment or override values; every name must be declared (flows.* by its schema)."""
    for section, table in extra.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown setting '{section}'")
        if not isinstance(table, Mapping):
            raise ConfigError(f"setting '{section}' must be a table")
        if section == "flows":
            _merge_flows(settings["flows"], table)
            continue
        for key, value in table.items():
            setting = DECLARED.get(f"{section}.{key}")
            if setting is None:
                raise ConfigError(f"unknown setting '{section}.{key}'")
            settings[section][key] = _checked(setting, value)


def _checked(setting: Setting, value: Any) -> Any:
    if not isinstance(value, _EnvValue):
        return setting.check(value)
    parsed = value.parsed()
    if setting.type is str and not isinstance(parsed, str):
        parsed = value.raw  # a text setting keeps digits or `true` as written (a numeric client id stays text)
    try:
        return setting.check(parsed)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (from {value.variable})") from None


def _merge_flows(overrides: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Overlay [flows.<section>] overrides, each checked against its section's declared schema."""
    for section, table in extra.items():
        schema = FLOW_SCHEMAS.get(section)
        if schema is None:
            raise ConfigError(f"unknown setting 'flows.{section}'")
        if not isinstance(table, Mapping):
            raise ConfigError(f"setting 'flows.{section}' must be a table")
        for key, value in table.items():
            name = f"flows.{section}.{key}"
            where = f" (from {value.variable})" if isinstance(value, _EnvValue) else ""
            setting = schema.get(key)
            if setting is None and key != "enabled":
                raise ConfigError(f"unknown setting '{name}'{where}")
            text = setting is not None and setting.type in _TEXT_TYPES
            try:
                clean = schema.validate(section, {key: _flow_value(value, text)})
            except ConfigError as exc:
                raise ConfigError(f"setting '{name}': {exc}{where}") from None
            overrides.setdefault(section, {})[key] = clean[key]


# Settings written as text: from the environment they keep digits or 09:00 as written.
_TEXT_TYPES = ("text", "time", "choice")


def _flow_value(value: Any, text: bool) -> Any:
    if not isinstance(value, _EnvValue):
        return value
    parsed = value.parsed()
    return value.raw if text and not isinstance(parsed, str) else parsed


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if any(not p for p in parts):
            raise ConfigError(f"environment variable {name} is not of the form AFTERCARE_<SECTION>__<KEY>")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _EnvValue(name, raw)
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"AFTERCARE_CONFIG points to {path}, which does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _validate_mail_events(mail: Mapping[str, Any], secret_values: Secrets) -> None:
    """Refuse bounce and event-webhook settings that could never work, naming the setting at fault."""
    mailbox = mail["bounce_mailbox"]
    if mailbox and (mailbox.count("@") != 1 or not all(mailbox.split("@")) or "+" in mailbox.split("@")[0]):
        raise ConfigError(f"setting 'mail.bounce_mailbox' must be a plain address like bounces@mail.example.com "
                          f"(no '+'), got {mailbox!r}")
    for arn in mail["ses_topic_arns"]:
        if not arn.startswith("arn:aws") or arn.count(":") != 5:
            raise ConfigError(f"setting 'mail.ses_topic_arns' must list SNS topic ARNs "
                              f"(arn:aws:sns:<region>:<account>:<topic>), got {arn!r}")
    if mail["sendgrid_public_key"]:
        from plugin.webhooks.sendgrid import SendgridKeyError, load_public_key

        try:
            load_public_key(mail["sendgrid_public_key"])
        except SendgridKeyError as exc:
            raise ConfigError(f"setting 'mail.sendgrid_public_key': {exc}") from None
    if mail["postmark_webhook_user"] and not secret_values.postmark_webhook_password:
        raise ConfigError("AFTERCARE_POSTMARK_WEBHOOK_PASSWORD is not set (required when mail.postmark_webhook_user "
                          "is set)")


def _validate_encryption_key(value: str, variable: str) -> None:
    for part in value.split(","):
        try:
            Fernet(part.strip().encode())
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{variable} must be one or more comma-separated Fernet keys "
                              "(generate one with `aftercare keys generate`)") from exc


def _local_secrets(instance_path: Path) -> dict[str, str]:
    """Load or create development secrets in the instance folder (never used in production mode)."""
    path = instance_path / "dev-secrets.toml"
    if path.exists():
        with path.open("rb") as fh:
            return {k: str(v) for k, v in tomllib.load(fh).items()}
    generated = {
        "secret_key": secrets.token_urlsafe(32),
        "encryption_key": Fernet.generate_key().decode(),
        "shopify_api_key": "aftercare-dev-client-id",
        "shopify_api_secret": secrets.token_hex(16),
    }
    instance_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# Development secrets generated by Aftercare. Do not use in production.\n")
        for key, value in generated.items():
            fh.write(f'{key} = "{value}"\n')
    return generated


def default_instance_path() -> Path:
    """Return the instance folder: ./instance under the working directory."""
    return Path.cwd() / "instance"


def load_config(override: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Build the effective configuration; raise ConfigError naming what is wrong."""
    environ = os.environ if environ is None else environ
    override = dict(override or {})
    settings = _defaults()
    sources = ["defaults"]

    config_path = environ.get("AFTERCARE_CONFIG")
    toml_path = Path(config_path) if config_path else Path.cwd() / "app.toml"
    if config_path or toml_path.exists():
        _merge(settings, _read_toml(toml_path))
        sources.append(str(toml_path))
    env_settings = _env_overrides(environ)
    if env_settings:
        _merge(settings, env_settings)
        sources.append("environment")
    override_secrets = override.pop("secrets", {})
    override_db = override.pop("database_url", None)
    if override:
        _merge(settings, override)
        sources.append("override")

    instance_path = Path(settings["app"]["instance_path"] or default_instance_path()).resolve()
    development = settings["app"]["development"] or environ.get("AFTERCARE_ENV") == "development"

    values = {key: environ.get(var, "") for key, var in SECRET_VARIABLES.items()}
    values.update({k: v for k, v in override_secrets.items() if v is not None})
    generated: list[str] = []
    if development and (not values["secret_key"] or not values["encryption_key"]):
        local = _local_secrets(instance_path)
        for key, value in local.items():
            if not values.get(key):
                values[key] = value
                generated.append(SECRET_VARIABLES[key])

    for key in ("secret_key", "encryption_key"):
        if not values[key]:
            raise ConfigError(f"{SECRET_VARIABLES[key]} is not set (required; `aftercare serve --dev` "
                              "generates local development secrets instead)")
    _validate_encryption_key(values["encryption_key"], SECRET_VARIABLES["encryption_key"])
    secret_values = Secrets(**values)
    shopify_used = bool(settings["shopify"]["client_id"] or secret_values.shopify_api_key)
    if shopify_used and not secret_values.shopify_api_secret:
        raise ConfigError("AFTERCARE_SHOPIFY_API_SECRET is not set (required when Shopify is configured)")
    _validate_mail_events(settings["mail"], secret_values)

    if settings["metrics"]["enabled"] and not secret_values.metrics_token:
        raise ConfigError("AFTERCARE_METRICS_TOKEN is not set (required when metrics.enabled is true)")

    database_url = (override_db or environ.get("AFTERCARE_DATABASE_URL") or settings["database"]["url"]
                    or f"sqlite:///{instance_path / 'aftercare.sqlite'}")
    if not database_url.startswith(("sqlite", "postgresql")):
        raise ConfigError("AFTERCARE_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        # psycopg 3 is the driver we ship; SQLAlchemy's bare postgresql:// means psycopg2.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]

    return Config(settings=settings, secrets=secret_values, instance_path=instance_path,
                  database_url=database_url, sources=tuple(sources), generated_secrets=tuple(generated))
