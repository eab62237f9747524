"""Collections: product_collection (a product's membership of the store's collections) and guide blocks per collection

Revision ID: 0018_collections
Revises: 0017_plans
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0018_collections'
down_revision = '0017_plans'
branch_labels = None
depends_on = None

OLD_TARGETS = "target_kind IN ('product', 'product_type')"
NEW_TARGETS = "target_kind IN ('product', 'collection', 'product_type')"


def upgrade() -> None:
    op.create_table('product_collection',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('collection_external_id', sa.String(length=255), nullable=False),
    sa.Column('collection_title', sa.String(length=255), nullable=False),
    sa.Column('collection_handle', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_product_collection_product_id_product'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_product_collection_store_id_store'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_collection')),
    sa.UniqueConstraint('product_id', 'collection_external_id',
                        name=op.f('uq_product_collection_product_id_collection_external_id'))
    )
    op.create_index('ix_product_collection_store_collection', 'product_collection',
                    ['store_id', 'collection_external_id'], unique=False)
    with op.batch_alter_table('guide_block') as batch:
        batch.drop_constraint('target_kind', type_='check')
        batch.create_check_constraint('target_kind', NEW_TARGETS)


def downgrade() -> None:
    op.execute("DELETE FROM guide_block WHERE target_kind = 'collection'")
    with op.batch_alter_table('guide_block') as batch:
        batch.drop_constraint('target_kind', type_='check')
        batch.create_check_constraint('target_kind', OLD_TARGETS)
    op.drop_index('ix_product_collection_store_collection', table_name='product_collection')
    op.drop_table('product_collection')
