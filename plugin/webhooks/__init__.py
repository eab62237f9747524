"""Shopify webhooks: the verified receiver and the processing of stored events."""

from plugin.webhooks.views import bp, init_app

__all__ = ["bp", "init_app"]
