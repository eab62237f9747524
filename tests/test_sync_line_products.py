"""A line with a variant but no product (REST ``product_id: null``) gets its variant's product, or none: never a
product row keyed by the variant's id. Through the orders owner on SQLite (generic path) and PostgreSQL (staged)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import aliased

from connectors.records import OrderLineRecord, OrderRecord, ProductRecord, VariantRecord
from plugin import sync
from plugin.models import Merchant, Order, OrderLine, Product, Store, Variant
from tests.conftest import wipe

T0 = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)


@pytest.fixture
def store_id(database):
    """Create a merchant with one Shopify store; wipe every committed row afterwards."""
    with database.session() as session:
        merchant = Merchant(name="M")
        session.add(merchant)
        session.flush()
        store = Store(merchant_id=merchant.id, platform="shopify", external_id="lines.myshopify.com")
        session.add(store)
        session.flush()
        sid = store.id
    yield sid
    wipe(database.engine)


def _order(external_id: str, *lines: OrderLineRecord) -> OrderRecord:
    return OrderRecord(external_id=external_id, created_at=T0, updated_at=T0, currency="USD",
                       total_price=Decimal("10.00"), lines=lines)


def _line(external_id: str, product: str | None, variant: str | None) -> OrderLineRecord:
    return OrderLineRecord(external_id=external_id, quantity=1, price=Decimal("5.00"), title="Tea", sku="TEA",
                           product_external_id=product, variant_external_id=variant)


def _lines(database, store_id: int) -> dict[str, tuple[str | None, str | None]]:
    product, variant = aliased(Product), aliased(Variant)
    with database.session() as session:
        return {row[0]: (row[1], row[2]) for row in session.execute(
            select(OrderLine.external_id, product.external_id, variant.external_id)
            .outerjoin(product, product.id == OrderLine.product_id)
            .outerjoin(variant, variant.id == OrderLine.variant_id)
            .where(OrderLine.store_id == store_id))}


def _catalog(database, store_id: int) -> tuple[list[str], dict[str, str]]:
    with database.session() as session:
        products = sorted(session.scalars(select(Product.external_id).where(Product.store_id == store_id)))
        variants = {variant: product for variant, product in session.execute(
            select(Variant.external_id, Product.external_id).join(Product, Product.id == Variant.product_id)
            .where(Variant.store_id == store_id))}
    return products, variants


def test_a_variant_only_line_takes_the_stored_variants_product(database, store_id) -> None:
    with database.session() as session:
        sync.upsert_products(session, store_id, [ProductRecord(external_id="100", title="Tea",
                                                               variants=(VariantRecord(external_id="500"),))])
    with database.session() as session:
        counts = sync.upsert_orders(session, store_id, [_order("1", _line("11", None, "500"))])
    assert (counts["products"], counts["variants"]) == (0, 0)
    assert _lines(database, store_id) == {"11": ("100", "500")}
    assert _catalog(database, store_id) == (["100"], {"500": "100"})


def test_a_variant_only_line_takes_the_product_another_line_names(database, store_id) -> None:
    with database.session() as session:
        counts = sync.upsert_orders(session, store_id, [_order("1", _line("11", None, "501")),
                                                        _order("2", _line("21", "101", "501"))])
    assert (counts["products"], counts["variants"]) == (1, 1)
    assert _lines(database, store_id) == {"11": ("101", "501"), "21": ("101", "501")}
    assert _catalog(database, store_id) == (["101"], {"501": "101"})


def test_an_unknown_variant_without_product_creates_no_catalog_rows(database, store_id) -> None:
    with database.session() as session:
        counts = sync.upsert_orders(session, store_id, [_order("1", _line("11", None, "502"))])
    assert (counts["products"], counts["variants"], counts["lines_written"]) == (0, 0, 1)
    assert _lines(database, store_id) == {"11": (None, None)}
    assert _catalog(database, store_id) == ([], {})
    # Once the product stream brings the variant, the next copy of the order links the line to it.
    with database.session() as session:
        sync.upsert_products(session, store_id, [ProductRecord(external_id="102", title="Tea",
                                                               variants=(VariantRecord(external_id="502"),))])
    later = OrderRecord(external_id="1", created_at=T0, updated_at=T0.replace(hour=10), currency="USD",
                        total_price=Decimal("10.00"), lines=(_line("11", None, "502"),))
    with database.session() as session:
        sync.upsert_orders(session, store_id, [later])
        assert session.scalar(select(Order.remote_updated_at).where(Order.external_id == "1")) == later.updated_at
    assert _lines(database, store_id) == {"11": ("102", "502")}
    assert _catalog(database, store_id) == (["102"], {"502": "102"})
