"""Amazon Selling Partner API connector on python-amazon-sp-api: sessions, orders, solicitations, feedback."""

from .client import Credentials, SpApiSession
from .errors import AccessDenied, AmazonError, AuthError, InvalidInput, NotFound, QuotaExceeded, ServerError

__all__ = ["AccessDenied", "AmazonError", "AuthError", "Credentials", "InvalidInput", "NotFound", "QuotaExceeded",
           "ServerError", "SpApiSession"]
