"""Automated blueprint checks judged on facts: each passes or fails with the figures that decided it."""

from __future__ import annotations

from datetime import datetime

from jobs.blueprint_checks import CheckRunFact, Evaluated, Facts, judge
from jobs.spec import CheckSpec

START, END = datetime(2026, 3, 30), datetime(2026, 4, 6)


def _facts(mine: dict | None = None, theirs: dict | None = None, rows: int = 6000, **kwargs) -> Facts:
    candidate = Evaluated("v2", START, END, rows, mine) if mine is not None else None
    production = Evaluated("v1", START, END, rows, theirs) if theirs is not None else None
    return Facts("card-fraud", "v2", candidate, production, kwargs.pop("train_start", datetime(2026, 3, 1)),
                 kwargs.pop("train_end", START), **kwargs)


def _judge(check: dict, facts: Facts) -> tuple[bool, str]:
    verdict = judge(CheckSpec.model_validate(check), facts)
    return verdict.passed, verdict.reason


def test_a_metric_within_its_allowed_drop_passes_and_says_both_figures():
    assert _judge({"metric": {"name": "roc_auc", "max_drop": 0.01}}, _facts({"roc_auc": 0.912}, {"roc_auc": 0.905})) \
        == (True, "roc_auc 0.912 vs 0.905 in production, allowed drop 0.01 on 2026-03-30 to 2026-04-06")
    assert _judge({"metric": {"name": "roc_auc", "max_drop": 0.01}}, _facts({"roc_auc": 0.88}, {"roc_auc": 0.905})) \
        == (False, ("roc_auc 0.88 vs 0.905 in production: a drop of 0.025, more than the allowed 0.01 on 2026-03-30 "
                   "to 2026-04-06"))


def test_an_error_metric_reads_the_drop_as_a_rise():
    passed, reason = _judge({"metric": {"name": "mae", "max_drop": 1000}}, _facts({"mae": 21_300}, {"mae": 20_000}))
    assert not passed and reason.startswith("mae 21,300 vs 20,000 in production: a rise of 1,300, more than the "
                                            "allowed 1,000")
    assert _judge({"metric": {"name": "mae", "max_drop": 1000}}, _facts({"mae": 19_000}, {"mae": 20_000}))[0]


def test_an_absolute_minimum_and_a_missing_evaluation():
    assert _judge({"metric": {"name": "recall", "min": 0.8}}, _facts({"recall": 0.75}))[1].startswith(
        "recall 0.75 is below the minimum 0.8")
    assert _judge({"metric": {"name": "recall", "min": 0.8}}, _facts(None)) == (
        False, "v2 has not been evaluated on a labelled window yet, so there is nothing to judge it on")
    assert _judge({"metric": {"name": "roc_auc", "max_drop": 0.01}}, _facts({"recall": 0.9}, {"recall": 0.9})) == (
        False, "roc_auc was not measured on v2's evaluation window")


def test_labelled_rows_of_the_evaluation_window():
    assert _judge({"min_labelled_rows": 5000}, _facts({}, rows=4_200)) == (
        False, "4,200 labelled rows in the evaluation window 2026-03-30 to 2026-04-06, fewer than the 5,000 required")
    assert _judge({"min_labelled_rows": 5000}, _facts({}, rows=6_000))[0]


def test_data_quality_in_the_training_window():
    clean = CheckRunFact(datetime(2026, 3, 9), "ok", "6,000 rows, nulls within limits")
    breach = CheckRunFact(datetime(2026, 3, 16), "breach", "income: 31% missing (allowed 8%)")
    assert _judge({"data_quality_clean": True}, _facts({}, quality_runs=(clean,))) == (
        True, "1 data-quality checks in the training window 2026-03-01 to 2026-03-30, none breached")
    assert _judge({"data_quality_clean": True}, _facts({}, quality_runs=(clean, breach))) == (
        False, ("1 of 2 data-quality checks in the training window 2026-03-01 to 2026-03-30 breached, first on "
               "2026-03-16: income: 31% missing (allowed 8%)"))
    assert _judge({"data_quality_clean": True}, _facts({})) == (
        False, "no data-quality check ran on card-fraud in the training window 2026-03-01 to 2026-03-30")


def test_the_largest_distance_of_the_latest_drift_run_ignoring_p_values():
    run = CheckRunFact(datetime(2026, 4, 6), "breach", "", {"features": [
        {"feature": "card_age_days", "method": "wasserstein", "method_label": "Wasserstein", "statistic": 0.31},
        {"feature": "country", "method": "jensen_shannon", "method_label": "Jensen-Shannon", "statistic": 0.12},
        {"feature": "amount", "method": "ks", "method_label": "KS p-value", "statistic": 0.9}]})
    assert _judge({"max_drift": 0.25}, _facts({}, drift_run=run)) == (
        False, "largest drift 0.31 (card_age_days, Wasserstein) in the check of 2026-04-06, more than the allowed 0.25")
    assert _judge({"max_drift": 0.4}, _facts({}, drift_run=run))[0]
    assert _judge({"max_drift": 0.25}, _facts({})) == (False, "no drift check has run on card-fraud yet")
