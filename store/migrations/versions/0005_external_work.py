"""Retrain and deploy backends (external runs, callbacks)

Work items gain the state `dispatched` (an external trainer has the run; it stays live until the
trainer calls back), so the state's CHECK constraint and the one-live-item index both change.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_OLD_STATES = ('queued', 'running', 'done', 'failed')
_NEW_STATES = ('queued', 'running', 'dispatched', 'done', 'failed')
_OLD_LIVE = "state IN ('queued', 'running')"
_NEW_LIVE = "state IN ('queued', 'running', 'dispatched')"


def _states(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name='workstate', native_enum=False, create_constraint=True, length=20)


def _change(old_states, new_states, old_live: str, new_live: str) -> None:
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_index('uq_work_items_one_live', sqlite_where=sa.text(old_live),
                            postgresql_where=sa.text(old_live))
        batch_op.alter_column('state', existing_type=_states(old_states), type_=_states(new_states),
                              existing_nullable=False)
        batch_op.create_index('uq_work_items_one_live', ['model_id', 'kind'], unique=True,
                              sqlite_where=sa.text(new_live), postgresql_where=sa.text(new_live))


def upgrade() -> None:
    _change(_OLD_STATES, _NEW_STATES, _OLD_LIVE, _NEW_LIVE)


def downgrade() -> None:
    # Items still waiting for a trainer can't be represented before 0005: they count as failed.
    op.execute("UPDATE work_items SET state = 'failed', error = 'waiting for a trainer when Flywheel was "
               "downgraded' WHERE state = 'dispatched'")
    _change(_NEW_STATES, _OLD_STATES, _NEW_LIVE, _OLD_LIVE)
