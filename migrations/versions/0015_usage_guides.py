"""Usage guides and care tips: the merchant's content blocks per product or product type, in many languages

guide_block: what the usage_guide flow sends N days after delivery to a customer receiving that product for the
first time (plugin.flows.usage_guide); texts per locale, image URLs and a video link shared by all languages.

Revision ID: 0015_guides
Revises: 0014_stalls
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0015_guides'
down_revision = '0014_stalls'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('guide_block',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('target_kind', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('texts', sa.JSON(), nullable=False),
    sa.Column('image_urls', sa.JSON(), nullable=False),
    sa.Column('video_url', sa.String(length=2048), nullable=True),
    sa.Column('days_after_delivery', sa.Double(), server_default='2', nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('starter', sa.String(length=32), nullable=True),
    sa.Column('created_at', plugin.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
              nullable=False),
    sa.Column('updated_at', plugin.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
              nullable=False),
    sa.CheckConstraint("target_kind IN ('product', 'product_type')", name=op.f('ck_guide_block_target_kind')),
    sa.CheckConstraint('days_after_delivery >= 0', name=op.f('ck_guide_block_days_after_delivery')),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_guide_block_store_id_store'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guide_block'))
    )
    op.create_index('ix_guide_block_store_target', 'guide_block', ['store_id', 'target_kind', 'target'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_guide_block_store_target', table_name='guide_block')
    op.drop_table('guide_block')
