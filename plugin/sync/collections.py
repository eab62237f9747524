"""The owner of product_collection rows: which of the store's collections each product is in.

Shopify's product webhooks carry no collections, and a collection's membership changes without touching its
products (``collections/update`` is not subscribed), so membership is read whole on every sync run, after the
products, and replaces the store's rows in one transaction: a product left out of a collection loses its row at
the next run, a product not synced yet is picked up at the run after it is.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from connectors.shopify.collections import CollectionRecord
from plugin.models import ProductCollection
from plugin.sync.sql import IN_CHUNK, PRODUCTS, chunked, ids_by_external


def replace_memberships(session: Session, store_id: int, collections: Iterable[CollectionRecord]) -> int:
    """Replace the store's product→collection rows with these collections'; return how many rows were written."""
    collections = list(collections)
    product_ids = ids_by_external(session, PRODUCTS, store_id,
                                  (p for c in collections for p in c.product_external_ids))
    rows = {(product_ids[p], c.external_id): {"store_id": store_id, "product_id": product_ids[p],
                                              "collection_external_id": c.external_id,
                                              "collection_title": c.title[:255],
                                              "collection_handle": c.handle[:255] or None}
            for c in collections for p in c.product_external_ids if p in product_ids}
    session.execute(delete(ProductCollection).where(ProductCollection.store_id == store_id))
    if rows:
        session.execute(insert(ProductCollection), list(rows.values()))
    return len(rows)


def store_collections(session: Session, store_id: int) -> list[tuple[str, str]]:
    """Return the store's collections that hold a synced product, as (external id, title), by title."""
    found = session.execute(
        select(ProductCollection.collection_external_id, ProductCollection.collection_title)
        .where(ProductCollection.store_id == store_id).distinct())
    return sorted(((ext, title) for ext, title in found), key=lambda c: (c[1].casefold(), c[0]))


def collections_of(session: Session, store_id: int, product_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """Return each of these products' collection ids."""
    out: dict[int, list[str]] = {}
    for chunk in chunked(sorted(set(product_ids)), IN_CHUNK):
        for product_id, ext in session.execute(
                select(ProductCollection.product_id, ProductCollection.collection_external_id)
                .where(ProductCollection.store_id == store_id, ProductCollection.product_id.in_(chunk))):
            out.setdefault(product_id, []).append(ext)
    return {p: tuple(exts) for p, exts in out.items()}
