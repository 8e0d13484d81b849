"""Regression and multiclass metrics, which way each is better, and the spec's shorthand alert lines."""

import math

import numpy as np
import pandas as pd
import pytest

from jobs.metrics import MetricsError
from jobs.spec import PerformanceSpec
from jobs.task_metrics import multiclass_metrics, regression_metrics
from jobs.tasks import (
    compared_metrics,
    improvement,
    judge,
    lower_is_better,
    task_metrics,
)


def test_regression_metrics_on_labelled_rows_only():
    got = regression_metrics([100.0, 200.0, None, 400.0], [110.0, 190.0, 999.0, 380.0])
    assert got["mae"] == pytest.approx(40 / 3)
    assert got["rmse"] == pytest.approx(math.sqrt((100 + 100 + 400) / 3))
    assert got["mape"] == pytest.approx((0.1 + 0.05 + 0.05) / 3)
    assert 0.9 < got["r2"] < 1


def test_mape_is_left_out_where_a_true_value_is_zero_and_r2_needs_spread():
    assert "mape" not in regression_metrics([0.0, 2.0], [1.0, 2.0])
    with pytest.raises(MetricsError, match="r2 needs at least two labelled rows with different true values"):
        regression_metrics([3.0, 3.0], [1.0, 2.0], metrics=["r2"])
    with pytest.raises(MetricsError, match="unknown regression metric"):
        regression_metrics([1.0], [1.0], metrics=["recall"])


def test_multiclass_metrics_treat_classes_read_back_as_floats_as_the_same_class():
    truth = pd.Series([0.0, 1.0, 2.0, 2.0, np.nan])
    pred = pd.Series([0, 1, 2, 1, 0])
    probabilities = pd.DataFrame({"0": [0.8, 0.1, 0.1, 0.1, 0.9], "1": [0.1, 0.8, 0.1, 0.6, 0.05],
                                  "2": [0.1, 0.1, 0.8, 0.3, 0.05]})
    got = multiclass_metrics(truth, pred, probabilities)
    assert got["accuracy"] == 0.75
    assert got["macro_f1"] == pytest.approx(np.mean([1.0, 2 / 3, 2 / 3]))
    assert got["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.8, 0.8, 0.3])))
    assert "log_loss" not in multiclass_metrics(truth, pred)  # no probabilities: left out


def test_task_metrics_picks_the_task_and_direction_reads_both_ways():
    assert set(task_metrics("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0], metrics=["mae"])) == {"mae"}
    assert task_metrics("binary_classification", [1, 0], [1, 0], metrics=["accuracy"]) == {"accuracy": 1.0}
    assert lower_is_better("mae") and lower_is_better("log_loss") and not lower_is_better("r2")
    assert improvement("mae", 20.0, 15.0) == 5.0 and improvement("recall", 0.6, 0.5) == pytest.approx(-0.1)
    assert compared_metrics("regression", ["mape", "recall"]) == ("mae", "rmse", "r2", "mape")


def test_a_bare_number_is_the_line_a_metric_must_not_be_worse_than():
    spec = PerformanceSpec(metrics=["mae", "r2"], alert={"mae": 12_000, "r2": 0.6})
    assert (spec.alert["mae"].above, spec.alert["mae"].below) == (12_000, None)
    assert (spec.alert["r2"].above, spec.alert["r2"].below) == (None, 0.6)
    verdicts = judge({"mae": 12_500.0, "r2": 0.8, "rmse": 20_000.0}, spec.alert)
    assert [(v.metric, v.breached) for v in verdicts] == [("mae", True), ("r2", False)]
