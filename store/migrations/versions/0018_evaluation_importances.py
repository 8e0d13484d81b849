"""An evaluation keeps the version's permutation importances on its window (jobs.explain), so the comparison
and the model page say which features each version relies on

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('evaluations') as batch_op:
        batch_op.add_column(sa.Column('importances', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evaluations') as batch_op:
        batch_op.drop_column('importances')
