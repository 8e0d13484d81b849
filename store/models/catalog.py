"""The catalog's tables: one row per asset, and its tags for exact filtering.

The full-text index is not modelled here: alembic cannot express an FTS5 virtual table or a generated
tsvector column. Migration 0003 creates it, named `catalog_fts*` on both databases, and the comparator
at the bottom keeps autogenerate (and `compare_metadata`) from proposing to drop it.
"""

from __future__ import annotations

import enum
from datetime import datetime

from alembic.autogenerate import comparators
from alembic.operations import ops
from alembic.util import DispatchPriority, PriorityDispatchResult
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.clock import utcnow
from store.models.base import Base, _enum

FTS_PREFIX = "catalog_fts"


class AssetKind(enum.StrEnum):
    project = "project"
    model = "model"
    model_version = "model_version"
    dataset = "dataset"
    notebook = "notebook"
    repository = "repository"
    dashboard = "dashboard"
    plugin = "plugin"


REGISTRY_KINDS = (AssetKind.project, AssetKind.model, AssetKind.model_version, AssetKind.dataset)


class AssetOrigin(enum.StrEnum):
    registry = "registry"  # kept in step with projects, models, versions and spec datasets
    spec = "spec"  # declared in a project spec's `catalog:` section
    cli = "cli"  # added with `flywheel catalog add`


class CatalogAsset(Base):
    __tablename__ = "catalog_assets"
    __table_args__ = (Index("ix_catalog_assets_updated_at", "updated_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[AssetKind] = mapped_column(_enum(AssetKind), index=True)
    origin: Mapped[AssetOrigin] = mapped_column(_enum(AssetOrigin))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    project_key: Mapped[str | None] = mapped_column(String(100), index=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    # Names copied from the project and the owner so the text index can hold them; the catalog's
    # sync rewrites them when a spec renames either.
    project_name: Mapped[str] = mapped_column(String(200), default="")
    owner_name: Mapped[str] = mapped_column(String(200), default="")
    tags: Mapped[list[str]] = mapped_column(default=list)
    links: Mapped[list[str]] = mapped_column(default=list)
    # Declared assets only: a model's or a version's status is read from the registry when asked.
    status: Mapped[str | None] = mapped_column(String(40), index=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"), index=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    tag_rows: Mapped[list[CatalogTag]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class CatalogTag(Base):
    """One row per (asset, tag), lower-cased: `tag:nlp` is an index lookup, not a scan of JSON."""

    __tablename__ = "catalog_tags"

    asset_id: Mapped[int] = mapped_column(ForeignKey("catalog_assets.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


@comparators.dispatch_for("schema", priority=DispatchPriority.LAST, subgroup="flywheel_catalog_fts")
def _leave_the_text_index_alone(autogen_context, upgrade_ops: ops.UpgradeOps, schemas) -> PriorityDispatchResult:
    """Drop autogenerate's proposals to remove the `catalog_fts*` objects it found but cannot model."""
    kept: list[ops.MigrateOperation] = []
    for op in upgrade_ops.ops:
        if isinstance(op, ops.DropTableOp) and op.table_name.startswith(FTS_PREFIX):
            continue
        if isinstance(op, ops.ModifyTableOps):
            op.ops = [o for o in op.ops if not _is_fts(o)]
            if not op.ops:
                continue
        kept.append(op)
    upgrade_ops.ops = kept
    return PriorityDispatchResult.CONTINUE


def _is_fts(op: ops.MigrateOperation) -> bool:
    if isinstance(op, ops.DropColumnOp):
        return op.column_name.startswith(FTS_PREFIX)
    if isinstance(op, ops.DropIndexOp):
        return (op.index_name or "").startswith(FTS_PREFIX)
    return False
