"""The rule that turns noise marks into a proposed drift threshold, and the spec as checks then use it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from jobs.spec import ModelSpec
from jobs.threshold_tuning import JudgedAlert, Window, round_up, suggest_drift_threshold, with_overrides

T0 = datetime(2026, 3, 2)


def _alerts(*votes: tuple[float, bool]) -> list[JudgedAlert]:
    return [JudgedAlert(i, T0 + timedelta(weeks=i), statistic, noise) for i, (statistic, noise) in enumerate(votes)]


@pytest.mark.parametrize(("value", "rounded"), [(0.143, 0.15), (0.15, 0.15), (0.1925, 0.2), (1.234, 1.3),
                                                (0.0123, 0.013), (12.01, 13.0)])
def test_round_up_keeps_two_significant_digits_and_never_rounds_down(value, rounded):
    assert round_up(value) == pytest.approx(rounded)


def test_four_noise_of_the_last_five_propose_the_loudest_plus_ten_percent_with_what_it_changes():
    judged = _alerts((0.11, True), (0.12, True), (0.13, True), (0.5, False), (0.12, True))
    windows = [Window(T0, s) for s in (0.05, 0.11, 0.12, 0.13, 0.5, 0.14)]

    found = suggest_drift_threshold("card_age_days", 0.1, judged, windows)

    assert found.proposed == pytest.approx(0.15)  # 0.13 * 1.1 = 0.143, rounded up
    assert (found.noise_low, found.noise_high, found.judged) == (0.11, 0.13, 5)
    assert (found.windows, found.breaches_now, found.breaches_proposed) == (6, 5, 1)


def test_three_noise_are_not_enough_and_only_the_latest_five_count():
    assert suggest_drift_threshold("f", 0.1, _alerts((0.12, True), (0.12, True), (0.12, True)), []) is None
    older_noise = _alerts((0.12, True), (0.12, True), (0.12, True), (0.12, True),
                          (0.3, False), (0.3, False), (0.3, False), (0.3, False), (0.3, False))
    assert suggest_drift_threshold("f", 0.1, older_noise, []) is None


def test_a_proposal_at_or_under_the_line_in_force_is_no_proposal():
    assert suggest_drift_threshold("f", 0.2, _alerts(*[(0.12, True)] * 4), []) is None


def test_accepted_thresholds_replace_the_specs_for_their_features_only():
    spec = ModelSpec.model_validate({
        "key": "churn", "owner": "U0ML0001",
        "data": {"reference": {"path": "r.parquet"}, "production": {"path": "p.parquet"}, "timestamp": "at",
                 "prediction": "p"},
        "features": {"numeric": ["tenure", "calls"]}, "drift": {"thresholds": {"calls": 0.3}}})

    used = with_overrides(spec, {"tenure": 0.2})

    assert (used.drift.threshold_for("tenure"), used.drift.threshold_for("calls")) == (0.2, 0.3)
    assert spec.drift.threshold_for("tenure") == 0.1  # the spec itself is unchanged
    assert with_overrides(spec, {}) is spec
