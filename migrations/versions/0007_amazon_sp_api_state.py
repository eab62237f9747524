"""Amazon: orders.latest_ship_at, sync_rejection, rate_bucket, lwa_access_token

orders.latest_ship_at: the ship-by bound that estimates the solicitation window of orders without a deliver-by
window; sync_rejection: remote records a sync could not read; rate_bucket and lwa_access_token: SP-API token
buckets and encrypted access tokens shared by every run and process.

Revision ID: 0007_amazon
Revises: 0006_branding
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0007_amazon'
down_revision = '0006_branding'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('latest_ship_at', plugin.types.UTCDateTime(timezone=True), nullable=True))
    op.create_table('sync_rejection',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('first_seen_at', plugin.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', plugin.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('times_seen', sa.Integer(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_sync_rejection_store_id_store'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_rejection')),
    sa.UniqueConstraint('store_id', 'stream', 'external_id', name=op.f('uq_sync_rejection_store_id_stream_external_id'))
    )
    op.create_table('rate_bucket',
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('operation', sa.String(length=128), nullable=False),
    sa.Column('tokens', sa.Double(), nullable=False),
    sa.Column('rate', sa.Double(), nullable=False),
    sa.Column('burst', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_rate_bucket_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('store_id', 'operation', name=op.f('pk_rate_bucket'))
    )
    op.create_table('lwa_access_token',
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('cache_key', sa.String(length=128), nullable=False),
    sa.Column('token_enc', sa.LargeBinary(), nullable=False),
    sa.Column('expires_at', plugin.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_lwa_access_token_store_id_store'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('store_id', name=op.f('pk_lwa_access_token'))
    )


def downgrade() -> None:
    op.drop_table('lwa_access_token')
    op.drop_table('rate_bucket')
    op.drop_table('sync_rejection')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('latest_ship_at')
