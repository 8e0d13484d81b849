"""The four monitoring checks: pure functions from data windows to an outcome.

Each returns a CheckOutcome; running them against the registry (loading windows, recording runs,
raising alerts) is jobs/monitor.py's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from jobs.expressions import parse
from jobs.metrics import MetricsError
from jobs.number_format import (  # money and rates read the same in messages and charts
    format_value,
    missing_share,
)
from jobs.statistics import (
    METHOD_LABELS,
    MISSING_SHARE_CHANGE,
    P_VALUE_METHODS,
    FeatureDrift,
    PreparedReference,
    drift_report,
)
from jobs.tasks import BINARY, judge, task_metrics
from store.models import CheckKind, Verdict


@dataclass(frozen=True)
class CheckOutcome:
    kind: CheckKind
    verdict: Verdict
    message: str
    figures: dict[str, Any]
    subjects: tuple[str, ...] = ()  # what breached: features, KPIs, metrics, data problems
    # In-memory evidence for charts (not stored): feature -> (reference, current) values.
    evidence: dict[str, tuple[pd.Series, pd.Series]] = field(default_factory=dict, compare=False, repr=False)


def error(kind: CheckKind, message: str) -> CheckOutcome:
    return CheckOutcome(kind, Verdict.error, message, {"error": message})


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def _figure(value: float) -> str:
    # p-value cuts such as 0.05 / 7 must not print as "0.01"
    return f"{value:.2f}" if abs(value) >= 0.01 else f"{value:.2g}"


# --- drift ------------------------------------------------------------------------------------

def drift(reference: pd.DataFrame | PreparedReference, current: pd.DataFrame, *, numeric: Sequence[str],
          categorical: Sequence[str], numeric_method: str, categorical_method: str,
          thresholds: Mapping[str, float], alpha: float, missing_share_change: float = MISSING_SHARE_CHANGE,
          reference_values: Callable[[list[str]], pd.DataFrame] | None = None) -> CheckOutcome:
    """Drift of every feature. A prepared reference holds no rows: `reference_values(features)` reads the
    reference columns the charts of a breach show (only then)."""
    overrides = {k: v for k, v in thresholds.items() if k != "default"}
    report = drift_report(reference, current, numeric=numeric, categorical=categorical,
                          numeric_method=numeric_method, categorical_method=categorical_method,
                          thresholds=overrides, default_threshold=thresholds.get("default"), alpha=alpha,
                          missing_share_change=missing_share_change)
    order = {f.feature: i for i, f in enumerate(report.drifted)}
    features = sorted(report.features, key=lambda f: (f.feature not in order, order.get(f.feature, 0)))
    figures = {
        "reference_rows": report.reference_rows, "current_rows": report.current_rows, "alpha": report.alpha,
        "features": [{"feature": f.feature, "kind": f.kind, "method": f.method,
                      "method_label": METHOD_LABELS[f.method], "statistic": f.statistic,
                      "threshold": f.threshold, "p_value": f.p_value, "drifted": f.drifted,
                      "severity": f.severity, "reference_missing": f.reference_missing,
                      "current_missing": f.current_missing, "unseen_categories": list(f.unseen_categories),
                      "reference_missing_share": f.reference_missing_share,
                      "current_missing_share": f.current_missing_share, "missing_drifted": f.missing_drifted}
                     for f in features],
    }
    drifted = report.drifted
    if not drifted:
        return CheckOutcome(CheckKind.drift, Verdict.ok,
                            f"no drift in {len(report.features)} features", figures)
    described = ", ".join(_drift_described(f) for f in drifted)
    shown = [f.feature for f in drifted[:2]]
    if isinstance(reference, PreparedReference):
        reference = reference_values(shown) if reference_values is not None else None
    evidence = {name: (reference[name], current[name]) for name in shown} if reference is not None else {}
    return CheckOutcome(CheckKind.drift, Verdict.breach,
                        f"{len(drifted)} of {len(report.features)} features drifted: {described}",
                        figures, tuple(f.feature for f in drifted), evidence)


def _drift_described(f: FeatureDrift) -> str:
    values = f"{METHOD_LABELS[f.method]} {_figure(f.statistic)} (alert {_figure(f.threshold)})"
    if not f.missing_drifted:
        return f"{f.feature} {values}"
    missing = f"missing {missing_share(f.reference_missing_share)} -> {missing_share(f.current_missing_share)}"
    values_moved = (f.statistic < f.threshold) if f.method in P_VALUE_METHODS else (f.statistic >= f.threshold)
    return f"{f.feature} {missing}" + (f", {values}" if values_moved else "")


# --- business KPIs ----------------------------------------------------------------------------

def kpi_value(kpi: Any, frame: pd.DataFrame, masks: dict | None = None) -> float | None:
    """One KPI over one window; None when it is undefined (no rows, an empty denominator).

    `masks` remembers clauses already evaluated on this frame (KPIs often share a `where`)."""
    if frame.empty:
        return None

    def evaluate(text: str) -> np.ndarray:
        if masks is None:
            return parse(text).evaluate(frame)
        key = (text, id(frame))  # the caller keeps the frame alive while `masks` lives
        if key not in masks:
            masks[key] = parse(text).evaluate(frame)
        return masks[key]

    mask = evaluate(kpi.where) if kpi.where else np.ones(len(frame), dtype=bool)
    if kpi.aggregate == "count":
        return float(mask.sum())
    if kpi.aggregate == "sum":
        return float(pd.to_numeric(frame.loc[mask, kpi.column], errors="coerce").sum())
    if kpi.aggregate == "mean":
        values = pd.to_numeric(frame.loc[mask, kpi.column], errors="coerce").dropna()
        return float(values.mean()) if len(values) else None
    if kpi.aggregate == "rate":
        of = evaluate(kpi.of)
        denominator = int(of.sum())
        return float((mask & of).sum() / denominator) if denominator else None
    raise ValueError(f"unknown aggregate {kpi.aggregate!r}")


def _rule(alert: Any, unit: str | None, baseline_windows: int) -> tuple[str, float | None]:
    if alert.above is not None:
        return f"above {format_value(alert.above, unit)}", alert.above
    if alert.below is not None:
        return f"below {format_value(alert.below, unit)}", alert.below
    if alert.above_baseline_pct is not None:
        return f"{alert.above_baseline_pct:g}% above the {baseline_windows}-window baseline", None
    return f"{alert.below_baseline_pct:g}% below the {baseline_windows}-window baseline", None


def kpi_unit(kpi: Any) -> str | None:
    return kpi.unit or ("rate" if kpi.aggregate == "rate" else None)


def _breaches(alert: Any, value: float, baseline: float | None) -> bool:
    a = alert
    return bool((a.above is not None and value > a.above) or (a.below is not None and value < a.below)
                or (a.above_baseline_pct is not None and baseline is not None and baseline > 0
                    and value > baseline * (1 + a.above_baseline_pct / 100))
                or (a.below_baseline_pct is not None and baseline is not None
                    and value < baseline * (1 - a.below_baseline_pct / 100)))


def healthy_baseline(history: Sequence[tuple[datetime, float | None]], alert: Any, n: int,
                     length: timedelta | None = None) -> dict[str, Any]:
    """The last n healthy windows before the current one (the last of `history`, oldest first).

    Walked oldest to newest: a window that breaches against the baseline in force then does not enter it,
    so during an incident the baseline stays the n windows before it began instead of absorbing it. When
    every window after the first n read breached, the incident is older than the history read: the
    baseline is those earliest n windows, and `earliest` says so."""
    healthy: list[tuple[datetime, float]] = []
    skipped = False
    for start, value in history[:-1]:
        if value is None:
            continue
        in_force = float(np.mean([v for _, v in healthy[-n:]])) if len(healthy) >= n else None
        if alert is not None and _breaches(alert, value, in_force):
            skipped = True
            continue
        healthy.append((start, value))
    chosen = healthy[-n:]
    read = [(start, value) for start, value in history[:-1] if value is not None]
    if len(chosen) < n and skipped and len(read) >= n:  # breached all along (an absolute line): the earliest
        chosen = read[:n]
    if len(chosen) < n:  # a relative alert waits for a full baseline: one or two windows are too noisy
        return {"baseline": None, "baseline_start": None, "baseline_end": None, "baseline_earliest": False}
    if length is None:
        length = (history[1][0] - history[0][0]) if len(history) > 1 else timedelta(0)
    # Nothing healthy after the earliest windows read, and data from the very first window read (a model
    # whose data starts later has no older history): the incident may have begun before them.
    earliest = skipped and history[0][1] is not None and chosen == read[:n] and all(s not in {h for h, _ in healthy} for s, _ in read[n:])
    return {"baseline": float(np.mean([v for _, v in chosen])), "baseline_start": chosen[0][0].isoformat(),
            "baseline_end": (chosen[-1][0] + length).isoformat(), "baseline_earliest": bool(earliest)}


def _baseline_before(history: Sequence[tuple[datetime, float | None]], n: int, end: datetime, *,
                     earliest: bool) -> dict[str, Any] | None:
    """The n windows that end by `end` (another KPI's incident began then); None when there are not n."""
    length = (history[1][0] - history[0][0]) if len(history) > 1 else timedelta(0)
    chosen = [(start, value) for start, value in history[:-1] if value is not None and start + length <= end][-n:]
    if len(chosen) < n:
        return None
    return {"baseline": float(np.mean([v for _, v in chosen])), "baseline_start": chosen[0][0].isoformat(),
            "baseline_end": (chosen[-1][0] + length).isoformat(), "baseline_earliest": earliest}


def kpis(specs: Sequence[Any], windows: Mapping[str, Sequence[tuple[datetime, pd.DataFrame]]],
         shown: int | None = None) -> CheckOutcome:
    """Each KPI on the last of its windows (oldest first), against thresholds and its healthy baseline
    (the last n windows before the first breach, see healthy_baseline); `shown` trims the history kept."""
    if not specs or any(not windows[k.name] or windows[k.name][-1][1].empty for k in specs):
        return error(CheckKind.kpi, "the current window has no rows, so no KPI can be computed")
    results, breached = [], []
    masks: dict = {}
    histories = {kpi.name: [(start, kpi_value(kpi, frame, masks)) for start, frame in windows[kpi.name]]
                 for kpi in specs}
    bases = {kpi.name: healthy_baseline(histories[kpi.name], kpi.alert, kpi.alert.baseline_windows if kpi.alert else 4)
             for kpi in specs}
    # One alert, one baseline: every KPI is read against the same weeks, those before the earliest incident.
    ends = [(b["baseline_end"], b["baseline_earliest"]) for b in bases.values() if b["baseline_end"]]
    anchor = min(ends) if ends else None
    for kpi in specs:
        unit = kpi_unit(kpi)
        history = histories[kpi.name]
        value = history[-1][1]
        a = kpi.alert
        n = a.baseline_windows if a else 4
        base = bases[kpi.name]
        if anchor is not None and base["baseline_end"] != anchor[0]:
            base = _baseline_before(history, n, datetime.fromisoformat(anchor[0]), earliest=anchor[1]) or base
        baseline = base["baseline"]
        rule, threshold = _rule(a, unit, n) if a else ("no alert set", None)
        hit = value is not None and a is not None and _breaches(a, value, baseline)
        kept = history[-shown:] if shown else history
        results.append({"name": kpi.name, "label": kpi.label or kpi.name.replace("_", " ").capitalize(), "unit": unit,
                        "aggregate": kpi.aggregate, "value": value,
                        **base, "baseline_windows": n, "threshold": threshold, "rule": rule,
                        "breached": hit,
                        "history": [[s.isoformat(), v] for s, v in kept if v is not None]})
        if hit:
            breached.append(kpi.name)
    figures = {"kpis": results, "rows": len(windows[specs[0].name][-1][1])}
    if any(r["value"] is None for r in results) and not breached:
        missing = ", ".join(r["name"] for r in results if r["value"] is None)
        return CheckOutcome(CheckKind.kpi, Verdict.warn, f"no value this window for {missing}", figures)
    if not breached:
        return CheckOutcome(CheckKind.kpi, Verdict.ok, f"{len(results)} KPIs within their limits", figures)
    described = ", ".join(f"{r['label']} {format_value(r['value'], r['unit'])} ({r['rule']})"
                          for r in results if r["breached"])
    return CheckOutcome(CheckKind.kpi, Verdict.breach, f"KPI breached: {described}", figures, tuple(breached))


# --- performance ------------------------------------------------------------------------------

def performance(frame: pd.DataFrame, *, label: str, prediction: str, score: str | None,
                metrics: Sequence[str], alert: Mapping[str, Any],
                training_metrics: Mapping[str, Any], task: str = BINARY) -> CheckOutcome:
    """Metrics on the rows whose label has arrived (late labels: the rest are left out), each against its
    alert line: an error metric (MAE, RMSE...) breaches above its line, a score (recall, R2...) below."""
    labelled = frame[frame[label].notna()] if label in frame else frame.iloc[0:0]
    if labelled.empty:
        return CheckOutcome(CheckKind.performance, Verdict.warn,
                            f"no labelled rows yet in this window ({len(frame):,} rows await labels)",
                            {"rows": len(frame), "labelled_rows": 0})
    try:
        values = task_metrics(task, labelled[label], labelled[prediction],
                              labelled[score] if score and task == BINARY else None, metrics=metrics)
    except MetricsError as exc:
        return error(CheckKind.performance, str(exc))
    breaches = [verdict.metric for verdict in judge(values, alert) if verdict.breached]
    figures = {"metrics": values, "training_metrics": {k: training_metrics.get(k) for k in values},
               "rows": len(frame), "labelled_rows": len(labelled), "breaches": breaches}
    summary = ", ".join(f"{k} {metric_value(v)}" for k, v in values.items())
    if breaches:
        described = ", ".join(f"{m} {metric_value(values[m])} (alert {metric_rule(alert[m])})" for m in breaches)
        return CheckOutcome(CheckKind.performance, Verdict.breach, f"{described}; {summary}", figures,
                            tuple(breaches))
    return CheckOutcome(CheckKind.performance, Verdict.ok, summary, figures)


def metric_value(value: float) -> str:
    """0.61 for a share, 12,300 for an error in the label's unit."""
    return f"{value:.2f}" if abs(value) < 100 else f"{value:,.0f}"


def metric_rule(rule: Any) -> str:
    if rule is None:
        return ""
    return f"below {metric_value(rule.below)}" if rule.below is not None else f"above {metric_value(rule.above)}"


# --- data quality -----------------------------------------------------------------------------

def data_quality(frame: pd.DataFrame, *, features: Sequence[str], baseline_rows: Sequence[int],
                 reference_schema: Mapping[str, str], current_schema: Mapping[str, str],
                 min_rows_vs_baseline_pct: float, allowed_null_share: Callable[[float], float],
                 reference_null_share: Mapping[str, float] | None = None,
                 max_null_share: float | None = None) -> CheckOutcome:
    """Schema, row count and missing values. A feature's missing share is judged against the reference's
    (`allowed_null_share(reference share)`), so a feature that is always 8% missing is not an incident;
    `max_null_share`, when given, is a ceiling whatever the reference."""
    problems: list[str] = []
    subjects: list[str] = []
    missing = sorted(set(reference_schema) - set(current_schema))
    new = sorted(set(current_schema) - set(reference_schema))
    changed = sorted(c for c in set(reference_schema) & set(current_schema)
                     if reference_schema[c] != current_schema[c])
    if missing:
        problems.append(f"columns missing from production: {', '.join(missing)}")
        subjects += [f"missing:{c}" for c in missing]
    if changed:
        problems.append("column types changed: " + ", ".join(
            f"{c} {reference_schema[c]} -> {current_schema[c]}" for c in changed))
        subjects += [f"type:{c}" for c in changed]
    rows = len(frame)
    baseline = float(np.mean(baseline_rows)) if baseline_rows else None
    if rows == 0:
        problems.append("no rows in this window")
        subjects.append("rows")
    elif baseline and rows < baseline * min_rows_vs_baseline_pct / 100:
        problems.append(f"{rows:,} rows, {rows / baseline:.0%} of the usual {baseline:,.0f}")
        subjects.append("rows")
    null_share = {c: float(frame[c].isna().mean()) if rows and c in frame else None for c in features}
    usual = {c: (reference_null_share or {}).get(c, 0.0) for c in features}
    allowed = {c: min(allowed_null_share(usual[c]), max_null_share if max_null_share is not None else 1.0)
               for c in features}
    heavy = {c: s for c, s in null_share.items() if s is not None and s > allowed[c] + 1e-12}
    if heavy:
        problems.append("more missing values than usual: " + ", ".join(
            f"{c} {missing_share(s)} (reference {missing_share(usual[c])}, allowed up to {missing_share(allowed[c])})"
            for c, s in heavy.items()))
        subjects += [f"nulls:{c}" for c in heavy]
    figures = {"rows": rows, "baseline_rows": baseline, "null_share": null_share,
               "reference_null_share": usual, "allowed_null_share": allowed,
               "schema": {"missing": missing, "new": new, "changed": changed}, "problems": problems}
    if problems:
        return CheckOutcome(CheckKind.data_quality, Verdict.breach, "; ".join(problems), figures, tuple(subjects))
    note = f"; new columns: {', '.join(new)}" if new else ""
    return CheckOutcome(CheckKind.data_quality, Verdict.ok if not new else Verdict.warn,
                        f"{rows:,} rows, nulls within limits{note}", figures)
