"""The task types a model may have, their metrics, and which way each metric is better.

A metric is higher-is-better (recall, R2, macro F1) or lower-is-better (errors: MAE, RMSE, MAPE, log loss).
A performance alert fires when a metric is worse than its line: below it for the first kind, above it for
the second. Comparing a candidate with production reads the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from jobs.metrics import CLASSIFICATION_METRICS, classification_metrics
from jobs.task_metrics import (
    MULTICLASS_METRICS,
    REGRESSION_METRICS,
    multiclass_metrics,
    regression_metrics,
)

BINARY, REGRESSION, MULTICLASS = "binary_classification", "regression", "multiclass_classification"
TASKS: tuple[str, ...] = (BINARY, REGRESSION, MULTICLASS)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    BINARY: CLASSIFICATION_METRICS, REGRESSION: REGRESSION_METRICS, MULTICLASS: MULTICLASS_METRICS,
}
ALL_METRICS: tuple[str, ...] = tuple(dict.fromkeys(m for names in TASK_METRICS.values() for m in names))
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape", "log_loss"})
# Shares between 0 and 1; r2 is at most 1 but may be any negative number.
SHARES = frozenset({*CLASSIFICATION_METRICS, "accuracy", "macro_f1", "weighted_f1"})
# What a candidate is compared with production on, besides the metrics the spec's performance section lists.
COMPARED: dict[str, tuple[str, ...]] = {
    BINARY: ("recall", "precision", "roc_auc"),
    REGRESSION: ("mae", "rmse", "r2"),
    MULTICLASS: ("accuracy", "macro_f1", "weighted_f1", "log_loss"),
}
# The metrics a comparison chart sets side by side: one scale on one axis (a regression's errors are in the
# label's unit, its R2 and MAPE are not).
CHARTED: dict[str, tuple[str, ...]] = {REGRESSION: ("mae", "rmse")}
# The python backend's built-in trainer, for every task type; and the task-specific ones it hands over to.
BUILT_IN_TRAINER = "jobs.training:retrain"
TASK_TRAINERS: dict[str, str] = {
    REGRESSION: "jobs.task_training:retrain_regression", MULTICLASS: "jobs.task_training:retrain_multiclass",
}


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


def improvement(metric: str, champion: float, challenger: float) -> float:
    """How much better the challenger is: positive when it is better, whichever way the metric points."""
    delta = challenger - champion
    return -delta if lower_is_better(metric) else delta


def compared_metrics(task: str, listed: Iterable[str] = ()) -> tuple[str, ...]:
    """The metrics a comparison reports for this task: the task's usual ones, then the spec's others."""
    own = TASK_METRICS[task]
    return tuple(dict.fromkeys([*COMPARED[task], *(m for m in listed if m in own)]))


def task_metrics(task: str, y_true: Iterable, y_pred: Iterable, y_score: Iterable | None = None, *,
                 metrics: Sequence[str], probabilities: pd.DataFrame | None = None) -> dict[str, float]:
    """The metrics asked, computed as the task defines them (jobs.metrics.MetricsError when they can't be)."""
    if task == REGRESSION:
        return regression_metrics(y_true, y_pred, metrics=metrics)
    if task == MULTICLASS:
        return multiclass_metrics(y_true, y_pred, probabilities, metrics=metrics)
    return classification_metrics(y_true, y_pred, y_score, metrics=metrics)


@dataclass(frozen=True)
class ThresholdVerdict:
    """One metric against the line the spec's performance alert draws for it."""

    metric: str
    value: float
    above: float | None  # alert above this
    below: float | None  # alert below this
    breached: bool


def breached(value: float, rule: Any) -> bool:
    below, above = getattr(rule, "below", None), getattr(rule, "above", None)
    return bool((below is not None and value < below) or (above is not None and value > above))


def judge(values: Mapping[str, float], alert: Mapping[str, Any]) -> tuple[ThresholdVerdict, ...]:
    """Each metric that has both a value and an alert line, against it, in the order of `values`."""
    return tuple(ThresholdVerdict(metric, float(value), getattr(alert[metric], "above", None),
                                  getattr(alert[metric], "below", None), breached(value, alert[metric]))
                 for metric, value in values.items() if metric in alert)


def charted(task: str, metrics: Iterable[str]) -> list[str]:
    """The metrics of a comparison that one chart can show on one axis."""
    keep = CHARTED.get(task)
    return [m for m in metrics if keep is None or m in keep]
