"""Webhooks: Shopify's verified receiver and the processing of stored events; the mail providers' bounce events."""

from typing import Any

from plugin.webhooks import mail_views, views
from plugin.webhooks.views import bp


def init_app(app: Any) -> None:
    """Register Shopify's webhook route and the mail providers' event routes."""
    views.init_app(app)
    mail_views.init_app(app)


__all__ = ["bp", "init_app"]
