"""Connection check for a newly connected seller: LWA token, then one cheap Orders call.

The Sellers API (getMarketplaceParticipations) would be cheaper, but a searchOrders over a tiny window
proves exactly what the product needs (the Inventory and Order Tracking role) and works everywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .client import OrdersApi, SpApiSession
from .errors import AccessDenied, AmazonError, AuthError, role_hint
from .orders import OPERATION, iso


class ConnectionProblem(Exception):
    """The seller cannot be used as connected; the message says what to fix."""


def check_connection(session: SpApiSession, marketplace_ids: list[str], now: datetime) -> int:
    """Get an access token and list orders of the last hour; return how many; raise ConnectionProblem."""
    api = session.api(OrdersApi)
    try:
        response = session.call(OPERATION, api.search_orders, createdAfter=iso(now - timedelta(hours=1)),
                                marketplaceIds=list(marketplace_ids), maxResultsPerPage=1)
    except AuthError as exc:
        raise ConnectionProblem(str(exc)) from None
    except AccessDenied as exc:
        raise ConnectionProblem(f"the seller has not granted the {role_hint('orders')} role to this app "
                                f"(Amazon answered 403: {exc})") from None
    except AmazonError as exc:
        raise ConnectionProblem(f"the Selling Partner API refused the check call: {exc}") from None
    return len((response.payload or {}).get("orders") or [])
