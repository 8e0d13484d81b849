"""Regression and multiclass classification metrics on the labelled rows (unlabelled rows are skipped).

Binary classification's live in jobs/metrics.py; jobs/tasks.py picks the right set for a model's task.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from jobs.metrics import MetricsError, _numbers, _series

REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
MULTICLASS_METRICS = ("accuracy", "macro_f1", "weighted_f1", "log_loss")


def _labelled(y_true: Iterable, y_pred: Iterable, metrics: Sequence[str], known: Sequence[str],
              task: str) -> tuple[pd.Series, pd.Series, np.ndarray]:
    unknown = [name for name in metrics if name not in known]
    if unknown:
        raise MetricsError(f"unknown {task} metric(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    truth, pred = _series(y_true, "y_true"), _series(y_pred, "y_pred")
    if len(pred) != len(truth):
        raise MetricsError(f"y_pred has {len(pred)} rows but y_true has {len(truth)}")
    labelled = truth.notna().to_numpy()
    if not labelled.any():
        if truth.empty:
            raise MetricsError("y_true is empty")
        raise MetricsError(f"no labelled rows: all {len(truth)} labels are missing")
    return truth[labelled], pred[labelled], labelled


def regression_metrics(y_true: Iterable, y_pred: Iterable, *,
                       metrics: Sequence[str] = REGRESSION_METRICS) -> dict[str, float]:
    """Errors of a numeric prediction, in the order asked. r2 needs at least two labelled rows that differ;
    mape is left out (not computed) when a true value is 0, where it is undefined."""
    truth, pred, _ = _labelled(y_true, y_pred, metrics, REGRESSION_METRICS, "regression")
    actual, predicted = _numbers(truth, "y_true"), _numbers(pred, "y_pred")
    # here, not at the top: the CLI and the Slack app load this module
    from sklearn import metrics as skm

    results: dict[str, float] = {}
    for name in metrics:
        if name == "mae":
            results[name] = float(np.mean(np.abs(actual - predicted)))
        elif name == "rmse":
            results[name] = float(np.sqrt(np.mean((actual - predicted) ** 2)))
        elif name == "r2":
            if len(actual) < 2 or np.all(actual == actual[0]):
                raise MetricsError("r2 needs at least two labelled rows with different true values")
            results[name] = float(skm.r2_score(actual, predicted))
        elif name == "mape":
            if np.any(actual == 0):
                continue  # undefined where a true value is 0: better absent than infinite
            results[name] = float(np.mean(np.abs((actual - predicted) / actual)))
    return results


def multiclass_metrics(y_true: Iterable, y_pred: Iterable, probabilities: pd.DataFrame | None = None, *,
                       metrics: Sequence[str] = MULTICLASS_METRICS) -> dict[str, float]:
    """Metrics over every class, in the order asked. Classes compare as text, so 2 and "2" are one class.

    `probabilities` has one column per class the model knows (named by the class), one row per input row;
    log_loss needs it and is left out without it.
    """
    truth, pred, labelled = _labelled(y_true, y_pred, metrics, MULTICLASS_METRICS, "multiclass classification")
    missing = int(pred.isna().sum())
    if missing:
        raise MetricsError(f"y_pred has {missing} missing value(s) on labelled rows")
    actual, predicted = _classes(truth), _classes(pred)
    from sklearn import metrics as skm

    results: dict[str, float] = {}
    for name in metrics:
        if name == "accuracy":
            results[name] = float(skm.accuracy_score(actual, predicted))
        elif name == "macro_f1":
            results[name] = float(skm.f1_score(actual, predicted, average="macro", zero_division=0.0))
        elif name == "weighted_f1":
            results[name] = float(skm.f1_score(actual, predicted, average="weighted", zero_division=0.0))
        elif name == "log_loss" and probabilities is not None:
            chosen = probabilities.reset_index(drop=True)[labelled]
            classes = [str(c) for c in chosen.columns]
            unseen = sorted(set(actual) - set(classes))
            if unseen:
                raise MetricsError(f"log_loss: the model gives no probability for class(es) {', '.join(unseen)}")
            results[name] = float(skm.log_loss(actual, chosen.to_numpy(dtype=np.float64), labels=classes))
    return results


def _classes(values: pd.Series) -> np.ndarray:
    # A class read back from SQLite as 2.0 is the class 2 a model predicts.
    if pd.api.types.is_float_dtype(values) and np.all(np.mod(values.to_numpy(), 1) == 0):
        values = values.astype(np.int64)
    return values.astype(str).to_numpy()
