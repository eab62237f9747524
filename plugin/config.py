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
}
PLAIN_VARIABLES = {"AFTERCARE_DATABASE_URL", "AFTERCARE_CONFIG", "AFTERCARE_TEST_DATABASE_URL",
                   "AFTERCARE_SHARED_DIR", "AFTERCARE_ENV"}

DEFAULTS: dict[str, Any] = {
    "app": {
        "name": "Aftercare",
        # Public URL of this deployment; signed links in emails and Shopify's application_url use it.
        "base_url": "http://127.0.0.1:8000",
        "instance_path": "",
        "log_level": "INFO",
        "log_format": "text",
        # Development mode generates missing local secrets into the instance folder.
        "development": False,
        "max_webhook_body_bytes": 1024 * 1024,
    },
    "database": {"url": "", "echo": False, "pool_size": 5, "sqlite_busy_timeout_ms": 15000},
    "shopify": {
        "client_id": "",
        "app_name": "Aftercare",
        "api_version": "2025-01",
        "scopes": ["read_orders", "read_all_orders", "read_customers", "read_products", "write_discounts"],
        "application_url": "http://127.0.0.1:8000",
        "redirect_path": "/auth/callback",
        "embedded": True,
        # App Bridge, loaded first by every embedded admin page; the demo and tests use the sandbox's stand-in.
        "app_bridge_url": "https://cdn.shopify.com/shopifycloud/app-bridge.js",
        "expiring_offline_tokens": True,
        # Default: the real shop (https://{shop}); the demo and tests point it at the sandbox.
        "admin_base_url": "",
        "webhook_path": "/webhooks",
        "webhook_topics": [
            "orders/create", "orders/updated", "orders/fulfilled", "orders/cancelled",
            "fulfillments/update", "refunds/create", "customers/update", "app/uninstalled",
            "bulk_operations/finish",
            # Deletions reach us only by webhook: the GraphQL sync lists what exists, never what was removed.
            "orders/delete", "products/delete", "customers/delete",
            # Since API 2025-01 e-mail consent is only in this topic (customer payloads no longer carry it).
            "customers_email_marketing_consent/update",
        ],
        "compliance_topics": ["customers/data_request", "customers/redact", "shop/redact"],
        "request_timeout_seconds": 30.0,
    },
    "amazon": {
        "regions": ["na", "eu", "fe"],
        # Empty: python-amazon-sp-api's regional endpoints; the demo and tests point it at the sandbox.
        "endpoint": "",
        "lwa_token_url": "https://api.amazon.com/auth/o2/token",
        "request_timeout_seconds": 30.0,
        # Bounded retries of 429/5xx/network failures (exponential backoff from backoff_seconds).
        "max_attempts": 6,
        "backoff_seconds": 1.0,
        # Orders sync: first run reaches back this far; later runs re-read this overlap before the cursor.
        "backfill_days": 180,
        "sync_overlap_minutes": 10,
        # Returns/refunds come from the returns reports, fetched by the sync at most this often.
        "returns_every_hours": 6.0,
        # Seller-feedback reports: how far back each request reaches, poll interval and give-up time.
        "feedback_days": 30,
        "report_poll_seconds": 30.0,
        "report_max_wait_seconds": 1800.0,
        # A solicitation left in "sending" longer than this is reconciled by the next run.
        "solicitation_claim_timeout_minutes": 15,
    },
    "judgeme": {"base_url": "https://judge.me", "request_timeout_seconds": 20.0},
    "mail": {
        "from_name": "",
        "from_email": "",
        "reply_to": "",
        "timeout_seconds": 30.0,
        # Dispatcher: a claim older than this is presumed crashed and reconciled (one resend at most).
        "claim_timeout_seconds": 600.0,
        "max_attempts": 5,
        "retry_base_seconds": 300.0,
        "retry_max_seconds": 21600.0,
        "batch_size": 100,
        # Optional mailbox for the mailto: part of List-Unsubscribe (RFC 2369); empty: https link only. Its mail
        # must reach `aftercare unsubscribe-mailbox` (plugin.messaging.inbound), which honours each at once.
        "unsubscribe_mailto": "",
    },
    "scheduler": {
        "timezone": "UTC",
        "lease_seconds": 60,
        "misfire_grace_seconds": 300,
        "engine": "apscheduler",
        "celery_broker_url": "",
    },
    "analytics": {
        # The 90-day repurchase rate looks at first-time buyers of the last `cohort_days` whose
        # first order is at least `repurchase_window_days` old.
        "repurchase_window_days": 90,
        "cohort_days": 365,
        "acquisition_below": 0.15,
        "loyalty_above": 0.30,
        "expected_lifetime_years": 3.0,
        "attribution_days": 7,
        # RFM segment rules (merchant-editable; amounts in the store currency).
        "vip_min_spent_12m": 500.0,
        "vip_min_orders_12m": 4,
        "growth_min_order": 200.0,
        "growth_max_orders": 2,
        "dormant_after_days": 182,
    },
    # Defaults of every flow (DESIGN.md §4-5); each store can override any key (flow_settings rows).
    "flows": {
        "policy": {
            "send_window_start": "09:00",
            "send_window_end": "11:00",
            "marketing_cap_count": 2,
            "marketing_cap_days": 7,
            "respect_holidays": True,
            "ramadan_countries": [],
            "ramadan_daytime_start": "05:00",
            "ramadan_daytime_end": "19:00",
            "fallback_locale": "en",
        },
        "review_request": {
            "enabled": True,
            "delay_days": 7,
            "fallback_after_fulfilment_days": 7,
            "reminder_enabled": True,
            "reminder_delay_days": 7,
            "incentive_text": "",
        },
        "amazon_review_request": {"enabled": True, "delay_days_after_window_opens": 0},
        "review_reply": {"enabled": True, "auto_reply_min_rating": 4},
        "survey": {
            "enabled": True,
            "kind": "nps",
            "delay_days": 10,
            "followup_days": 7,
            "comeback_days": 30,
            "comeback_discount_percent": 10,
        },
        "replenishment": {
            "enabled": True,
            "lead_days": 7,
            "min_product_samples": 5,
            "discount_enabled": False,
            "discount_percent": 10,
            "subscribe_offer_enabled": True,
        },
        "tickets": {
            "sla_hours_severity_1": 1,
            "sla_hours_severity_2": 24,
            "sla_hours_severity_3": 72,
        },
    },
}


class ConfigError(ValueError):
    """A configuration problem; the message names the setting or variable to fix."""


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

    def values(self) -> list[str]:
        """Return every non-empty secret value (the log redactor hides them)."""
        found = [v for v in (self.secret_key, self.shopify_api_secret, self.lwa_client_secret) if v]
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

    def get(self, dotted: str, default: Any = None) -> Any:
        """Return a setting by dotted path, e.g. ``shopify.api_version``."""
        node: Any = self.settings
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def section(self, name: str) -> Mapping[str, Any]:
        """Return one top-level section."""
        return self.settings.get(name, {})

    @property
    def shopify_configured(self) -> bool:
        """Say whether this deployment talks to Shopify at all."""
        return bool(self.get("shopify.client_id") or self.secrets.shopify_api_key)


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any], where: str, strict: bool) -> None:
    for key, value in extra.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            # flows.* are open: new flows and settings arrive with later features.
            if strict and not path.startswith("flows"):
                raise ConfigError(f"unknown setting '{path}'")
            base[key] = copy.deepcopy(value)
            continue
        current = base[key]
        if isinstance(current, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"setting '{path}' must be a table")
            _deep_merge(current, value, path, strict)
            continue
        base[key] = _coerce(path, current, value)


def _coerce(path: str, current: Any, value: Any) -> Any:
    """Check a value against the default's type; integers are accepted where floats are expected."""
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"setting '{path}' must be true or false, got {value!r}")
        return value
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, int) and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"setting '{path}' must be an integer, got {value!r}")
    if not isinstance(value, type(current)):
        raise ConfigError(f"setting '{path}' must be a {type(current).__name__}, got {value!r}")
    return value


def _parse_env_value(name: str, raw: str) -> Any:
    """Read an override the way TOML would read it, falling back to a plain string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


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
        node[parts[-1]] = _parse_env_value(name, raw)
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"AFTERCARE_CONFIG points to {path}, which does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


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
    settings = copy.deepcopy(DEFAULTS)
    sources = ["defaults"]

    config_path = environ.get("AFTERCARE_CONFIG")
    toml_path = Path(config_path) if config_path else Path.cwd() / "app.toml"
    if config_path or toml_path.exists():
        _deep_merge(settings, _read_toml(toml_path), "", strict=True)
        sources.append(str(toml_path))
    env_settings = _env_overrides(environ)
    if env_settings:
        _deep_merge(settings, env_settings, "", strict=True)
        sources.append("environment")
    override_secrets = override.pop("secrets", {})
    override_db = override.pop("database_url", None)
    if override:
        _deep_merge(settings, override, "", strict=True)
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

    database_url = (override_db or environ.get("AFTERCARE_DATABASE_URL") or settings["database"]["url"]
                    or f"sqlite:///{instance_path / 'aftercare.sqlite'}")
    if not database_url.startswith(("sqlite", "postgresql")):
        raise ConfigError("AFTERCARE_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        # psycopg 3 is the driver we ship; SQLAlchemy's bare postgresql:// means psycopg2.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]

    return Config(settings=settings, secrets=secret_values, instance_path=instance_path,
                  database_url=database_url, sources=tuple(sources), generated_secrets=tuple(generated))
