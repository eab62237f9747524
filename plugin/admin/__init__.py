"""The embedded admin (Shopify App Bridge) and its standalone mode: overview, flows, reviews, tickets,
messages, customers and settings, server-rendered with progressive enhancement."""

from __future__ import annotations

from flask import Flask, redirect, request
from werkzeug.wrappers import Response

from plugin.admin import (  # noqa: F401
    calendar,
    customers,
    deliveries,
    flow_report,
    flows,
    guides,
    inbox,
    messages,
    overview,
    settings,
    standalone,
    sync_rejections,
    webhooks,
)
from plugin.admin.blueprint import bp
from plugin.admin.overview import OverviewCache
from plugin.admin.security import LoginThrottle


def init_app(app: Flask) -> None:
    """Register the admin blueprint, its security headers, login throttle and overview cache."""
    app.extensions["aftercare.admin_login_throttle"] = LoginThrottle()
    app.extensions["aftercare.admin_overview_cache"] = OverviewCache()
    app.register_blueprint(bp)
    if not any(rule.rule == "/" for rule in app.url_map.iter_rules()):
        # Shopify opens the application URL (``/``) with shop, host and id_token: hand them to the admin.
        app.add_url_rule("/", "admin_root", _root)


def _root() -> Response:
    """Send the application URL to the admin, keeping Shopify's query parameters."""
    query = request.query_string.decode("ascii", "replace")
    return redirect("/admin/" + (f"?{query}" if query else ""), code=302)


__all__ = ["bp", "init_app"]
