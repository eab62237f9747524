"""Growth: product stock (totalInventory, tracksInventory), product_recommendation, vip_member

product.total_inventory / tracks_inventory: Shopify's stock figures, so that recommendations never name a product
that is out of stock; product_recommendation: the daily item-to-item co-purchase pairs of each store; vip_member:
who is in the VIP segment since when, and whether Shopify carries their VIP tag.

Revision ID: 0009_growth
Revises: 0008_ops
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0009_growth'
down_revision = '0008_ops'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.add_column(sa.Column('birthday_changed_at', plugin.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('product') as batch:
        batch.add_column(sa.Column('total_inventory', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('tracks_inventory', sa.Boolean(), nullable=True))
    op.create_table('product_recommendation',
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recommended_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('co_customers', sa.Integer(), nullable=False),
    sa.Column('lift', sa.Double(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('computed_at', plugin.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_product_recommendation_store_id_store'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('product_id', 'recommended_id', name=op.f('pk_product_recommendation'))
    )
    op.create_index('ix_product_recommendation_store_rank', 'product_recommendation',
                    ['store_id', 'product_id', 'rank'], unique=False)
    op.create_table('vip_member',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('entered_at', plugin.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('left_at', plugin.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tagged', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=True),
    sa.Column('tag_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_vip_member_customer_id_customer'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_vip_member_store_id_store'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_vip_member'))
    )
    op.create_index('ix_vip_member_store_left', 'vip_member', ['store_id', 'left_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_vip_member_store_left', table_name='vip_member')
    op.drop_table('vip_member')
    op.drop_index('ix_product_recommendation_store_rank', table_name='product_recommendation')
    op.drop_table('product_recommendation')
    with op.batch_alter_table('customer') as batch:
        batch.drop_column('birthday_changed_at')
    with op.batch_alter_table('product') as batch:
        batch.drop_column('tracks_inventory')
        batch.drop_column('total_inventory')
