"""Incremental stall detection: a next-check time per order and parcel, and what the last run ran under

stall_check: per order or parcel that can stall, the moment stall detection must look at it again; parcel
(store_id, updated_at): the parcels changed since the last run; delivery_stall_state: per store, a digest of the
thresholds, calendar and transit estimates the moments were computed under (a change recomputes them all) and the
high-water mark of changes.

Revision ID: 0014_stalls
Revises: 0013_service
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0014_stalls'
down_revision = '0013_service'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('parcel') as batch:
        batch.create_index('ix_parcel_store_changed', ['store_id', 'updated_at'], unique=False)
    op.create_table(
        'stall_check',
        sa.Column('kind', sa.String(length=1), nullable=False),
        sa.Column('subject_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False,
                  nullable=False),
        sa.Column('store_id', sa.Integer(), nullable=False),
        sa.Column('check_at', plugin.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_stall_check_store_id_store'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('kind', 'subject_id', name=op.f('pk_stall_check')),
    )
    with op.batch_alter_table('stall_check') as batch:
        batch.create_index('ix_stall_check_store_due', ['store_id', 'kind', 'check_at'], unique=False)
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
    op.drop_table('stall_check')
    with op.batch_alter_table('parcel') as batch:
        batch.drop_index('ix_parcel_store_changed')
