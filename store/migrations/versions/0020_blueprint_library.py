"""Blueprints by risk tier: the blueprint library, automated and parallel steps with named people, and the
deploy policy (block, warn, allow) of a blueprint or a project

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'blueprint_library',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('tiers', sa.JSON(), nullable=False),
        sa.Column('policy', sa.String(length=10), nullable=False),
        sa.Column('spec', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_blueprint_library')),
        sa.UniqueConstraint('name', name=op.f('uq_blueprint_library_name')),
    )
    with op.batch_alter_table('blueprints') as batch_op:
        batch_op.add_column(sa.Column('library', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('by_tier', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('policy', sa.String(length=10), server_default='block', nullable=False))
    with op.batch_alter_table('blueprint_steps') as batch_op:
        batch_op.add_column(sa.Column('people', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('parallel', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('check', sa.JSON(), nullable=True))
    with op.batch_alter_table('projects') as batch_op:
        batch_op.add_column(sa.Column('deploy_policy', sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('projects') as batch_op:
        batch_op.drop_column('deploy_policy')
    with op.batch_alter_table('blueprint_steps') as batch_op:
        batch_op.drop_column('check')
        batch_op.drop_column('parallel')
        batch_op.drop_column('people')
    with op.batch_alter_table('blueprints') as batch_op:
        batch_op.drop_column('policy')
        batch_op.drop_column('by_tier')
        batch_op.drop_column('library')
    op.drop_table('blueprint_library')
