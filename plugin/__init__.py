"""Aftercare: the Flask application factory and the domain of the retention plugin."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from base.clock import Clock, SystemClock
from plugin import db as dbmod
from plugin.config import Config, load_config
from plugin.config_errors import ConfigError
from plugin.crypto import Vault
from plugin.logs import configure_logging

log = logging.getLogger("aftercare.app")


def create_app(config: Mapping[str, Any] | Config | None = None, *, clock: Clock | None = None) -> Flask:
    """Build the web application: defaults, app.toml, AFTERCARE_* variables, then ``config`` on top."""
    cfg = config if isinstance(config, Config) else load_config(config)
    app = Flask(__name__, instance_path=str(cfg.instance_path), instance_relative_config=False)
    app.config.update(
        SECRET_KEY=cfg.secrets.secret_key,
        MAX_CONTENT_LENGTH=cfg.get("app.max_webhook_body_bytes"),
        SESSION_COOKIE_SECURE=not cfg.get("app.development"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="None" if cfg.get("shopify.embedded") else "Lax",
        AFTERCARE=cfg,
    )
    configure_logging(cfg.get("app.log_level"), cfg.secrets.values(), as_json=cfg.get("app.log_format") == "json")
    if cfg.generated_secrets:
        log.warning("development mode: using local secrets generated in the instance folder",
                    extra={"variables": ",".join(cfg.generated_secrets), "folder": str(cfg.instance_path)})

    _trust_proxies(app, cfg.get("app.trusted_proxies"))

    database = dbmod.Database(cfg.database_url, echo=cfg.get("database.echo"),
                              pool_size=cfg.get("database.pool_size"),
                              busy_timeout_ms=cfg.get("database.sqlite_busy_timeout_ms"))
    dbmod.init_app(app, database)
    app.extensions["aftercare.vault"] = Vault(cfg.secrets.encryption_key)
    app.extensions["aftercare.clock"] = clock or SystemClock()

    from plugin import metrics
    from plugin.health import bp as health_bp

    app.register_blueprint(health_bp)
    metrics.init_app(app)
    _register_blueprints(app)
    return app


def _trust_proxies(app: Flask, hops: int) -> None:
    """Believe X-Forwarded-For/-Proto/-Host/-Port from ``hops`` reverse proxies (none when 0).

    https://werkzeug.palletsprojects.com/en/stable/middleware/proxy_fix/ — each hop appends to the headers, so
    only the last ``hops`` values are the proxies' own; anything before them came from the client.
    """
    if hops < 0:
        raise ConfigError(f"setting 'app.trusted_proxies' must be 0 or more, got {hops}")
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]


def cookies_secure(app: Flask | None = None) -> bool:
    """Say whether cookies set now must be Secure: always in production, over HTTPS in development."""
    return not get_config(app).get("app.development") or request.is_secure


def _register_blueprints(app: Flask) -> None:
    """Register the subsystems' blueprints (each module exports ``bp`` and optionally ``init_app``)."""
    from plugin import admin, auth, public, webhooks

    for module in (auth, webhooks, public, admin):
        if hasattr(module, "init_app"):
            module.init_app(app)
        else:
            app.register_blueprint(module.bp)


def get_config(app: Flask | None = None) -> Config:
    """Return the Config of the current (or given) app."""
    return (app or current_app).config["AFTERCARE"]


def get_vault(app: Flask | None = None) -> Vault:
    """Return the credential vault of the current (or given) app."""
    return (app or current_app).extensions["aftercare.vault"]


def get_clock(app: Flask | None = None) -> Clock:
    """Return the clock of the current (or given) app."""
    return (app or current_app).extensions["aftercare.clock"]
