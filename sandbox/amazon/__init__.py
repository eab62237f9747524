"""Amazon SP-API sandbox: LWA, Orders (v0, 2026-01-01), Solicitations, Messaging, Reports, Tokens."""

from .app import AmazonSandbox, serve
from .seed import Feedback, Order, OrderItem, Return, Seller

__all__ = ["AmazonSandbox", "Feedback", "Order", "OrderItem", "Return", "Seller", "serve"]
