"""Drift statistics against scipy and Evidently's definitions, and drift_report's handling of input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from jobs.statistics import (
    DEFAULT_THRESHOLDS,
    METHOD_LABELS,
    DriftInputError,
    chi_square,
    drift_report,
    jensen_shannon,
    ks_2samp,
    psi_categorical,
    psi_numeric,
    wasserstein_normalized,
)

SIZES = [(40, 60), (500, 500), (2_000, 9_000), (12_000, 30_000), (25_000, 25_000)]


def _samples(seed: int, sizes: tuple[int, int], ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.normal(10.0, 3.0, sizes[0])
    current = rng.normal(10.0 + 0.1 * seed, 3.0 + 0.2 * seed, sizes[1])
    if ties:  # a coarse grid makes many values equal, within and across the windows
        reference, current = np.round(reference), np.round(current)
    return reference, current


def _categories(seed: int, size: int, probabilities: list[float], names: list[str]) -> pd.Series:
    rng = np.random.default_rng(seed)
    values = rng.choice(np.array(names, dtype=object), size=size, p=probabilities)
    values[rng.random(size) < 0.05] = None
    return pd.Series(values, dtype="str")


def _evidently_frequencies(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's binning of a categorical feature: shares over the union of non-missing values."""
    reference, current = reference.dropna(), current.dropna()
    keys = sorted(set(reference) | set(current))
    ref_counts, cur_counts = reference.value_counts(), current.value_counts()
    return (np.array([ref_counts.get(key, 0) / len(reference) for key in keys]),
            np.array([cur_counts.get(key, 0) / len(current) for key in keys]))


def _psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    ref, cur = np.maximum(reference_shares, 1e-4), np.maximum(current_shares, 1e-4)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


# --- each statistic against its reference -----------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("ties", [False, True])
def test_ks_equals_scipy(seed, sizes, ties):
    reference, current = _samples(seed, sizes, ties)
    expected = stats.ks_2samp(reference, current)
    statistic, p_value = ks_2samp(reference, current)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("ties", [False, True])
def test_wasserstein_normalized_equals_evidently(seed, sizes, ties):
    reference, current = _samples(seed, sizes, ties)
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert wasserstein_normalized(reference, current) == pytest.approx(expected, rel=1e-6)


def test_wasserstein_of_a_constant_reference_uses_evidentlys_std_floor():
    reference, current = np.full(100, 5.0), np.full(100, 5.5)
    assert wasserstein_normalized(reference, current) == pytest.approx(0.5 / 0.001)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_jensen_shannon_equals_evidently(seed):
    names = ["card", "cash", "wire", "crypto", "voucher"]
    reference = _categories(seed, 800 + 300 * seed, [0.4, 0.3, 0.2, 0.1, 0.0], names)
    current = _categories(seed + 100, 500, [0.25, 0.25, 0.25, 0.0, 0.25], names)  # crypto gone, voucher new
    ref_shares, cur_shares = _evidently_frequencies(reference, current)
    assert jensen_shannon(reference, current) == pytest.approx(distance.jensenshannon(ref_shares, cur_shares),
                                                               abs=1e-6)


def test_jensen_shannon_uses_the_natural_log():
    # Disjoint supports: divergence is ln 2, so the distance is sqrt(ln 2); base 2 would give 1.
    assert jensen_shannon(["a"] * 10, ["b"] * 10) == pytest.approx(math.sqrt(math.log(2)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("sizes", [(300, 200), (5_000, 5_000), (20_000, 3_000)])
def test_chi_square_equals_scipy_contingency(seed, sizes):
    names = ["a", "b", "c", "d"]
    reference = _categories(seed, sizes[0], [0.4, 0.3, 0.2, 0.1], names)
    current = _categories(seed + 50, sizes[1], [0.35, 0.3, 0.25, 0.1], names)
    ref_shares, cur_shares = _evidently_frequencies(reference, current)
    table = np.array([ref_shares * reference.notna().sum(), cur_shares * current.notna().sum()]).round()
    expected = stats.chi2_contingency(table, correction=False)
    statistic, p_value = chi_square(reference, current)
    assert statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_chi_square_on_two_categories_has_no_yates_correction():
    reference, current = ["x"] * 30 + ["y"] * 70, ["x"] * 45 + ["y"] * 55
    expected = stats.chi2_contingency([[30, 70], [45, 55]], correction=False)
    assert chi_square(reference, current) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_psi_numeric_uses_reference_decile_bins(seed, ties):
    reference, current = _samples(seed, (3_000, 2_000), ties)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)[1:-1]))
    bins = [-np.inf, *edges, np.inf]
    ref_shares = pd.Series(pd.cut(reference, bins)).value_counts(sort=False).to_numpy() / reference.size
    cur_shares = pd.Series(pd.cut(current, bins)).value_counts(sort=False).to_numpy() / current.size
    assert psi_numeric(reference, current) == pytest.approx(_psi(ref_shares, cur_shares), rel=1e-9)


def test_psi_numeric_floors_empty_bins_by_hand():
    # Ten reference values give ten bins of 10%; every current value falls in the first bin.
    expected = 0.9 * math.log(10) + 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert psi_numeric(np.arange(1.0, 11.0), np.ones(10)) == pytest.approx(expected)


def test_psi_categorical_by_hand():
    expected = 0.25 * math.log(1.5) + 0.25 * math.log(2)
    assert psi_categorical(["a"] * 50 + ["b"] * 50, ["a"] * 75 + ["b"] * 25) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_psi_categorical_matches_shares_with_unseen_categories(seed):
    names = ["card", "cash", "wire", "crypto"]
    reference = _categories(seed, 1_000, [0.5, 0.3, 0.2, 0.0], names)
    current = _categories(seed + 7, 700, [0.4, 0.3, 0.2, 0.1], names)
    assert psi_categorical(reference, current) == pytest.approx(_psi(*_evidently_frequencies(reference, current)))


def test_identical_windows_show_no_drift():
    values = np.random.default_rng(5).normal(size=1_000)
    assert wasserstein_normalized(values, values) == 0
    assert psi_numeric(values, values) == pytest.approx(0)
    assert ks_2samp(values, values) == (0, 1)
    assert jensen_shannon(["a", "b", "b"], ["b", "a", "b"]) == 0


def test_helpers_ignore_missing_values():
    reference, current = _samples(0, (500, 400), ties=False)
    with_gaps = np.concatenate([reference, [np.nan, np.inf, -np.inf]])
    assert wasserstein_normalized(with_gaps, current) == wasserstein_normalized(reference, current)
    assert ks_2samp(with_gaps, current) == ks_2samp(reference, current)


def test_helpers_reject_a_sample_with_nothing_to_compare():
    with pytest.raises(DriftInputError, match="current sample has no finite values"):
        ks_2samp([1.0, 2.0], [np.nan])
    with pytest.raises(DriftInputError, match="reference sample has no non-missing categories"):
        jensen_shannon([None, None], ["a"])


# --- drift_report -----------------------------------------------------------------------------


def _windows(rows: int, seed: int, amount_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.normal(100.0 + amount_shift, 20.0, rows),
        "age": rng.normal(40.0, 10.0, rows),
        "channel": pd.Series(rng.choice(["web", "app", "pos"], rows, p=[0.5, 0.3, 0.2]), dtype="str"),
    })


def test_report_statistics_equal_the_helpers_on_the_non_missing_values():
    reference, current = _windows(2_000, 1), _windows(1_500, 2, amount_shift=5.0)
    reference.loc[::10, "amount"] = np.nan
    current.loc[::7, "amount"] = np.inf
    current.loc[::5, "channel"] = None
    report = drift_report(reference, current, numeric=["amount", "age"], categorical=["channel"])
    amount, age, channel = report.features
    assert (amount.reference_missing, amount.current_missing) == (200, 215)
    assert (amount.reference_rows, amount.current_rows) == (2_000, 1_500)
    assert (channel.reference_missing, channel.current_missing) == (0, 300)
    assert amount.statistic == wasserstein_normalized(reference["amount"].dropna(),
                                                      current["amount"].replace(np.inf, np.nan).dropna())
    assert amount.p_value == ks_2samp(reference["amount"].dropna(),
                                      current["amount"].replace(np.inf, np.nan).dropna())[1]
    assert channel.statistic == jensen_shannon(reference["channel"], current["channel"])
    assert channel.p_value == chi_square(reference["channel"], current["channel"])[1]
    assert (amount.method, age.method, channel.method) == ("wasserstein", "wasserstein", "jensen_shannon")
    # channel went from 0% to 20% missing: that is drift of channel, whatever its categories do. amount's
    # 10% -> 14.3% is under the 5-point line.
    assert [f.drifted for f in report.features] == [True, False, True]
    assert [f.missing_drifted for f in report.features] == [False, False, True]


def test_report_counts_unseen_categories_most_frequent_first():
    reference = pd.DataFrame({"channel": pd.Series(["web", "app"] * 500, dtype="category")})
    current = pd.DataFrame({"channel": ["web"] * 400 + ["kiosk"] * 50 + ["phone"] * 150 + ["app"] * 400})
    [channel] = drift_report(reference, current, numeric=[], categorical=["channel"]).features
    assert channel.unseen_categories == ("phone", "kiosk")
    assert channel.drifted
    assert channel.statistic == pytest.approx(jensen_shannon(reference["channel"], current["channel"]))


def test_report_accepts_nullable_and_boolean_numeric_columns():
    reference = pd.DataFrame({"count": pd.array([1, 2, None, 4] * 50, dtype="Int64"), "flag": [True, False] * 100})
    current = pd.DataFrame({"count": pd.array([1, 2, 3, 4] * 50, dtype="Int64"), "flag": [True] * 200})
    count, flag = drift_report(reference, current, numeric=["count", "flag"], categorical=[]).features
    assert (count.reference_missing, count.current_missing) == (50, 0)
    assert flag.drifted and flag.statistic == pytest.approx(1.0)  # |0.5 - 1.0| / std 0.5


def test_effect_size_over_threshold_without_significance_is_not_drift():
    grid = stats.norm.ppf((np.arange(30) + 0.5) / 30)
    reference, current = pd.DataFrame({"x": grid}), pd.DataFrame({"x": grid + 0.25})
    [x] = drift_report(reference, current, numeric=["x"], categorical=[]).features
    assert x.statistic > x.threshold and x.p_value > 0.05
    assert not x.drifted


def test_significant_shift_under_threshold_is_not_drift():
    grid = stats.norm.ppf((np.arange(100_000) + 0.5) / 100_000)
    reference, current = pd.DataFrame({"x": grid}), pd.DataFrame({"x": grid + 0.05})
    report = drift_report(reference, current, numeric=["x"], categorical=[])
    [x] = report.features
    assert x.p_value < 1e-10 and x.statistic == pytest.approx(0.05, rel=1e-3)
    assert not x.drifted and report.drifted == ()


def test_per_feature_thresholds_override_the_default():
    reference = pd.DataFrame({"a": np.arange(5_000.0), "b": np.arange(5_000.0)})
    current = reference + 0.15 * reference["a"].std(ddof=0)
    report = drift_report(reference, current, numeric=["a", "b"], categorical=[], thresholds={"b": 0.3})
    a, b = report.features
    assert (a.threshold, b.threshold) == (DEFAULT_THRESHOLDS["wasserstein"], 0.3)
    assert a.drifted and not b.drifted
    strict = drift_report(reference, current, numeric=["a", "b"], categorical=[], default_threshold=0.2,
                          thresholds={"a": 0.12})
    assert [(f.threshold, f.drifted) for f in strict.features] == [(0.12, True), (0.2, False)]


def test_p_value_methods_divide_their_threshold_by_the_number_of_features():
    reference = pd.DataFrame({"a": np.arange(2_000.0), "c": ["x", "y"] * 1_000})
    current = pd.DataFrame({"a": np.arange(2_000.0) + 90, "c": ["x"] * 1_060 + ["y"] * 940})
    report = drift_report(reference, current, numeric=["a"], categorical=["c"], numeric_method="ks",
                          categorical_method="chi_square", thresholds={"c": 0.2})
    a, c = report.features
    assert (a.threshold, c.threshold) == (0.05 / 2, 0.2 / 2)
    assert a.statistic == a.p_value == ks_2samp(reference["a"], current["a"])[1]
    assert c.statistic == c.p_value == chi_square(reference["c"], current["c"])[1]
    assert [f.drifted for f in report.features] == [f.p_value < f.threshold for f in report.features]
    assert 0.025 < a.p_value < 0.05 and not a.drifted  # would alert without the correction
    assert 0.05 < c.p_value < 0.1 and c.drifted  # alerts only thanks to its own threshold


def test_psi_method_gates_on_chi_square_over_the_bins():
    reference, current = _windows(4_000, 3), _windows(4_000, 4, amount_shift=15.0)
    report = drift_report(reference, current, numeric=["amount", "age"], categorical=["channel"],
                          numeric_method="psi", categorical_method="psi")
    amount, age, channel = report.features
    assert amount.statistic == pytest.approx(psi_numeric(reference["amount"], current["amount"]))
    assert channel.statistic == pytest.approx(psi_categorical(reference["channel"], current["channel"]))
    assert amount.drifted and amount.p_value < report.per_feature_alpha
    assert not age.drifted and not channel.drifted
    assert METHOD_LABELS[amount.method] == "PSI"


def test_drifted_features_come_worst_first_with_comparable_severity():
    reference, current = _windows(3_000, 5), _windows(3_000, 6, amount_shift=14.0)
    current["age"] += 2.0
    current["channel"] = "web"
    report = drift_report(reference, current, numeric=["amount", "age"], categorical=["channel"])
    assert [f.feature for f in report.drifted] == ["amount", "channel", "age"]  # about 0.7, 0.46, 0.2
    assert all(f.severity > 1 for f in report.drifted)
    assert report.per_feature_alpha == pytest.approx(0.05 / 3)
    p_report = drift_report(reference, current, numeric=["amount", "age"], categorical=["channel"],
                            numeric_method="ks", categorical_method="chi_square")
    assert all(f.severity > 1 for f in p_report.drifted)
    assert [f.severity > 1 for f in p_report.features] == [f.drifted for f in p_report.features]


def test_large_windows_in_parallel_give_the_same_figures():
    reference, current = _windows(60_000, 7), _windows(55_000, 8, amount_shift=3.0)
    report = drift_report(reference, current, numeric=["amount", "age"], categorical=["channel"])
    amount, age, channel = report.features
    assert amount.statistic == pytest.approx(
        stats.wasserstein_distance(reference["amount"], current["amount"]) / np.std(reference["amount"]), rel=1e-9)
    assert age.p_value == pytest.approx(stats.ks_2samp(reference["age"], current["age"]).pvalue, rel=1e-9)
    assert channel.statistic == pytest.approx(jensen_shannon(reference["channel"], current["channel"]))
    assert [f.drifted for f in report.features] == [True, False, False]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    (dict(numeric_method="median"), "unknown numeric drift method 'median'; choose one of wasserstein, psi, ks"),
    (dict(categorical_method="wasserstein"), "unknown categorical drift method 'wasserstein'"),
    (dict(thresholds={"amout": 0.2}), r"threshold given for feature\(s\) not compared: \['amout'\]"),
    (dict(thresholds={"amount": -1}), "feature 'amount': Wasserstein threshold must be a positive number, got -1"),
    (dict(thresholds={"channel": "high"}), "feature 'channel': threshold must be a number, got 'high'"),
    (dict(numeric="amount"), "numeric must be a list of column names, not the string 'amount'"),
    (dict(numeric_method="ks", default_threshold=5), "default_threshold: KS p-value threshold must be between 0"),
    (dict(categorical=["channel", "amount"]), r"listed more than once .*\['amount'\]"),
    (dict(numeric=[], categorical=[]), "no features to compare"),
    (dict(alpha=1.5), "alpha must be between 0 and 1, got 1.5"),
])
def test_bad_options_are_named(change, message):
    reference, current = _windows(100, 1), _windows(100, 2)
    options = dict(numeric=["amount", "age"], categorical=["channel"]) | change
    with pytest.raises(DriftInputError, match=message):
        drift_report(reference, current, **options)


def test_empty_window_is_named():
    reference, current = _windows(100, 1), _windows(100, 2)
    with pytest.raises(DriftInputError, match=r"the current window is empty \(0 rows\)"):
        drift_report(reference, current.iloc[:0], numeric=["amount"], categorical=[])
    with pytest.raises(DriftInputError, match=r"the reference window is empty"):
        drift_report(reference.iloc[:0], current, numeric=["amount"], categorical=[])


def test_absent_column_is_named_with_its_window():
    reference, current = _windows(100, 1), _windows(100, 2).drop(columns=["channel", "age"])
    with pytest.raises(DriftInputError, match=r"current window has no column for feature\(s\) 'age', 'channel'"):
        drift_report(reference, current, numeric=["amount", "age"], categorical=["channel"])


@pytest.mark.parametrize("rows", [100, 60_000])  # serial and thread-pool paths
def test_all_missing_feature_is_named(rows):
    reference, current = _windows(rows, 1), _windows(rows, 2)
    current["age"] = np.nan
    with pytest.raises(DriftInputError,
                       match=f"'age' has no usable values in the current window: all {rows:,} rows are missing"):
        drift_report(reference, current, numeric=["amount", "age"], categorical=["channel"])
    reference["channel"] = None
    with pytest.raises(DriftInputError, match="feature 'channel' has no usable values in the reference window"):
        drift_report(reference, current, numeric=[], categorical=["channel"])


def test_text_in_a_numeric_feature_is_named():
    reference, current = _windows(100, 1), _windows(100, 2)
    current["amount"] = current["amount"].astype(object)
    current.loc[3, "amount"] = "12,50"
    with pytest.raises(DriftInputError, match="feature 'amount' holds non-numeric values in the current window"):
        drift_report(reference, current, numeric=["amount"], categorical=[])
