"""Service journey: cancel reasons, shop policies, ticket remedies, cancellation answers

orders.cancel_reason: Shopify's OrderCancelReason; store.contact_email and store.shop_policies: what the first-order
welcome tells (Shop.contactEmail, Shop.shopPolicies); ticket.remedy and a new ticket source (cancellation;
"delivery" came with 0010_delivery); cancellation_answer: why a customer cancelled. The survey's
post-resolution follow-ups become the complaint follow-through (flow ticket_followup): their rows and settings move.

Revision ID: 0013_service
Revises: 0012_replenish
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
import plugin.types


revision = '0013_service'
down_revision = '0012_replenish'
branch_labels = None
depends_on = None

OLD_SOURCES = "source IN ('review', 'survey', 'feedback', 'manual', 'delivery')"
NEW_SOURCES = "source IN ('review', 'survey', 'feedback', 'manual', 'delivery', 'cancellation')"
MOVED_SETTINGS = ("followup_days", "comeback_days", "comeback_discount_percent")


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('cancel_reason', sa.String(length=16), nullable=True))
        batch.create_index('ix_orders_store_created', ['store_id', 'created_at_remote'], unique=False)
        batch.create_index('ix_orders_store_cancelled', ['store_id', 'cancelled_at'], unique=False)
    with op.batch_alter_table('store') as batch:
        batch.add_column(sa.Column('contact_email', sa.String(length=320), nullable=True))
        batch.add_column(sa.Column('shop_policies', sa.JSON(), nullable=True))
    with op.batch_alter_table('ticket') as batch:
        batch.add_column(sa.Column('remedy', sa.String(length=16), nullable=True))
        batch.drop_constraint('source', type_='check')
        batch.create_check_constraint('source', NEW_SOURCES)
        batch.create_check_constraint('remedy', "remedy IS NULL OR remedy IN ('refund', 'replacement', "
                                                "'compensation', 'vip')")
        batch.create_index('ix_ticket_store_resolved', ['store_id', 'resolved_at'], unique=False)
    op.create_table('cancellation_answer',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('answered_at', plugin.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reason IN ('found_cheaper', 'ordered_by_mistake', 'delivery_too_slow', 'changed_mind', "
                       "'other')", name=op.f('ck_cancellation_answer_reason')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_cancellation_answer_customer_id_customer'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_cancellation_answer_message_id_message'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_cancellation_answer_order_id_orders'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_cancellation_answer_store_id_store'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_cancellation_answer_ticket_id_ticket'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cancellation_answer')),
    sa.UniqueConstraint('store_id', 'order_id', name=op.f('uq_cancellation_answer_store_id_order_id'))
    )
    op.create_index('ix_cancellation_answer_store_answered', 'cancellation_answer', ['store_id', 'answered_at'],
                    unique=False)
    op.create_index(op.f('ix_cancellation_answer_customer_id'), 'cancellation_answer', ['customer_id'], unique=False)
    _move_survey_followups()


def _move_survey_followups() -> None:
    """The survey's follow-up rows and settings become the complaint follow-through's (no ticket is asked twice)."""
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE message SET flow = 'ticket_followup' "
                         "WHERE flow = 'survey' AND step IN ('followup', 'comeback')"))
    bind.execute(sa.text("UPDATE template SET flow = 'ticket_followup' "
                         "WHERE flow = 'survey' AND step IN ('followup', 'comeback')"))
    flow_settings = sa.table('flow_settings', sa.column('id', sa.Integer), sa.column('store_id', sa.Integer),
                             sa.column('flow', sa.String), sa.column('enabled', sa.Boolean),
                             sa.column('settings', sa.JSON))
    rows = bind.execute(sa.select(flow_settings.c.id, flow_settings.c.store_id, flow_settings.c.settings)
                        .where(flow_settings.c.flow == 'survey')).all()
    for row_id, store_id, settings in rows:
        settings = settings or {}
        moved = {k: settings[k] for k in MOVED_SETTINGS if k in settings}
        if not moved:
            continue
        kept = {k: v for k, v in settings.items() if k not in MOVED_SETTINGS}
        bind.execute(flow_settings.update().where(flow_settings.c.id == row_id).values(settings=kept))
        bind.execute(flow_settings.insert().values(store_id=store_id, flow='ticket_followup', enabled=True,
                                                   settings=moved))


def downgrade() -> None:
    op.drop_index(op.f('ix_cancellation_answer_customer_id'), table_name='cancellation_answer')
    op.drop_index('ix_cancellation_answer_store_answered', table_name='cancellation_answer')
    op.drop_table('cancellation_answer')
    op.execute("DELETE FROM ticket WHERE source = 'cancellation'")
    with op.batch_alter_table('ticket') as batch:
        batch.drop_index('ix_ticket_store_resolved')
        batch.drop_constraint('remedy', type_='check')
        batch.drop_constraint('source', type_='check')
        batch.create_check_constraint('source', OLD_SOURCES)
        batch.drop_column('remedy')
    with op.batch_alter_table('store') as batch:
        batch.drop_column('shop_policies')
        batch.drop_column('contact_email')
    with op.batch_alter_table('orders') as batch:
        batch.drop_index('ix_orders_store_cancelled')
        batch.drop_index('ix_orders_store_created')
        batch.drop_column('cancel_reason')
    op.execute("UPDATE message SET flow = 'survey' WHERE flow = 'ticket_followup' AND step IN ('followup', 'comeback')")
