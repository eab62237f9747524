"""Redactions that came before the customer was stored: tombstones, and erase what a backfill brought back

A customers/redact for a customer not stored yet used to leave no trace on the customer table, so a later
backfill or webhook stored their data again. Every such request now leaves an empty redacted row; this
migration does it for the requests already recorded, and erases the personal fields (and their messages'
address copies) of customers a sync brought back after their redaction. Nothing clears ``redacted_at``,
so a customer row without it that matches a recorded redaction is exactly such a case.

Revision ID: 0004_custdata
Revises: 0003_gating
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_custdata'
down_revision = '0003_gating'
branch_labels = None
depends_on = None

customer = sa.table('customer', sa.column('id'), sa.column('store_id'), sa.column('external_id'),
                    sa.column('email'), sa.column('first_name'), sa.column('locale'), sa.column('country'),
                    sa.column('time_zone'), sa.column('birthday'), sa.column('tags', sa.JSON),
                    sa.column('marketing_consent'), sa.column('marketing_consent_at'), sa.column('redacted_at'),
                    sa.column('created_at'), sa.column('updated_at'))
request = sa.table('compliance_request', sa.column('store_id'), sa.column('kind'),
                   sa.column('customer_external_id'), sa.column('requested_at'))
message = sa.table('message', sa.column('customer_id'), sa.column('status'), sa.column('handed_at'),
                   sa.column('skip_reason'), sa.column('claimed_by'), sa.column('to_address'), sa.column('subject'),
                   sa.column('payload', sa.JSON))


def _first_request(store_id, external_id):
    return (sa.select(sa.func.min(request.c.requested_at))
            .where(request.c.kind == 'customers/redact', request.c.store_id == store_id,
                   request.c.customer_external_id == external_id)
            .scalar_subquery())


def upgrade() -> None:
    came_back = sa.and_(customer.c.redacted_at.is_(None),
                        _first_request(customer.c.store_id, customer.c.external_id).is_not(None))
    ids = [row[0] for row in op.get_bind().execute(sa.select(customer.c.id).where(came_back))]
    if ids:
        unsent = sa.or_(message.c.status == 'scheduled',
                        sa.and_(message.c.status == 'sending', message.c.handed_at.is_(None)))
        op.execute(message.update().where(message.c.customer_id.in_(ids), unsent)
                   .values(status='cancelled', skip_reason='customer_redacted', claimed_by=None))
        op.execute(message.update().where(message.c.customer_id.in_(ids))
                   .values(to_address=None, subject=None, payload={}))
        op.execute(customer.update().where(customer.c.id.in_(ids)).values(
            email=None, first_name=None, locale=None, country=None, time_zone=None, birthday=None, tags=[],
            marketing_consent=False, marketing_consent_at=None,
            redacted_at=_first_request(customer.c.store_id, customer.c.external_id)))
    missing = (sa.select(request.c.store_id, request.c.customer_external_id, sa.literal([], sa.JSON),
                         sa.false(), sa.func.min(request.c.requested_at), sa.func.now(), sa.func.now())
               .where(request.c.kind == 'customers/redact', request.c.store_id.is_not(None),
                      request.c.customer_external_id.is_not(None),
                      ~sa.exists().where(customer.c.store_id == request.c.store_id,
                                         customer.c.external_id == request.c.customer_external_id))
               .group_by(request.c.store_id, request.c.customer_external_id))
    op.execute(customer.insert().from_select(
        ['store_id', 'external_id', 'tags', 'marketing_consent', 'redacted_at', 'created_at', 'updated_at'], missing))


def downgrade() -> None:
    # Erased data cannot come back; the tombstones stay (they are ordinary, redacted customer rows).
    pass
