"""The owner of product and variant rows: the product stream's upsert, the catalog rows order lines name,
and the deletion of a product Shopify deleted.

Only connector-owned fields are written: the merchant's product settings (``consumable``, ``days_of_supply``,
``reminder_lead_days``, learned cycles) never appear here, and new products start with the defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connectors.records import OrderRecord, ProductRecord
from plugin.models import Product
from plugin.sync.sql import (
    IN_CHUNK,
    PRODUCTS,
    VARIANTS,
    chunked,
    custom_plans,
    dedupe,
    ids_by_external,
    not_older,
    upsert,
)
from plugin.sync.tombstones import add_tombstone

# Connector-owned product fields; the replenishment settings are the merchant's and never appear here.
PRODUCT_FIELDS = ("title", "handle", "product_type", "vendor", "status", "image_url", "image_alt",
                  "total_inventory", "tracks_inventory", "remote_updated_at")
VARIANT_FIELDS = ("product_id", "sku", "title", "price")


def upsert_products(session: Session, store_id: int, records: Iterable[ProductRecord], *,
                    batch_size: int = 500) -> int:
    """Insert or update products and their variants; return how many product and variant rows were written.

    Only connector-owned fields are written; the merchant's replenishment settings are left alone.
    """
    custom_plans(session)
    written = 0
    for batch in chunked(records, batch_size):
        rows = dedupe({"store_id": store_id, "external_id": r.external_id, "title": r.title or "",
                        "handle": r.handle, "product_type": r.product_type, "vendor": r.vendor,
                        "status": r.status, "image_url": _fitting_url(r.image_url),
                        "image_alt": r.image_alt[:512] if r.image_alt else None,
                        "total_inventory": r.total_inventory, "tracks_inventory": r.tracks_inventory,
                        "remote_updated_at": r.updated_at} for r in batch)
        written += len(upsert(session, PRODUCTS, rows, keys=("store_id", "external_id"), update=PRODUCT_FIELDS,
                               where=lambda excluded: not_older(PRODUCTS, excluded)))
        product_ids = ids_by_external(session, PRODUCTS, store_id, (r.external_id for r in batch))
        variant_rows = dedupe({"store_id": store_id, "external_id": v.external_id,
                                "product_id": product_ids[r.external_id], "sku": v.sku, "title": v.title or "",
                                "price": v.price} for r in batch for v in r.variants)
        written += len(upsert(session, VARIANTS, variant_rows, keys=("store_id", "external_id"),
                               update=VARIANT_FIELDS))
    return written


def line_products(session: Session, store_id: int, orders: Sequence[OrderRecord]) -> dict[str, str]:
    """Map the variant of every line that names no product to its product's external id, where it is known.

    Shopify sends lines with a variant but no product (REST ``product_id: null``); the product is the variant's:
    another line of the batch that names both, else the stored variant's product. A variant found in neither
    maps to nothing, and its line is stored without product or variant (never a product keyed by a variant id).
    """
    wanted: set[str] = set()
    known: dict[str, str] = {}
    for order in orders:
        for line in order.lines:
            if line.variant_external_id is None:
                continue
            if line.product_external_id:
                known.setdefault(line.variant_external_id, line.product_external_id)
            else:
                wanted.add(line.variant_external_id)
    found = {v: known[v] for v in wanted if v in known}
    unknown = sorted(wanted - set(found))
    for part in chunked(unknown, IN_CHUNK):
        found.update((variant, product) for variant, product in session.execute(
            select(VARIANTS.c.external_id, PRODUCTS.c.external_id)
            .join(PRODUCTS, PRODUCTS.c.id == VARIANTS.c.product_id)
            .where(VARIANTS.c.store_id == store_id, VARIANTS.c.external_id.in_(part))))
    return found


def _fitting_url(url: str | None) -> str | None:
    """Return the URL when it fits its column; an over-long one is dropped, never cut into a broken link."""
    return url if url and len(url) <= 2048 else None


def ensure_catalog(session: Session, store_id: int, orders: Sequence[OrderRecord]) -> tuple[
        dict[str, int], dict[str, int], int, int, dict[str, str]]:
    """Create the products/variants order lines name but the catalog does not have yet (e.g. Amazon ASIN/SKU).

    Returns (product ids, variant ids, products created, variants created, the products of variant-only lines
    as :func:`line_products` resolves them). A variant is created only under its product.
    """
    resolved = line_products(session, store_id, orders)
    product_titles: dict[str, str] = {}
    variant_specs: dict[str, tuple[str, str | None, str]] = {}
    for order in orders:
        for line in order.lines:
            product_ext = line.product_external_id or resolved.get(line.variant_external_id or "")
            if product_ext:
                product_titles.setdefault(product_ext, line.title or "")
                if line.variant_external_id:
                    variant_specs.setdefault(line.variant_external_id, (product_ext, line.sku, line.title or ""))
    product_ids = ids_by_external(session, PRODUCTS, store_id, product_titles)
    missing = [{"store_id": store_id, "external_id": ext, "title": title}
               for ext, title in product_titles.items() if ext not in product_ids]
    created_products = len(upsert(session, PRODUCTS, missing, keys=("store_id", "external_id"), update=()))
    if missing:
        product_ids.update(ids_by_external(session, PRODUCTS, store_id, (r["external_id"] for r in missing)))
    variant_ids = ids_by_external(session, VARIANTS, store_id, variant_specs)
    missing = [{"store_id": store_id, "external_id": ext, "product_id": product_ids[product_ext], "sku": sku,
                "title": title} for ext, (product_ext, sku, title) in variant_specs.items() if ext not in variant_ids]
    created_variants = len(upsert(session, VARIANTS, missing, keys=("store_id", "external_id"), update=()))
    if missing:
        variant_ids.update(ids_by_external(session, VARIANTS, store_id, (r["external_id"] for r in missing)))
    return product_ids, variant_ids, created_products, created_variants, resolved


def tombstone_product(session: Session, store_id: int, external_id: str, now: datetime) -> int | None:
    """Record that the platform deleted a product and return the stored one's id, if any (still in place)."""
    add_tombstone(session, store_id, "product", external_id, now)
    return session.scalar(select(Product.id).where(Product.store_id == store_id, Product.external_id == external_id))


def delete_product(session: Session, product_id: int) -> None:
    """Delete a product row; its variants go by ON DELETE CASCADE, order lines keep a NULL product."""
    session.execute(delete(Product).where(Product.id == product_id))
