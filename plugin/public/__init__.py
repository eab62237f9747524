"""Public pages reached from emails: survey score and comment, unsubscribe, reorder and review links, tracking."""

from plugin.public import tracking  # noqa: F401  # registers the tracking page's routes on bp
from plugin.public.views import bp

__all__ = ["bp"]
