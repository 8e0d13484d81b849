"""The drift methods by name, their labels and default thresholds, the error for input that cannot be
compared, and the two measures both kinds of feature compute from counts: PSI and the chi-square test."""

from __future__ import annotations

import numpy as np

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


class DriftInputError(ValueError):
    """The windows or options cannot be compared; the message names the feature, window or value."""


def psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    ref = np.maximum(ref_counts / ref_counts.sum(), _PSI_FLOOR)
    cur = np.maximum(cur_counts / cur_counts.sum(), _PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def chi_square_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
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
    # here, not at the top: scipy.stats takes half a second to import
    from scipy import stats

    return statistic, float(stats.chi2.sf(statistic, ref.size - 1))
