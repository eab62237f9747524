"""Incremental stall detection: a next-check time per order and parcel, and what the last run ran under

orders.stall_check_at / parcel.stall_check_at: the moment stall detection must look at the row again (NULL: not
until it changes); parcel (store_id, updated_at): the parcels changed since the last run; delivery_stall_state: per
store, a digest of the thresholds, calendar and transit estimates the moments were computed under (a change
recomputes them all) and the high-water mark of changes.

Revision ID: 0014_i13_stalls
Revises: 0013_service
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0014_i13_stalls'
down_revision = '0013_service'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('stall_check_at', plugin.types.UTCDateTime(), nullable=True))
        batch.create_index('ix_orders_store_stall_check', ['store_id', 'stall_check_at', 'created_at_remote'],
                           unique=False)
    with op.batch_alter_table('parcel') as batch:
        batch.add_column(sa.Column('stall_check_at', plugin.types.UTCDateTime(), nullable=True))
        batch.create_index('ix_parcel_store_stall_check', ['store_id', 'stall_check_at', 'shipped_at'],
                           unique=False)
        batch.create_index('ix_parcel_store_changed', ['store_id', 'updated_at'], unique=False)
    op.create_table(
        'delivery_stall_state',
        sa.Column('store_id', sa.Integer(), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('checked_at', plugin.types.UTCDateTime(), nullable=False),
        sa.Column('changed_since', plugin.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_delivery_stall_state_store_id_store'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('store_id', name=op.f('pk_delivery_stall_state')),
    )


def downgrade() -> None:
    op.drop_table('delivery_stall_state')
    with op.batch_alter_table('parcel') as batch:
        batch.drop_index('ix_parcel_store_changed')
        batch.drop_index('ix_parcel_store_stall_check')
        batch.drop_column('stall_check_at')
    with op.batch_alter_table('orders') as batch:
        batch.drop_index('ix_orders_store_stall_check')
        batch.drop_column('stall_check_at')
