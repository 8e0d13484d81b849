"""Seeded simulation of the default verdicts: few false alerts at every size, real shifts caught.

Seven features shaped like the fraud demo's (4 numeric, 3 categorical), with ties (whole hours,
whole days) and rare categories, so neither the KS nor the chi-square gate sees textbook data.

Binomial reasoning for the false-alert checks. Over n same-distribution windows the number of
windows with any alert is Binomial(n, p), and the requirement is p <= 5%. The test allows up to
c = binom.ppf(0.99, n, 0.05) alerting windows: if p really is 5% the test still passes with at least
99% probability whatever the seed, so a pass is not luck of the seed. A broken correction is not
subtle: without Bonferroni seven 5% tests alert on about 30% of windows, far above c for every n
used here; and with n = 600 a rate of 10% (twice the limit) exceeds c with 99% probability.
Measured with this generator: about 2.8% of windows alert at 500 rows (6,000 windows), none above.
Repetitions shrink as windows grow (each million-row report takes about a second), because there
the effect-size gate, not the test, decides: the largest effect size seen must stay far below
its threshold, which is checked directly.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from jobs.statistics import DEFAULT_THRESHOLDS, drift_report

NUMERIC = ["amount", "hour", "distance_km", "account_age_days"]
CATEGORICAL = ["merchant_category", "channel", "country"]
MERCHANTS = ["grocery", "fuel", "travel", "online", "restaurant", "electronics", "pharmacy", "gaming"]
MERCHANT_SHARES = [0.25, 0.15, 0.08, 0.22, 0.15, 0.07, 0.06, 0.02]
CHANNELS, CHANNEL_SHARES = ["web", "app", "pos"], [0.45, 0.35, 0.2]
COUNTRIES = ["FR", "DE", "ES", "IT", "NL", "BE", "PT", "IE", "US", "GB", "CH", "MT"]
COUNTRY_SHARES = np.array([40, 20, 10, 8, 6, 5, 4, 3, 2, 1, 0.6, 0.4]) / 100  # rare: a few rows at 500
HOUR_SHARES = np.array([1, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 6, 7, 8, 8, 6, 4, 2, 1]) / 109
AMOUNT_MU, AMOUNT_SIGMA = 3.5, 1.0
AMOUNT_SD = math.sqrt((math.exp(AMOUNT_SIGMA**2) - 1) * math.exp(2 * AMOUNT_MU + AMOUNT_SIGMA**2))  # lognormal


def _window(rng: np.random.Generator, rows: int, amount_shift_sd: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "amount": rng.lognormal(AMOUNT_MU, AMOUNT_SIGMA, rows) + amount_shift_sd * AMOUNT_SD,
        "hour": rng.choice(24, rows, p=HOUR_SHARES).astype(np.float64),
        "distance_km": rng.exponential(15.0, rows),
        "account_age_days": np.round(rng.gamma(2.0, 300.0, rows)),
        "merchant_category": pd.Categorical.from_codes(rng.choice(8, rows, p=MERCHANT_SHARES), MERCHANTS),
        "channel": pd.Categorical.from_codes(rng.choice(3, rows, p=CHANNEL_SHARES), CHANNELS),
        "country": pd.Categorical.from_codes(rng.choice(12, rows, p=COUNTRY_SHARES), COUNTRIES),
    })


def _report(reference: pd.DataFrame, current: pd.DataFrame):
    return drift_report(reference, current, numeric=NUMERIC, categorical=CATEGORICAL)


@pytest.mark.parametrize(("rows", "windows"), [(500, 600), (5_000, 200), (50_000, 30), (1_000_000, 3)])
def test_same_distribution_windows_rarely_alert(rows, windows):
    rng = np.random.default_rng(rows)
    alerting, largest_effect = 0, 0.0
    for _ in range(windows):
        report = _report(_window(rng, rows), _window(rng, rows))
        alerting += bool(report.drifted)
        largest_effect = max(largest_effect, *(f.severity for f in report.features))
    assert alerting <= stats.binom.ppf(0.99, windows, 0.05), f"{alerting} of {windows} windows alerted"
    if rows >= 50_000:
        assert largest_effect < 0.25  # sampling noise is a quarter of the thresholds at most


@pytest.fixture(scope="module")
def million_row_reference() -> pd.DataFrame:
    return _window(np.random.default_rng(2024), 1_000_000)


def test_a_two_hundredth_of_a_std_at_a_million_rows_does_not_alert(million_row_reference):
    report = _report(million_row_reference, _window(np.random.default_rng(1), 1_000_000, amount_shift_sd=0.02))
    amount = report.features[0]
    assert amount.p_value < report.per_feature_alpha  # statistically real, yet too small to matter
    assert amount.statistic == pytest.approx(0.02, abs=0.005)
    assert report.drifted == ()


@pytest.mark.parametrize("rows", [10_000, 100_000, 1_000_000])
def test_a_fifth_of_a_std_is_caught_from_ten_thousand_rows(rows, million_row_reference):
    reference = million_row_reference if rows == 1_000_000 else _window(np.random.default_rng(rows), rows)
    report = _report(reference, _window(np.random.default_rng(rows + 1), rows, amount_shift_sd=0.2))
    assert [f.feature for f in report.drifted] == ["amount"]
    assert report.drifted[0].statistic >= DEFAULT_THRESHOLDS["wasserstein"]


@pytest.mark.parametrize("feature", NUMERIC[1:])
def test_a_fifth_of_a_std_is_caught_in_every_numeric_feature_at_ten_thousand_rows(feature):
    rng = np.random.default_rng(7)
    reference, current = _window(rng, 10_000), _window(rng, 10_000)
    current[feature] += 0.2 * reference[feature].std()
    assert [f.feature for f in _report(reference, current).drifted] == [feature]
