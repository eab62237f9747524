""""Customers who bought X also bought Y": item-to-item co-purchase per store, computed in SQL by a daily job.

The job (``rebuild``) replaces a store's ``product_recommendation`` rows in one transaction, without reading an
order into Python:

1. ``owned``: each (customer, product) the customer bought in an order that was not cancelled, once;
2. ``buyers``: per product, how many customers bought it; ``N`` is how many customers bought anything;
3. every pair X ≠ Y bought by at least ``min_co_customers`` of the same customers, scored by its lift over
   popularity: ``co_customers × N / (buyers(X) × buyers(Y))`` — 1 is what chance gives, so a best-seller
   everyone buys is not recommended beside everything merely for being popular. Pairs above ``min_lift`` are
   ranked per X (lift, then co-buyers, then product id) and the best ``per_product`` kept.

What a customer is shown (``for_customers``) is read at send time, so it is current: the Ys of every product
they bought, best lift first, never a product they already own, never one that is not active or out of stock
(Shopify ``totalInventory`` ≤ 0 while ``tracksInventory``). Only marketing messages carry the block (DESIGN §4:
offers and selling belong to the marketing class; transactional, service and review-request emails never).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.config import Config
from plugin.context import JobContext
from plugin.models import Store

SECTION = "recommendations"

# A product may be shown when it is active (or its status is unknown) and not out of stock: stock that is
# tracked and at zero or below. Unknown stock (NULL) counts as in stock; unknown tracking as tracked.
RECOMMENDABLE_SQL = ("(p.status IS NULL OR p.status = 'ACTIVE') AND NOT (COALESCE(p.total_inventory, 1) <= 0 "
                     "AND COALESCE(p.tracks_inventory, :true))")


@dataclass(frozen=True)
class Recommended:
    """One product shown to a customer: its id, title, URL and image variables."""

    product_id: int
    title: str
    url: str
    image_url: str | None
    image_alt: str
    lift: float

    def as_vars(self) -> dict[str, Any]:
        """Return the template variables of this product (``recommendations`` in marketing templates)."""
        return {"title": self.title, "url": self.url, "image_url": self.image_url, "image_alt": self.image_alt}


def rebuild(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: recompute one store's co-purchase recommendations in its own transaction."""
    with ctx.database.session() as session:
        return rebuild_store(session, ctx.config, store_id, ctx.clock.now())


def rebuild_store(session: Session, config: Config, store_id: int, now: datetime) -> dict[str, int]:
    """Replace the store's recommendation rows inside the caller's transaction; return products and pairs kept."""
    store = session.get(Store, store_id)
    settings = flow_settings.effective(session, config, store_id, SECTION)
    if store is None:
        return {"inactive": 1}
    session.execute(text("DELETE FROM product_recommendation WHERE store_id = :s"), {"s": store_id})
    if not settings["enabled"]:
        # Switched off: no email shows the products any more.
        return {"disabled": 1}
    params = {"s": store_id, "min_co": int(settings["min_co_customers"]), "min_lift": float(settings["min_lift"]),
              "per_product": int(settings["per_product"]), "now": now}
    for name in ("rec_owned", "rec_buyers"):
        session.execute(text(f"DROP TABLE IF EXISTS {name}"))
    # One row per (customer, product): a customer who bought a product five times is one buyer of it.
    session.execute(text("""
        CREATE TEMP TABLE rec_owned AS
        SELECT DISTINCT o.customer_id AS c, l.product_id AS p
        FROM orders o JOIN order_line l ON l.order_id = o.id
        WHERE o.store_id = :s AND o.customer_id IS NOT NULL AND o.cancelled_at IS NULL
          AND l.product_id IS NOT NULL"""), params)
    session.execute(text("CREATE INDEX rec_owned_cp ON rec_owned (c, p)"))
    session.execute(text("CREATE TEMP TABLE rec_buyers AS SELECT p, COUNT(*) AS n FROM rec_owned GROUP BY p"))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE rec_owned"))
        session.execute(text("ANALYZE rec_buyers"))
    total = session.execute(text("SELECT COUNT(DISTINCT c) FROM rec_owned")).scalar_one()
    if total:
        session.execute(text("""
            INSERT INTO product_recommendation (product_id, recommended_id, store_id, co_customers, lift, rank,
                                                computed_at)
            SELECT x, y, :s, n, lift, rk, :now FROM (
                SELECT pairs.x, pairs.y, pairs.n, pairs.lift,
                       ROW_NUMBER() OVER (PARTITION BY pairs.x ORDER BY pairs.lift DESC, pairs.n DESC, pairs.y) AS rk
                FROM (SELECT a.p AS x, b.p AS y, COUNT(*) AS n,
                             COUNT(*) * CAST(:total AS DOUBLE PRECISION) / (bx.n * CAST(by_.n AS DOUBLE PRECISION))
                             AS lift
                      FROM rec_owned a
                      JOIN rec_owned b ON b.c = a.c AND b.p <> a.p
                      JOIN rec_buyers bx ON bx.p = a.p
                      JOIN rec_buyers by_ ON by_.p = b.p
                      GROUP BY a.p, b.p, bx.n, by_.n
                      HAVING COUNT(*) >= :min_co) pairs
                WHERE pairs.lift > :min_lift) ranked
            WHERE rk <= :per_product"""), {**params, "total": total})
    pairs = session.execute(text("SELECT COUNT(*), COUNT(DISTINCT product_id) FROM product_recommendation "
                                 "WHERE store_id = :s"), params).one()
    for name in ("rec_owned", "rec_buyers"):
        session.execute(text(f"DROP TABLE {name}"))
    return {"pairs": int(pairs[0]), "products": int(pairs[1]), "customers": int(total)}


_FOR_CUSTOMERS = text(f"""
    SELECT mine.customer_id, r.recommended_id, MAX(r.lift) AS score, p.title, p.handle, p.image_url, p.image_alt
    FROM (SELECT DISTINCT o.customer_id, l.product_id
          FROM orders o JOIN order_line l ON l.order_id = o.id
          WHERE o.store_id = :s AND o.customer_id IN :ids AND o.cancelled_at IS NULL
            AND l.product_id IS NOT NULL) mine
    JOIN product_recommendation r ON r.store_id = :s AND r.product_id = mine.product_id
    JOIN product p ON p.id = r.recommended_id
    WHERE {RECOMMENDABLE_SQL}
      AND NOT EXISTS (SELECT 1 FROM orders o2 JOIN order_line l2 ON l2.order_id = o2.id
                      WHERE o2.store_id = :s AND o2.customer_id = mine.customer_id
                        AND l2.product_id = r.recommended_id)
    GROUP BY mine.customer_id, r.recommended_id, p.title, p.handle, p.image_url, p.image_alt
""").bindparams(bindparam("ids", expanding=True))  # noqa: S608  # only the constant condition is interpolated


def for_customers(session: Session, store: Store, customer_ids: Iterable[int], limit: int = 3
                  ) -> dict[int, list[Recommended]]:
    """Return up to ``limit`` products to show each customer: never one they own, inactive or out of stock.

    "Own" counts every order of theirs, cancelled ones too: a customer who cancelled a product has seen it.
    """
    ids = sorted(set(customer_ids))
    found: dict[int, list[Recommended]] = {cid: [] for cid in ids}
    if not ids or limit <= 0:
        return found
    shop_url = f"https://{store.external_id}" if store.platform == "shopify" else ""
    rows = session.execute(_FOR_CUSTOMERS, {"s": store.id, "ids": ids, "true": True}).all()
    rows.sort(key=lambda r: (r.customer_id, -r.score, r.recommended_id))
    for row in rows:
        chosen = found[row.customer_id]
        if len(chosen) >= limit:
            continue
        url = f"{shop_url}/products/{row.handle}" if row.handle and shop_url else shop_url
        image = row.image_url if row.image_url and row.image_url.startswith("https://") else None
        chosen.append(Recommended(product_id=row.recommended_id, title=row.title or "", url=url, image_url=image,
                                  image_alt=(row.image_alt or "").strip() or row.title or "",
                                  lift=float(row.score)))
    return found
