"""An evaluation keeps what the version's decisions would have cost on its window (the spec's KPIs that read
the prediction, missed positives, false alarms), so a sign-off request states the money at stake both ways

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('evaluations') as batch_op:
        batch_op.add_column(sa.Column('outcomes', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evaluations') as batch_op:
        batch_op.drop_column('outcomes')
