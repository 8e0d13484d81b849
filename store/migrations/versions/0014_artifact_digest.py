"""The SHA-256 of each version's artifact, recorded at registration: the worker loads a model only when
the file still has these bytes. Versions registered before have none, and are refused until re-registered

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('model_versions') as batch_op:
        batch_op.add_column(sa.Column('artifact_sha256', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('model_versions') as batch_op:
        batch_op.drop_column('artifact_sha256')
