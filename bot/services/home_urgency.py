"""App Home's portfolio order: what needs the viewer first, and the open alerts they are the audience of.

The order rule, the same for every persona:
1. Alerts nobody has acknowledged come before acknowledged ones, which come before snoozed ones.
2. Sign-offs that block a deploy come first: a deploy was asked for, or the viewer's approval is the last
   one missing (the due step is the only one left and lacks one approval).
3. Within each of those, projects of a higher risk tier come first (high, medium, low).
4. Then the oldest first: the alert opened longest ago, the version submitted earliest.
A model the viewer owns is placed by its most urgent open alert by the same rule; models without an open
alert come last, in key order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from store.governance import StepProgress
from store.models import Alert, AlertState, Model, ModelVersion, Person, RiskTier

MAX_ALERTS = 8
STATE_RANK = {AlertState.open: 0, AlertState.acknowledged: 1, AlertState.snoozed: 2}
TIER_RANK = {RiskTier.high: 0, RiskTier.medium: 1, RiskTier.low: 2}


@dataclass(frozen=True)
class OpenAlert:
    id: int
    model_key: str
    project_name: str
    risk_tier: str
    kind: str
    state: str
    subjects: tuple[str, ...]
    opened_at: datetime
    snoozed_until: datetime | None


def alert_urgency(alert: Alert) -> tuple:
    return (STATE_RANK.get(alert.state, 3), TIER_RANK.get(alert.model.project.risk_tier, 3), alert.created_at,
            alert.id)


def blocks_deploy(version: ModelVersion, progress: Sequence[StepProgress]) -> bool:
    waiting = [p for p in progress if not p.done]
    last = len(waiting) == 1 and len(waiting[0].approvals) == waiting[0].step.quorum - 1
    return bool(version.deploy_requested_by) or last


def signoff_urgency(version: ModelVersion, progress: Sequence[StepProgress]) -> tuple:
    return (not blocks_deploy(version, progress), TIER_RANK.get(version.model.project.risk_tier, 3),
            version.created_at, version.id)


def open_alerts_for(session: Session, person: Person) -> tuple[list[Alert], int]:
    """Unresolved alerts of the projects the person holds the alert's persona on (or owns the model of),
    most urgent first, capped at MAX_ALERTS; with how many were left out."""
    projects = person.project_ids()
    if not projects:
        return [], 0
    rows = session.execute(select(Alert).join(Model, Model.id == Alert.model_id)
                           .where(Model.project_id.in_(projects), Alert.state != AlertState.resolved)
                           .options(selectinload(Alert.model).selectinload(Model.project))).scalars()
    mine = sorted((a for a in rows if person.holds(a.persona, a.model.project_id) or a.model.owner == person.slack_id),
                  key=alert_urgency)
    return mine[:MAX_ALERTS], max(0, len(mine) - MAX_ALERTS)


def open_alert(alert: Alert) -> OpenAlert:
    return OpenAlert(alert.id, alert.model.key, alert.model.project.name, alert.model.project.risk_tier.value,
                     alert.kind.value, alert.state.value, tuple(alert.subjects), alert.created_at, alert.snoozed_until)
