"""Projects and outbox rows belong to a Slack workspace (team id) when Flywheel is installed in several;
outbox rows for a workspace that uninstalled it are kept as `undeliverable`

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

OLD_OUTBOX_STATES = ('pending', 'sent', 'failed', 'digested')
NEW_OUTBOX_STATES = OLD_OUTBOX_STATES + ('undeliverable',)


def _outbox_state(states: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*states, name='outboxstate', native_enum=False, create_constraint=True, length=20)


def upgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_projects_team_id'), ['team_id'], unique=False)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_id', sa.String(length=32), nullable=True))
        batch_op.alter_column('state', existing_type=_outbox_state(OLD_OUTBOX_STATES),
                              type_=_outbox_state(NEW_OUTBOX_STATES), existing_nullable=False)


def downgrade() -> None:
    op.execute("UPDATE outbox SET state = 'failed' WHERE state = 'undeliverable'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('state', existing_type=_outbox_state(NEW_OUTBOX_STATES),
                              type_=_outbox_state(OLD_OUTBOX_STATES), existing_nullable=False)
        batch_op.drop_column('team_id')
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_projects_team_id'))
        batch_op.drop_column('team_id')
