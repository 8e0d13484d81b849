"""Categorical features: category counts aligned across the two windows (categories absent from the
reference are counted, not fatal), Jensen-Shannon distance, PSI and the chi-square test on them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from jobs.statistics.methods import DriftInputError, chi_square_from_counts, psi_from_counts


@dataclass(frozen=True)
class CategoryCounts:
    categories: pd.Index  # object dtype, only categories that occur
    counts: np.ndarray
    missing: int


def category_counts(values: Any) -> CategoryCounts:
    # factorize + bincount: hashing each string once is several times faster than value_counts + align.
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes, categories = series.cat.codes.to_numpy(), series.cat.categories
    else:
        codes, categories = pd.factorize(series)
    present = codes >= 0
    counts = np.bincount(codes[present], minlength=len(categories))
    occurs = counts > 0
    return CategoryCounts(pd.Index(categories.to_numpy(dtype=object)[occurs], dtype=object), counts[occurs],
                           len(series) - int(np.count_nonzero(present)))


def aligned_counts(reference: CategoryCounts,
                    current: CategoryCounts) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Reference and current counts over every category seen in either, and the unseen categories."""
    position = reference.categories.get_indexer(current.categories)
    unseen = position < 0
    ref_counts = np.concatenate((reference.counts, np.zeros(np.count_nonzero(unseen), dtype=np.int64)))
    cur_counts = np.zeros(ref_counts.size, dtype=np.int64)
    cur_counts[position[~unseen]] = current.counts[~unseen]
    cur_counts[reference.counts.size:] = current.counts[unseen]
    ranked = sorted(zip(-current.counts[unseen], map(str, current.categories[unseen]), strict=True))
    return ref_counts, cur_counts, tuple(category for _, category in ranked)


def _sample_counts(values: Any, window: str) -> CategoryCounts:
    counts = category_counts(values)
    if counts.counts.size == 0:
        raise DriftInputError(f"the {window} sample has no non-missing categories")
    return counts


def jensen_shannon_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    ref, cur = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    mean = (ref + cur) / 2
    # here, not at the top: the CLI loads this module without computing drift
    from scipy import special

    divergence = np.sum(special.rel_entr(ref, mean) + special.rel_entr(cur, mean)) / 2
    return float(math.sqrt(max(divergence, 0.0)))


def _counts_pair(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    return aligned_counts(_sample_counts(reference, "reference"), _sample_counts(current, "current"))


def jensen_shannon(reference: Any, current: Any) -> float:
    """Jensen-Shannon distance (natural log) of the category frequencies, as Evidently computes it."""
    ref_counts, cur_counts, _ = _counts_pair(reference, current)
    return jensen_shannon_from_counts(ref_counts, cur_counts)


def psi_categorical(reference: Any, current: Any) -> float:
    """Population stability index over the categories seen in either window."""
    ref_counts, cur_counts, _ = _counts_pair(reference, current)
    return psi_from_counts(ref_counts, cur_counts)


def chi_square(reference: Any, current: Any) -> tuple[float, float]:
    """Chi-square test of homogeneity (statistic, p-value) on the window x category table.

    Equals scipy.stats.chi2_contingency(table, correction=False): a two-sample test, unlike
    Evidently's goodness-of-fit test that treats the reference frequencies as exact.
    """
    ref_counts, cur_counts, _ = _counts_pair(reference, current)
    return chi_square_from_counts(ref_counts, cur_counts)
