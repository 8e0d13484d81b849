"""Slack requests claimed before they act, so a retry or a repeated payload has one effect

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'slack_requests',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_slack_requests')),
    )
    op.create_index(op.f('ix_slack_requests_received_at'), 'slack_requests', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_slack_requests_received_at'), table_name='slack_requests')
    op.drop_table('slack_requests')
