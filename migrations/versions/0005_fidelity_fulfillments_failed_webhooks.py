"""orders.fulfillments (the parcels behind delivered_at) and webhook_event.failed_at (events given up on)

Revision ID: 0005_fidelity
Revises: 0004_custdata
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0005_fidelity'
down_revision = '0004_custdata'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('fulfillments', sa.JSON(), nullable=True))
    with op.batch_alter_table('webhook_event') as batch:
        batch.add_column(sa.Column('failed_at', plugin.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_event') as batch:
        batch.drop_column('failed_at')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('fulfillments')
