import hashlib
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from jobs.metrics import classification_metrics
from jobs.synthetic import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES, TIMESTAMP, Scenario, generate_week
from jobs.training import TrainingError, TrainResult, decision_threshold, load_model, retrain, score, train
from store.errors import UntrustedArtifact

SCENARIO = Scenario(start=datetime(2024, 1, 1))
FEATURES = {"numeric": list(NUMERIC_FEATURES), "categorical": list(CATEGORICAL_FEATURES), "label": LABEL}


@pytest.fixture(scope="module")
def weeks() -> dict[int, pd.DataFrame]:
    return {week: generate_week(SCENARIO, week) for week in (0, 2, 4, 5, 6, 8)}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def v1(weeks, artifacts) -> TrainResult:
    return train(weeks[0], **FEATURES, artifacts_dir=artifacts, name="fraud-v1")


@pytest.fixture(scope="module")
def v2(weeks, artifacts) -> TrainResult:
    data = pd.concat([weeks[week] for week in (2, 4, 5, 6)], ignore_index=True)
    return retrain(data=data, **FEATURES, window_start=SCENARIO.week_start(4), window_end=SCENARIO.week_start(7),
                   artifacts_dir=artifacts, name="fraud-v2")


def loaded(result: TrainResult):
    """The model a train() call saved, loaded as the worker loads it: from its root, with its digest."""
    return load_model(result.artifact_uri, sha256=result.artifact_sha256,
                      roots=[Path(result.artifact_uri.removeprefix("file://")).parent])


def outcome(model, frame: pd.DataFrame) -> dict[str, float]:
    scored = score(model, frame)
    missed = scored[LABEL].eq(1) & scored["predicted_fraud"].eq(0)
    return {
        **classification_metrics(scored[LABEL], scored["predicted_fraud"], scored["fraud_score"]),
        "missed_amount": float(scored.loc[missed, "amount"].sum()),
        "missed_rate": float(missed.sum() / scored[LABEL].sum()),
    }


def test_training_saves_a_joblib_pipeline_and_reports_held_out_metrics(v1, artifacts, weeks):
    path = Path(v1.artifact_uri.removeprefix("file://"))
    assert v1.artifact_uri.startswith("file:///") and path.parent == artifacts.resolve()
    assert path.name.startswith("fraud-v1-") and path.suffix == ".joblib"
    assert v1.rows == len(weeks[0])
    assert set(v1.metrics) == {"precision", "recall", "f1", "roc_auc", "accuracy"}
    assert v1.metrics["roc_auc"] > 0.9 and v1.metrics["recall"] > 0.6
    assert v1.parameters["numeric"] == list(NUMERIC_FEATURES)
    assert v1.parameters["holdout_rows"] == len(weeks[0]) // 4
    assert 0.0 < v1.parameters["threshold"] < 1.0
    assert v1.artifact_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert isinstance(loaded(v1), Pipeline)


def test_v1_catches_most_fraud_before_the_drift(v1, weeks):
    before = outcome(loaded(v1), weeks[2])
    assert 0.65 <= before["recall"] <= 0.85
    assert before["precision"] > 0.6
    assert before["missed_amount"] < 10_000


def test_v1_misses_the_new_card_fraud_after_the_drift(v1, weeks):
    model = loaded(v1)
    before, after = outcome(model, weeks[2]), outcome(model, weeks[6])
    assert after["recall"] < 0.6
    assert after["missed_amount"] > 10_000
    assert after["missed_rate"] > 1.25 * before["missed_rate"]


def test_v2_retrained_on_recent_weeks_recovers_recall(v1, v2, weeks):
    old, new = outcome(loaded(v1), weeks[8]), outcome(loaded(v2), weeks[8])
    assert new["recall"] >= 0.7
    assert new["recall"] > old["recall"] + 0.15
    assert new["precision"] > 0.55
    assert new["roc_auc"] > old["roc_auc"]
    assert new["missed_amount"] < 10_000


def test_retrain_uses_only_the_rows_inside_its_window(v2):
    assert v2.rows == 3 * SCENARIO.rows_per_week
    assert v2.parameters["window_start"] == "2024-01-29T00:00:00"
    assert v2.parameters["window_end"] == "2024-02-19T00:00:00"
    assert v2.parameters["negative_sample_rate"] < 1.0


def test_scoring_adds_the_score_and_the_decision_at_the_stored_threshold(v1, weeks):
    model = loaded(v1)
    frame = weeks[2].head(5_000)
    scored = score(model, frame)
    assert decision_threshold(model) == v1.parameters["threshold"]
    assert list(scored.columns) == [*frame.columns, "fraud_score", "predicted_fraud"]
    assert scored["fraud_score"].between(0, 1).all()
    np.testing.assert_array_equal(scored["predicted_fraud"], (scored["fraud_score"] >= v1.parameters["threshold"]))
    decided = model.predict(frame[[*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]])
    np.testing.assert_array_equal(scored["predicted_fraud"], decided)
    assert "fraud_score" not in frame.columns


def test_an_explicit_threshold_and_column_names_override_the_defaults(v1, weeks):
    model = loaded(v1)
    scored = score(model, weeks[2].head(2_000), score_column="p", prediction_column="flag", threshold=0.0)
    assert scored["flag"].eq(1).all() and "p" in scored.columns


def test_a_loaded_artifact_scores_identically_wherever_it_is_loaded_from(v1, weeks, tmp_path):
    copy = tmp_path / "elsewhere.joblib"
    shutil.copy(v1.artifact_uri.removeprefix("file://"), copy)
    frame = weeks[6].head(20_000)
    elsewhere = load_model(copy.as_uri(), sha256=v1.artifact_sha256, roots=[tmp_path])
    first, second = score(loaded(v1), frame), score(elsewhere, frame)
    pd.testing.assert_frame_equal(first, second)


def test_training_is_deterministic_and_never_overwrites_another_model(v1, weeks, artifacts):
    again = train(weeks[0], **FEATURES, artifacts_dir=artifacts, name="fraud-v1")
    assert again.artifact_uri == v1.artifact_uri and again.metrics == v1.metrics
    other_seed = train(weeks[0], **FEATURES, artifacts_dir=artifacts, name="fraud-v1", seed=8)
    assert other_seed.artifact_uri != v1.artifact_uri
    assert Path(v1.artifact_uri.removeprefix("file://")).is_file()


def test_categories_never_seen_and_missing_values_still_score(v1, weeks):
    frame = weeks[2].head(3).copy()
    frame["country"] = pd.array(["JP", None, "US"], dtype="str")
    frame["amount"] = [12.0, np.nan, 30.0]
    scored = score(loaded(v1), frame)
    assert scored["fraud_score"].notna().all()


def test_scoring_an_empty_frame_gives_empty_columns(v1, weeks):
    scored = score(loaded(v1), weeks[2].head(0))
    assert scored.empty and {"fraud_score", "predicted_fraud"} <= set(scored.columns)


def test_scoring_without_a_feature_column_names_it(v1, weeks):
    with pytest.raises(ValueError, match="the data has no feature column\\(s\\) card_age_days"):
        score(loaded(v1), weeks[2].drop(columns=["card_age_days"]).head(10))


def test_unlabelled_rows_are_left_out_of_training(weeks, tmp_path):
    frame = weeks[0].head(30_000).copy()
    frame[LABEL] = frame[LABEL].astype("float64")
    frame.loc[frame.index[:1_000], LABEL] = np.nan
    result = train(frame, **FEATURES, artifacts_dir=tmp_path, name="partial")
    assert result.rows == 29_000 and result.parameters["unlabelled_rows_dropped"] == 1_000


@pytest.fixture(scope="module")
def small(weeks) -> pd.DataFrame:
    return weeks[0].head(20_000)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.head(0), "training data is empty"),
        (lambda df: df.drop(columns=["country"]), "training data has no column\\(s\\) country"),
        (lambda df: df.assign(is_fraud=0), "label column 'is_fraud' holds a single class \\(0\\)"),
        (lambda df: df.assign(is_fraud=np.nan), "all 20000 rows are unlabelled"),
        (lambda df: df.assign(is_fraud=df[LABEL] * 2), "label column 'is_fraud' must hold 0/1, found \\['2'\\]"),
        (lambda df: df.assign(amount="12.50"), "numeric feature column\\(s\\) amount do not hold numbers"),
        (lambda df: pd.concat([df[df[LABEL] == 0], df[df[LABEL] == 1].head(3)]),
         "needs at least 10 rows of each class, has 3 positive"),
    ],
)
def test_bad_training_data_is_rejected_with_the_reason(small, tmp_path, change, message):
    with pytest.raises(TrainingError, match=message):
        train(change(small), **FEATURES, artifacts_dir=tmp_path, name="bad")


def test_a_feature_listed_twice_is_rejected(small, tmp_path):
    with pytest.raises(TrainingError, match="column\\(s\\) country listed as both numeric and categorical"):
        train(small, numeric=["amount", "country"], categorical=["country"], label=LABEL, artifacts_dir=tmp_path,
              name="twice")


def test_a_model_name_that_is_not_a_file_name_is_rejected(small, tmp_path):
    with pytest.raises(TrainingError, match="model name '../v1' must be letters, digits"):
        train(small, **FEATURES, artifacts_dir=tmp_path, name="../v1")


@pytest.mark.parametrize(
    ("data", "start", "end", "message"),
    [
        (lambda df: df, datetime(2024, 1, 8), datetime(2024, 1, 8), "retrain window is empty: start 2024-01-08"),
        (lambda df: df, datetime(2023, 1, 1), datetime(2023, 1, 8), "no rows with event_time in \\[2023-01-01"),
        (lambda df: df.drop(columns=[TIMESTAMP]), datetime(2024, 1, 1), datetime(2024, 1, 8), "no 'event_time' column"),
        (lambda df: df.assign(event_time="2024-01-02"), datetime(2024, 1, 1), datetime(2024, 1, 8),
         "column 'event_time' must hold datetimes, found dtype str"),
        (lambda df: df.assign(is_fraud=1), datetime(2024, 1, 1), datetime(2024, 1, 8), "holds a single class \\(1\\)"),
    ],
)
def test_bad_retrain_input_is_rejected_with_the_reason(small, tmp_path, data, start, end, message):
    with pytest.raises(TrainingError, match=message):
        retrain(data=data(small), **FEATURES, window_start=start, window_end=end, artifacts_dir=tmp_path, name="v9")


def test_loading_needs_an_existing_file_uri_under_a_root(tmp_path):
    digest = "0" * 64
    with pytest.raises(UntrustedArtifact, match="Refused s3://bucket/model.joblib: only file:// artifacts"):
        load_model("s3://bucket/model.joblib", sha256=digest, roots=[tmp_path])
    with pytest.raises(UntrustedArtifact, match="there is no file at .*missing.joblib"):
        load_model((tmp_path / "missing.joblib").as_uri(), sha256=digest, roots=[tmp_path])
