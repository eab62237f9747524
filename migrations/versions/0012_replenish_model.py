"""Replenishment model: learned log-gap spread per product, first purchase and gap range per pair, MBG/NBD fit

product.learned_log_within_var / learned_log_between_var: the spread of log(days per unit) the planner shrinks a
customer's own gaps with; purchase_cycle.first_purchase_day, own_min_gap, own_max_gap: recency/frequency and the
reason shown; replenishment_fit: a store's fitted MBG/NBD parameters (the still-active probability).

Revision ID: 0012_replenish
Revises: 0011_stalls
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0012_replenish'
down_revision = '0011_stalls'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('product') as batch:
        batch.add_column(sa.Column('learned_log_within_var', sa.Double(), nullable=True))
        batch.add_column(sa.Column('learned_log_between_var', sa.Double(), nullable=True))
    with op.batch_alter_table('purchase_cycle') as batch:
        batch.add_column(sa.Column('first_purchase_day', sa.Double(), nullable=True))
        batch.add_column(sa.Column('own_min_gap', sa.Double(), nullable=True))
        batch.add_column(sa.Column('own_max_gap', sa.Double(), nullable=True))
    op.create_table('replenishment_fit',
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('r', sa.Double(), nullable=False),
    sa.Column('alpha', sa.Double(), nullable=False),
    sa.Column('a', sa.Double(), nullable=False),
    sa.Column('b', sa.Double(), nullable=False),
    sa.Column('pairs', sa.Integer(), nullable=False),
    sa.Column('log_likelihood', sa.Double(), nullable=False),
    sa.Column('fitted_at', plugin.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_replenishment_fit_store_id_store'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('store_id', name=op.f('pk_replenishment_fit'))
    )


def downgrade() -> None:
    op.drop_table('replenishment_fit')
    with op.batch_alter_table('purchase_cycle') as batch:
        batch.drop_column('own_max_gap')
        batch.drop_column('own_min_gap')
        batch.drop_column('first_purchase_day')
    with op.batch_alter_table('product') as batch:
        batch.drop_column('learned_log_between_var')
        batch.drop_column('learned_log_within_var')
