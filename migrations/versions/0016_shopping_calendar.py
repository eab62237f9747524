"""Shopping calendar: shopping_event, a store's edits of its calendar of shopping events

ix_customer_store_zone_country: the calendar flow groups customers by zone and country. shopping_event: per store, a shipped default event changed (disabled, renamed, other countries, segments or
discount, moved in one year) or the merchant's own event (plugin.shopping_calendar).

Revision ID: 0016_calendar
Revises: 0015_guides
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0016_calendar'
down_revision = '0015_guides'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_customer_store_zone_country', 'customer', ['store_id', 'time_zone', 'country'], unique=False)
    op.create_table('shopping_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=True),
    sa.Column('countries', sa.JSON(), nullable=True),
    sa.Column('segments', sa.JSON(), nullable=True),
    sa.Column('discount_percent', sa.Integer(), nullable=True),
    sa.Column('on_date', sa.Date(), nullable=True),
    sa.Column('yearly', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('created_at', plugin.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
              nullable=False),
    sa.Column('updated_at', plugin.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
              nullable=False),
    sa.CheckConstraint('discount_percent IS NULL OR discount_percent BETWEEN 0 AND 100',
                       name=op.f('ck_shopping_event_discount_percent')),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_shopping_event_store_id_store'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shopping_event')),
    sa.UniqueConstraint('store_id', 'key', name=op.f('uq_shopping_event_store_id_key'))
    )


def downgrade() -> None:
    op.drop_table('shopping_event')
    op.drop_index('ix_customer_store_zone_country', table_name='customer')
