"""What a version's decisions would cost on labelled rows: the spec's KPIs that read the prediction,
recomputed with that version's predictions, and a binary classifier's missed positives and false alarms."""

from __future__ import annotations

from importlib import resources

import pandas as pd
import yaml

from jobs.spec import ModelSpec
from jobs.stakes import outcomes

FRAUD = ModelSpec.model_validate(
    yaml.safe_load(resources.files("bot").joinpath("demo_spec", "card-fraud.yml").read_text())["models"][0])


def test_the_demo_kpis_are_recomputed_with_the_predictions_given_not_the_stored_ones():
    rows = pd.DataFrame({"amount": [100.0, 250.0, 40.0, 10.0, 5.0], "is_fraud": [1, 1, 0, 0, 1],
                         "predicted_fraud": [1, 1, 1, 1, 1]})  # stored decisions, to be ignored
    mine = [0, 1, 1, 0, 0]

    found = outcomes(FRAUD, rows, mine)

    kpis = {k["name"]: k["value"] for k in found["kpis"]}
    assert kpis["missed_fraud_amount"] == 100.0 + 5.0  # fraud (rows 0, 4) let through
    assert kpis["missed_fraud_rate"] == 2 / 3
    assert kpis["false_alarm_rate"] == 1 / 2  # row 2 blocked of the two good rows
    assert (found["missed"], found["false_alarms"]) == (2, 1)


def test_a_regression_has_no_missed_positives_or_false_alarms():
    spec = ModelSpec.model_validate({
        "key": "house-prices", "owner": "U0ML0001", "task": "regression",
        "data": {"reference": {"path": "r.parquet"}, "production": {"path": "p.parquet"}, "timestamp": "at",
                 "prediction": "price_hat", "label": "price"},
        "features": {"numeric": ["sqft"]},
        "kpis": [{"name": "underpriced", "aggregate": "count", "where": "price_hat < 200000"}]})
    rows = pd.DataFrame({"sqft": [50, 80, 120], "price": [150_000, 250_000, 400_000]})

    found = outcomes(spec, rows, [190_000, 210_000, 180_000])

    assert [(k["name"], k["value"]) for k in found["kpis"]] == [("underpriced", 2.0)]
    assert "missed" not in found and "false_alarms" not in found
