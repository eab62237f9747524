"""Shopify install and tokens: token exchange, the authorization-code grant, refresh, session tokens."""

from plugin.auth.views import bp

__all__ = ["bp"]
