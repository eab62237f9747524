"""The shop's collections and the products in each, read from the Admin API (``collections`` and
``Collection.products``, https://shopify.dev/docs/api/admin-graphql/2025-01/queries/collections).

A product's webhook (``products/update``) carries no collections, so membership is read whole, collection by
collection, on every sync run (plugin.sync.collections replaces the store's rows with what was read).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.shopify import queries
from connectors.shopify.client import ShopifyClient
from connectors.shopify.parse import numeric_id


@dataclass(frozen=True, slots=True)
class CollectionRecord:
    """One collection: its numeric id, title, handle and the numeric ids of its products."""

    external_id: str
    title: str
    handle: str
    product_external_ids: tuple[str, ...]


def fetch_collections(client: ShopifyClient, *, page: int = queries.COLLECTIONS_PAGE,
                      products_page: int = queries.COLLECTION_PRODUCTS_PAGE) -> list[CollectionRecord]:
    """Return every collection of the shop with all its products' ids (nested pages read to the end)."""
    out: list[CollectionRecord] = []
    after: str | None = None
    while True:
        # A page costs 2 for the connection plus, per collection, 1 and its products connection (2 + one each).
        data = client.execute(queries.COLLECTIONS, {"first": page, "after": after, "productsFirst": products_page},
                              estimated_cost=2 + page * (3 + products_page))["collections"]
        for node in data.get("nodes") or ():
            products = node.get("products") or {}
            ids = [numeric_id(p["id"]) or "" for p in products.get("nodes") or ()]
            more = products.get("pageInfo") or {}
            if more.get("hasNextPage"):
                ids.extend(_more_products(client, node["id"], more.get("endCursor"), products_page))
            out.append(CollectionRecord(external_id=numeric_id(node["id"]) or "", title=node.get("title") or "",
                                        handle=node.get("handle") or "", product_external_ids=tuple(ids)))
        info = data.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return out
        after = info.get("endCursor")


def _more_products(client: ShopifyClient, collection_gid: str, after: str | None, first: int) -> list[str]:
    """Return the product ids of a collection's later pages."""
    ids: list[str] = []
    while True:
        node = client.execute(queries.COLLECTION_PRODUCTS, {"id": collection_gid, "first": first, "after": after},
                              estimated_cost=3 + first).get("node") or {}
        products = node.get("products") or {}
        ids.extend(numeric_id(p["id"]) or "" for p in products.get("nodes") or ())
        page = products.get("pageInfo") or {}
        if not page.get("hasNextPage"):
            return ids
        after = page.get("endCursor")
