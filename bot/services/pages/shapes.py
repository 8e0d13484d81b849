"""The plain data the dashboard's templates draw: series, histories, rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.incidents import Decided, StepStatus


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float
    flagged: bool = False  # breached, drifted


@dataclass(frozen=True)
class Series:
    name: str
    label: str
    unit: str | None
    points: tuple[Point, ...]
    threshold: float | None = None  # a fixed alert line
    limits: tuple[Point, ...] = ()  # a moving alert line (relative to a baseline)
    rule: str = ""

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None


@dataclass(frozen=True)
class MetricHistory:
    metric: str
    rule: str
    threshold: float | None
    lines: tuple[Series, ...]  # one per version


@dataclass(frozen=True)
class RunLine:
    id: int
    kind: str
    as_of: datetime
    window_start: datetime
    window_end: datetime
    verdict: str
    message: str


@dataclass(frozen=True)
class KindHistory:
    kind: str
    counts: tuple[tuple[str, int], ...]  # (verdict, runs), worst first
    latest: RunLine | None
    marks: tuple[tuple[datetime, str], ...]  # non-ok runs: (as_of, verdict)
    first: datetime | None

    @property
    def runs(self) -> int:
        return sum(n for _, n in self.counts)


@dataclass(frozen=True)
class VersionRow:
    number: int
    status: str
    created_at: datetime
    created_by: str
    train_start: datetime | None
    train_end: datetime | None
    deployed_at: datetime | None
    deployed_by: str
    metrics: dict[str, Any]
    trigger: str
    steps: tuple[StepStatus, ...] = ()  # for versions in review or approved

    @property
    def label(self) -> str:
        return f"v{self.number}"


@dataclass(frozen=True)
class AlertRow:
    id: int
    kind: str
    persona: str
    state: str
    subjects: tuple[str, ...]
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    snoozed_until: datetime | None
    message: str


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


@dataclass(frozen=True)
class ModelPage:
    key: str
    description: str
    task: str
    tags: tuple[str, ...]
    owner: str
    project_key: str
    project_name: str
    days: int
    since: datetime
    until: datetime
    start: datetime  # where the charts begin: the first run in the range
    production: VersionRow | None
    versions: tuple[VersionRow, ...]  # newest first
    kpis: tuple[Series, ...]
    alerts: tuple[AlertRow, ...]
    signoffs: tuple[Decided, ...]
    monitoring: bool  # whether the viewer sees the next four
    checks: tuple[KindHistory, ...] = ()
    runs: tuple[RunLine, ...] = ()
    drift: tuple[Series, ...] = ()
    performance: tuple[MetricHistory, ...] = ()
    audit: tuple[AuditRow, ...] = ()
    names: dict[str, str] = field(default_factory=dict)
    policy: str = ""  # the deploy policy in force (block, warn, allow)
    blueprint: str = ""  # the project's blueprint, and the library's it copies
