"""Work items and outbox rows carry the request id of the Slack request that caused them, so the worker's
logs of running and sending them can be joined to the app's

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('work_items', 'outbox'):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ('outbox', 'work_items'):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column('request_id')
