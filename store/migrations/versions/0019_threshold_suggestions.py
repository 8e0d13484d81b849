"""Threshold suggestions from noise feedback, and the overrides accepted from them

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'threshold_suggestions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('model_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('drift', 'performance', 'kpi', 'data_quality', name='checkkind', native_enum=False, create_constraint=True, length=20), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('current', sa.Float(), nullable=False),
        sa.Column('proposed', sa.Float(), nullable=False),
        sa.Column('state', sa.Enum('open', 'accepted', 'dismissed', 'adopted', 'replaced', name='suggestionstate', native_enum=False, create_constraint=True, length=20), nullable=False),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('message_ref', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('decided_by', sa.String(length=32), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_threshold_suggestions_model_id_models')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_threshold_suggestions')),
    )
    op.create_index(op.f('ix_threshold_suggestions_model_id'), 'threshold_suggestions', ['model_id'])
    op.create_index('uq_threshold_suggestions_one_open', 'threshold_suggestions', ['model_id', 'kind', 'subject'],
                    unique=True, sqlite_where=sa.text("state = 'open'"), postgresql_where=sa.text("state = 'open'"))


def downgrade() -> None:
    op.drop_index('uq_threshold_suggestions_one_open', table_name='threshold_suggestions')
    op.drop_index(op.f('ix_threshold_suggestions_model_id'), table_name='threshold_suggestions')
    op.drop_table('threshold_suggestions')
