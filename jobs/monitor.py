"""Run a model's checks against its data and record what they found in the registry.

Each model is checked on its own: a broken source or a bad window gives that model's checks the
verdict `error` with a message, and the other models are still checked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from jobs import checks
from jobs import metrics_registry as metrics
from jobs.checks import CheckOutcome
from jobs.expressions import ExpressionError
from jobs.metrics import MetricsError
from jobs.segments import segment_figures
from jobs.sources import Source, SourceError, open_source
from jobs.spec import ModelSpec
from jobs.statistics import DriftInputError, PreparedReference, prepare_reference
from jobs.threshold_tuning import with_overrides
from store import monitoring, registry, tuning
from store.clock import to_utc_naive, utcnow
from store.db import Database
from store.models import CheckKind, Model, Verdict

log = logging.getLogger(__name__)

PERSONA_FOR = {CheckKind.kpi: "business", CheckKind.drift: "ml_engineer",
               CheckKind.performance: "ml_engineer", CheckKind.data_quality: "ml_engineer"}
TREND_WINDOWS = 8  # windows of KPI history shown on the trend chart
KPI_LOOKBACK = 26  # windows read to find a KPI's healthy baseline (the windows before an incident began)
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


def enabled_kinds(spec: ModelSpec) -> list[CheckKind]:
    """The checks a spec asks for: KPIs only with KPIs named, performance only with labels and a line."""
    kinds = [CheckKind.drift, CheckKind.kpi, CheckKind.performance, CheckKind.data_quality]
    if not spec.kpis:
        kinds.remove(CheckKind.kpi)
    if not spec.data.label or spec.performance is None:
        kinds.remove(CheckKind.performance)
    return kinds


def _window_rows(times: pd.Series, bounds: list[tuple[datetime, datetime]]) -> list[slice | np.ndarray]:
    """Which rows fall in each [start, end): a slice when the times are in order (files usually are),
    else a mask. Either keeps the rows' order, so sums add up the same as before."""
    values = times.to_numpy()
    edges = [(np.datetime64(start), np.datetime64(end)) for start, end in bounds]
    if len(values) and not np.isnat(values).any() and bool(np.all(values[1:] >= values[:-1])):
        return [slice(int(np.searchsorted(values, start, "left")), int(np.searchsorted(values, end, "left")))
                for start, end in edges]
    return [(values >= start) & (values < end) for start, end in edges]


def _windows(frame: pd.DataFrame, time_column: str, as_of: datetime, length: timedelta,
             count: int) -> list[tuple[datetime, pd.DataFrame]]:
    """Split a frame into `count` consecutive windows ending at as_of, oldest first."""
    bounds = [(as_of - i * length, as_of - (i - 1) * length) for i in range(count, 0, -1)]
    rows = _window_rows(frame[time_column], bounds)
    return [(start, frame.iloc[r] if isinstance(r, slice) else frame[r]) for (start, _), r in zip(bounds, rows)]


def _window_counts(times: pd.Series, as_of: datetime, length: timedelta, count: int) -> list[int]:
    bounds = [(as_of - i * length, as_of - (i - 1) * length) for i in range(count, 0, -1)]
    return [r.stop - r.start if isinstance(r, slice) else int(np.count_nonzero(r))
            for r in _window_rows(times, bounds)]


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


# A model's reference window does not change between cycles: its features are kept summarised (sorted
# values, category counts) per reference and feature list, and summarised again when a file changes.
# Checks come round in a cycle, where least-recently-used eviction would keep nothing useful once the
# references outgrow the budget; so the first ones to fit stay, and the others are summarised each time.
REFERENCE_CACHE_BYTES = 256 * 1024 * 1024
_references: dict[Hashable, tuple[Hashable, PreparedReference]] = {}
_references_lock = threading.Lock()


def _prepared_reference(source: Source, numeric: list[str], categorical: list[str]) -> PreparedReference:
    fingerprint = source.fingerprint()
    key = (source.describe(), tuple(numeric), tuple(categorical))
    if fingerprint is not None:
        with _references_lock:
            held = _references.get(key)
        if held is not None and held[0] == fingerprint:
            return held[1]
    prepared = prepare_reference(source.read([*numeric, *categorical]), numeric=numeric, categorical=categorical)
    if fingerprint is not None:
        with _references_lock:
            _references.pop(key, None)  # an earlier version of these files
            if prepared.nbytes <= REFERENCE_CACHE_BYTES - sum(p.nbytes for _, p in _references.values()):
                _references[key] = (fingerprint, prepared)
    return prepared


def evaluate_model(spec: ModelSpec, base_dir: str, as_of: datetime, training_metrics: dict[str, Any],
                   kinds: set[CheckKind]) -> list[CheckOutcome]:
    """Run the checks of one model; never raises for bad data, each problem becomes an error outcome.

    Each kind reads only the columns and rows it judges (a worker runs one kind per job); the reads of
    all the kinds asked for happen first, so a source that cannot be read fails every one of them."""
    data = spec.data
    length = spec.drift.window
    baseline_n = max([k.alert.baseline_windows for k in spec.kpis if k.alert]
                     + [spec.data_quality.baseline_windows])
    count = max(baseline_n + 1, TREND_WINDOWS)
    kpi_count = max(count, KPI_LOOKBACK)
    features = [*spec.features.numeric, *spec.features.categorical]
    wanted = [kind for kind in enabled_kinds(spec) if kind in kinds]
    ts = data.timestamp
    production: Source | None = None

    def rows(columns: list[str], start: datetime, end: datetime) -> pd.DataFrame:
        return production.read(list(dict.fromkeys([ts, *columns])), time_column=ts, start=start, end=end)

    frames: dict[str, pd.DataFrame] = {}
    reading = time.perf_counter()
    try:
        production = open_source(data.production, base_dir)
        production.check_columns(spec.columns(), time_column=ts)  # a missing column fails every kind, as before
        if CheckKind.drift in wanted or CheckKind.data_quality in wanted:
            frames["current"] = rows(features, as_of - length, as_of)
        if CheckKind.kpi in wanted:
            kpi_span = max([length] + [kpi_count * k.window for k in spec.kpis])
            columns = [c for k in spec.kpis for c in _kpi_columns(k)] + ([data.label] if data.label else [])
            frames["kpi"] = rows(columns, as_of - kpi_span, as_of)
        if CheckKind.performance in wanted:
            columns = [data.label, data.prediction, *([data.score] if data.score else []), *spec.segments]
            frames["performance"] = rows(columns, as_of - spec.performance.window, as_of)
        if CheckKind.data_quality in wanted:
            frames["earlier"] = rows([], as_of - (baseline_n + 1) * length, as_of - length)
    except EXPECTED as exc:
        return [checks.error(kind, f"cannot read production data: {exc}") for kind in sorted(kinds)]
    read_share = (time.perf_counter() - reading) / max(1, len(wanted))
    metrics.WINDOWS_READ.inc(len(frames))
    metrics.ROWS_SCANNED.inc(sum(len(frame) for frame in frames.values()))

    def drift() -> CheckOutcome:
        current = frames["current"]
        if current.empty:
            return checks.error(CheckKind.drift, f"no production rows between {as_of - length:%Y-%m-%d %H:%M} "
                                f"and {as_of:%Y-%m-%d %H:%M} UTC")
        reference = open_source(data.reference, base_dir)
        prepared = _prepared_reference(reference, spec.features.numeric, spec.features.categorical)
        return checks.drift(prepared, current, numeric=spec.features.numeric,
                            categorical=spec.features.categorical, numeric_method=spec.drift.numeric_method,
                            categorical_method=spec.drift.categorical_method,
                            thresholds=spec.drift.thresholds, alpha=spec.drift.alpha,
                            missing_share_change=spec.drift.missing_share_change, reference_values=lambda shown: reference.read(shown))

    def kpi() -> CheckOutcome:
        history = frames["kpi"]
        by_length = {}  # KPIs of one window length share its window frames (and their evaluated clauses)
        for k in spec.kpis:
            if k.window not in by_length:
                by_length[k.window] = _windows(history, ts, as_of, k.window, kpi_count)
        outcome = checks.kpis(spec.kpis, {k.name: by_length[k.window] for k in spec.kpis}, shown=count)
        current = history.iloc[_window_rows(history[ts], [(as_of - length, as_of)])[0]]
        if data.label and data.label in current and current[data.label].notna().any():
            latest = current.loc[current[data.label].notna(), ts].max()
            outcome.figures["labels_complete_to"] = pd.Timestamp(latest).to_pydatetime().isoformat()
        return outcome

    def performance() -> CheckOutcome:
        labelled = frames["performance"]
        if labelled.empty:
            return checks.error(CheckKind.performance, "no production rows in this window")
        outcome = checks.performance(labelled, label=data.label, prediction=data.prediction, score=data.score,
                                     metrics=spec.performance.metrics, alert=spec.performance.alert,
                                     training_metrics=training_metrics, task=spec.task)
        if spec.segments and outcome.figures.get("metrics"):
            outcome.figures["segments"] = segment_figures(
                labelled, segments=spec.segments, label=data.label, prediction=data.prediction, score=data.score,
                metrics=spec.performance.metrics, task=spec.task)
        return outcome

    def quality() -> CheckOutcome:
        reference = open_source(data.reference, base_dir)
        prepared = _prepared_reference(reference, spec.features.numeric, spec.features.categorical)
        usual = {name: feature.missing / prepared.rows for (name, _), feature in prepared.features.items()
                 if prepared.rows}
        return checks.data_quality(
            frames["current"], features=features,
            baseline_rows=_window_counts(frames["earlier"][ts], as_of - length, length, baseline_n),
            reference_schema=reference.schema(), current_schema=production.schema(),
            min_rows_vs_baseline_pct=spec.data_quality.min_rows_vs_baseline_pct,
            allowed_null_share=spec.data_quality.null_share_rise.allowed, reference_null_share=usual,
            max_null_share=spec.data_quality.max_null_share)

    run = {CheckKind.drift: drift, CheckKind.kpi: kpi, CheckKind.performance: performance,
           CheckKind.data_quality: quality}
    outcomes = []
    for kind in wanted:
        judging = time.perf_counter()
        outcomes.append(_run_kind(kind, spec, run[kind]))
        metrics.CHECK_SECONDS.labels(kind=kind.value).observe(read_share + time.perf_counter() - judging)
    return outcomes


def check_model(*, db: Database, model_key: str, as_of: datetime, kinds: set[CheckKind] | None = None,
                now: datetime | None = None) -> ModelChecks:
    as_of, now = to_utc_naive(as_of), now or utcnow()
    kinds = kinds or set(CheckKind)
    with db.read() as s:  # no write lock while the data is read and judged
        model = registry.get_model(session=s, key=model_key)
        model_id = model.id
        # Thresholds people accepted from feedback stand in for the spec's until the spec says the same.
        spec = with_overrides(load_spec(model), {subject: accepted.proposed for subject, accepted in
                                                 tuning.overrides(session=s, model_id=model_id).items()})
        version = registry.production_version(session=s, model=model)
        version_label = version.label if version else None
        training_metrics = dict(version.metrics) if version else {}
        base_dir = model.spec_dir
    outcomes = evaluate_model(spec, base_dir, as_of, training_metrics, kinds)
    window_start = as_of - spec.drift.window
    results, alert_events = [], []
    with db.session() as s:
        model = s.get(Model, model_id) or registry.get_model(session=s, key=model_key)
        version = registry.production_version(session=s, model=model)
        channels = None
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
                if channels is None:  # only a breach needs them: two queries fewer for a passing check
                    channels = {c.persona: c.channel for c in model.project.channels}
                persona = PERSONA_FOR[outcome.kind]
                alert, new = monitoring.raise_alert(session=s, run=run, persona=persona,
                                                    subjects=outcome.subjects, channel=channels.get(persona),
                                                    now=now)
                result.alert_id, result.alert_is_new = alert.id, new
                alert_events.append((persona, "opened" if new else "updated"))
            elif outcome.verdict == Verdict.ok:
                resolved = monitoring.resolve_alerts(session=s, model=model, kind=outcome.kind, now=now)
                result.resolved_alerts = [a.id for a in resolved]
                alert_events += [(a.persona, "resolved") for a in resolved]
            results.append(result)
    for outcome in outcomes:  # counted once recorded
        metrics.CHECKS.labels(kind=outcome.kind.value, verdict=outcome.verdict.value).inc()
    for persona, event in alert_events:
        metrics.ALERTS.labels(persona=persona, event=event).inc()
    return ModelChecks(model_key, version_label, window_start, as_of, results)


def check_all(*, db: Database, as_of: datetime, model_key: str | None = None,
              kinds: set[CheckKind] | None = None, now: datetime | None = None) -> list[ModelChecks]:
    with db.session() as s:
        keys = [model_key] if model_key else [m.key for m in registry.list_models(session=s)]
        if model_key:
            registry.get_model(session=s, key=model_key)  # a clear NotFound before any work
    return [check_model(db=db, model_key=key, as_of=as_of, kinds=kinds, now=now) for key in keys]
