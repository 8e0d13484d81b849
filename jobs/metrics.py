"""Binary classification metrics on labelled rows (labels may arrive late: unlabelled rows are skipped)."""

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm

CLASSIFICATION_METRICS = ("precision", "recall", "f1", "roc_auc", "accuracy")


class MetricsError(ValueError):
    """The inputs cannot produce the requested metric; the message says which and why."""


def classification_metrics(
    y_true: Iterable,
    y_pred: Iterable,
    y_score: Iterable | None = None,
    *,
    metrics: Sequence[str] = CLASSIFICATION_METRICS,
) -> dict[str, float]:
    """Metrics for the positive class 1; precision/recall/f1 are 0.0 when undefined (nothing predicted or no positives)."""
    unknown = [name for name in metrics if name not in CLASSIFICATION_METRICS]
    if unknown:
        raise MetricsError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(CLASSIFICATION_METRICS)}")
    truth = _column(y_true, "y_true")
    pred = _column(y_pred, "y_pred")
    score = None if y_score is None else _column(y_score, "y_score")
    for name, other in (("y_pred", pred), ("y_score", score)):
        if other is not None and len(other) != len(truth):
            raise MetricsError(f"{name} has {len(other)} rows but y_true has {len(truth)}")

    labelled = ~truth.isna().to_numpy()
    if not labelled.any():
        raise MetricsError(f"no labelled rows: all {len(truth)} labels are missing" if len(truth) else "y_true is empty")
    truth = _binary(truth[labelled], "y_true")
    pred = _binary(pred[labelled], "y_pred")

    results: dict[str, float] = {}
    for name in metrics:
        if name == "roc_auc":
            results[name] = _roc_auc(truth, None if score is None else score[labelled])
        elif name == "accuracy":
            results[name] = float(skm.accuracy_score(truth, pred))
        else:
            scorer = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[name]
            results[name] = float(scorer(truth, pred, zero_division=0.0))
    return results


def _column(values: Iterable, name: str) -> pd.Series:
    series = values.reset_index(drop=True) if isinstance(values, pd.Series) else pd.Series(list(values) if not hasattr(values, "__len__") else values, dtype=None)
    if series.ndim != 1:
        raise MetricsError(f"{name} must be one-dimensional")
    return series


def _binary(values: pd.Series, name: str) -> np.ndarray:
    if values.isna().any():
        raise MetricsError(f"{name} has {int(values.isna().sum())} missing value(s) on labelled rows")
    try:
        array = values.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise MetricsError(f"{name} must hold 0/1 values: {error}") from None
    invalid = sorted(set(np.unique(array)) - {0.0, 1.0})
    if invalid:
        raise MetricsError(f"{name} must hold 0/1 values, found {invalid[:5]}")
    return array.astype(np.int64)


def _roc_auc(truth: np.ndarray, score: pd.Series | None) -> float:
    if score is None:
        raise MetricsError("roc_auc needs y_score (the predicted fraud probability); none was given")
    if score.isna().any():
        raise MetricsError(f"roc_auc: y_score has {int(score.isna().sum())} missing value(s) on labelled rows")
    classes = np.unique(truth)
    if len(classes) < 2:
        raise MetricsError(f"roc_auc needs both classes in y_true; the labelled rows only hold {int(classes[0])}")
    return float(skm.roc_auc_score(truth, score.to_numpy(dtype=np.float64)))
