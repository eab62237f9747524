"""Delivery problems: resolved_at, and one unresolved problem per subject and kind (a parcel can stall again)

Revision ID: 0019_restall
Revises: 0018_collections
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

import plugin.types


revision = '0019_restall'
down_revision = '0018_collections'
branch_labels = None
depends_on = None

UNRESOLVED = sa.text("resolved_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table('delivery_problem') as batch:
        batch.add_column(sa.Column('resolved_at', plugin.types.UTCDateTime(timezone=True), nullable=True))
        batch.drop_constraint('uq_delivery_problem_store_id_problem_subject', type_='unique')
    # Problems whose ticket Aftercare resolved because the cause went away are resolved then; a ticket the merchant
    # closed keeps its problem unresolved (the cause may still hold: a new ticket every hour would follow).
    op.execute("UPDATE delivery_problem SET resolved_at = (SELECT ticket.resolved_at FROM ticket "
               "WHERE ticket.id = delivery_problem.ticket_id) "
               "WHERE EXISTS (SELECT 1 FROM ticket t WHERE t.id = delivery_problem.ticket_id "
               "AND t.status <> 'open' AND t.resolution LIKE 'Resolved automatically:%')")
    # The next run of every store reads everything, as a store's first run does: a problem the merchant closed whose
    # cause went since, and a resolved one whose parcel stalled again (its moment passed, so no next check was kept
    # for it), are seen though their rows do not change again.
    op.execute("DELETE FROM delivery_stall_state")
    op.create_index('ux_delivery_problem_unresolved', 'delivery_problem', ['store_id', 'problem', 'subject'],
                    unique=True, sqlite_where=UNRESOLVED, postgresql_where=UNRESOLVED)


def downgrade() -> None:
    op.drop_index('ux_delivery_problem_unresolved', table_name='delivery_problem')
    # Only one row per subject and kind may stay: the latest.
    op.execute("DELETE FROM delivery_problem WHERE id NOT IN (SELECT max(id) FROM delivery_problem "
               "GROUP BY store_id, problem, subject)")
    with op.batch_alter_table('delivery_problem') as batch:
        batch.create_unique_constraint('uq_delivery_problem_store_id_problem_subject',
                                       ['store_id', 'problem', 'subject'])
        batch.drop_column('resolved_at')
