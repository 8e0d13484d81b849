"""Numeric features: Kolmogorov-Smirnov, normalised Wasserstein and PSI on reference quantile bins, all
from sorted finite samples (one merge gives both the KS statistic and the Wasserstein distance)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jobs.statistics.methods import PSI_BINS, DriftInputError, psi_from_counts

# Evidently divides by max(std, 0.001) so a constant reference does not divide by zero.
_STD_FLOOR = 0.001
# scipy.stats.ks_2samp(method="auto") uses the exact distribution up to this size and Smirnov's
# asymptotic one above it; small samples go to scipy itself, large ones reuse our sorted arrays.
_EXACT_KS_MAX_N = 10_000


def _finite(values: Any) -> np.ndarray:
    array = pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)
    return array[np.isfinite(array)]


def _sorted_sample(values: Any, window: str) -> np.ndarray:
    array = np.sort(_finite(values))
    if array.size == 0:
        raise DriftInputError(f"the {window} sample has no finite values")
    return array


def ecdf_comparison(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
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


def ks_pvalue(ref: np.ndarray, cur: np.ndarray, statistic: float) -> float:
    # here, not at the top: scipy.stats takes half a second to import
    from scipy import stats

    if max(ref.size, cur.size) <= _EXACT_KS_MAX_N:
        return float(stats.ks_2samp(ref, cur).pvalue)
    m, n = sorted([float(ref.size), float(cur.size)], reverse=True)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(m * n / (m + n))), 0.0, 1.0))


def _ks_from_sorted(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    if max(ref.size, cur.size) <= _EXACT_KS_MAX_N:
        from scipy import stats

        result = stats.ks_2samp(ref, cur)
        return float(result.statistic), float(result.pvalue)
    statistic, _ = ecdf_comparison(ref, cur)
    return statistic, ks_pvalue(ref, cur, statistic)


def wasserstein_from_sorted(ref: np.ndarray, distance: float, std: float | None = None) -> float:
    return distance / max(float(np.std(ref)) if std is None else std, _STD_FLOOR)


def quantile_bin_counts(ref: np.ndarray, cur: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
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


def ks_2samp(reference: Any, current: Any) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov (statistic, p-value), as scipy.stats.ks_2samp."""
    return _ks_from_sorted(_sorted_sample(reference, "reference"), _sorted_sample(current, "current"))


def wasserstein_normalized(reference: Any, current: Any) -> float:
    """Wasserstein-1 distance divided by the reference standard deviation (Evidently's "wasserstein")."""
    ref, cur = _sorted_sample(reference, "reference"), _sorted_sample(current, "current")
    return wasserstein_from_sorted(ref, ecdf_comparison(ref, cur)[1])


def psi_numeric(reference: Any, current: Any, bins: int = PSI_BINS) -> float:
    """Population stability index on `bins` bins cut at the reference quantiles."""
    ref, cur = _sorted_sample(reference, "reference"), _sorted_sample(current, "current")
    return psi_from_counts(*quantile_bin_counts(ref, cur, bins))
