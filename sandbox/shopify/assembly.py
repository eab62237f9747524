"""The Shopify sandbox put together: the world, its GraphQL schema with resolvers, bulk operations, HTTP.

``ShopifySandbox`` is the world (``world.py``) plus what serves it; it is the one module that imports
the resolvers, the mutations, the bulk manager and the WSGI application, so none of them imports it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from base.clock import Clock
from sandbox.faults import FaultConfig
from sandbox.server import ServerThread
from sandbox.shopify.app import make_wsgi_app
from sandbox.shopify.bulk import BulkManager
from sandbox.shopify.context import Context
from sandbox.shopify.execution import GraphQLEndpoint
from sandbox.shopify.mutations import MUTATIONS
from sandbox.shopify.resolvers import install_resolvers
from sandbox.shopify.schema import load_schema
from sandbox.shopify.seed import ShopSpec
from sandbox.shopify.world import ShopWorld


class ShopifySandbox(ShopWorld):
    """A local Shopify: Admin GraphQL, OAuth token endpoint, webhooks, over seeded shops."""

    def __init__(self, seed: int = 42, customers: int = 2000, orders: int = 10000, clock: Clock | None = None,
                 shops: Sequence[str | ShopSpec] | None = None, restore_rate: float = 100.0,
                 maximum_available: float = 2000.0, max_query_cost: int = 1000,
                 webhook_sleep: Callable[[float], None] | None = None, webhook_timeout: float = 5.0,
                 faults: FaultConfig | None = None, strict_refresh_rotation: bool = False,
                 async_webhooks: bool = False):
        super().__init__(seed=seed, customers=customers, orders=orders, clock=clock, shops=shops,
                         restore_rate=restore_rate, maximum_available=maximum_available,
                         max_query_cost=max_query_cost, webhook_sleep=webhook_sleep, webhook_timeout=webhook_timeout,
                         strict_refresh_rotation=strict_refresh_rotation, async_webhooks=async_webhooks)
        self.schema = load_schema()
        install_resolvers(self.schema, MUTATIONS)
        self.bulk = BulkManager(self.schema)
        # Bulk result files stand in for cloud storage, not the Admin API: no injected faults there.
        self.faults = make_wsgi_app(self, GraphQLEndpoint(self.schema, self.bulk, max_query_cost),
                                    faults or FaultConfig(exempt_prefixes=("/__sandbox", "/__bulk")))
        self.wsgi_app = self.faults
        self.server: ServerThread | None = None

    # -- serving ---------------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> ServerThread:
        """Serve on loopback in a thread (port 0: a free port) and return the started server."""
        self.server = ServerThread(self.wsgi_app, host=host, port=port).start()
        return self.server

    def stop(self) -> None:
        """Stop the server started by :meth:`start`."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def url(self) -> str:
        """Return the base URL of the running server."""
        if self.server is None:
            raise RuntimeError("the sandbox is not started")
        return self.server.url

    def set_faults(self, rate: float, kinds: Iterable[str] | None = None, seed: int | None = None,
                   slow_seconds: float | None = None) -> None:
        """Inject faults into a fraction of HTTP answers (control routes and bulk files are exempt)."""
        self.faults.configure(rate, kinds, seed, slow_seconds)

    # -- bulk operations -------------------------------------------------------------------------------
    def context(self, client_id: str, shop: str | None = None, base_url: str = "") -> Context:
        """Build a resolver context for an app on a shop (control API and bulk runs)."""
        return Context(self, self.shop_state(shop), self.apps[client_id], self.clock.now(),
                       base_url or (self.url if self.server else ""), self.bulk)

    def finish_bulk_operations(self, client_id: str, shop: str | None = None) -> None:
        """Run the app's pending bulk operations to completion."""
        self.bulk.finish_all(self.context(client_id, shop))
