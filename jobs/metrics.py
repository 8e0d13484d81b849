"""Binary classification metrics on the labelled rows (labels arrive late: unlabelled rows are skipped)."""

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

CLASSIFICATION_METRICS = ("precision", "recall", "f1", "roc_auc", "accuracy")
# scikit-learn is imported where a metric is computed: the CLI and the Slack app load this module without it.
_AT_THRESHOLD = {"precision": "precision_score", "recall": "recall_score", "f1": "f1_score"}


class MetricsError(ValueError):
    """The inputs cannot give the requested metric; the message says which input and why."""


def classification_metrics(
    y_true: Iterable,
    y_pred: Iterable,
    y_score: Iterable | None = None,
    *,
    metrics: Sequence[str] = CLASSIFICATION_METRICS,
) -> dict[str, float]:
    """Metrics for the positive class 1, in the order asked.

    Rows whose y_true is missing (NaN/None/NA) are dropped first. precision, recall and f1 are 0.0
    when undefined (nothing predicted positive, or no positive label), as in scikit-learn's
    zero_division=0. roc_auc needs y_score and both classes among the labelled rows.
    """
    unknown = [name for name in metrics if name not in CLASSIFICATION_METRICS]
    if unknown:
        raise MetricsError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(CLASSIFICATION_METRICS)}")
    truth = _series(y_true, "y_true")
    inputs = {"y_pred": _series(y_pred, "y_pred")}
    if y_score is not None:
        inputs["y_score"] = _series(y_score, "y_score")
    for name, values in inputs.items():
        if len(values) != len(truth):
            raise MetricsError(f"{name} has {len(values)} rows but y_true has {len(truth)}")

    labelled = truth.notna().to_numpy()
    if not labelled.any():
        if truth.empty:
            raise MetricsError("y_true is empty")
        raise MetricsError(f"no labelled rows: all {len(truth)} labels are missing")
    truth = _binary(truth[labelled], "y_true")
    pred = _binary(inputs["y_pred"][labelled], "y_pred")

    from sklearn import metrics as skm

    results: dict[str, float] = {}
    for name in metrics:
        if name == "roc_auc":
            score = inputs.get("y_score")
            results[name] = _roc_auc(truth, None if score is None else score[labelled])
        elif name == "accuracy":
            results[name] = float(skm.accuracy_score(truth, pred))
        else:
            results[name] = float(getattr(skm, _AT_THRESHOLD[name])(truth, pred, zero_division=0.0))
    return results


def _series(values: Iterable, name: str) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    array = np.asarray(values if hasattr(values, "__len__") else list(values))
    if array.ndim != 1:
        raise MetricsError(f"{name} must be one-dimensional, got shape {array.shape}")
    return pd.Series(array)


def _numbers(values: pd.Series, name: str) -> np.ndarray:
    missing = int(values.isna().sum())
    if missing:
        raise MetricsError(f"{name} has {missing} missing value(s) on labelled rows")
    try:
        return values.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricsError(f"{name} must be numeric, found dtype {values.dtype}") from None


def _binary(values: pd.Series, name: str) -> np.ndarray:
    array = _numbers(values, name)
    invalid = sorted(set(np.unique(array).tolist()) - {0.0, 1.0})
    if invalid:
        raise MetricsError(f"{name} must hold 0/1, found {invalid[:5]}")
    return array.astype(np.int64)


def _roc_auc(truth: np.ndarray, score: pd.Series | None) -> float:
    if score is None:
        raise MetricsError("roc_auc needs y_score (the predicted probability), none was given")
    classes = np.unique(truth)
    if len(classes) < 2:
        raise MetricsError(f"roc_auc needs both classes among the labelled rows, y_true only holds {int(classes[0])}")
    from sklearn import metrics as skm

    return float(skm.roc_auc_score(truth, _numbers(score, "y_score")))
