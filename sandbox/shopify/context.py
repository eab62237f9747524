"""What every resolver is handed: the world, the shop, the asking app, the time, and the bulk operations.

It sits below the resolvers, the mutations and the bulk manager, so each of them can name it without
importing another: the bulk manager is reached through the ``BulkOperations`` protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from graphql import GraphQLError

from sandbox.shopify.auth import AppRecord
from sandbox.shopify.models import BulkOperation, Order
from sandbox.shopify.state import ShopState
from sandbox.shopify.world import ShopWorld

RECENT_ORDERS = timedelta(days=60)
ACCESS_DOC = "https://shopify.dev/api/usage/access-scopes"


class BulkOperations(Protocol):
    """What resolvers, mutations and the HTTP layer ask of the bulk manager."""

    files: dict[int, bytes]

    def run_query(self, ctx: Context, query: str) -> dict[str, Any]:
        """Resolve ``bulkOperationRunQuery``."""
        ...

    def current(self, ctx: Context, op_type: str = "QUERY") -> BulkOperation | None:
        """Return the app's latest operation on the shop."""
        ...

    def get(self, ctx: Context, number: int) -> BulkOperation | None:
        """Return one of the app's operations by id."""
        ...


@dataclass
class Context:
    """Per-request context: which app asks, about which shop, at what time, and where bulk operations live."""

    world: ShopWorld
    state: ShopState
    app: AppRecord
    now: datetime
    base_url: str
    bulk_ops: BulkOperations
    bulk: bool = False
    search: list[dict[str, Any]] = field(default_factory=list)

    @property
    def store(self) -> Any:
        """Return the shop's store."""
        return self.state.store

    def require(self, scope: str, field_name: str) -> None:
        """Raise ACCESS_DENIED unless the app holds ``scope``."""
        if not self.app.has_scope(scope):
            raise GraphQLError(
                f"Access denied for {field_name} field. Required access: `{scope}` access scope.",
                extensions={"code": "ACCESS_DENIED", "documentation": ACCESS_DOC,
                            "requiredAccess": f"`{scope}` access scope."})

    def order_visible(self, order: Order) -> bool:
        """Return False for orders older than 60 days when ``read_all_orders`` is missing."""
        return self.app.has_scope("read_all_orders") or order.created_at >= self.now - RECENT_ORDERS

    def protected(self, value: Any) -> Any:
        """Return ``value`` only when the app has protected customer data access."""
        return value if self.app.protected_customer_data else None
