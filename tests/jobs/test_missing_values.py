"""Missing values are data too: a feature whose missing share moves has drifted, and a feature that is
always partly missing is judged against its own usual share, not a flat 5%."""

import re

import numpy as np
import pytest
import pandas as pd
from slack_sdk.models.blocks import Block

from bot.blocks.common import validate_payload
from bot.blocks.ml_engineer import drift_alert
from jobs.incidents import DriftIncident, FeatureFigure, ModelRef
from jobs.monitor import check_model
from store.models import CheckKind, Verdict
from tests.jobs.test_monitor import _register
from tests.support.projects import append_weeks, week, week_end


def _with_missing(frame: pd.DataFrame, column: str, share: float, seed: int) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[np.random.default_rng(seed).random(len(frame)) < share, column] = np.nan
    return frame


def test_a_numeric_feature_going_20_percent_missing_is_drift_of_that_feature(db, tmp_path):
    _register(db, tmp_path)
    append_weeks(tmp_path, [week(0), _with_missing(week(1), "debt", 0.2, seed=1)])
    quiet = check_model(db=db, model_key="default-risk", as_of=week_end(0), kinds={CheckKind.drift})
    assert quiet.result(CheckKind.drift).outcome.verdict == Verdict.ok

    checked = check_model(db=db, model_key="default-risk", as_of=week_end(1), kinds={CheckKind.drift})
    outcome = checked.result(CheckKind.drift).outcome
    assert outcome.verdict == Verdict.breach and outcome.subjects == ("debt",), outcome.message
    assert "debt missing 0% -> 20%" in outcome.message  # the values that are there did not move
    [debt] = [f for f in outcome.figures["features"] if f["feature"] == "debt"]
    assert debt["missing_drifted"] and debt["reference_missing_share"] == 0
    assert 0.18 < debt["current_missing_share"] < 0.22


def test_the_drift_alert_shows_the_missing_shares_as_evidence():
    features = (FeatureFigure("debt", "Wasserstein", 0.01, 0.1, 0.4, True, missing=(0.0, 0.2)),
                FeatureFigure("income", "Wasserstein", 0.02, 0.1, 0.5, False))
    model = ModelRef(key="default-risk", version="v1", project_key="loans", project_name="Loan defaults",
                     owner="U0ML0001", alert_id=3, version_number=1)
    message = drift_alert(DriftIncident(model=model, features=features, window_start=week_end(0),
                                        window_end=week_end(1), current_rows=4000, reference_rows=6000,
                                        checked_at=week_end(1), details_url="https://flywheel.example/alerts/3"))
    validate_payload(message.payload())
    parsed = Block.parse_all(message.payload()["blocks"])
    fields = parsed[1].to_dict()["fields"]
    assert fields[0]["text"] == "*debt*\nWasserstein 0.01 (alert 0.10)\nmissing 0% -> 20%"
    assert "debt Wasserstein 0.01 (alert 0.10), missing 0% -> 20%" in message.text


def test_a_feature_always_8_percent_missing_raises_nothing_in_10_windows(db, tmp_path):
    _register(db, tmp_path)
    reference = _with_missing(week(-1, n=6000, seed=99), "debt", 0.08, seed=0)
    reference.to_parquet(tmp_path / "data" / "reference.parquet", index=False)
    append_weeks(tmp_path, [_with_missing(week(w), "debt", 0.08, seed=w + 10) for w in range(10)])
    for w in range(10):
        checked = check_model(db=db, model_key="default-risk", as_of=week_end(w),
                              kinds={CheckKind.drift, CheckKind.data_quality})
        for kind in (CheckKind.drift, CheckKind.data_quality):
            outcome = checked.result(kind).outcome
            assert outcome.verdict == Verdict.ok, (w, kind, outcome.message)
    assert 0.07 < outcome.figures["reference_null_share"]["debt"] < 0.09


def test_a_usually_8_percent_missing_feature_at_30_percent_is_a_data_quality_breach(db, tmp_path):
    _register(db, tmp_path)
    reference = _with_missing(week(-1, n=6000, seed=99), "debt", 0.08, seed=0)
    reference.to_parquet(tmp_path / "data" / "reference.parquet", index=False)
    append_weeks(tmp_path, [_with_missing(week(0), "debt", 0.3, seed=5)])
    checked = check_model(db=db, model_key="default-risk", as_of=week_end(0), kinds={CheckKind.data_quality})
    outcome = checked.result(CheckKind.data_quality).outcome
    assert outcome.verdict == Verdict.breach and outcome.subjects == ("nulls:debt",)
    usual, allowed = outcome.figures["reference_null_share"]["debt"], outcome.figures["allowed_null_share"]["debt"]
    assert 0.07 < usual < 0.09 and allowed == pytest.approx(usual + 0.05)  # 5 points over its usual share
    assert re.search(r"more missing values than usual: debt 3\d% \(reference 8\.\d%, allowed up to 1[23]%\)",
                     outcome.message), outcome.message
