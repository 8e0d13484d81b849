"""Drift statistics: is a feature in the current window distributed like in the reference window?

Per feature, one method gives the figure shown to people (an effect size, or a p-value for the
p-value methods). Numeric: normalised Wasserstein, PSI on reference quantile bins, Kolmogorov-Smirnov.
Categorical: Jensen-Shannon distance, PSI, chi-square. Missing values (NaN, None, +-inf) are counted
and left out; categories absent from the reference are counted, not fatal.

Verdicts. A feature is drifted when its effect size is at or over its threshold AND a two-sample
test rejects "same distribution" at alpha / number_of_features (Bonferroni). The effect-size gate is
what keeps tiny, harmless shifts quiet in million-row windows, where every test is significant; the
significance gate is what keeps small windows quiet, where effect sizes are noisy. Bonferroni
rather than Holm: the same family-wise guarantee, and one per-feature level a person can read.
For the p-value methods (ks, chi_square) the p-value is the figure and its threshold is the
family-wise level, so the feature is drifted when p < threshold / number_of_features.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

NUMERIC_METHODS = ("wasserstein", "psi", "ks")
CATEGORICAL_METHODS = ("jensen_shannon", "psi", "chi_square")
P_VALUE_METHODS = frozenset({"ks", "chi_square"})
DEFAULT_THRESHOLDS: dict[str, float] = {
    "wasserstein": 0.1,  # Evidently's default: a shift of a tenth of the reference std
    "jensen_shannon": 0.1,  # Evidently's default
    "psi": 0.2,  # the usual "significant shift" line (0.1-0.2 is "moderate")
    "ks": 0.05,  # family-wise levels: the p-value methods default to `alpha` instead
    "chi_square": 0.05,
}
METHOD_LABELS: dict[str, str] = {
    "wasserstein": "Wasserstein",
    "jensen_shannon": "Jensen-Shannon",
    "psi": "PSI",
    "ks": "KS p-value",
    "chi_square": "chi-square p-value",
}

PSI_BINS = 10
# An empty bin makes PSI infinite; like Evidently, empty proportions are floored at 1e-4.
_PSI_FLOOR = 1e-4
# Evidently divides by max(std, 0.001) so a constant reference does not divide by zero.
_STD_FLOOR = 0.001
# scipy.stats.ks_2samp(method="auto") uses the exact distribution up to this size and Smirnov's
# asymptotic one above it; small samples go to scipy itself, large ones reuse our sorted arrays.
_EXACT_KS_MAX_N = 10_000
_PARALLEL_MIN_ROWS = 50_000  # below this a thread pool costs more than it saves
_WORKERS = min(4, os.cpu_count() or 1)  # numpy sorts release the GIL; each worker holds ~50 MB at 1M rows
_SMALLEST_P = 1e-300


class DriftInputError(ValueError):
    """The windows or options cannot be compared; the message names the feature, window or value."""


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

    @property
    def severity(self) -> float:
        """How far past the threshold (over 1 means over), comparable across methods for ranking."""
        if self.method in P_VALUE_METHODS:
            return math.log(max(self.statistic, _SMALLEST_P)) / math.log(self.threshold)
        return self.statistic / self.threshold


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


# --- numeric ----------------------------------------------------------------------------------


def _finite(values: Any) -> np.ndarray:
    array = pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)
    return array[np.isfinite(array)]


def _sorted_sample(values: Any, window: str) -> np.ndarray:
    array = np.sort(_finite(values))
    if array.size == 0:
        raise DriftInputError(f"the {window} sample has no finite values")
    return array


def _ecdf_comparison(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """KS statistic and the raw Wasserstein-1 distance of two sorted samples, from one merge."""
    n1, n2 = ref.size, cur.size
    both = np.concatenate((ref, cur))
    order = np.argsort(both, kind="stable")  # two presorted runs: timsort merges them in linear time
    merged = both[order]
    del both
    count_type = np.int32 if n1 + n2 < 2**31 else np.int64  # int32 counts halve the memory traffic
    cur_count = np.cumsum(order >= n1, dtype=count_type)  # current values at or before each position
    del order
    gap = np.diff(merged)
    del merged
    ref_count = np.arange(1, n1 + n2 + 1, dtype=count_type)
    ref_count -= cur_count
    cdf_gap = ref_count / n1  # the same divisions as scipy, so the KS statistic matches it bit for bit
    del ref_count
    cdf_gap -= cur_count / n2
    del cur_count
    distance = np.abs(cdf_gap[:-1], out=cdf_gap[:-1])
    # Inside a run of tied values the ECDFs are incomplete; the run's last position (gap > 0) is exact.
    distance[gap == 0] = 0.0
    ks = float(distance.max()) if distance.size else 0.0
    return ks, float(np.dot(distance, gap))


def _ks_pvalue(ref: np.ndarray, cur: np.ndarray, statistic: float) -> float:
    if max(ref.size, cur.size) <= _EXACT_KS_MAX_N:
        return float(stats.ks_2samp(ref, cur).pvalue)
    m, n = sorted([float(ref.size), float(cur.size)], reverse=True)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(m * n / (m + n))), 0.0, 1.0))


def _ks_from_sorted(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    if max(ref.size, cur.size) <= _EXACT_KS_MAX_N:
        result = stats.ks_2samp(ref, cur)
        return float(result.statistic), float(result.pvalue)
    statistic, _ = _ecdf_comparison(ref, cur)
    return statistic, _ks_pvalue(ref, cur, statistic)


def _wasserstein_from_sorted(ref: np.ndarray, distance: float, std: float | None = None) -> float:
    return distance / max(float(np.std(ref)) if std is None else std, _STD_FLOOR)


def _quantile_bin_counts(ref: np.ndarray, cur: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts per bin, bins cut at the reference quantiles (linear interpolation, as np.quantile)."""
    position = np.linspace(0.0, 1.0, bins + 1)[1:-1] * (ref.size - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, ref.size - 1)
    fraction = position - low
    lower, upper = ref[low], ref[high]
    edges = np.where(fraction < 0.5, lower + (upper - lower) * fraction, upper - (upper - lower) * (1 - fraction))
    edges = np.unique(edges)  # tied quantiles collapse into one edge
    ref_counts = np.diff(np.concatenate(([0], np.searchsorted(ref, edges, side="right"), [ref.size])))
    cur_counts = np.diff(np.concatenate(([0], np.searchsorted(cur, edges, side="right"), [cur.size])))
    return ref_counts, cur_counts


def _psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    ref = np.maximum(ref_counts / ref_counts.sum(), _PSI_FLOOR)
    cur = np.maximum(cur_counts / cur_counts.sum(), _PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _chi_square_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity on the 2 x k table (no Yates correction)."""
    seen = (ref_counts + cur_counts) > 0
    ref, cur = ref_counts[seen].astype(np.float64), cur_counts[seen].astype(np.float64)
    if ref.size < 2:
        return 0.0, 1.0
    total = ref.sum() + cur.sum()
    column = ref + cur
    expected_ref, expected_cur = column * ref.sum() / total, column * cur.sum() / total
    statistic = float(np.sum((ref - expected_ref) ** 2 / expected_ref)
                      + np.sum((cur - expected_cur) ** 2 / expected_cur))
    return statistic, float(stats.chi2.sf(statistic, ref.size - 1))


def ks_2samp(reference: Any, current: Any) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov (statistic, p-value), as scipy.stats.ks_2samp."""
    return _ks_from_sorted(_sorted_sample(reference, "reference"), _sorted_sample(current, "current"))


def wasserstein_normalized(reference: Any, current: Any) -> float:
    """Wasserstein-1 distance divided by the reference standard deviation (Evidently's "wasserstein")."""
    ref, cur = _sorted_sample(reference, "reference"), _sorted_sample(current, "current")
    return _wasserstein_from_sorted(ref, _ecdf_comparison(ref, cur)[1])


def psi_numeric(reference: Any, current: Any, bins: int = PSI_BINS) -> float:
    """Population stability index on `bins` bins cut at the reference quantiles."""
    ref, cur = _sorted_sample(reference, "reference"), _sorted_sample(current, "current")
    return _psi_from_counts(*_quantile_bin_counts(ref, cur, bins))


# --- categorical ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CategoryCounts:
    categories: pd.Index  # object dtype, only categories that occur
    counts: np.ndarray
    missing: int


def _category_counts(values: Any) -> _CategoryCounts:
    # factorize + bincount: hashing each string once is several times faster than value_counts + align.
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes, categories = series.cat.codes.to_numpy(), series.cat.categories
    else:
        codes, categories = pd.factorize(series)
    present = codes >= 0
    counts = np.bincount(codes[present], minlength=len(categories))
    occurs = counts > 0
    return _CategoryCounts(pd.Index(categories.to_numpy(dtype=object)[occurs], dtype=object), counts[occurs],
                           len(series) - int(np.count_nonzero(present)))


def _aligned_counts(reference: _CategoryCounts,
                    current: _CategoryCounts) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Reference and current counts over every category seen in either, and the unseen categories."""
    position = reference.categories.get_indexer(current.categories)
    unseen = position < 0
    ref_counts = np.concatenate((reference.counts, np.zeros(np.count_nonzero(unseen), dtype=np.int64)))
    cur_counts = np.zeros(ref_counts.size, dtype=np.int64)
    cur_counts[position[~unseen]] = current.counts[~unseen]
    cur_counts[reference.counts.size:] = current.counts[unseen]
    ranked = sorted(zip(-current.counts[unseen], map(str, current.categories[unseen]), strict=True))
    return ref_counts, cur_counts, tuple(category for _, category in ranked)


def _sample_counts(values: Any, window: str) -> _CategoryCounts:
    counts = _category_counts(values)
    if counts.counts.size == 0:
        raise DriftInputError(f"the {window} sample has no non-missing categories")
    return counts


def _jensen_shannon_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    ref, cur = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    mean = (ref + cur) / 2
    divergence = np.sum(special.rel_entr(ref, mean) + special.rel_entr(cur, mean)) / 2
    return float(math.sqrt(max(divergence, 0.0)))


def _counts_pair(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    return _aligned_counts(_sample_counts(reference, "reference"), _sample_counts(current, "current"))


def jensen_shannon(reference: Any, current: Any) -> float:
    """Jensen-Shannon distance (natural log) of the category frequencies, as Evidently computes it."""
    ref_counts, cur_counts, _ = _counts_pair(reference, current)
    return _jensen_shannon_from_counts(ref_counts, cur_counts)


def psi_categorical(reference: Any, current: Any) -> float:
    """Population stability index over the categories seen in either window."""
    ref_counts, cur_counts, _ = _counts_pair(reference, current)
    return _psi_from_counts(ref_counts, cur_counts)


def chi_square(reference: Any, current: Any) -> tuple[float, float]:
    """Chi-square test of homogeneity (statistic, p-value) on the window x category table.

    Equals scipy.stats.chi2_contingency(table, correction=False): a two-sample test, unlike
    Evidently's goodness-of-fit test that treats the reference frequencies as exact.
    """
    ref_counts, cur_counts, _ = _counts_pair(reference, current)
    return _chi_square_from_counts(ref_counts, cur_counts)


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    feature: str
    kind: str
    method: str
    threshold: float  # as given; for p-value methods the family-wise level
    features: int


def _numeric_column(frame: pd.DataFrame, feature: str, window: str) -> tuple[np.ndarray, int]:
    column = frame[feature]
    if not pd.api.types.is_numeric_dtype(column.dtype):
        try:
            column = pd.to_numeric(column)
        except (TypeError, ValueError) as error:
            raise DriftInputError(
                f"numeric feature '{feature}' holds non-numeric values in the {window} window ({error})") from None
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    usable = int(np.count_nonzero(finite))
    if usable == 0:
        raise DriftInputError(f"feature '{feature}' has no usable values in the {window} window: "
                              f"all {values.size:,} rows are missing")
    if usable < values.size:
        values = values[finite]
    return np.sort(values), len(column) - usable


def _categorical_column(frame: pd.DataFrame, feature: str, window: str) -> _CategoryCounts:
    counts = _category_counts(frame[feature])
    if counts.counts.size == 0:
        raise DriftInputError(f"feature '{feature}' has no usable values in the {window} window: "
                              f"all {len(frame):,} rows are missing")
    return counts


@dataclass(frozen=True)
class _ReferenceFeature:
    summary: np.ndarray | _CategoryCounts | None  # sorted finite values, or category counts
    missing: int
    std: float | None  # of the sorted values, computed once
    error: str | None  # raised as a DriftInputError when the feature is compared, as the frame itself would


@dataclass(frozen=True)
class PreparedReference:
    """A reference window reduced to what comparisons need: each numeric feature's sorted finite values
    and each categorical feature's counts. Prepared once, it serves every later comparison with the same
    figures as the frame itself; problems with a feature are raised when that feature is compared."""

    rows: int
    columns: frozenset[str]
    features: Mapping[tuple[str, str], _ReferenceFeature]  # (feature, "numeric" | "categorical")

    @property
    def nbytes(self) -> int:
        total = 0
        for prepared in self.features.values():
            if isinstance(prepared.summary, np.ndarray):
                total += prepared.summary.nbytes
            elif prepared.summary is not None:
                total += prepared.summary.counts.nbytes + 64 * len(prepared.summary.categories)
        return total

    def __len__(self) -> int:
        return self.rows


def prepare_reference(reference: pd.DataFrame, *, numeric: Sequence[str],
                      categorical: Sequence[str]) -> PreparedReference:
    """Summarise the reference window once for many `drift_report` calls against it."""
    features: dict[tuple[str, str], _ReferenceFeature] = {}
    for kind, names in (("numeric", numeric), ("categorical", categorical)):
        for feature in names:
            if feature not in reference.columns:
                continue  # drift_report names absent features itself
            try:
                if kind == "numeric":
                    values, missing = _numeric_column(reference, feature, "reference")
                    features[feature, kind] = _ReferenceFeature(values, missing, float(np.std(values)), None)
                else:
                    counts = _categorical_column(reference, feature, "reference")
                    features[feature, kind] = _ReferenceFeature(counts, counts.missing, None, None)
            except DriftInputError as error:
                features[feature, kind] = _ReferenceFeature(None, 0, None, str(error))
    return PreparedReference(len(reference), frozenset(reference.columns), features)


def _prepared(reference: PreparedReference, feature: str, kind: str) -> _ReferenceFeature:
    try:
        prepared = reference.features[feature, kind]
    except KeyError:
        raise ValueError(f"the prepared reference has no {kind} feature '{feature}'; prepare it with that feature") \
            from None
    if prepared.error is not None:
        raise DriftInputError(prepared.error)
    return prepared


def _numeric_drift(plan: _Plan, reference: pd.DataFrame | PreparedReference, current: pd.DataFrame,
                   gate: float) -> FeatureDrift:
    if isinstance(reference, PreparedReference):
        prepared = _prepared(reference, plan.feature, "numeric")
        ref, ref_missing, ref_std = prepared.summary, prepared.missing, prepared.std
    else:
        ref, ref_missing = _numeric_column(reference, plan.feature, "reference")
        ref_std = None
    cur, cur_missing = _numeric_column(current, plan.feature, "current")
    if plan.method == "psi":
        ref_counts, cur_counts = _quantile_bin_counts(ref, cur, PSI_BINS)
        statistic = _psi_from_counts(ref_counts, cur_counts)
        p_value = _chi_square_from_counts(ref_counts, cur_counts)[1]
    else:
        ks, distance = _ecdf_comparison(ref, cur)
        p_value = _ks_pvalue(ref, cur, ks)
        statistic = p_value if plan.method == "ks" else _wasserstein_from_sorted(ref, distance, ref_std)
    return _verdict(plan, statistic, p_value, gate, (ref.size + ref_missing, cur.size + cur_missing),
                    (ref_missing, cur_missing), ())


def _categorical_drift(plan: _Plan, reference: pd.DataFrame | PreparedReference, current: pd.DataFrame,
                       gate: float) -> FeatureDrift:
    if isinstance(reference, PreparedReference):
        ref = _prepared(reference, plan.feature, "categorical").summary
    else:
        ref = _categorical_column(reference, plan.feature, "reference")
    cur = _categorical_column(current, plan.feature, "current")
    ref_counts, cur_counts, unseen = _aligned_counts(ref, cur)
    p_value = _chi_square_from_counts(ref_counts, cur_counts)[1]
    if plan.method == "jensen_shannon":
        statistic = _jensen_shannon_from_counts(ref_counts, cur_counts)
    elif plan.method == "psi":
        statistic = _psi_from_counts(ref_counts, cur_counts)
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
    return FeatureDrift(feature=plan.feature, kind=plan.kind, method=plan.method, statistic=float(statistic),
                        threshold=threshold, p_value=float(p_value), drifted=bool(drifted),
                        reference_rows=rows[0], current_rows=rows[1], reference_missing=missing[0],
                        current_missing=missing[1], unseen_categories=unseen)


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
           thresholds: Mapping[str, float], default_threshold: float | None, alpha: float) -> list[_Plan]:
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
            plans.append(_Plan(feature, kind, method, threshold, len(features)))
    return plans


def drift_report(reference: pd.DataFrame | PreparedReference, current: pd.DataFrame, *, numeric: Sequence[str],
                 categorical: Sequence[str], numeric_method: str = "wasserstein",
                 categorical_method: str = "jensen_shannon", thresholds: Mapping[str, float] | None = None,
                 default_threshold: float | None = None, alpha: float = 0.05) -> DriftReport:
    """Compare every feature of `current` with `reference`; see the module docstring for the verdicts.

    thresholds: per-feature overrides, in the unit of the feature's method. default_threshold: one
    threshold for every feature without an override. alpha: family-wise false-alert level of the
    significance gate, and the default family-wise level of the p-value methods. `reference` may be a
    PreparedReference (see prepare_reference) of the same window: the figures are the same.
    """
    if not 0 < alpha < 1:
        raise DriftInputError(f"alpha must be between 0 and 1, got {alpha}")
    plans = _plans(numeric, categorical, numeric_method, categorical_method, thresholds or {},
                   default_threshold, alpha)
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
