"""drift_report: every feature of the current window against the reference, with its verdict (see the
package's docstring for the effect-size and significance gates)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jobs.statistics.categorical import aligned_counts, jensen_shannon_from_counts
from jobs.statistics.methods import (
    CATEGORICAL_METHODS,
    DEFAULT_THRESHOLDS,
    METHOD_LABELS,
    NUMERIC_METHODS,
    P_VALUE_METHODS,
    PSI_BINS,
    DriftInputError,
    chi_square_from_counts,
    psi_from_counts,
)
from jobs.statistics.numeric import ecdf_comparison, ks_pvalue, quantile_bin_counts, wasserstein_from_sorted
from jobs.statistics.reference import PreparedReference, categorical_column, numeric_column, prepared_feature

_PARALLEL_MIN_ROWS = 50_000  # below this a thread pool costs more than it saves
_WORKERS = min(4, os.cpu_count() or 1)  # numpy sorts release the GIL; each worker holds ~50 MB at 1M rows
_SMALLEST_P = 1e-300
# A feature's missing share is part of its distribution: moving this many points (and significantly) is drift.
MISSING_SHARE_CHANGE = 0.05


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numeric" | "categorical"
    method: str
    statistic: float  # distance / PSI / JS; for ks and chi_square the p-value
    threshold: float  # for ks and chi_square the per-feature p-value cut (family-wise level / features)
    p_value: float  # p-value of the significance gate test
    drifted: bool
    reference_rows: int
    current_rows: int
    reference_missing: int
    current_missing: int
    unseen_categories: tuple[str, ...] = ()  # in current, not in reference; most frequent first
    missing_drifted: bool = False  # the missing share moved (it alone can make the feature drifted)
    missing_threshold: float = MISSING_SHARE_CHANGE

    @property
    def reference_missing_share(self) -> float:
        return self.reference_missing / self.reference_rows if self.reference_rows else 0.0

    @property
    def current_missing_share(self) -> float:
        return self.current_missing / self.current_rows if self.current_rows else 0.0

    @property
    def severity(self) -> float:
        """How far past the threshold (over 1 means over), comparable across methods for ranking."""
        if self.method in P_VALUE_METHODS:
            shift = math.log(max(self.statistic, _SMALLEST_P)) / math.log(self.threshold)
        else:
            shift = self.statistic / self.threshold
        if self.missing_drifted:
            moved = abs(self.current_missing_share - self.reference_missing_share) / self.missing_threshold
            return max(shift, moved)
        return shift


@dataclass(frozen=True)
class DriftReport:
    features: tuple[FeatureDrift, ...]
    alpha: float  # family-wise
    per_feature_alpha: float
    reference_rows: int
    current_rows: int

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        """Drifted features, worst first."""
        hits = [f for f in self.features if f.drifted]
        return tuple(sorted(hits, key=lambda f: (-f.severity, f.feature)))


@dataclass(frozen=True)
class _Plan:
    feature: str
    kind: str
    method: str
    threshold: float  # as given; for p-value methods the family-wise level
    features: int
    missing_change: float = MISSING_SHARE_CHANGE


def _numeric_drift(plan: _Plan, reference: pd.DataFrame | PreparedReference, current: pd.DataFrame,
                   gate: float) -> FeatureDrift:
    if isinstance(reference, PreparedReference):
        prepared = prepared_feature(reference, plan.feature, "numeric")
        ref, ref_missing, ref_std = prepared.summary, prepared.missing, prepared.std
    else:
        ref, ref_missing = numeric_column(reference, plan.feature, "reference")
        ref_std = None
    cur, cur_missing = numeric_column(current, plan.feature, "current")
    if plan.method == "psi":
        ref_counts, cur_counts = quantile_bin_counts(ref, cur, PSI_BINS)
        statistic = psi_from_counts(ref_counts, cur_counts)
        p_value = chi_square_from_counts(ref_counts, cur_counts)[1]
    else:
        ks, distance = ecdf_comparison(ref, cur)
        p_value = ks_pvalue(ref, cur, ks)
        statistic = p_value if plan.method == "ks" else wasserstein_from_sorted(ref, distance, ref_std)
    return _verdict(plan, statistic, p_value, gate, (ref.size + ref_missing, cur.size + cur_missing),
                    (ref_missing, cur_missing), ())


def _categorical_drift(plan: _Plan, reference: pd.DataFrame | PreparedReference, current: pd.DataFrame,
                       gate: float) -> FeatureDrift:
    if isinstance(reference, PreparedReference):
        ref = prepared_feature(reference, plan.feature, "categorical").summary
    else:
        ref = categorical_column(reference, plan.feature, "reference")
    cur = categorical_column(current, plan.feature, "current")
    ref_counts, cur_counts, unseen = aligned_counts(ref, cur)
    p_value = chi_square_from_counts(ref_counts, cur_counts)[1]
    if plan.method == "jensen_shannon":
        statistic = jensen_shannon_from_counts(ref_counts, cur_counts)
    elif plan.method == "psi":
        statistic = psi_from_counts(ref_counts, cur_counts)
    else:
        statistic = p_value
    return _verdict(plan, statistic, p_value, gate, (len(reference), len(current)), (ref.missing, cur.missing),
                    unseen)


def _verdict(plan: _Plan, statistic: float, p_value: float, gate: float, rows: tuple[int, int],
             missing: tuple[int, int], unseen: tuple[str, ...]) -> FeatureDrift:
    if plan.method in P_VALUE_METHODS:
        threshold = plan.threshold / plan.features
        drifted = statistic < threshold
    else:
        threshold = plan.threshold
        drifted = statistic >= threshold and p_value < gate
    missing_drifted = _missing_moved(rows, missing, plan.missing_change, gate)
    return FeatureDrift(feature=plan.feature, kind=plan.kind, method=plan.method, statistic=float(statistic),
                        threshold=threshold, p_value=float(p_value), drifted=bool(drifted or missing_drifted),
                        reference_rows=rows[0], current_rows=rows[1], reference_missing=missing[0],
                        current_missing=missing[1], unseen_categories=unseen, missing_drifted=missing_drifted,
                        missing_threshold=plan.missing_change)


def _missing_moved(rows: tuple[int, int], missing: tuple[int, int], change: float, gate: float) -> bool:
    """The missing share moved by `change` or more, and a chi-square test on present/missing counts says
    it is no accident of sampling (at the same per-feature level as the other gate)."""
    if not all(rows) or abs(missing[1] / rows[1] - missing[0] / rows[0]) < change:
        return False
    ref = np.array([missing[0], rows[0] - missing[0]])
    cur = np.array([missing[1], rows[1] - missing[1]])
    return chi_square_from_counts(ref, cur)[1] < gate


def _check_method(method: str, allowed: Sequence[str], kind: str) -> None:
    if method not in allowed:
        raise DriftInputError(f"unknown {kind} drift method '{method}'; choose one of {', '.join(allowed)}")


def _check_threshold(value: float, method: str, where: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise DriftInputError(f"{where}: threshold must be a number, got {value!r}") from None
    if method in P_VALUE_METHODS and not 0 < value < 1:
        raise DriftInputError(f"{where}: {METHOD_LABELS[method]} threshold must be between 0 and 1, got {value}")
    if not 0 < value < math.inf:
        raise DriftInputError(f"{where}: {METHOD_LABELS[method]} threshold must be a positive number, got {value}")
    return value


def _check_frames(reference: pd.DataFrame | PreparedReference, current: pd.DataFrame,
                  features: Sequence[str]) -> None:
    for window, frame in (("reference", reference), ("current", current)):
        if len(frame) == 0:
            raise DriftInputError(f"the {window} window is empty (0 rows)")
        absent = [feature for feature in features if feature not in frame.columns]
        if absent:
            raise DriftInputError(
                f"the {window} window has no column for feature(s) {', '.join(map(repr, absent))}")


def _plans(numeric: Sequence[str], categorical: Sequence[str], numeric_method: str, categorical_method: str,
           thresholds: Mapping[str, float], default_threshold: float | None, alpha: float,
           missing_change: float = MISSING_SHARE_CHANGE) -> list[_Plan]:
    for kind, names in (("numeric", numeric), ("categorical", categorical)):
        if isinstance(names, str):
            raise DriftInputError(f"{kind} must be a list of column names, not the string '{names}'")
    _check_method(numeric_method, NUMERIC_METHODS, "numeric")
    _check_method(categorical_method, CATEGORICAL_METHODS, "categorical")
    features = [*numeric, *categorical]
    if not features:
        raise DriftInputError("no features to compare: give at least one numeric or categorical feature")
    repeated = sorted({feature for feature in features if features.count(feature) > 1})
    if repeated:
        raise DriftInputError(f"feature(s) listed more than once (numeric and categorical together): {repeated}")
    unknown = sorted(set(thresholds) - set(features))
    if unknown:
        raise DriftInputError(f"threshold given for feature(s) not compared: {unknown}")
    plans = []
    kinds = (("numeric", numeric, numeric_method), ("categorical", categorical, categorical_method))
    for kind, names, method in kinds:
        for feature in names:
            if feature in thresholds:
                threshold = _check_threshold(thresholds[feature], method, f"feature '{feature}'")
            elif default_threshold is not None:
                threshold = _check_threshold(default_threshold, method, "default_threshold")
            else:
                threshold = alpha if method in P_VALUE_METHODS else DEFAULT_THRESHOLDS[method]
            plans.append(_Plan(feature, kind, method, threshold, len(features), missing_change))
    return plans


def drift_report(reference: pd.DataFrame | PreparedReference, current: pd.DataFrame, *, numeric: Sequence[str],
                 categorical: Sequence[str], numeric_method: str = "wasserstein",
                 categorical_method: str = "jensen_shannon", thresholds: Mapping[str, float] | None = None,
                 default_threshold: float | None = None, alpha: float = 0.05,
                 missing_share_change: float = MISSING_SHARE_CHANGE) -> DriftReport:
    """Compare every feature of `current` with `reference`; see the module docstring for the verdicts.

    thresholds: per-feature overrides, in the unit of the feature's method. default_threshold: one
    threshold for every feature without an override. alpha: family-wise false-alert level of the
    significance gate, and the default family-wise level of the p-value methods. missing_share_change: how
    far (in points) a feature's missing share may move before the feature counts as drifted, whatever its
    values do (a significant move only, as the other gate). `reference` may be a
    PreparedReference (see prepare_reference) of the same window: the figures are the same.
    """
    if not 0 < alpha < 1:
        raise DriftInputError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0 < missing_share_change <= 1:
        raise DriftInputError(f"missing_share_change must be a share above 0 and at most 1, got {missing_share_change}")
    plans = _plans(numeric, categorical, numeric_method, categorical_method, thresholds or {},
                   default_threshold, alpha, missing_share_change)
    _check_frames(reference, current, [plan.feature for plan in plans])
    gate = alpha / len(plans)

    def run(plan: _Plan) -> FeatureDrift:
        compare = _numeric_drift if plan.kind == "numeric" else _categorical_drift
        return compare(plan, reference, current, gate)

    if max(len(reference), len(current)) >= _PARALLEL_MIN_ROWS and _WORKERS > 1:
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            results = tuple(pool.map(run, plans))
    else:
        results = tuple(map(run, plans))
    return DriftReport(features=results, alpha=alpha, per_feature_alpha=gate, reference_rows=len(reference),
                       current_rows=len(current))
