"""catalog: assets, their tags and a full-text index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

The text index is written by hand, one per dialect, and named catalog_fts* (see store/models/catalog.py):
- SQLite: an FTS5 table over catalog_assets (external content, Porter stemming), kept in step by
  triggers, so every write to an asset reaches the index in the same transaction.
- PostgreSQL: generated tsvector columns (English stemming), one weighted over every field and one of
  the title alone, each with a GIN index.
A later SQLite migration that rebuilds catalog_assets with batch_alter_table drops the triggers with the
old table: recreate them, and run `INSERT INTO catalog_fts(catalog_fts) VALUES ('rebuild')`.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Columns of catalog_assets the index reads, in the order of the bm25 weights in store/catalog.py.
SQLITE_COLUMNS = "title, description, tags, owner_name, project_name, kind"
SQLITE_FTS = [
    f"""CREATE VIRTUAL TABLE catalog_fts USING fts5({SQLITE_COLUMNS}, content='catalog_assets',
        content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')""",
    f"""CREATE TRIGGER catalog_fts_after_insert AFTER INSERT ON catalog_assets BEGIN
        INSERT INTO catalog_fts(rowid, {SQLITE_COLUMNS})
        VALUES (new.id, new.title, new.description, new.tags, new.owner_name, new.project_name, new.kind);
    END""",
    f"""CREATE TRIGGER catalog_fts_after_delete AFTER DELETE ON catalog_assets BEGIN
        INSERT INTO catalog_fts(catalog_fts, rowid, {SQLITE_COLUMNS})
        VALUES ('delete', old.id, old.title, old.description, old.tags, old.owner_name, old.project_name, old.kind);
    END""",
    f"""CREATE TRIGGER catalog_fts_after_update AFTER UPDATE OF {SQLITE_COLUMNS} ON catalog_assets BEGIN
        INSERT INTO catalog_fts(catalog_fts, rowid, {SQLITE_COLUMNS})
        VALUES ('delete', old.id, old.title, old.description, old.tags, old.owner_name, old.project_name, old.kind);
        INSERT INTO catalog_fts(rowid, {SQLITE_COLUMNS})
        VALUES (new.id, new.title, new.description, new.tags, new.owner_name, new.project_name, new.kind);
    END""",
]
POSTGRES_FTS = [
    """ALTER TABLE catalog_assets ADD COLUMN catalog_fts tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, title), 'A') ||
        setweight(to_tsvector('english'::regconfig, tags::text), 'B') ||
        setweight(to_tsvector('english'::regconfig, owner_name || ' ' || project_name || ' ' ||
                              replace(kind, '_', ' ')), 'C') ||
        setweight(to_tsvector('english'::regconfig, description), 'D')) STORED""",
    "CREATE INDEX catalog_fts_gin ON catalog_assets USING gin (catalog_fts)",
    # Titles alone: a common word is ranked among the titles holding it before the rest (store/catalog.py).
    """ALTER TABLE catalog_assets ADD COLUMN catalog_fts_title tsvector GENERATED ALWAYS AS (
        to_tsvector('english'::regconfig, title)) STORED""",
    "CREATE INDEX catalog_fts_title_gin ON catalog_assets USING gin (catalog_fts_title)",
]


def upgrade() -> None:
    op.create_table('catalog_assets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.Enum('project', 'model', 'model_version', 'dataset', 'notebook', 'repository', 'dashboard', 'plugin', name='assetkind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('origin', sa.Enum('registry', 'spec', 'cli', name='assetorigin', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('project_key', sa.String(length=100), nullable=True),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('project_name', sa.String(length=200), nullable=False),
    sa.Column('owner_name', sa.String(length=200), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('links', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=True),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_catalog_assets_model_id_models')),
    sa.ForeignKeyConstraint(['version_id'], ['model_versions.id'], name=op.f('fk_catalog_assets_version_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_assets')),
    sa.UniqueConstraint('key', name=op.f('uq_catalog_assets_key'))
    )
    with op.batch_alter_table('catalog_assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_assets_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_assets_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_assets_owner'), ['owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_assets_project_key'), ['project_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_assets_status'), ['status'], unique=False)
        batch_op.create_index('ix_catalog_assets_updated_at', ['updated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_assets_version_id'), ['version_id'], unique=False)

    op.create_table('catalog_tags',
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['catalog_assets.id'], name=op.f('fk_catalog_tags_asset_id_catalog_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('asset_id', 'tag', name=op.f('pk_catalog_tags'))
    )
    with op.batch_alter_table('catalog_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_tags_tag'), ['tag'], unique=False)

    for statement in SQLITE_FTS if op.get_bind().dialect.name == 'sqlite' else POSTGRES_FTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("DROP TABLE catalog_fts")  # its triggers go with catalog_assets below
    op.drop_table('catalog_tags')  # on PostgreSQL the generated column and its index go with the table
    op.drop_table('catalog_assets')
