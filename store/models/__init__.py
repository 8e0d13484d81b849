"""The registry's tables, SQLAlchemy 2.0 typed ORM, one module per part of the registry.

The schema itself is owned by the Alembic migrations in store/migrations; a test keeps the two in step.
Importing this package registers every table on Base.metadata.
"""

from store.models.base import Base, NAMING
from store.models.enums import (
    AlertState,
    ChannelDelivery,
    CheckKind,
    Decision,
    DigestKind,
    OutboxState,
    PERSONAS,
    RiskTier,
    Role,
    Verdict,
    VersionStatus,
    WorkState,
)
from store.models.registry import (
    AUTOMATED,
    FLYWHEEL,
    Blueprint,
    BlueprintStep,
    Evaluation,
    Grant,
    LibraryBlueprint,
    Model,
    ModelVersion,
    Person,
    PersonaChannel,
    Project,
    SignOff,
)
from store.models.monitoring import Alert, AlertFeedback, CheckRun, CheckTick, Digest
from store.models.operations import (
    AuditEvent,
    AuditHead,
    HomeViewer,
    OutboxMessage,
    SlackRequest,
    WorkItem,
    WorkerHeartbeat,
)
from store.models.tuning import SuggestionState, ThresholdSuggestion
from store.models.catalog import AssetKind, AssetOrigin, CatalogAsset, CatalogTag, FTS_PREFIX, REGISTRY_KINDS

__all__ = [
    "AUTOMATED",
    "FLYWHEEL",
    "LibraryBlueprint",
    "Alert",
    "AlertFeedback",
    "AlertState",
    "AssetKind",
    "AssetOrigin",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Blueprint",
    "BlueprintStep",
    "CatalogAsset",
    "CatalogTag",
    "ChannelDelivery",
    "CheckKind",
    "CheckRun",
    "CheckTick",
    "Decision",
    "Digest",
    "DigestKind",
    "Evaluation",
    "FTS_PREFIX",
    "Grant",
    "HomeViewer",
    "Model",
    "ModelVersion",
    "NAMING",
    "OutboxMessage",
    "OutboxState",
    "PERSONAS",
    "Person",
    "PersonaChannel",
    "Project",
    "REGISTRY_KINDS",
    "RiskTier",
    "Role",
    "SignOff",
    "SlackRequest",
    "Verdict",
    "VersionStatus",
    "WorkItem",
    "WorkState",
    "WorkerHeartbeat",
    "SuggestionState",
    "ThresholdSuggestion",
]

# slack_sdk's OAuth tables (installations, bots, states) belong to the schema too: migration 0022 makes them.
from store import installations as _installations  # noqa: E402

_installations.define_tables(Base.metadata)
