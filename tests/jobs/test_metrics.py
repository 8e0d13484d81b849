import math

import numpy as np
import pandas as pd
import pytest

from jobs.metrics import CLASSIFICATION_METRICS, MetricsError, classification_metrics

# Counted by hand: TP = 2 (rows 0, 3), FP = 1 (row 4), FN = 1 (row 2), TN = 2 (rows 1, 5).
Y_TRUE = [1, 0, 1, 1, 0, 0]
Y_PRED = [1, 0, 0, 1, 1, 0]
# Positive scores 0.9, 0.4, 0.8 against negative 0.1, 0.7, 0.2: 8 of the 9 pairs are ordered right.
Y_SCORE = [0.9, 0.1, 0.4, 0.8, 0.7, 0.2]
EXPECTED = {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "roc_auc": 8 / 9, "accuracy": 4 / 6}


def assert_close(actual: dict[str, float], expected: dict[str, float]) -> None:
    assert list(actual) == list(expected)
    for name, value in expected.items():
        assert math.isclose(actual[name], value, rel_tol=1e-12), name


def test_metrics_equal_the_hand_computed_values():
    result = classification_metrics(Y_TRUE, Y_PRED, Y_SCORE)
    assert_close(result, EXPECTED)
    assert all(type(value) is float for value in result.values())


def test_rows_without_a_label_are_dropped_first():
    y_true = pd.Series([*Y_TRUE, None, np.nan], index=range(10, 18), dtype="float64")
    y_pred = np.array([*Y_PRED, 1, 1])
    y_score = pd.Series([*Y_SCORE, 0.99, 0.01], index=range(50, 58))
    assert_close(classification_metrics(y_true, y_pred, y_score), EXPECTED)


def test_nullable_labels_and_plain_lists_with_none_are_accepted():
    nullable = pd.array([*Y_TRUE, pd.NA], dtype="Int64")
    assert_close(classification_metrics(nullable, [*Y_PRED, 0], [*Y_SCORE, 0.5]), EXPECTED)
    assert_close(classification_metrics([*Y_TRUE, None], [*Y_PRED, 1], [*Y_SCORE, 0.5]), EXPECTED)


def test_a_subset_of_metrics_comes_back_in_the_order_asked():
    result = classification_metrics(Y_TRUE, Y_PRED, metrics=("accuracy", "recall"))
    assert_close(result, {"accuracy": 4 / 6, "recall": 2 / 3})


def test_nothing_predicted_positive_gives_zero_precision_not_an_error():
    result = classification_metrics([1, 0, 1, 0], [0, 0, 0, 0], metrics=("precision", "recall", "f1", "accuracy"))
    assert result == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.5}


def test_boolean_inputs_count_as_zero_and_one():
    result = classification_metrics(np.array(Y_TRUE, dtype=bool), np.array(Y_PRED, dtype=bool), Y_SCORE)
    assert_close(result, EXPECTED)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "y_score", "metrics", "message"),
    [
        ([], [], None, ("recall",), "y_true is empty"),
        ([None, None], [0, 1], None, ("recall",), "no labelled rows: all 2 labels are missing"),
        (Y_TRUE, Y_PRED, None, CLASSIFICATION_METRICS, "roc_auc needs y_score"),
        ([0, 0, 0], [0, 1, 0], [0.1, 0.9, 0.2], ("roc_auc",), "roc_auc needs both classes .* only holds 0"),
        (Y_TRUE, Y_PRED, None, ("recall", "auc"), "unknown metric\\(s\\) auc"),
        (Y_TRUE, Y_PRED[:-1], None, ("recall",), "y_pred has 5 rows but y_true has 6"),
        (Y_TRUE, Y_PRED, Y_SCORE[:2], ("recall",), "y_score has 2 rows but y_true has 6"),
        ([0, 2, 1], [0, 1, 1], None, ("recall",), "y_true must hold 0/1, found \\[2.0\\]"),
        ([0, 1, 1], [0, None, 1], None, ("recall",), "y_pred has 1 missing value\\(s\\) on labelled rows"),
        ([0, 1, 1], ["no", "yes", "yes"], None, ("recall",), "y_pred must be numeric"),
        ([0, 1, 1], [0, 1, 1], [0.1, None, 0.8], ("roc_auc",), "y_score has 1 missing value"),
        ([[0, 1]], [[0, 1]], None, ("recall",), "y_true must be one-dimensional"),
    ],
)
def test_bad_input_names_the_problem(y_true, y_pred, y_score, metrics, message):
    with pytest.raises(MetricsError, match=message):
        classification_metrics(y_true, y_pred, y_score, metrics=metrics)


def test_metrics_error_is_a_value_error():
    assert issubclass(MetricsError, ValueError)
