import gc
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from bot import charts
from bot.charts import (
    Chart,
    champion_vs_challenger,
    distribution,
    drift_bars,
    format_value,
    kpi_trend,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
START = datetime(2025, 10, 6, tzinfo=UTC)
MISSED_FRAUD = [5400, 6300, 5100, 6900, 16200, 18300]
FEATURES = [("card_age_days", 0.31, 0.15, True), ("country", 0.14, 0.10, True), ("amount", 0.05, 0.15, False)]
CHAMPION = {"precision": 0.74, "recall": 0.56, "roc_auc": 0.91}
CHALLENGER = {"precision": 0.71, "recall": 0.81, "roc_auc": 0.94}


def weekly(values):
    return [(START + timedelta(weeks=i), v) for i, v in enumerate(values)]


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.size == (1200, 675)


def alert_pixels(path: Path) -> int:
    """Pixels within a small distance of the alert red."""
    red = np.array([int(charts.ALERT[i:i + 2], 16) for i in (1, 3, 5)])
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    return int((np.abs(pixels - red).sum(axis=2) < 30).sum())


def render_kpi(out: Path, values=MISSED_FRAUD, breaches=(4, 5), **kwargs) -> Chart:
    return kpi_trend(label="Weekly fraud amount missed", unit="USD", points=weekly(values),
                     threshold=10_000, breach_indices=breaches, out=out, **kwargs)


def card_ages(seed: int = 3) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    reference = pd.Series(rng.lognormal(math.log(400), 0.8, 4000))
    current = pd.Series(np.concatenate([rng.lognormal(math.log(400), 0.8, 600), rng.uniform(1, 30, 400)]))
    return reference, current


def countries(n_categories: int, size: int, seed: int) -> pd.Series:
    names = [f"C{i:02d}" for i in range(n_categories)]
    weights = np.linspace(2, 1, n_categories)
    return pd.Series(np.random.default_rng(seed).choice(names, size, p=weights / weights.sum()))


# --- KPI trend ---------------------------------------------------------------------------------

def test_kpi_trend_writes_png_in_new_folder_and_alt_text_has_breaches_and_threshold(tmp_path):
    out = tmp_path / "alerts" / "42" / "kpi.png"
    chart = render_kpi(out)
    assert chart.path == out
    assert_png(out)
    assert chart.title == "Weekly fraud amount missed"
    assert "$10,000" in chart.alt_text
    assert "Nov 10 ($18,300)" in chart.alt_text
    assert "Nov 3 ($16,200)" in chart.alt_text
    assert "Breached at 2 of 6 readings" in chart.alt_text
    assert "This week (Nov 10): $18,300" in chart.alt_text


def test_kpi_trend_title_override_keeps_dollar_signs_literal(tmp_path):
    # An unescaped pair of "$" would be parsed as mathtext, and "$x_$" does not parse.
    chart = render_kpi(tmp_path / "kpi.png", title="Spend $x_$ per week")
    assert chart.title == "Spend $x_$ per week"
    assert_png(chart.path)


def test_kpi_trend_marks_breaches_in_alert_colour_only_when_there_are_breaches(tmp_path):
    calm = render_kpi(tmp_path / "calm.png", values=MISSED_FRAUD[:4], breaches=())
    breached = render_kpi(tmp_path / "breached.png")
    assert alert_pixels(calm.path) == 0
    assert alert_pixels(breached.path) > 500
    assert "No reading breached the threshold." in calm.alt_text


def test_kpi_trend_without_threshold_and_rate_unit(tmp_path):
    chart = kpi_trend(label="Missed-fraud rate", unit="%", points=weekly([0.017, 0.018, 0.024]),
                      threshold=None, breach_indices=[], out=tmp_path / "rate.png")
    assert_png(chart.path)
    assert "This week (Oct 20): 2.4%" in chart.alt_text
    assert "threshold" not in chart.alt_text.lower().replace("breached the threshold", "")


def test_kpi_trend_with_a_long_series_and_one_point(tmp_path):
    long = render_kpi(tmp_path / "long.png", values=[5000 + 100 * i for i in range(40)], breaches=())
    single = render_kpi(tmp_path / "single.png", values=[18_300], breaches=[0])
    assert_png(long.path)
    assert_png(single.path)
    assert "40 readings" in long.alt_text
    assert "Breached at 1 of 1 readings: Oct 6 ($18,300)" in single.alt_text


@pytest.mark.parametrize(("points", "breaches", "message"), [
    ([], [], "no points"),
    (weekly([1.0, 2.0]), [2], "breach index 2 is outside the 2 points"),
    (weekly([float("nan")]), [], "every value"),
])
def test_kpi_trend_rejects_bad_input(tmp_path, points, breaches, message):
    with pytest.raises(ValueError, match=message):
        kpi_trend(label="Missed fraud", unit="USD", points=points, threshold=10.0,
                  breach_indices=breaches, out=tmp_path / "kpi.png")
    assert not (tmp_path / "kpi.png").exists()


# --- Drift bars --------------------------------------------------------------------------------

def test_drift_bars_alt_text_names_drifted_features_and_statistics(tmp_path):
    chart = drift_bars(model="fraud-detector v1", features=FEATURES, method_label="Wasserstein / Jensen-Shannon",
                       out=tmp_path / "drift" / "bars.png")
    assert_png(chart.path)
    assert chart.title == "Input drift on fraud-detector v1: 2 of 3 features"
    assert "2 of 3 features drifted" in chart.alt_text
    assert "Drifted: card_age_days 0.31 (alert 0.15), country 0.14 (alert 0.10)." in chart.alt_text
    assert "Stable: amount 0.05 (alert 0.15)." in chart.alt_text
    assert "Wasserstein / Jensen-Shannon" in chart.alt_text


def test_drift_bars_use_alert_colour_only_for_drifted_features(tmp_path):
    stable = [(name, 0.01, 0.15, False) for name, *_ in FEATURES]
    calm = drift_bars(model="m", features=stable, method_label="PSI", out=tmp_path / "calm.png")
    drifted = drift_bars(model="m", features=FEATURES, method_label="PSI", out=tmp_path / "drifted.png")
    assert alert_pixels(calm.path) == 0
    assert alert_pixels(drifted.path) > 5000


def test_drift_bars_with_many_long_named_features_summarise_the_stable_rest(tmp_path):
    many = [(f"merchant_category_rolling_mean_{i}d", 0.01 * i, 0.2, False) for i in range(1, 15)]
    many.append(("card_age_days", 0.31, 0.15, True))
    chart = drift_bars(model="fraud-detector v1", features=many, method_label="PSI", out=tmp_path / "many.png")
    assert_png(chart.path)
    assert "1 of 15 features drifted" in chart.alt_text
    assert "The other 14 features are stable" in chart.alt_text
    assert "merchant_category_rolling_mean_14d at 0.14 (alert 0.20)" in chart.alt_text


@pytest.mark.parametrize(("features", "message"), [
    ([], "no features"),
    ([("a", 0.1, 0.2, False), ("a", 0.3, 0.2, True)], "repeat.*: a"),
    ([("age", float("nan"), 0.2, False)], "'age'.*non-finite"),
])
def test_drift_bars_rejects_bad_input(tmp_path, features, message):
    with pytest.raises(ValueError, match=message):
        drift_bars(model="m", features=features, method_label="PSI", out=tmp_path / "d.png")


# --- Distribution ------------------------------------------------------------------------------

def test_numeric_distribution_alt_text_has_medians_tails_and_missing_counts(tmp_path):
    reference, current = card_ages()
    current.iloc[:7] = np.nan
    chart = distribution(feature="card_age_days", kind="numeric", reference=reference, current=current,
                         out=tmp_path / "dist" / "age.png", statistic_text="Wasserstein 0.31 (alert 0.15)")
    assert_png(chart.path)
    median_ref = format_value(float(np.median(reference)), None)
    median_cur = format_value(float(np.median(current.dropna())), None)
    assert f"Median {median_ref} in the reference vs {median_cur} this week." in chart.alt_text
    assert "Wasserstein 0.31 (alert 0.15)." in chart.alt_text
    assert "reference (4,000 rows) vs this week (993 rows)" in chart.alt_text
    assert "Missing values dropped: 0 in the reference, 7 this week." in chart.alt_text
    below = float(np.mean(current.dropna() < np.quantile(reference, 0.1)))
    assert f"This week: {format_value(below, '%')} of values are below" in chart.alt_text


def test_numeric_distribution_with_negative_and_constant_values(tmp_path):
    rng = np.random.default_rng(5)
    shifted = distribution(feature="score", kind="numeric", reference=pd.Series(rng.normal(0, 1, 500)),
                           current=pd.Series(rng.normal(1, 1, 300)), out=tmp_path / "shift.png")
    constant = distribution(feature="flag", kind="numeric", reference=pd.Series([1.0] * 50),
                            current=pd.Series([1.0] * 20), out=tmp_path / "const.png",
                            current_label="Yesterday")
    assert_png(shifted.path)
    assert_png(constant.path)
    assert "Median 1 in the reference vs 1 yesterday." in constant.alt_text
    assert "Missing values dropped" not in shifted.alt_text


def test_categorical_distribution_folds_categories_past_the_top_ten_into_other(tmp_path):
    chart = distribution(feature="country", kind="categorical", reference=countries(15, 3000, 1),
                         current=countries(15, 800, 2), out=tmp_path / "country.png")
    assert_png(chart.path)
    assert "The 5 smallest of 15 categories are grouped as other" in chart.alt_text

    ten = distribution(feature="country", kind="categorical", reference=countries(10, 3000, 1),
                       current=countries(10, 800, 2), out=tmp_path / "ten.png")
    assert "other" not in ten.alt_text


def test_categorical_distribution_keeps_a_category_that_surged_this_week(tmp_path):
    reference = countries(15, 3000, 1)
    current = pd.concat([countries(15, 700, 2), pd.Series(["NG"] * 300)], ignore_index=True)
    chart = distribution(feature="country", kind="categorical", reference=reference, current=current,
                         out=tmp_path / "surge.png", statistic_text="Jensen-Shannon 0.14 (alert 0.10)")
    assert "Largest changes in share: NG 0% → 30%" in chart.alt_text
    assert "Jensen-Shannon 0.14 (alert 0.10)." in chart.alt_text


def test_categorical_distribution_counts_dropped_missing_values(tmp_path):
    reference = pd.Series(["mobile", "desktop", None, "mobile", pd.NA], dtype="object")
    chart = distribution(feature="device", kind="categorical", reference=reference,
                         current=pd.Series(["mobile", "tablet"]), out=tmp_path / "device.png")
    assert_png(chart.path)
    assert "reference (3 rows)" in chart.alt_text
    assert "Missing values dropped: 2 in the reference, 0 this week." in chart.alt_text


@pytest.mark.parametrize(("kind", "reference", "current", "message"), [
    ("numeric", pd.Series([], dtype=float), pd.Series([1.0]), "reference series for feature 'age' is empty"),
    ("numeric", pd.Series([1.0]), pd.Series([], dtype=float), "current series for feature 'age' is empty"),
    ("numeric", pd.Series([1.0]), pd.Series([np.nan, np.nan]), "no values left after dropping 2 missing"),
    ("numeric", pd.Series(["young", "old"]), pd.Series([1.0]), "reference values of numeric feature 'age'"),
    ("ordinal", pd.Series([1.0]), pd.Series([1.0]), "kind must be 'numeric' or 'categorical'"),
])
def test_distribution_rejects_bad_input(tmp_path, kind, reference, current, message):
    with pytest.raises(ValueError, match=message):
        distribution(feature="age", kind=kind, reference=reference, current=current, out=tmp_path / "d.png")


# --- Champion vs challenger --------------------------------------------------------------------

def test_champion_vs_challenger_alt_text_carries_every_metric(tmp_path):
    chart = champion_vs_challenger(champion_label="v1 (production)", challenger_label="v2 (candidate)",
                                   champion=CHAMPION, challenger=CHALLENGER, out=tmp_path / "cvc" / "m.png",
                                   window_text="Same labelled week: Nov 13 – Nov 19")
    assert_png(chart.path)
    assert chart.title == "v2 (candidate) vs v1 (production)"
    assert "Recall: v1 (production) 0.56, v2 (candidate) 0.81 (+0.25)" in chart.alt_text
    assert "Precision: v1 (production) 0.74, v2 (candidate) 0.71 (-0.03)" in chart.alt_text
    assert "ROC AUC: v1 (production) 0.91, v2 (candidate) 0.94 (+0.03)" in chart.alt_text
    assert "Same labelled week: Nov 13 – Nov 19." in chart.alt_text


def test_champion_vs_challenger_with_metrics_beyond_one(tmp_path):
    chart = champion_vs_challenger(champion_label="v1", challenger_label="v2", champion={"rmse": 12.5, "mae": 8.0},
                                   challenger={"rmse": 10.1, "mae": 7.2}, out=tmp_path / "reg.png")
    assert_png(chart.path)
    assert "RMSE: v1 12.5, v2 10.1 (-2.4)" in chart.alt_text


def test_champion_vs_challenger_reads_n_a_for_a_metric_one_side_lacks(tmp_path):
    chart = champion_vs_challenger(champion_label="v1", challenger_label="v2", champion={"recall": 0.56},
                                   challenger=CHALLENGER, out=tmp_path / "partial.png")
    assert_png(chart.path)
    assert "Recall: v1 0.56, v2 0.81 (+0.25)" in chart.alt_text
    assert "ROC AUC: v1 n/a, v2 0.94." in chart.alt_text


@pytest.mark.parametrize(("champion", "challenger", "message"), [
    ({}, CHALLENGER, "no metrics for 'v1'"),
    (CHAMPION, {}, "no metrics for 'v2'"),
    ({"recall": float("nan")}, CHALLENGER, "every metric of 'v1' is missing"),
])
def test_champion_vs_challenger_rejects_bad_input(tmp_path, champion, challenger, message):
    with pytest.raises(ValueError, match=message):
        champion_vs_challenger(champion_label="v1", challenger_label="v2", champion=champion,
                               challenger=challenger, out=tmp_path / "m.png")


# --- Resources ---------------------------------------------------------------------------------

def render_all(folder: Path) -> list[Chart]:
    reference, current = card_ages()
    return [
        render_kpi(folder / "kpi.png"),
        drift_bars(model="m", features=FEATURES, method_label="PSI", out=folder / "drift.png"),
        distribution(feature="age", kind="numeric", reference=reference, current=current, out=folder / "num.png"),
        distribution(feature="country", kind="categorical", reference=countries(12, 500, 1),
                     current=countries(12, 200, 2), out=folder / "cat.png"),
        champion_vs_challenger(champion_label="v1", challenger_label="v2", champion=CHAMPION,
                               challenger=CHALLENGER, out=folder / "cvc.png"),
    ]


def live_figures() -> int:
    gc.collect()
    return sum(isinstance(obj, Figure) for obj in gc.get_objects())


def test_rendering_leaves_no_figure_behind(tmp_path):
    before = live_figures()
    render_all(tmp_path)
    with pytest.raises(ValueError):
        drift_bars(model="m", features=[], method_label="PSI", out=tmp_path / "none.png")
    assert plt.get_fignums() == []
    assert live_figures() == before


def test_charts_render_concurrently_in_worker_threads(tmp_path):
    with ThreadPoolExecutor(max_workers=3) as pool:
        batches = list(pool.map(render_all, [tmp_path / str(i) for i in range(3)]))
    for batch in batches:
        for chart in batch:
            assert_png(chart.path)
    assert [c.alt_text for c in batches[0]] == [c.alt_text for c in batches[2]]


# --- format_value ------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "unit", "expected"), [
    (18_300, "USD", "$18,300"),
    (18_300.4, "usd", "$18,300"),
    (-1_200, "$", "-$1,200"),
    (12.5, "USD", "$12.50"),
    (7, "USD", "$7"),
    (0.024, "%", "2.4%"),
    (0.41, "rate", "41%"),
    (0.017, "percent", "1.7%"),
    (0.81, None, "0.81"),
    (0.1, None, "0.10"),
    (12_345, None, "12,345"),
    (2.5, None, "2.5"),
    (8.0, None, "8"),
    (1.256, None, "1.26"),
    (12.34, None, "12.3"),
    (0.0012, None, "0.0012"),
    (0.999, None, "0.999"),
    (1.0, None, "1"),
    (0, None, "0"),
    (120, "ms", "120 ms"),
    (float("nan"), "USD", "n/a"),
])
def test_format_value(value, unit, expected):
    assert format_value(value, unit) == expected


def test_kpi_trend_writes_the_latest_breach_and_the_worst_one_never_two_neighbours():
    """A value label is wider than the gap between weekly readings: neighbours' labels would overlap."""
    import numpy as np

    from bot.charts import labelled_readings

    values = np.array([4600, 7100, 5600, 5200, 20135, 20863, 18915, 20042])
    assert labelled_readings([4, 5, 6, 7], values) == [5, 7]  # the worst (Nov 2) and this week
    assert labelled_readings([5, 6, 7], np.array([0, 0, 0, 0, 0, 9, 30, 20])) == [7]  # worst is its neighbour
    assert labelled_readings([2, 7], np.array([0, 0, 5, 0, 0, 0, 0, 4])) == [2, 7]
    assert labelled_readings([3], values) == [3]
    assert labelled_readings([], values) == []
    for breaches in ([0, 1, 2, 3, 4, 5, 6, 7], [1, 2, 5, 6], [6, 7]):
        written = labelled_readings(breaches, values)
        assert written[-1] == breaches[-1] and all(b - a >= 2 for a, b in zip(written, written[1:]))


# --- KPI figure: axis from zero, dated ticks, named baseline and alert band ---------------------

def _band_ys(patch) -> list[float]:
    """The band's lower and upper edges in data units (a Rectangle or a Polygon, by matplotlib version)."""
    return list(patch.get_patch_transform().transform_path(patch.get_path()).vertices[:, 1])


def _legend(fig: Figure) -> list[str]:
    return [t.get_text().replace("\\$", "$") for t in fig.axes[0].get_legend().get_texts()]


def test_a_kpi_chart_starts_at_zero_labels_dates_with_the_year_and_names_baseline_and_band():
    from bot.charts.kpi import kpi_figure

    points = weekly([10_000, 10_400, 9_900, 10_100, 20_000, 20_300])  # far from zero: the old axis started near it
    fig = kpi_figure(label="Fraud amount missed", unit="USD", points=points, threshold=15_000, breach_indices=[4, 5],
                     baseline=10_100, baseline_name="baseline: 4 weeks before Nov 3")
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "Oct 6, 2025" and all(label[:3] in ("Oct", "Nov") for label in labels)
    assert _legend(fig) == ["alert above $15,000", "baseline: 4 weeks before Nov 3"]


def test_a_rate_chart_starts_at_zero_and_a_year_turning_is_labelled():
    from bot.charts.kpi import kpi_figure

    points = [(datetime(2025, 12, 1) + timedelta(weeks=i), 0.40 + 0.01 * i) for i in range(8)]
    ax = kpi_figure(label="Missed fraud", unit="rate", points=points, threshold=None, breach_indices=[]).axes[0]
    assert ax.get_ylim()[0] == 0
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].endswith(", 2025") and any(label.endswith(", 2026") for label in labels[1:])


def test_a_relative_alert_gets_its_band_from_the_baseline_up():
    from bot.charts.kpi import alert_band, kpi_figure
    from jobs.spec.model import KpiAlertSpec

    band = alert_band(KpiAlertSpec(above_baseline_pct=25), 10_000, "USD")
    assert band == {"alert_line": 12_500, "below": False, "alert_name": "alert: 25% above baseline"}
    fig = kpi_figure(label="Fraud amount missed", unit="USD", points=weekly(MISSED_FRAUD), threshold=None,
                     breach_indices=[4, 5], baseline=10_000, baseline_name="baseline: 4 weeks before Nov 3", **band)
    assert _legend(fig) == ["alert: 25% above baseline", "baseline: 4 weeks before Nov 3"]
    (patch,) = [p for p in fig.axes[0].patches if p.get_label() == "alert: 25% above baseline"]
    ys = _band_ys(patch)
    assert min(ys) == pytest.approx(12_500) and max(ys) == pytest.approx(fig.axes[0].get_ylim()[1])


def test_an_alert_below_draws_its_band_below_the_line():
    from bot.charts.kpi import alert_band, kpi_figure
    from jobs.spec.model import KpiAlertSpec

    band = alert_band(KpiAlertSpec(below=0.6), None, "rate")
    assert band["below"] and band["alert_name"] == "alert below 60%"
    fig = kpi_figure(label="Approval rate", unit="rate", points=weekly([0.8, 0.79, 0.81, 0.5]), threshold=None,
                     breach_indices=[3], **band)
    (patch,) = [p for p in fig.axes[0].patches if p.get_label() == "alert below 60%"]
    ys = _band_ys(patch)
    assert min(ys) == pytest.approx(0) and max(ys) == pytest.approx(0.6)
    assert alert_band(KpiAlertSpec(below_baseline_pct=20), 0.5, "rate")["alert_line"] == pytest.approx(0.4)


def test_dashboard_trends_label_their_first_day_with_its_year_as_the_png_charts_do():
    from bot.dashboard.svg import line_chart
    from bot.services.pages.shapes import Point, Series

    points = tuple(Point(datetime(2026, 10, 5) + timedelta(weeks=i), 1000.0 + i) for i in range(8))
    svg = str(line_chart([Series("k", "Fraud", "USD", points)], title="Fraud", unit="USD"))
    assert ">Oct 5, 2026</text>" in svg
    assert "on Nov 23, 2026" in svg  # the summary says the latest reading's date with its year
