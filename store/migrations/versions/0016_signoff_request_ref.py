"""A version remembers where its sign-off request was posted, so the request can be settled in place
(deployed, rejected, superseded) and approvers pinged in its thread instead of a new post; an alert
remembers who acknowledged it and when, so a repeated Acknowledge is answered without another edit

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('model_versions') as batch_op:
        batch_op.add_column(sa.Column('signoff_ref', sa.String(length=64), nullable=True))
    with op.batch_alter_table('alerts') as batch_op:
        batch_op.add_column(sa.Column('acknowledged_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts') as batch_op:
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('acknowledged_by')
    with op.batch_alter_table('model_versions') as batch_op:
        batch_op.drop_column('signoff_ref')
