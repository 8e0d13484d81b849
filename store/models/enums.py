"""The registry's closed vocabularies, stored as strings."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    business = "business"
    ml_engineer = "ml_engineer"
    risk_manager = "risk_manager"
    it_ops = "it_ops"
    admin = "admin"


PERSONAS = (Role.business, Role.ml_engineer, Role.risk_manager, Role.it_ops)


class RiskTier(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class VersionStatus(enum.StrEnum):
    candidate = "candidate"
    in_review = "in_review"
    approved = "approved"
    production = "production"
    archived = "archived"
    rejected = "rejected"


class CheckKind(enum.StrEnum):
    drift = "drift"
    performance = "performance"
    kpi = "kpi"
    data_quality = "data_quality"


class Verdict(enum.StrEnum):
    ok = "ok"
    warn = "warn"
    breach = "breach"
    error = "error"


class AlertState(enum.StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    snoozed = "snoozed"
    resolved = "resolved"


class Decision(enum.StrEnum):
    approve = "approve"
    reject = "reject"


class ChannelDelivery(enum.StrEnum):
    immediate = "immediate"  # each alert as it happens
    digest = "digest"  # one message a day (business channels)


class WorkState(enum.StrEnum):
    queued = "queued"
    running = "running"
    dispatched = "dispatched"  # handed to an external trainer; live until it calls back /api/versions
    done = "done"
    failed = "failed"


class OutboxState(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    digested = "digested"  # an alert post a storm digest replaced: never sent on its own
    undeliverable = "undeliverable"  # for a workspace without Flywheel installed (uninstalled): kept, not sent


class DigestKind(enum.StrEnum):
    storm = "storm"  # many models breaching at once in one channel
    daily = "daily"  # a business channel's once-a-day summary
