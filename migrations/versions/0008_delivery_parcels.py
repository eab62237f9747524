"""Delivery: parcel, parcel_event, parcel_notice, delivery_optout; ticket source "delivery"

parcel: one Shopify fulfilment with its tracking and milestones; parcel_event: the carrier's FulfillmentEvents,
once per event id; parcel_notice: the milestones a customer was told of (once per parcel and milestone);
delivery_optout: addresses that turned delivery updates off; ticket.source gains "delivery"; store.refund_policy.
The parcels replace orders.fulfillments (the JSON list 0005 added): each entry becomes a parcel row, then the column
goes, so an order's parcels are kept in one place.

Revision ID: 0008_delivery
Revises: 0007_amazon
Create Date: 2026-12-02
"""
import json
from datetime import datetime, UTC

from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0008_delivery'
down_revision = '0007_amazon'
branch_labels = None
depends_on = None


def _stamp(value):
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _move_fulfillments_to_parcels() -> None:
    """Write one parcel per entry of every order's fulfillments JSON (ids as 0005 stored them: numeric)."""
    bind = op.get_bind()
    orders = sa.table('orders', sa.column('id'), sa.column('store_id'), sa.column('fulfillments', sa.JSON()))
    parcel = sa.table('parcel', sa.column('store_id'), sa.column('order_id'), sa.column('fulfillment_gid'),
                      sa.column('fulfillment_status'), sa.column('shipped_at', plugin.types.UTCDateTime()),
                      sa.column('delivered_at', plugin.types.UTCDateTime()))
    statuses = {'PENDING', 'OPEN', 'SUCCESS', 'CANCELLED', 'ERROR', 'FAILURE'}
    rows, seen = [], set()
    for order_id, store_id, value in bind.execute(sa.select(orders.c.id, orders.c.store_id, orders.c.fulfillments)
                                                  .where(orders.c.fulfillments.is_not(None))):
        items = json.loads(value) if isinstance(value, str) else value
        for item in items or ():
            gid = f"gid://shopify/Fulfillment/{item['id']}"
            if (store_id, gid) in seen:
                continue
            seen.add((store_id, gid))
            rows.append({'store_id': store_id, 'order_id': order_id, 'fulfillment_gid': gid,
                         'fulfillment_status': item['status'] if item.get('status') in statuses else 'SUCCESS',
                         'shipped_at': _stamp(item.get('created_at')), 'delivered_at': _stamp(item.get('delivered_at'))})
    for start in range(0, len(rows), 1000):
        bind.execute(parcel.insert(), rows[start:start + 1000])


def _parcels_back_to_fulfillments() -> None:
    bind = op.get_bind()
    orders = sa.table('orders', sa.column('id'), sa.column('fulfillments', sa.JSON()))
    parcel = sa.table('parcel', sa.column('order_id'), sa.column('fulfillment_gid'), sa.column('fulfillment_status'),
                      sa.column('shipped_at', plugin.types.UTCDateTime()),
                      sa.column('delivered_at', plugin.types.UTCDateTime()))
    by_order = {}
    for order_id, gid, status, shipped, delivered in bind.execute(sa.select(
            parcel.c.order_id, parcel.c.fulfillment_gid, parcel.c.fulfillment_status, parcel.c.shipped_at,
            parcel.c.delivered_at)):
        by_order.setdefault(order_id, []).append({
            'id': gid.rsplit('/', 1)[-1], 'status': status,
            'created_at': shipped.isoformat() if shipped else None,
            'delivered_at': delivered.isoformat() if delivered else None})
    for order_id, items in by_order.items():
        items.sort(key=lambda f: (len(f['id']), f['id']))
        bind.execute(orders.update().where(orders.c.id == order_id).values(fulfillments=items))


_OLD_SOURCES = "source IN ('review', 'survey', 'feedback', 'manual')"
_NEW_SOURCES = "source IN ('review', 'survey', 'feedback', 'manual', 'delivery')"


def _ticket_sources(check: str) -> None:
    with op.batch_alter_table('ticket') as batch:
        batch.drop_constraint(op.f('ck_ticket_source'), type_='check')
        batch.create_check_constraint('source', check)


def upgrade() -> None:
    _ticket_sources(_NEW_SOURCES)
    with op.batch_alter_table('store') as batch:
        batch.add_column(sa.Column('refund_policy', sa.JSON(), nullable=True))
    op.create_table('delivery_optout',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('created_at', plugin.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_delivery_optout_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_optout')),
    sa.UniqueConstraint('store_id', 'email', name=op.f('uq_delivery_optout_store_id_email'))
    )
    op.create_table('parcel',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fulfillment_gid', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=True),
    sa.Column('fulfillment_status', sa.String(length=16), server_default='SUCCESS', nullable=False),
    sa.Column('status', sa.String(length=24), nullable=True),
    sa.Column('tracking_company', sa.String(length=255), nullable=True),
    sa.Column('tracking_number', sa.String(length=255), nullable=True),
    sa.Column('tracking_url', sa.String(length=2048), nullable=True),
    sa.Column('estimated_delivery_at', plugin.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('shipped_at', plugin.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_event_at', plugin.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', plugin.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('remote_updated_at', plugin.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('events_synced_at', plugin.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', plugin.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', plugin.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("fulfillment_status IN ('PENDING', 'OPEN', 'SUCCESS', 'CANCELLED', 'ERROR', 'FAILURE')", name=op.f('ck_parcel_fulfillment_status')),
    sa.CheckConstraint("status IS NULL OR status IN ('LABEL_PURCHASED', 'LABEL_PRINTED', 'READY_FOR_PICKUP', 'CONFIRMED', 'IN_TRANSIT', 'OUT_FOR_DELIVERY', 'ATTEMPTED_DELIVERY', 'DELAYED', 'DELIVERED', 'FAILURE')", name=op.f('ck_parcel_status')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_parcel_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_parcel_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parcel')),
    sa.UniqueConstraint('store_id', 'fulfillment_gid', name=op.f('uq_parcel_store_id_fulfillment_gid'))
    )
    with op.batch_alter_table('parcel', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_parcel_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_parcel_store_delivered_last_event', ['store_id', 'delivered_at', 'last_event_at'], unique=False)

    op.create_table('parcel_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('parcel_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_gid', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('happened_at', plugin.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('estimated_delivery_at', plugin.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('city', sa.String(length=255), nullable=True),
    sa.Column('province', sa.String(length=255), nullable=True),
    sa.Column('country', sa.String(length=255), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('created_at', plugin.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("status IN ('LABEL_PURCHASED', 'LABEL_PRINTED', 'READY_FOR_PICKUP', 'CONFIRMED', 'IN_TRANSIT', 'OUT_FOR_DELIVERY', 'ATTEMPTED_DELIVERY', 'DELAYED', 'DELIVERED', 'FAILURE')", name=op.f('ck_parcel_event_status')),
    sa.ForeignKeyConstraint(['parcel_id'], ['parcel.id'], name=op.f('fk_parcel_event_parcel_id_parcel'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_parcel_event_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parcel_event')),
    sa.UniqueConstraint('store_id', 'event_gid', name=op.f('uq_parcel_event_store_id_event_gid'))
    )
    with op.batch_alter_table('parcel_event', schema=None) as batch_op:
        batch_op.create_index('ix_parcel_event_parcel_happened', ['parcel_id', 'happened_at'], unique=False)

    op.create_table('parcel_notice',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('parcel_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('milestone', sa.String(length=24), nullable=False),
    sa.Column('message_key', sa.String(length=255), nullable=True),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', plugin.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("milestone IN ('SHIPPED', 'LABEL_PURCHASED', 'LABEL_PRINTED', 'READY_FOR_PICKUP', 'CONFIRMED', 'IN_TRANSIT', 'OUT_FOR_DELIVERY', 'ATTEMPTED_DELIVERY', 'DELAYED', 'DELIVERED', 'FAILURE')", name=op.f('ck_parcel_notice_milestone')),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_parcel_notice_message_id_message'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parcel_id'], ['parcel.id'], name=op.f('fk_parcel_notice_parcel_id_parcel'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_parcel_notice_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parcel_notice')),
    sa.UniqueConstraint('parcel_id', 'milestone', name=op.f('uq_parcel_notice_parcel_id_milestone'))
    )
    with op.batch_alter_table('parcel_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_parcel_notice_message_id'), ['message_id'], unique=False)
    _move_fulfillments_to_parcels()
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('fulfillments')


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('fulfillments', sa.JSON(), nullable=True))
    _parcels_back_to_fulfillments()
    op.execute("DELETE FROM ticket WHERE source = 'delivery'")
    _ticket_sources(_OLD_SOURCES)
    with op.batch_alter_table('store') as batch:
        batch.drop_column('refund_policy')
    with op.batch_alter_table('parcel_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_parcel_notice_message_id'))

    op.drop_table('parcel_notice')
    with op.batch_alter_table('parcel_event', schema=None) as batch_op:
        batch_op.drop_index('ix_parcel_event_parcel_happened')

    op.drop_table('parcel_event')
    with op.batch_alter_table('parcel', schema=None) as batch_op:
        batch_op.drop_index('ix_parcel_store_delivered_last_event')
        batch_op.drop_index(batch_op.f('ix_parcel_order_id'))

    op.drop_table('parcel')
    op.drop_table('delivery_optout')
