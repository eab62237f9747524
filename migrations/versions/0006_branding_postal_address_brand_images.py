"""store.postal_address (CAN-SPAM), the merchant's email brand (logo, accent colour, footer), product images

Revision ID: 0006_branding
Revises: 0005_fidelity
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_branding'
down_revision = '0005_fidelity'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('store') as batch:
        batch.add_column(sa.Column('postal_address', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('postal_address_edited', sa.Boolean(), server_default='0', nullable=False))
    with op.batch_alter_table('merchant') as batch:
        batch.add_column(sa.Column('logo_url', sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column('accent_color', sa.String(length=7), nullable=True))
        batch.add_column(sa.Column('email_footer', sa.String(length=500), nullable=True))
    with op.batch_alter_table('product') as batch:
        batch.add_column(sa.Column('image_url', sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column('image_alt', sa.String(length=512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('product') as batch:
        batch.drop_column('image_alt')
        batch.drop_column('image_url')
    with op.batch_alter_table('merchant') as batch:
        batch.drop_column('email_footer')
        batch.drop_column('accent_color')
        batch.drop_column('logo_url')
    with op.batch_alter_table('store') as batch:
        batch.drop_column('postal_address_edited')
        batch.drop_column('postal_address')
