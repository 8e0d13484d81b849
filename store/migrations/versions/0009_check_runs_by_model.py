"""An index to find a model's latest check run, so a cached status stays valid while other models are checked

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_check_runs_model_latest', 'check_runs', ['model_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_check_runs_model_latest', table_name='check_runs')
