"""What a check, retrain or deploy found, in the terms its readers need: the results that Block Kit
builders (bot/blocks) turn into messages. Plain data, no database objects, so builders stay pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.number_format import missing_share
from jobs.tasks import ThresholdVerdict, improvement

RETRAIN_ASKED = "retrain requested"  # the trigger of a retrain asked for without a reason


@dataclass(frozen=True)
class ChartRef:
    """A rendered chart: the file on disk, and the URL Slack fetches it from when one is served."""

    path: str
    title: str
    alt_text: str
    url: str | None = None


@dataclass(frozen=True)
class ModelRef:
    key: str
    version: str  # "v1"
    project_key: str
    project_name: str
    owner: str  # Slack user id
    alert_id: int | None = None
    version_number: int | None = None
    retrainable: bool = True  # its spec names a retrain backend: its alerts may offer to retrain


@dataclass(frozen=True)
class KpiFigure:
    name: str
    label: str
    unit: str | None
    value: float
    baseline: float | None  # mean of the trailing windows, when the alert is relative
    threshold: float | None  # the absolute line the alert uses, when it has one
    breached: bool
    rule: str  # "above 10,000", "25% above the 4-week baseline"
    points: tuple[tuple[datetime, float], ...] = ()
    baseline_end: datetime | None = None  # the healthy baseline is the windows before this moment
    baseline_earliest: bool = False  # the incident is older than the history read: the baseline is its start
    aggregate: str | None = None  # the spec's "sum", "count", "mean", "rate"; None when not known (older runs)

    @staticmethod
    def baseline_of(figure: dict) -> dict:
        """The fields of one KPI's check figures that name its baseline and say how it adds up over a window
        (absent in runs stored before them: no baseline date, aggregate unknown)."""
        end = figure.get("baseline_end")
        return {"baseline_end": datetime.fromisoformat(end) if end else None,
                "baseline_earliest": bool(figure.get("baseline_earliest")),
                "aggregate": figure.get("aggregate")}

    @property
    def per_window(self) -> bool:
        """A sum or count over its window ("$20,100 a week"), not a mean or a rate."""
        return self.aggregate in ("sum", "count")

    @property
    def change_pct(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return (self.value - self.baseline) / abs(self.baseline) * 100


@dataclass(frozen=True)
class KpiIncident:
    model: ModelRef
    window_start: datetime
    window_end: datetime
    checked_at: datetime
    kpis: tuple[KpiFigure, ...]
    labels_complete_to: datetime | None
    details_url: str
    charts: tuple[ChartRef, ...] = ()
    # The drifted features of the drift alert on the same window, most relied-on first; () when none fired.
    drifted: tuple[FeatureFigure, ...] = ()

    @property
    def breached(self) -> tuple[KpiFigure, ...]:
        return tuple(k for k in self.kpis if k.breached)


@dataclass(frozen=True)
class FeatureFigure:
    feature: str
    method_label: str
    statistic: float
    threshold: float
    p_value: float
    drifted: bool
    missing: tuple[float, float] | None = None  # reference and current missing share, when that moved
    # Where the feature stands among the production version's importances (jobs.explain.standings): 1 for the
    # one it relies on most, of `ranked` measured; None when the version has none stored.
    rank: int | None = None
    ranked: int = 0
    relied_on: bool = False  # its importance is more than a negligible share (jobs.explain.NEGLIGIBLE_SHARE)

    @property
    def described(self) -> str:
        """What moved, as the alert says it: the values' figure against its line, the missing share."""
        values = f"{self.method_label} {_figure(self.statistic)} (alert {_figure(self.threshold)})"
        if self.missing is None:
            return values
        return f"{values}\nmissing {missing_share(self.missing[0])} -> {missing_share(self.missing[1])}"


def by_importance(features: tuple[FeatureFigure, ...]) -> tuple[FeatureFigure, ...]:
    """Most important to the production version first; features without a rank after, in the order given
    (the drift check's: most drifted first)."""
    return tuple(sorted(features, key=lambda f: (f.rank is None, f.rank or 0)))


def _figure(value: float) -> str:
    return f"{value:.2f}" if abs(value) >= 0.01 else f"{value:.2g}"


@dataclass(frozen=True)
class DriftIncident:
    model: ModelRef
    window_start: datetime
    window_end: datetime
    checked_at: datetime
    features: tuple[FeatureFigure, ...]  # every feature checked, drifted first
    current_rows: int
    reference_rows: int
    details_url: str
    related: str | None = None  # "Missed fraud is up 41% over the same window"
    charts: tuple[ChartRef, ...] = ()

    @property
    def drifted(self) -> tuple[FeatureFigure, ...]:
        return tuple(f for f in self.features if f.drifted)


@dataclass(frozen=True)
class Comparison:
    """A version against the production version it would replace, on the same labelled window."""
    model_key: str
    champion: str | None
    challenger: str
    window_start: datetime
    window_end: datetime
    labelled_rows: int
    champion_metrics: dict[str, float]
    challenger_metrics: dict[str, float]
    # The challenger against the lines of the spec's performance alert: the evidence when nothing is in
    # production to compare with.
    thresholds: tuple[ThresholdVerdict, ...] = ()
    # What each version's decisions would have cost on the window (jobs.stakes.outcomes); None if not known.
    champion_outcomes: dict[str, Any] | None = None
    challenger_outcomes: dict[str, Any] | None = None
    # Which features each version relies on, on the same window (jobs.explain); None if not measured.
    champion_importances: dict[str, Any] | None = None
    challenger_importances: dict[str, Any] | None = None


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    champion: float
    challenger: float

    @property
    def delta(self) -> float:
        return self.challenger - self.champion

    @property
    def better(self) -> bool:
        """The challenger is better (or level), whichever way the metric points."""
        return improvement(self.metric, self.champion, self.challenger) >= 0


@dataclass(frozen=True)
class CandidateIncident:
    """A retrained version evaluated against production on the same labelled window."""

    model: ModelRef  # the challenger
    champion_version: str | None
    window_start: datetime
    window_end: datetime
    labelled_rows: int
    metrics: tuple[MetricComparison, ...]
    requested_by: str
    trigger: str  # "retrained after input drift on card_age_days"
    train_start: datetime | None
    train_end: datetime | None
    details_url: str
    charts: tuple[ChartRef, ...] = ()
    thresholds: tuple[ThresholdVerdict, ...] = ()  # the challenger against the spec's performance lines
    champion_outcomes: dict[str, Any] | None = None  # jobs.stakes.outcomes, for the money at stake
    challenger_outcomes: dict[str, Any] | None = None
    # Which features each version relies on, on the same window (jobs.explain); None if not measured.
    champion_importances: dict[str, Any] | None = None
    challenger_importances: dict[str, Any] | None = None


@dataclass(frozen=True)
class Decided:
    """One sign-off or rejection, with who made it, when and why."""
    step: str
    person: str
    name: str
    decision: str
    reason: str
    at: datetime
    version: str = ""


@dataclass(frozen=True)
class StepStatus:
    """Where a version stands on one blueprint step: the one shape App Home, Slack and the dashboard read."""
    name: str
    role: str
    quorum: int
    approvers: tuple[str, ...]  # Slack ids of those who approved
    position: int = 0
    approvals: tuple[Decided, ...] = ()  # the approvals with names, dates and reasons, where a page shows them
    due: bool = False  # the earliest step still waiting
    eligible: tuple[str, ...] = ()  # Slack ids of those who may sign it now (the due step only)

    @property
    def done(self) -> bool:
        return len(self.approvers) >= self.quorum


@dataclass(frozen=True)
class SignOffRequest:
    candidate: CandidateIncident
    initiative: str
    risk_tier: str
    steps: tuple[StepStatus, ...]
    submitted_by: str
    model_card_url: str
    names: dict[str, str] = field(default_factory=dict)  # Slack id -> name: only those who may sign are mentioned
    policy: str = "block"  # the deploy policy in force: block, warn or allow

    @property
    def waiting(self) -> tuple[StepStatus, ...]:
        return tuple(s for s in self.steps if not s.done)


@dataclass(frozen=True)
class Deployment:
    model: ModelRef
    deployed_by: str
    deployed_at: datetime
    sign_offs: tuple[tuple[str, str], ...]  # (Slack id, step name)
    previous_version: str | None
    details_url: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    artifact_uri: str = ""
    artifact_sha256: str | None = None  # as recorded at registration; None for a version registered before

    @property
    def previous_number(self) -> int | None:
        return int(self.previous_version.removeprefix("v")) if self.previous_version else None


@dataclass(frozen=True)
class MetricFigure:
    metric: str
    value: float
    at_training: float | None
    rule: str  # "below 0.60"
    breached: bool


@dataclass(frozen=True)
class PerformanceIncident:
    model: ModelRef
    window_start: datetime
    window_end: datetime
    checked_at: datetime
    metrics: tuple[MetricFigure, ...]
    labelled_rows: int
    rows: int
    details_url: str


@dataclass(frozen=True)
class DataQualityIncident:
    model: ModelRef
    window_start: datetime
    window_end: datetime
    checked_at: datetime
    problems: tuple[str, ...]
    rows: int
    details_url: str
