"""Roles become grants on one project each: (person, project, role). The global `people.roles` goes.

No grant is guessed from the old global roles (they said nothing of which project): after upgrading,
`flywheel apply` every project's spec to write its grants. Until then nobody may act, which is the
safe side of the change.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'grants',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_grants_person_id_people'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_grants_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_grants')),
        sa.UniqueConstraint('person_id', 'project_id', 'role', name=op.f('uq_grants_person_id')),
    )
    op.create_index('ix_grants_project', 'grants', ['project_id'], unique=False)
    with op.batch_alter_table('people') as batch_op:
        batch_op.drop_column('roles')


def downgrade() -> None:
    with op.batch_alter_table('people') as batch_op:
        batch_op.add_column(sa.Column('roles', sa.JSON(), nullable=False, server_default='[]'))
    op.drop_index('ix_grants_project', table_name='grants')
    op.drop_table('grants')
