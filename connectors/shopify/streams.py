"""One stream class per Shopify resource, declared by class attributes; paging and bulk reading live in the base.

Incremental reads ask for objects with ``updated_at >= cursor - overlap`` sorted by ``UPDATED_AT`` (the
overlap catches objects whose update committed just after the previous run read), so a page boundary
checkpoint is always safe. Backfills read the same resource through a bulk operation.
Search syntax: https://shopify.dev/docs/api/usage/search-syntax

Deletions are invisible here: a deleted order, product or customer simply stops appearing (GraphQL has no
"deleted since" query and no tombstones), so neither incremental reads nor backfills ever remove anything.
The ``orders/delete``, ``products/delete`` and ``customers/delete`` webhooks are the path
(``plugin.webhooks.deletions``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from connectors.records import CustomerRecord, OrderRecord, ProductRecord
from connectors.shopify import parse, queries
from connectors.shopify.bulk import BulkObject, BulkResult, BulkRunner, JsonlReader
from connectors.shopify.client import ShopifyClient
from connectors.shopify.errors import ShopifyBadResponse

DEFAULT_OVERLAP = timedelta(minutes=5)
Record = OrderRecord | CustomerRecord | ProductRecord


def search_since(field: str, since: datetime | None) -> str | None:
    """Return a search string selecting objects whose ``field`` is at or after ``since`` (UTC, to the second)."""
    if since is None:
        return None
    stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{field}:>='{stamp}'"


class Stream:
    """A Shopify resource read page by page (incremental) or through a bulk operation (backfill).

    Subclasses declare: ``name`` (the sync_state stream), ``record_kind`` (the kind of record it yields, which
    names its sink in plugin.sync), ``root`` (the connection field), ``query`` (the
    paged document), ``page_size``, ``cursor_field``/``search_field`` and optionally a child connection
    (``child_field``, ``child_query``, ``child_root``, ``child_type``) whose extra pages are fetched per object.
    """

    name: ClassVar[str]
    record_kind: ClassVar[str]
    root: ClassVar[str]
    query: ClassVar[str]
    page_size: ClassVar[int]
    cursor_field: ClassVar[str] = "updatedAt"
    search_field: ClassVar[str] = "updated_at"
    child_field: ClassVar[str | None] = None
    child_query: ClassVar[str | None] = None
    child_root: ClassVar[str | None] = None
    bulk_query: ClassVar[Callable[[str | None], str]]
    by_id_query: ClassVar[str | None] = None
    by_id_page: ClassVar[int] = 50

    def __init__(self, client: ShopifyClient, *, overlap: timedelta = DEFAULT_OVERLAP):
        self.client = client
        self.overlap = overlap

    def to_record(self, node: dict[str, Any], children: list[dict[str, Any]]) -> Record:
        """Map one node and its child nodes to a record."""
        raise NotImplementedError

    def start_from(self, cursor: datetime | None) -> datetime | None:
        """Return where an incremental read starts: the cursor minus the overlap window."""
        return cursor - self.overlap if cursor is not None else None

    # -- incremental -------------------------------------------------------------------------------------

    def pages(self, since: datetime | None) -> Iterator[tuple[list[Record], datetime | None]]:
        """Yield each page's records with the newest ``cursor_field`` value seen so far."""
        after: str | None = None
        newest: datetime | None = None
        search = search_since(self.search_field, self.start_from(since))
        while True:
            data = self.client.execute(self.query, {"first": self.page_size, "after": after, "query": search},
                                       estimated_cost=None)
            connection = data.get(self.root)
            if not isinstance(connection, dict):
                raise ShopifyBadResponse(f"{self.root}: no connection in the answer")
            records = []
            for node in connection.get("nodes") or ():
                records.append(self.to_record(node, self._children(node)))
                stamp = parse.parse_time(node.get(self.cursor_field))
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
            yield records, newest
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info.get("endCursor")
            if not after:
                raise ShopifyBadResponse(f"{self.root}: hasNextPage without endCursor")

    def _children(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        """Return all child nodes, fetching pages beyond the first one embedded in the node."""
        if self.child_field is None:
            return []
        connection = node.get(self.child_field) or {}
        children = list(connection.get("nodes") or ())
        info = connection.get("pageInfo") or {}
        while info.get("hasNextPage"):
            data = self.client.execute(self.child_query or "", {"id": node["id"], "after": info.get("endCursor")})
            parent = data.get(self.child_root or "") or {}
            connection = parent.get(self.child_field) or {}
            children.extend(connection.get("nodes") or ())
            info = connection.get("pageInfo") or {}
        return children

    def read(self, since: datetime | None = None) -> Iterator[Record]:
        """Yield every record updated since ``since`` (minus the overlap), oldest update first."""
        for records, _newest in self.pages(since):
            yield from records

    def fetch(self, gids: list[str]) -> Iterator[Record]:
        """Yield the records of the given global ids (used to repair late bulk children)."""
        if self.by_id_query is None:
            return
        for start in range(0, len(gids), self.by_id_page):
            data = self.client.execute(self.by_id_query, {"ids": gids[start:start + self.by_id_page]})
            for node in data.get("nodes") or ():
                if node:
                    yield self.to_record(node, self._children(node))

    # -- bulk --------------------------------------------------------------------------------------------

    def run_bulk(self, since: datetime | None = None, *, poll_interval: float = 2.0) -> BulkResult:
        """Start the stream's bulk query (all objects, or those updated since ``since``) and wait for it."""
        return self.wait_bulk(self.start_bulk(since), poll_interval=poll_interval)

    def start_bulk(self, since: datetime | None = None) -> str:
        """Start the stream's bulk query and return the operation's id, so a caller can keep it before waiting."""
        query = type(self).bulk_query(search_since(self.search_field, self.start_from(since)))
        return BulkRunner(self.client).start(query)

    def wait_bulk(self, operation_id: str, *, poll_interval: float = 2.0) -> BulkResult:
        """Wait for a bulk operation this stream started."""
        return BulkRunner(self.client, poll_interval=poll_interval).wait(operation_id)

    def resume_bulk(self, operation_id: str, *, poll_interval: float = 2.0) -> BulkResult | None:
        """Wait for (or take the finished result of) an operation an earlier run started; None if unusable."""
        return BulkRunner(self.client, poll_interval=poll_interval).resume(operation_id)

    def bulk_records(self, result: BulkResult, *, timeout: float = 120.0, window: int = 200) -> Iterator[Record]:
        """Stream the bulk result's records; children that came too late trigger a refetch of their parent.

        ``window`` is how many parents wait for late children (bounded memory).
        """
        if not result.url:
            return
        reader = JsonlReader(result.url, timeout=timeout, session=self.client.http, sleep=self.client.sleep,
                             window=window)
        for obj in reader:
            yield self._from_bulk(obj)
        if reader.late_parents:
            yield from self.fetch(sorted(reader.late_parents))

    def _from_bulk(self, obj: BulkObject) -> Record:
        return self.to_record(obj.node, obj.children)


class OrdersStream(Stream):
    """Orders with their line items, fulfilments (delivery dates), refunds and return status."""

    name = "orders"
    record_kind = "orders"
    root = "orders"
    query = queries.ORDERS
    page_size = queries.ORDERS_PAGE
    child_field = "lineItems"
    child_query = queries.ORDER_LINE_ITEMS
    child_root = "order"
    bulk_query = staticmethod(queries.bulk_orders)
    by_id_query = queries.ORDERS_BY_ID
    by_id_page = queries.ORDERS_BY_ID_PAGE

    def to_record(self, node: dict[str, Any], children: list[dict[str, Any]]) -> OrderRecord:
        """Map an Order node and its line items."""
        return parse.order_record(node, children)


class CustomersStream(Stream):
    """Customers with marketing consent, locale, country and time zone."""

    name = "customers"
    record_kind = "customers"
    root = "customers"
    query = queries.CUSTOMERS
    page_size = queries.CUSTOMERS_PAGE
    bulk_query = staticmethod(queries.bulk_customers)

    def to_record(self, node: dict[str, Any], children: list[dict[str, Any]]) -> CustomerRecord:
        """Map a Customer node."""
        return parse.customer_record(node)


class ProductsStream(Stream):
    """Products with their variants."""

    name = "products"
    record_kind = "products"
    root = "products"
    query = queries.PRODUCTS
    page_size = queries.PRODUCTS_PAGE
    child_field = "variants"
    child_query = queries.PRODUCT_VARIANTS
    child_root = "product"
    bulk_query = staticmethod(queries.bulk_products)
    by_id_query = queries.PRODUCTS_BY_ID
    by_id_page = queries.PRODUCTS_BY_ID_PAGE

    def to_record(self, node: dict[str, Any], children: list[dict[str, Any]]) -> ProductRecord:
        """Map a Product node and its variants."""
        return parse.product_record(node, children)


# Sync order matters: products and customers first, so orders link to complete rows.
STREAMS: tuple[type[Stream], ...] = (ProductsStream, CustomersStream, OrdersStream)
