"""The audit head remembers its latest event that changed something (not a command merely typed)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('changed_seq', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE audit_head SET changed_seq = seq")


def downgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('changed_seq')
