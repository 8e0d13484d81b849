"""A window's features as comparisons read them (sorted finite values, category counts), and a reference
window prepared once for many comparisons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jobs.statistics.categorical import CategoryCounts, category_counts
from jobs.statistics.methods import DriftInputError


def numeric_column(frame: pd.DataFrame, feature: str, window: str) -> tuple[np.ndarray, int]:
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


def categorical_column(frame: pd.DataFrame, feature: str, window: str) -> CategoryCounts:
    counts = category_counts(frame[feature])
    if counts.counts.size == 0:
        raise DriftInputError(f"feature '{feature}' has no usable values in the {window} window: "
                              f"all {len(frame):,} rows are missing")
    return counts


@dataclass(frozen=True)
class ReferenceFeature:
    summary: np.ndarray | CategoryCounts | None  # sorted finite values, or category counts
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
    features: Mapping[tuple[str, str], ReferenceFeature]  # (feature, "numeric" | "categorical")

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
    features: dict[tuple[str, str], ReferenceFeature] = {}
    for kind, names in (("numeric", numeric), ("categorical", categorical)):
        for feature in names:
            if feature not in reference.columns:
                continue  # drift_report names absent features itself
            try:
                if kind == "numeric":
                    values, missing = numeric_column(reference, feature, "reference")
                    features[feature, kind] = ReferenceFeature(values, missing, float(np.std(values)), None)
                else:
                    counts = categorical_column(reference, feature, "reference")
                    features[feature, kind] = ReferenceFeature(counts, counts.missing, None, None)
            except DriftInputError as error:
                features[feature, kind] = ReferenceFeature(None, 0, None, str(error))
    return PreparedReference(len(reference), frozenset(reference.columns), features)


def prepared_feature(reference: PreparedReference, feature: str, kind: str) -> ReferenceFeature:
    try:
        prepared = reference.features[feature, kind]
    except KeyError:
        raise ValueError(f"the prepared reference has no {kind} feature '{feature}'; prepare it with that feature") \
            from None
    if prepared.error is not None:
        raise DriftInputError(prepared.error)
    return prepared
