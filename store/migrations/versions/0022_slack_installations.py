"""Slack installations for OAuth v2: slack_sdk's bots, installations and OAuth states tables, the token
columns wide enough for their encrypted form (store/installations.py)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

TOKEN = sa.String(length=1000)


def _workspace() -> list[sa.Column]:
    return [sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
            sa.Column('client_id', sa.String(length=32), nullable=False),
            sa.Column('app_id', sa.String(length=32), nullable=False),
            sa.Column('enterprise_id', sa.String(length=32)),
            sa.Column('enterprise_name', sa.String(length=200))]


def _bot() -> list[sa.Column]:
    return [sa.Column('team_id', sa.String(length=32)),
            sa.Column('team_name', sa.String(length=200)),
            sa.Column('bot_token', TOKEN),
            sa.Column('bot_id', sa.String(length=32)),
            sa.Column('bot_user_id', sa.String(length=32)),
            sa.Column('bot_scopes', sa.String(length=1000)),
            sa.Column('bot_refresh_token', TOKEN),
            sa.Column('bot_token_expires_at', sa.DateTime())]


def upgrade() -> None:
    op.create_table(
        'slack_bots', *_workspace(), *_bot(),
        sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
        sa.Column('installed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_bots')))
    op.create_index('slack_bots_idx', 'slack_bots', ['client_id', 'enterprise_id', 'team_id', 'installed_at'])
    op.create_table(
        'slack_installations', *_workspace(),
        sa.Column('enterprise_url', sa.String(length=200)), *_bot(),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('user_token', TOKEN),
        sa.Column('user_scopes', sa.String(length=1000)),
        sa.Column('user_refresh_token', TOKEN),
        sa.Column('user_token_expires_at', sa.DateTime()),
        sa.Column('incoming_webhook_url', sa.String(length=200)),
        sa.Column('incoming_webhook_channel', sa.String(length=200)),
        sa.Column('incoming_webhook_channel_id', sa.String(length=200)),
        sa.Column('incoming_webhook_configuration_url', sa.String(length=200)),
        sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
        sa.Column('token_type', sa.String(length=32)),
        sa.Column('installed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_installations')))
    op.create_index('slack_installations_idx', 'slack_installations',
                    ['client_id', 'enterprise_id', 'team_id', 'user_id', 'installed_at'])
    op.create_table(
        'slack_oauth_states',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('state', sa.String(length=200), nullable=False),
        sa.Column('expire_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_oauth_states')))


def downgrade() -> None:
    op.drop_table('slack_oauth_states')
    op.drop_index('slack_installations_idx', table_name='slack_installations')
    op.drop_table('slack_installations')
    op.drop_index('slack_bots_idx', table_name='slack_bots')
    op.drop_table('slack_bots')
