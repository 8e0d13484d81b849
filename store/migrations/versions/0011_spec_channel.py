"""The channel a project's spec named for each persona when last applied, so `flywheel apply` changes a
channel only when the spec changed it, and a channel chosen in Slack survives re-applying the spec

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('persona_channels') as batch_op:
        batch_op.add_column(sa.Column('spec_channel', sa.String(length=64), nullable=True))
    # Before this, every channel was the spec's or overwritten by the next apply: take each as the spec's.
    op.execute("UPDATE persona_channels SET spec_channel = channel")


def downgrade() -> None:
    with op.batch_alter_table('persona_channels') as batch_op:
        batch_op.drop_column('spec_channel')
