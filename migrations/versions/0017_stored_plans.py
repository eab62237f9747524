"""Stored replenishment plans: each customer x product pair's reminder day, run-out, probability and reason inputs

purchase_cycle.plan_*, run_out_day, remind_day, plan_probability, due_day (indexed with the store): the hourly run
reads only the pairs whose day has come instead of evaluating the model for every pair; product.plan_inputs: the
days of supply and lead days the stored plans used, so a merchant's change replans that product.

Revision ID: 0017_plans
Revises: 0016_calendar
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0017_plans'
down_revision = '0016_calendar'
branch_labels = None
depends_on = None

_DOUBLES = ('plan_cycle_days', 'plan_mu', 'plan_sd', 'plan_lead_days', 'plan_learned')
_LATER = ('run_out_day', 'remind_day', 'plan_probability', 'due_day')


def upgrade() -> None:
    with op.batch_alter_table('product') as batch:
        batch.add_column(sa.Column('plan_inputs', sa.String(length=64), nullable=True))
    with op.batch_alter_table('purchase_cycle') as batch:
        for name in _DOUBLES:
            batch.add_column(sa.Column(name, sa.Double(), nullable=True))
        batch.add_column(sa.Column('plan_supply', sa.Integer(), nullable=True))
        for name in _LATER:
            batch.add_column(sa.Column(name, sa.Double(), nullable=True))
        batch.create_index('ix_purchase_cycle_store_due', ['store_id', 'due_day'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('purchase_cycle') as batch:
        batch.drop_index('ix_purchase_cycle_store_due')
        for name in (*_LATER, 'plan_supply', *_DOUBLES):
            batch.drop_column(name)
    with op.batch_alter_table('product') as batch:
        batch.drop_column('plan_inputs')
