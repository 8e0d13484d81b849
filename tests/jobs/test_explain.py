"""Which features a version relies on (jobs.explain): permutation importances, seeded and bounded, kept
with each evaluation, on models that are not the demo's (a churn classifier, a house-price regressor)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from jobs import explain
from jobs.retrain import stored_comparison
from jobs.spec import ModelSpec
from jobs.training import load_model, retrain
from store import registry
from tests.support.backend_world import actor, make_worker
from tests.support.task_worlds import ELI, NOW, PRICES, register_first_versions, write_task_project

START = datetime(2026, 9, 1)
CHURN = ModelSpec.model_validate({
    "key": "churn", "owner": "U0ML0001", "task": "binary_classification",
    "data": {"reference": {"path": "r.parquet"}, "production": {"path": "p.parquet"}, "timestamp": "event_time",
             "prediction": "predicted_fraud", "label": "churned"},
    "features": {"numeric": ["tenure_months", "support_calls", "noise"], "categorical": ["plan"]}})


def churners(n: int = 3_000, seed: int = 11) -> pd.DataFrame:
    """Churn follows tenure (planted), a little the support calls; noise and plan play no part."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 60, n)
    calls = rng.poisson(2, n)
    odds = -3.0 + 6.0 * (tenure < 8) + 0.3 * calls
    return pd.DataFrame({
        "event_time": START + pd.to_timedelta(rng.random(n) * 28 * 86400, unit="s"),
        "tenure_months": tenure, "support_calls": calls, "noise": rng.normal(0, 1, n),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "churned": (rng.random(n) < 1 / (1 + np.exp(-odds))).astype(int)})


@pytest.fixture(scope="module")
def churn_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("churn")
    trained = retrain(data=churners(), numeric=list(CHURN.features.numeric),
                      categorical=list(CHURN.features.categorical), label="churned", window_start=START,
                      window_end=START + timedelta(days=28), artifacts_dir=folder, name="churn-v1")
    return load_model(trained.artifact_uri, sha256=trained.artifact_sha256, roots=[folder])


def test_the_planted_feature_ranks_first_and_the_noise_does_not_matter(churn_model):
    found = explain.permutation_importances(CHURN, churn_model, churners(seed=12))

    ranked = explain.ranked(found)
    assert ranked[0].feature == "tenure_months"
    assert ranked[0].mean > 0.1  # shuffling tenure costs a lot of ROC AUC
    assert {i.feature: i.mean for i in ranked}["noise"] < 0.02
    assert explain.rank_of(found, "tenure_months") == 1
    assert found["metric"] == "roc_auc" and found["seed"] == 0


def test_rows_are_sampled_to_the_bound_with_a_seed_so_the_figures_repeat(churn_model):
    rows = churners(seed=13)

    # A budget nothing can exhaust: the repeats are the clock's to shrink (tested below), the figures the seed's.
    first = explain.permutation_importances(CHURN, churn_model, rows, max_rows=500, budget_seconds=1e6)
    again = explain.permutation_importances(CHURN, churn_model, rows, max_rows=500, budget_seconds=1e6)

    assert first["rows"] == 500
    assert first == again


def test_the_repeats_shrink_to_fit_the_time_budget(churn_model):
    found = explain.permutation_importances(CHURN, churn_model, churners(seed=14), budget_seconds=0.0)

    assert found["repeats"] == 1 and len(found["features"]) == 4


def test_a_window_with_one_class_has_nothing_to_measure(churn_model):
    rows = churners(seed=15)
    rows["churned"] = 0

    assert explain.permutation_importances(CHURN, churn_model, rows) is None


def test_reliance_shifts_name_the_features_that_moved_most_and_need_the_same_score():
    champion = {"metric": "roc_auc", "features": [{"feature": "a", "mean": 0.30, "std": 0.0},
                                                  {"feature": "b", "mean": 0.05, "std": 0.0}]}
    challenger = {"metric": "roc_auc", "features": [{"feature": "b", "mean": 0.25, "std": 0.0},
                                                    {"feature": "a", "mean": 0.28, "std": 0.0},
                                                    {"feature": "c", "mean": 0.02, "std": 0.0}]}

    shifts = explain.reliance_shifts(champion, challenger)

    # Shares of each version's total: a 0.30+0.05 -> a 0.28, b 0.25, c 0.02 of 0.55. c moved 3.6 points, no
    # more; a raw comparison would call a "less" by 0.02 and miss that the candidate leans on b as much as a.
    assert [(s.feature, round(s.shift, 3), s.more) for s in shifts] == [
        ("a", -0.348, False), ("b", 0.312, True), ("c", 0.036, True)]
    assert explain.reliance_shifts(champion, champion) == []  # nothing moved: nothing to say
    assert explain.reliance_shifts(champion, {**challenger, "metric": "negative_mae"}) == []


def test_each_evaluation_of_a_regression_keeps_its_importances_floor_area_first(db, tmp_path):
    folder = tmp_path / "homes"
    write_task_project(folder)
    register_first_versions(db, folder)
    worker, ops = make_worker(db, folder, tmp_path / "outbox", clock=lambda: NOW)

    ops.retraining.request_retrain(actor(db, ELI), PRICES)
    worker.drain_work()

    with db.session() as s:
        v2 = registry.get_version(session=s, model_key=PRICES, number=2)
        stored = registry.latest_evaluation(session=s, version=v2).importances
    # The price is generated from floor area (the widest spread), then district, then rooms.
    assert [i.feature for i in explain.ranked(stored)][:1] == ["sqft"]
    assert stored["metric"] == "negative_mae" and stored["rows"] > 0
    comparison = stored_comparison(db=db, model_key=PRICES, number=2)
    assert comparison.challenger_importances == stored
