"""Storm and daily digests

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

OLD_OUTBOX_STATES = ('pending', 'sent', 'failed')
NEW_OUTBOX_STATES = OLD_OUTBOX_STATES + ('digested',)


def _outbox_state(states: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*states, name='outboxstate', native_enum=False, create_constraint=True, length=20)


def upgrade() -> None:
    op.create_table('digests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('storm', 'daily', name='digestkind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('persona', sa.String(length=20), nullable=False),
    sa.Column('message_ref', sa.String(length=64), nullable=True),
    sa.Column('alert_ids', sa.JSON(), nullable=False),
    sa.Column('period_start', sa.DateTime(), nullable=True),
    sa.Column('period_end', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_digests')),
    sa.UniqueConstraint('kind', 'channel', 'period_end', name=op.f('uq_digests_kind'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('digest_thread_ref', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_alerts_digest_id'), ['digest_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_alerts_digest_id_digests'), 'digests', ['digest_id'], ['id'])

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('held', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_outbox_alert_id_alerts'), 'alerts', ['alert_id'], ['id'])
        batch_op.alter_column('state', existing_type=_outbox_state(OLD_OUTBOX_STATES),
                              type_=_outbox_state(NEW_OUTBOX_STATES), existing_nullable=False)

    with op.batch_alter_table('persona_channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery', sa.Enum('immediate', 'digest', name='channeldelivery', native_enum=False, create_constraint=True, length=20), server_default='immediate', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('persona_channels', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_persona_channels_channeldelivery'), type_='check')
        batch_op.drop_column('delivery')

    op.execute("UPDATE outbox SET state = 'sent' WHERE state = 'digested'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('state', existing_type=_outbox_state(NEW_OUTBOX_STATES),
                              type_=_outbox_state(OLD_OUTBOX_STATES), existing_nullable=False)
        batch_op.drop_constraint(batch_op.f('fk_outbox_alert_id_alerts'), type_='foreignkey')
        batch_op.drop_column('held')
        batch_op.drop_column('alert_id')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_alerts_digest_id_digests'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_alerts_digest_id'))
        batch_op.drop_column('digest_thread_ref')
        batch_op.drop_column('digest_id')

    op.drop_table('digests')
