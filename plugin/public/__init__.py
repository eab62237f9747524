"""Public pages reached from emails: survey score and comment, unsubscribe, reorder and review links."""

from plugin.public.views import bp

__all__ = ["bp"]
