"""metric_counter: operator counters (job runs and durations, marketplace API calls) shared by every process

Revision ID: 0008_ops
Revises: 0007_amazon
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_ops'
down_revision = '0007_amazon'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('metric_counter',
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('labels', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('metric', 'labels', name=op.f('pk_metric_counter'))
    )


def downgrade() -> None:
    op.drop_table('metric_counter')
