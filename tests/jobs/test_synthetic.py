from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from jobs.synthetic import (
    CATEGORICAL_FEATURES,
    LABEL,
    NUMERIC_FEATURES,
    TIMESTAMP,
    Scenario,
    generate,
    generate_week,
)

START = datetime(2024, 1, 1)
SCENARIO = Scenario(start=START)


@pytest.fixture(scope="module")
def weeks() -> dict[int, pd.DataFrame]:
    return generate(SCENARIO)


def normalised_wasserstein(reference: pd.Series, current: pd.Series) -> float:
    return wasserstein_distance(reference, current) / reference.std()


def jensen_shannon(reference: pd.Series, current: pd.Series) -> float:
    shares = pd.concat([reference.value_counts(normalize=True), current.value_counts(normalize=True)], axis=1)
    return float(jensenshannon(*shares.fillna(0.0).to_numpy().T, base=2))


def test_same_seed_and_week_give_identical_frames(weeks):
    pd.testing.assert_frame_equal(generate_week(SCENARIO, 6), weeks[6])
    pd.testing.assert_frame_equal(generate_week(Scenario(start=START, seed=7), 0), weeks[0])


def test_other_seed_or_week_gives_other_rows(weeks):
    other_seed = generate_week(Scenario(start=START, seed=8), 0)
    assert not np.array_equal(other_seed["amount"], weeks[0]["amount"])
    assert not np.array_equal(weeks[1]["amount"], weeks[2]["amount"])


def test_every_week_has_the_requested_rows_columns_and_dtypes(weeks):
    assert sorted(weeks) == list(range(SCENARIO.weeks + 1))
    expected_dtypes = {
        "transaction_id": "str", TIMESTAMP: "datetime64[us]", "amount": "float64", "card_age_days": "int64",
        "hour": "int64", "distance_km": "float64", "merchant_category": "str", "country": "str",
        "channel": "str", LABEL: "int64",
    }
    for frame in weeks.values():
        assert len(frame) == SCENARIO.rows_per_week
        assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == expected_dtypes
        assert not frame.isna().any().any()
        assert frame["amount"].gt(0).all() and frame["distance_km"].ge(0).all()
        assert frame["hour"].between(0, 23).all() and frame["card_age_days"].between(0, 1460).all()
        assert set(frame[LABEL].unique()) == {0, 1}


def test_event_times_are_sorted_inside_their_week_and_agree_with_hour(weeks):
    for week, frame in weeks.items():
        start = START + timedelta(days=7 * week)
        times = frame[TIMESTAMP]
        assert times.is_monotonic_increasing
        assert times.min() >= start and times.max() < start + timedelta(days=7)
        assert (times.dt.hour == frame["hour"]).all()
        assert times.dt.day_of_week.nunique() == 7


def test_transaction_ids_are_unique_across_weeks(weeks):
    ids = pd.concat([frame["transaction_id"] for frame in weeks.values()])
    assert ids.is_unique


def test_weeks_before_the_drift_match_the_reference(weeks):
    reference = weeks[0]
    for week in range(1, SCENARIO.drift_from_week):
        for feature in NUMERIC_FEATURES:
            assert normalised_wasserstein(reference[feature], weeks[week][feature]) < 0.03, (week, feature)
        for feature in CATEGORICAL_FEATURES:
            assert jensen_shannon(reference[feature], weeks[week][feature]) < 0.03, (week, feature)


def test_card_age_drifts_from_the_drift_week_while_other_features_stay(weeks):
    reference = weeks[0]
    for week in range(SCENARIO.drift_from_week, SCENARIO.weeks + 1):
        assert normalised_wasserstein(reference["card_age_days"], weeks[week]["card_age_days"]) > 0.25, week
        for feature in ("amount", "hour", "distance_km"):
            assert normalised_wasserstein(reference[feature], weeks[week][feature]) < 0.03, (week, feature)
        for feature in CATEGORICAL_FEATURES:
            assert jensen_shannon(reference[feature], weeks[week][feature]) < 0.03, (week, feature)


def test_fraud_rate_stays_between_half_and_one_percent_and_rises_with_the_ring(weeks):
    rates = {week: frame[LABEL].mean() for week, frame in weeks.items()}
    assert all(0.005 <= rate <= 0.01 for rate in rates.values()), rates
    before = np.mean([rates[week] for week in range(SCENARIO.drift_from_week)])
    after = np.mean([rates[week] for week in range(SCENARIO.drift_from_week, SCENARIO.weeks + 1)])
    assert after > before + 0.001


def test_new_card_fraud_appears_only_after_the_drift(weeks):
    def new_card_online_fraud(frame: pd.DataFrame) -> int:
        return int((frame[LABEL].eq(1) & frame["card_age_days"].le(14) & frame["channel"].eq("online")).sum())

    assert all(new_card_online_fraud(weeks[week]) < 20 for week in range(SCENARIO.drift_from_week))
    assert all(new_card_online_fraud(weeks[week]) > 100 for week in range(SCENARIO.drift_from_week, SCENARIO.weeks + 1))


def test_drift_week_follows_the_scenario():
    scenario = Scenario(start=START, weeks=3, rows_per_week=20_000, drift_from_week=2)
    frames = generate(scenario)
    assert normalised_wasserstein(frames[0]["card_age_days"], frames[1]["card_age_days"]) < 0.05
    assert normalised_wasserstein(frames[0]["card_age_days"], frames[2]["card_age_days"]) > 0.25
    assert len(frames[3]) == 20_000


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weeks": 0}, "Scenario.weeks must be at least 1, got 0"),
        ({"rows_per_week": 0}, "Scenario.rows_per_week must be at least 1, got 0"),
        ({"drift_from_week": 0}, "Scenario.drift_from_week must be at least 1, got 0"),
        ({"seed": -1}, "Scenario.seed must be non-negative, got -1"),
        ({"start": datetime(2024, 1, 1, tzinfo=UTC)}, "Scenario.start must be a naive UTC datetime"),
    ],
)
def test_invalid_scenario_is_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        Scenario(**{"start": START, **changes})


@pytest.mark.parametrize("week", [-1, 9])
def test_week_outside_the_scenario_is_rejected(week):
    with pytest.raises(ValueError, match=f"week must be between 0 \\(reference\\) and 8, got {week}"):
        generate_week(SCENARIO, week)
