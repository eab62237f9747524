"""plugin.sync on the real test database: idempotent set-based upserts, lines kept in sync, merchant
overrides and redactions respected, cursors recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from connectors.records import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    ReviewRecord,
    VariantRecord,
)
from plugin import sync
from plugin.models import (
    Customer,
    DeletedRecord,
    Merchant,
    Order,
    OrderLine,
    Product,
    Review,
    Store,
    SyncState,
    Variant,
)
from tests.conftest import wipe

T0 = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)
SENTINEL = datetime(2001, 1, 1, tzinfo=UTC)


@pytest.fixture
def store_id(database):
    """Create a merchant with one Shopify store; wipe every committed row afterwards."""
    with database.session() as session:
        merchant = Merchant(name="M")
        session.add(merchant)
        session.flush()
        store = Store(merchant_id=merchant.id, platform="shopify", external_id="sync-test.myshopify.com")
        session.add(store)
        session.flush()
        sid = store.id
    yield sid
    wipe(database.engine)


def customer(n: int, **kw) -> CustomerRecord:
    base = dict(external_id=str(n), email=f"c{n}@example.com", first_name=f"C{n}", locale="de", country="de",
                time_zone="Europe/Berlin", marketing_consent=n % 2 == 0, tags=("vip",) if n == 1 else (),
                created_at=T0, updated_at=T0)
    base.update(kw)
    return CustomerRecord(**base)


def line(n: int, qty: int = 1, price: str = "10.00", product: str | None = "p1", variant: str | None = "v1",
         **kw) -> OrderLineRecord:
    return OrderLineRecord(external_id=str(n), quantity=qty, price=Decimal(price), title=f"L{n}", sku=f"S{n}",
                           product_external_id=product, variant_external_id=variant, **kw)


def order(n: int, lines=(), cust: CustomerRecord | None = None, **kw) -> OrderRecord:
    base = dict(external_id=str(n), created_at=T0, currency="EUR", total_price=Decimal("30.00"), name=f"#{n}",
                customer=cust, updated_at=T0, financial_status="PAID", tags=("a", "b"), lines=tuple(lines))
    base.update(kw)
    return OrderRecord(**base)


def freeze_updated_at(database) -> None:
    """Set every row's updated_at to a sentinel so any later write is visible."""
    with database.session() as session:
        for model in (Customer, Product, Variant, Order, Review):
            session.execute(update(model).values(updated_at=SENTINEL))


def moved(database, model) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(model.updated_at != SENTINEL))


def snapshot(database, model, order_by) -> list[tuple]:
    with database.session() as session:
        rows = session.execute(select(model.__table__).order_by(order_by)).all()
        return [tuple(r) for r in rows]


def test_orders_with_customers_and_lines_land_and_a_second_run_changes_nothing(database, store_id):
    orders = [order(1, [line(11), line(12, qty=2, product="p2", variant="v2")], cust=customer(1)),
              order(2, [line(21, product="p1", variant="v1")], cust=customer(2), total_price=Decimal("12.5")),
              order(3, [], cust=None, cancelled_at=T0 + timedelta(days=1))]
    with database.session() as session:
        counts = sync.upsert_orders(session, store_id, orders, batch_size=2)
    assert counts == {"seen": 3, "orders": 3, "customers": 2, "products": 2, "variants": 2, "lines_written": 3,
                      "lines_deleted": 0}
    with database.session() as session:
        rows = session.execute(select(Order.external_id, Order.name, Order.total_price, Order.currency,
                                      Order.cancelled_at, Order.tags, Customer.external_id)
                               .outerjoin(Customer, Customer.id == Order.customer_id)
                               .order_by(Order.external_id)).all()
        assert [tuple(r) for r in rows] == [
            ("1", "#1", Decimal("30.000"), "EUR", None, ["a", "b"], "1"),
            ("2", "#2", Decimal("12.500"), "EUR", None, ["a", "b"], "2"),
            ("3", "#3", Decimal("30.000"), "EUR", T0 + timedelta(days=1), ["a", "b"], None),
        ]
        lines = session.execute(select(Order.external_id, OrderLine.external_id, OrderLine.quantity, OrderLine.sku,
                                       Product.external_id, Variant.external_id)
                                .join(Order, Order.id == OrderLine.order_id)
                                .join(Product, Product.id == OrderLine.product_id)
                                .join(Variant, Variant.id == OrderLine.variant_id)
                                .order_by(OrderLine.external_id)).all()
        assert [tuple(r) for r in lines] == [("1", "11", 1, "S11", "p1", "v1"), ("1", "12", 2, "S12", "p2", "v2"),
                                             ("2", "21", 1, "S21", "p1", "v1")]
    before = [snapshot(database, m, m.id) for m in (Customer, Product, Variant, Order, OrderLine)]
    freeze_updated_at(database)
    with database.session() as session:
        again = sync.upsert_orders(session, store_id, orders)
    assert again == {"seen": 3, "orders": 0, "customers": 0, "products": 0, "variants": 0, "lines_written": 0,
                     "lines_deleted": 0}
    for model in (Customer, Product, Variant, Order):
        assert moved(database, model) == 0, model
    after = [snapshot(database, m, m.id) for m in (OrderLine,)]
    assert after == before[-1:]


def test_changed_order_updates_only_that_row_and_its_lines(database, store_id):
    first = [order(1, [line(11), line(12), line(13)]), order(2, [line(21)])]
    with database.session() as session:
        sync.upsert_orders(session, store_id, first)
    freeze_updated_at(database)
    with database.session() as session:
        line_ids = dict(session.execute(select(OrderLine.external_id, OrderLine.id)).all())
    changed = order(1, [line(11), line(12, qty=5, price="9.99"), line(14)], updated_at=T0 + timedelta(hours=1),
                    fulfillment_status="FULFILLED", delivered_at=T0 + timedelta(days=3))
    with database.session() as session:
        counts = sync.upsert_orders(session, store_id, [changed, first[1]])
    assert counts["orders"] == 1
    assert counts["lines_written"] == 2  # 12 changed, 14 new
    assert counts["lines_deleted"] == 1  # 13 gone
    assert moved(database, Order) == 1
    with database.session() as session:
        o1 = session.scalar(select(Order).where(Order.external_id == "1"))
        assert o1.fulfillment_status == "FULFILLED"
        assert o1.delivered_at == T0 + timedelta(days=3)
        rows = session.execute(select(OrderLine.external_id, OrderLine.id, OrderLine.quantity, OrderLine.price)
                               .where(OrderLine.order_id == o1.id).order_by(OrderLine.external_id)).all()
    assert [(r[0], r[2], r[3]) for r in rows] == [("11", 1, Decimal("10.000")), ("12", 5, Decimal("9.990")),
                                                 ("14", 1, Decimal("10.000"))]
    # Unchanged and changed lines keep their ids (updated in place, not re-created).
    assert rows[0][1] == line_ids["11"] and rows[1][1] == line_ids["12"]


def test_an_older_copy_never_overwrites_a_newer_one(database, store_id):
    newer = order(1, [line(11, qty=3)], updated_at=T0 + timedelta(hours=2), financial_status="REFUNDED")
    older = order(1, [line(11, qty=1), line(12)], updated_at=T0, financial_status="PAID")
    with database.session() as session:
        sync.upsert_orders(session, store_id, [newer])
    with database.session() as session:
        counts = sync.upsert_orders(session, store_id, [older])
    assert counts["orders"] == 0 and counts["lines_written"] == 0 and counts["lines_deleted"] == 0
    with database.session() as session:
        o = session.scalar(select(Order))
        assert o.financial_status == "REFUNDED"
        assert [(ln.external_id, ln.quantity) for ln in o.lines] == [("11", 3)]


def test_an_order_deleted_in_the_platform_is_not_re_added_by_a_late_copy(database, store_id):
    with database.session() as session:
        session.add(DeletedRecord(store_id=store_id, kind="order", external_id="2", deleted_at=T0))
    with database.session() as session:
        # A bulk file or page read before the deletion still holds order 2, beside a live order 1.
        counts = sync.upsert_orders(session, store_id, [order(1, [line(11)]), order(2, [line(21)])])
    assert counts["seen"] == 2 and counts["orders"] == 1 and counts["deleted_skipped"] == 1
    with database.session() as session:
        assert list(session.scalars(select(Order.external_id))) == ["1"]
        assert list(session.scalars(select(OrderLine.external_id))) == ["11"]
        # A batch of nothing but deleted orders writes nothing at all.
        counts = sync.upsert_orders(session, store_id, [order(2, [line(21)])])
        assert (counts["orders"], counts["lines_written"], counts["deleted_skipped"]) == (0, 0, 1)


def test_merchant_overrides_survive_connector_updates(database, store_id):
    products = [ProductRecord(external_id="p1", title="Coffee", handle="coffee", product_type="Food", vendor="V",
                              status="ACTIVE", updated_at=T0,
                              variants=(VariantRecord(external_id="v1", sku="C-1", title="1 kg",
                                                      price=Decimal("20")),))]
    with database.session() as session:
        assert sync.upsert_products(session, store_id, products) == 2
    with database.session() as session:
        session.execute(update(Product).values(consumable=True, days_of_supply=30, reminder_lead_days=5,
                                               learned_cycle_days=28.5, learned_cycle_samples=9))
        session.execute(update(Variant).values(days_of_supply=15))
    renamed = [ProductRecord(external_id="p1", title="Coffee beans", handle="coffee", product_type="Food",
                             vendor="V", status="ACTIVE", updated_at=T0 + timedelta(minutes=1),
                             variants=(VariantRecord(external_id="v1", sku="C-1", title="1 kg",
                                                     price=Decimal("21")),))]
    with database.session() as session:
        assert sync.upsert_products(session, store_id, renamed) == 2
        # Orders naming the product do not reset it either.
        sync.upsert_orders(session, store_id, [order(1, [line(11, product="p1", variant="v1")])])
    with database.session() as session:
        p = session.scalar(select(Product))
        assert (p.title, p.consumable, p.days_of_supply, p.reminder_lead_days, p.learned_cycle_days,
                p.learned_cycle_samples) == ("Coffee beans", True, 30, 5, 28.5, 9)
        v = session.scalar(select(Variant))
        assert (v.price, v.days_of_supply) == (Decimal("21.000"), 15)
    freeze_updated_at(database)
    with database.session() as session:
        assert sync.upsert_products(session, store_id, renamed) == 0
    assert moved(database, Product) == 0 and moved(database, Variant) == 0


def test_redacted_customer_is_never_resurrected(database, store_id):
    with database.session() as session:
        sync.upsert_customers(session, store_id, [customer(1), customer(2)], now=T0)
    with database.session() as session:
        session.execute(update(Customer).where(Customer.external_id == "1")
                        .values(email=None, first_name=None, locale=None, country=None, time_zone=None,
                                tags=[], redacted_at=T0))
    later = T0 + timedelta(days=1)
    with database.session() as session:
        assert sync.upsert_customers(session, store_id, [customer(1, updated_at=later),
                                                         customer(2, first_name="Zoe", updated_at=later)],
                                     now=later) == 1
        sync.upsert_orders(session, store_id, [order(5, [line(51)], cust=customer(1, updated_at=later))])
    with database.session() as session:
        c1 = session.scalar(select(Customer).where(Customer.external_id == "1"))
        assert (c1.email, c1.first_name, c1.locale, c1.country, c1.tags) == (None, None, None, None, [])
        c2 = session.scalar(select(Customer).where(Customer.external_id == "2"))
        assert c2.first_name == "Zoe"
        # The order still links to the (anonymous) customer row.
        assert session.scalar(select(Order.customer_id).where(Order.external_id == "5")) == c1.id


def test_embedded_customer_fills_blanks_but_does_not_erase(database, store_id):
    with database.session() as session:
        sync.upsert_customers(session, store_id, [customer(1, marketing_consent=True, marketing_consent_at=T0)],
                              now=T0)
        bare = CustomerRecord(external_id="1")
        counts = sync.upsert_orders(session, store_id, [order(1, [line(11)], cust=bare)])
    assert counts["customers"] == 0
    with database.session() as session:
        c = session.scalar(select(Customer))
        assert (c.email, c.first_name, c.marketing_consent, c.marketing_consent_at) == (
            "c1@example.com", "C1", True, T0)


def test_customer_without_contact_access_is_kept(database, store_id):
    """Protected customer data may come back null: the customer row exists, without contact."""
    with database.session() as session:
        assert sync.upsert_customers(session, store_id, [CustomerRecord(external_id="9", locale="fr",
                                                                        country="FR")], now=T0) == 1
    with database.session() as session:
        c = session.scalar(select(Customer))
        assert (c.external_id, c.email, c.first_name, c.locale, c.country) == ("9", None, None, "fr", "FR")


def test_amazon_style_lines_create_missing_catalog_rows(database, store_id):
    amazon = order("111-2223333-4444444", [line(1, product="B00ASIN", variant="SKU-1"),
                                           line(2, product=None, variant="SKU-2")], currency="USD")
    with database.session() as session:
        counts = sync.upsert_orders(session, store_id, [amazon])
    # A line without ASIN has no product to hang its SKU on: no catalog row keyed by the SKU as a product.
    assert (counts["products"], counts["variants"]) == (1, 1)
    with database.session() as session:
        pairs = session.execute(select(Variant.external_id, Product.external_id)
                                .join(Product, Product.id == Variant.product_id).order_by(Variant.external_id)).all()
        linked = session.execute(select(OrderLine.external_id, OrderLine.product_id.is_not(None),
                                        OrderLine.variant_id.is_not(None)).order_by(OrderLine.external_id)).all()
    assert [tuple(p) for p in pairs] == [("SKU-1", "B00ASIN")]
    assert [tuple(row) for row in linked] == [("1", True, True), ("2", False, False)]


def test_duplicate_records_in_one_batch_are_folded(database, store_id):
    with database.session() as session:
        counts = sync.upsert_orders(session, store_id, [order(1, [line(1)]), order(1, [line(1), line(2)])])
    assert counts["seen"] == 1 and counts["lines_written"] == 2
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(OrderLine)) == 2


def test_reviews_link_and_report_only_new_ids(database, store_id):
    with database.session() as session:
        sync.upsert_customers(session, store_id, [customer(1), customer(2)], now=T0)
        sync.upsert_products(session, store_id, [ProductRecord(external_id="p1", title="X", handle="x")])
        sync.upsert_orders(session, store_id, [order(7, [line(71)], cust=customer(1))])
    reviews = [ReviewRecord(source="judgeme", external_id="r1", rating=5, created_at=T0, title="Great",
                            body="Love it", language="de", reviewer_name="C1", reviewer_email="C1@Example.com",
                            product_external_id="p1", order_external_id="7"),
               ReviewRecord(source="judgeme", external_id="r2", rating=2, created_at=T0, product_handle="x",
                            reviewer_external_id="2")]
    with database.session() as session:
        new_ids = sync.upsert_reviews(session, store_id, reviews)
    assert len(new_ids) == 2
    with database.session() as session:
        session.execute(update(Review).where(Review.external_id == "r1")
                        .values(reply_body="Thanks!", reply_status="sent", replied_at=T0))
        rows = session.execute(select(Review.external_id, Customer.external_id, Product.external_id,
                                      Order.external_id)
                               .join(Customer, Customer.id == Review.customer_id)
                               .join(Product, Product.id == Review.product_id)
                               .outerjoin(Order, Order.id == Review.order_id).order_by(Review.external_id)).all()
    assert [tuple(r) for r in rows] == [("r1", "1", "p1", "7"), ("r2", "2", "p1", None)]
    edited = [ReviewRecord(source="judgeme", external_id="r1", rating=4, created_at=T0, title="Great",
                           body="Love it (edited)", language="de", reviewer_name="C1",
                           reviewer_email="c1@example.com", product_external_id="p1", order_external_id="7"),
              ReviewRecord(source="judgeme", external_id="r3", rating=1, created_at=T0)]
    with database.session() as session:
        new_ids = sync.upsert_reviews(session, store_id, edited)
        r3 = session.scalar(select(Review.id).where(Review.external_id == "r3"))
        r1 = session.scalar(select(Review).where(Review.external_id == "r1"))
        assert new_ids == [r3]
        assert (r1.rating, r1.body, r1.reply_body, r1.reply_status) == (4, "Love it (edited)", "Thanks!", "sent")
    with database.session() as session:
        assert sync.upsert_reviews(session, store_id, edited) == []


def test_sync_state_cursor_success_and_failure(database, store_id):
    with database.session() as session:
        state = sync.get_sync_state(session, store_id, "orders")
        assert (state.cursor, state.last_success_at, state.records_synced) == (None, None, 0)
        sync.mark_sync_started(session, store_id, "orders", now=T0, bulk_operation_id="gid://shopify/BulkOperation/1")
        sync.mark_sync_success(session, store_id, "orders", cursor="2026-01-10T09:25:00Z", now=T0, records=12)
    with database.session() as session:
        sync.mark_sync_failure(session, store_id, "orders", error="boom", now=T0 + timedelta(hours=1))
        sync.mark_sync_success(session, store_id, "customers", cursor=None, now=T0, records=3)
    with database.session() as session:
        rows = session.execute(select(SyncState.stream, SyncState.cursor, SyncState.last_success_at,
                                      SyncState.last_error, SyncState.last_error_at, SyncState.records_synced,
                                      SyncState.bulk_operation_id, SyncState.last_started_at)
                               .order_by(SyncState.stream)).all()
    assert [tuple(r) for r in rows] == [
        ("customers", None, T0, None, None, 3, None, None),
        ("orders", "2026-01-10T09:25:00Z", T0, "boom", T0 + timedelta(hours=1), 12, None, T0),
    ]


def test_upserts_are_per_store(database, store_id):
    with database.session() as session:
        other = Store(merchant_id=session.scalar(select(Merchant.id)), platform="shopify",
                      external_id="other.myshopify.com")
        session.add(other)
        session.flush()
        sync.upsert_orders(session, store_id, [order(1, [line(1)], cust=customer(1))])
        counts = sync.upsert_orders(session, other.id, [order(1, [line(1)], cust=customer(1))])
        assert counts["orders"] == 1 and counts["customers"] == 1 and counts["products"] == 1
        assert session.scalar(select(func.count()).select_from(Order)) == 2
