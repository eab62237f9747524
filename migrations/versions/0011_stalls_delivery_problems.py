"""Stalls: delivery_problem (one row per order or parcel and problem kind, with its ticket); transit_estimate;
an index of orders by fulfilment and date (unfulfilled orders of the last weeks)

Revision ID: 0011_stalls
Revises: 0010_delivery
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = "0011_stalls"
down_revision = "0010_delivery"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_PROBLEMS = ("problem IN ('unfulfilled', 'no_scan', 'lost', 'past_estimate', 'attempted', 'failed', "
             "'amazon_late_ship', 'amazon_late_delivery')")


def upgrade() -> None:
    op.create_table('delivery_problem',
    sa.Column('id', _BIG, nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('problem', sa.String(length=24), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('order_id', _BIG, nullable=False),
    sa.Column('parcel_id', _BIG, nullable=True),
    sa.Column('ticket_id', _BIG, nullable=True),
    sa.Column('detected_at', plugin.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_PROBLEMS, name=op.f('ck_delivery_problem_problem')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_delivery_problem_order_id_orders'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parcel_id'], ['parcel.id'], name=op.f('fk_delivery_problem_parcel_id_parcel'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_delivery_problem_store_id_store'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_delivery_problem_ticket_id_ticket'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_problem')),
    sa.UniqueConstraint('store_id', 'problem', 'subject', name=op.f('uq_delivery_problem_store_id_problem_subject')),
    sa.UniqueConstraint('ticket_id', name=op.f('uq_delivery_problem_ticket_id'))
    )
    with op.batch_alter_table('delivery_problem', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_problem_store_detected', ['store_id', 'detected_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_problem_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_problem_parcel_id'), ['parcel_id'], unique=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_store_fulfilled_created', ['store_id', 'fulfilled_at', 'created_at_remote'],
                              unique=False)
    op.create_table('transit_estimate',
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('carrier', sa.String(length=255), nullable=False),
    sa.Column('median_days', sa.Double(), nullable=False),
    sa.Column('p90_days', sa.Double(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('computed_at', plugin.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_transit_estimate_store_id_store'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('store_id', 'country', 'carrier', name=op.f('pk_transit_estimate'))
    )


def downgrade() -> None:
    op.drop_table('transit_estimate')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_store_fulfilled_created')
    with op.batch_alter_table('delivery_problem', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_problem_parcel_id'))
        batch_op.drop_index(batch_op.f('ix_delivery_problem_order_id'))
        batch_op.drop_index('ix_delivery_problem_store_detected')
    op.drop_table('delivery_problem')
