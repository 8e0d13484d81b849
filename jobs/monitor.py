"""Run a model's checks against its data and record what they found in the registry.

Each model is checked on its own: a broken source or a bad window gives that model's checks the
verdict `error` with a message, and the other models are still checked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from jobs import checks
from jobs.checks import CheckOutcome
from jobs.expressions import ExpressionError
from jobs.metrics import MetricsError
from jobs.sources import SourceError, open_source
from jobs.statistics import DriftInputError
from store import monitoring, registry
from store.clock import to_utc_naive, utcnow
from store.db import Database
from store.models import CheckKind, Model, Verdict
from store.spec import ModelSpec

log = logging.getLogger(__name__)

PERSONA_FOR = {CheckKind.kpi: "business", CheckKind.drift: "ml_engineer",
               CheckKind.performance: "ml_engineer", CheckKind.data_quality: "ml_engineer"}
TREND_WINDOWS = 8  # windows of KPI history shown on the trend chart
EXPECTED = (SourceError, DriftInputError, ExpressionError, MetricsError, KeyError, ValueError)


@dataclass
class CheckResult:
    kind: CheckKind
    outcome: CheckOutcome
    run_id: int
    alert_id: int | None = None
    alert_is_new: bool = False
    resolved_alerts: list[int] = field(default_factory=list)


@dataclass
class ModelChecks:
    model_key: str
    version: str | None
    window_start: datetime
    window_end: datetime
    results: list[CheckResult]

    def result(self, kind: CheckKind) -> CheckResult | None:
        return next((r for r in self.results if r.kind == kind), None)


def load_spec(model: Model) -> ModelSpec:
    return ModelSpec.model_validate(model.spec)


def _windows(frame: pd.DataFrame, time_column: str, as_of: datetime, length: timedelta,
             count: int) -> list[tuple[datetime, pd.DataFrame]]:
    """Split a frame into `count` consecutive windows ending at as_of, oldest first."""
    times = frame[time_column]
    out = []
    for i in range(count, 0, -1):
        start, end = as_of - i * length, as_of - (i - 1) * length
        out.append((start, frame[(times >= start) & (times < end)]))
    return out


def _kpi_columns(kpi) -> list[str]:
    names = [kpi.column] + [c for text in (kpi.where, kpi.of) if text for c in sorted(checks.parse(text).columns)]
    return [n for n in names if n]


def _run_kind(kind: CheckKind, spec: ModelSpec, fn) -> CheckOutcome:
    try:
        return fn()
    except EXPECTED as exc:
        return checks.error(kind, str(exc) or exc.__class__.__name__)
    except Exception as exc:  # a bug, not bad data: keep the traceback in the log, tell the user what
        log.exception("%s check of %s failed", kind, spec.key)
        return checks.error(kind, f"unexpected {exc.__class__.__name__}: {exc}")


def evaluate_model(spec: ModelSpec, base_dir: str, as_of: datetime, training_metrics: dict[str, Any],
                   kinds: set[CheckKind]) -> list[CheckOutcome]:
    """Run the checks of one model; never raises for bad data, each problem becomes an error outcome."""
    data = spec.data
    length = spec.drift.window
    baseline_n = max([k.alert.baseline_windows for k in spec.kpis if k.alert]
                     + [spec.data_quality.baseline_windows])
    count = max(baseline_n + 1, TREND_WINDOWS)
    longest = max([length] + [k.window for k in spec.kpis] + ([spec.performance.window] if spec.performance else []))
    # Every column for the windows the checks judge; only the KPI columns for the trailing history.
    kpi_columns = [data.timestamp, *(c for k in spec.kpis for c in _kpi_columns(k))]
    try:
        production = open_source(data.production, base_dir)
        frame = production.read(spec.columns(), time_column=data.timestamp, start=as_of - longest, end=as_of)
        history = production.read(list(dict.fromkeys(kpi_columns)), time_column=data.timestamp,
                                  start=as_of - count * longest, end=as_of - longest)
    except EXPECTED as exc:
        return [checks.error(kind, f"cannot read production data: {exc}") for kind in sorted(kinds)]
    history = pd.concat([history, frame[history.columns]], ignore_index=True) if len(frame) else history
    windows = _windows(history, data.timestamp, as_of, length, count)
    current = frame[frame[data.timestamp] >= as_of - length]
    outcomes = []
    features = [*spec.features.numeric, *spec.features.categorical]

    def drift() -> CheckOutcome:
        if current.empty:
            return checks.error(CheckKind.drift, f"no production rows between {windows[-1][0]:%Y-%m-%d %H:%M} "
                                f"and {as_of:%Y-%m-%d %H:%M} UTC")
        reference = open_source(data.reference, base_dir).read(features)
        return checks.drift(reference, current, numeric=spec.features.numeric,
                            categorical=spec.features.categorical, numeric_method=spec.drift.numeric_method,
                            categorical_method=spec.drift.categorical_method,
                            thresholds=spec.drift.thresholds, alpha=spec.drift.alpha)

    def kpi() -> CheckOutcome:
        outcome = checks.kpis(spec.kpis, {k.name: _windows(history, data.timestamp, as_of, k.window, count)
                                          for k in spec.kpis})
        if data.label and data.label in current and current[data.label].notna().any():
            latest = current.loc[current[data.label].notna(), data.timestamp].max()
            outcome.figures["labels_complete_to"] = pd.Timestamp(latest).to_pydatetime().isoformat()
        return outcome

    def performance() -> CheckOutcome:
        start = as_of - spec.performance.window
        labelled = frame[frame[data.timestamp] >= start]
        if labelled.empty:
            return checks.error(CheckKind.performance, "no production rows in this window")
        return checks.performance(labelled, label=data.label, prediction=data.prediction, score=data.score,
                                  metrics=spec.performance.metrics, alert=spec.performance.alert,
                                  training_metrics=training_metrics)

    def quality() -> CheckOutcome:
        reference_schema = open_source(data.reference, base_dir).schema()
        return checks.data_quality(
            current, features=features, baseline_rows=[len(f) for _, f in windows[-1 - baseline_n:-1]],
            reference_schema=reference_schema, current_schema=production.schema(),
            max_null_share=spec.data_quality.max_null_share,
            min_rows_vs_baseline_pct=spec.data_quality.min_rows_vs_baseline_pct)

    plan = {CheckKind.drift: drift, CheckKind.kpi: kpi, CheckKind.performance: performance,
            CheckKind.data_quality: quality}
    if not spec.kpis:
        plan.pop(CheckKind.kpi)
    if not data.label or spec.performance is None:
        plan.pop(CheckKind.performance)
    for kind, fn in plan.items():
        if kind in kinds:
            outcomes.append(_run_kind(kind, spec, fn))
    return outcomes


def check_model(*, db: Database, model_key: str, as_of: datetime, kinds: set[CheckKind] | None = None,
                now: datetime | None = None) -> ModelChecks:
    as_of, now = to_utc_naive(as_of), now or utcnow()
    kinds = kinds or set(CheckKind)
    with db.session() as s:
        model = registry.get_model(session=s, key=model_key)
        spec = load_spec(model)
        version = registry.production_version(session=s, model=model)
        version_label = version.label if version else None
        training_metrics = dict(version.metrics) if version else {}
        base_dir = model.spec_dir
    outcomes = evaluate_model(spec, base_dir, as_of, training_metrics, kinds)
    window_start = as_of - spec.drift.window
    results = []
    with db.session() as s:
        model = registry.get_model(session=s, key=model_key)
        version = registry.production_version(session=s, model=model)
        channels = {c.persona: c.channel for c in model.project.channels}
        for outcome in outcomes:
            run = monitoring.record_check_run(
                session=s, model=model, version=version, kind=outcome.kind, window_start=window_start,
                window_end=as_of, as_of=as_of, figures=outcome.figures, verdict=outcome.verdict,
                message=outcome.message, now=now)
            result = CheckResult(outcome.kind, outcome, run.id)
            if outcome.kind == CheckKind.performance and version and outcome.figures.get("metrics"):
                registry.record_evaluation(session=s, version=version, window_start=window_start,
                                           window_end=as_of, metrics=outcome.figures["metrics"],
                                           rows=outcome.figures["labelled_rows"], now=now)
            if outcome.verdict == Verdict.breach:
                persona = PERSONA_FOR[outcome.kind]
                alert, new = monitoring.raise_alert(session=s, run=run, persona=persona,
                                                    subjects=outcome.subjects, channel=channels.get(persona),
                                                    now=now)
                result.alert_id, result.alert_is_new = alert.id, new
            elif outcome.verdict == Verdict.ok:
                result.resolved_alerts = [a.id for a in monitoring.resolve_alerts(
                    session=s, model=model, kind=outcome.kind, now=now)]
            results.append(result)
    return ModelChecks(model_key, version_label, window_start, as_of, results)


def check_all(*, db: Database, as_of: datetime, model_key: str | None = None,
              kinds: set[CheckKind] | None = None, now: datetime | None = None) -> list[ModelChecks]:
    with db.session() as s:
        keys = [model_key] if model_key else [m.key for m in registry.list_models(session=s)]
        if model_key:
            registry.get_model(session=s, key=model_key)  # a clear NotFound before any work
    return [check_model(db=db, model_key=key, as_of=as_of, kinds=kinds, now=now) for key in keys]
