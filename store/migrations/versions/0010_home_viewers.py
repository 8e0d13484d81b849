"""Who has opened the App Home, so every process can have their homes published again after a change

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'home_viewers',
        sa.Column('slack_id', sa.String(length=64), nullable=False),
        sa.Column('opened_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('slack_id'),
    )


def downgrade() -> None:
    op.drop_table('home_viewers')
