"""Automated blueprint steps: each check judged on facts the registry already holds about a candidate, as a
verdict with the reason a reviewer reads ("roc_auc 0.912 vs 0.905 in production, allowed drop 0.01").

Pure functions: bot.services.automated_steps gathers the facts and records the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.spec import CheckSpec, MetricCheckSpec
from jobs.statistics import P_VALUE_METHODS
from jobs.tasks import improvement, lower_is_better


@dataclass(frozen=True)
class Evaluated:
    """A version's latest evaluation: its window, labelled rows and metrics."""

    label: str
    window_start: datetime
    window_end: datetime
    rows: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class CheckRunFact:
    as_of: datetime
    verdict: str  # ok, warn, breach, error
    message: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Facts:
    """What a check may read about the candidate `label` of `model`."""

    model: str
    label: str
    candidate: Evaluated | None  # its latest evaluation (the comparison with production)
    production: Evaluated | None  # production's evaluation on the candidate's window; None: nothing to set beside
    train_start: datetime | None
    train_end: datetime | None
    quality_runs: tuple[CheckRunFact, ...] = ()  # the model's data-quality runs inside the training window
    drift_run: CheckRunFact | None = None  # the model's latest drift check run


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def _n(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"


def _day(at: datetime) -> str:
    return f"{at:%Y-%m-%d}"


def judge(check: CheckSpec, facts: Facts) -> Verdict:
    return {"metric": _metric, "min_labelled_rows": _rows, "data_quality_clean": _quality,
            "max_drift": _drift}[check.kind](check, facts)


def _not_evaluated(facts: Facts) -> Verdict:
    return Verdict(False, f"{facts.label} has not been evaluated on a labelled window yet, so there is nothing to "
                          "judge it on")


def _metric(check: CheckSpec, facts: Facts) -> Verdict:
    rule: MetricCheckSpec = check.metric
    name, mine = rule.name, facts.candidate
    if mine is None:
        return _not_evaluated(facts)
    if name not in mine.metrics or mine.metrics[name] is None:
        return Verdict(False, f"{name} was not measured on {mine.label}'s evaluation window")
    value, parts, failures = float(mine.metrics[name]), [], []
    worse = "rise" if lower_is_better(name) else "drop"
    if rule.max_drop is not None:
        theirs = facts.production.metrics.get(name) if facts.production else None
        if theirs is None:
            parts.append(f"{name} {_n(value)}; nothing in production measured on the same window to compare with")
        else:
            drop = -improvement(name, float(theirs), value)
            said = f"{name} {_n(value)} vs {_n(float(theirs))} in production"
            if drop > rule.max_drop + 1e-12:
                failures.append(f"{said}: a {worse} of {_n(drop)}, more than the allowed {_n(rule.max_drop)}")
            else:
                parts.append(f"{said}, allowed {worse} {_n(rule.max_drop)}")
    for bound, low in ((rule.min, True), (rule.max, False)):
        if bound is None:
            continue
        ok = value >= bound if low else value <= bound
        said = f"{name} {_n(value)}, {'at least' if low else 'at most'} {_n(bound)} required"
        (parts if ok else failures).append(said if ok else f"{name} {_n(value)} is "
                                           f"{'below the minimum' if low else 'above the maximum'} {_n(bound)}")
    window = f" on {_day(mine.window_start)} to {_day(mine.window_end)}"
    if failures:
        return Verdict(False, "; ".join(failures) + window)
    return Verdict(True, "; ".join(parts) + window)


def _rows(check: CheckSpec, facts: Facts) -> Verdict:
    mine = facts.candidate
    if mine is None:
        return _not_evaluated(facts)
    need = check.min_labelled_rows
    window = f"{_day(mine.window_start)} to {_day(mine.window_end)}"
    if mine.rows < need:
        return Verdict(False, f"{mine.rows:,} labelled rows in the evaluation window {window}, fewer than the "
                              f"{need:,} required")
    return Verdict(True, f"{mine.rows:,} labelled rows in the evaluation window {window}, at least {need:,} required")


def _quality(check: CheckSpec, facts: Facts) -> Verdict:
    if facts.train_start is None or facts.train_end is None:
        return Verdict(False, f"{facts.label} has no training window recorded, so its data quality can't be judged")
    window = f"{_day(facts.train_start)} to {_day(facts.train_end)}"
    ran = [r for r in facts.quality_runs if r.verdict != "error"]
    if not ran:
        return Verdict(False, f"no data-quality check ran on {facts.model} in the training window {window}")
    breaches = [r for r in ran if r.verdict == "breach"]
    if breaches:
        first = breaches[0]
        return Verdict(False, f"{len(breaches)} of {len(ran)} data-quality checks in the training window {window} "
                              f"breached, first on {_day(first.as_of)}: {first.message}")
    return Verdict(True, f"{len(ran)} data-quality checks in the training window {window}, none breached")


def largest_drift(figures: dict[str, Any]) -> tuple[str, str, float] | None:
    """The feature with the largest distance statistic of a drift run (feature, method label, statistic);
    features judged by a p-value (ks, chi_square) are left out: a p-value is not a distance."""
    distances = [(f["feature"], f.get("method_label", f.get("method", "")), float(f["statistic"]))
                 for f in figures.get("features", []) if f.get("method") not in P_VALUE_METHODS
                 and f.get("statistic") is not None]
    return max(distances, key=lambda d: d[2]) if distances else None


def _drift(check: CheckSpec, facts: Facts) -> Verdict:
    run = facts.drift_run
    if run is None:
        return Verdict(False, f"no drift check has run on {facts.model} yet")
    top = largest_drift(run.figures)
    if top is None:
        return Verdict(False, f"the latest drift check of {facts.model} ({_day(run.as_of)}) measured no feature "
                              "by a distance")
    feature, method, value = top
    said = f"largest drift {_n(value)} ({feature}, {method}) in the check of {_day(run.as_of)}"
    if value > check.max_drift:
        return Verdict(False, f"{said}, more than the allowed {_n(check.max_drift)}")
    return Verdict(True, f"{said}, allowed {_n(check.max_drift)}")
