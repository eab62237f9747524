"""store.reinstalled_at: the latest install that was not the shop's first (orders from before it are not messaged)

Revision ID: 0003_gating
Revises: 0002
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0003_gating'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('store') as batch:
        batch.add_column(sa.Column('reinstalled_at', plugin.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('store') as batch:
        batch.drop_column('reinstalled_at')
