"""PNG charts for Slack alerts and the HTML preview.

Every chart is drawn on a 1200x675 canvas with large type, so it stays readable when Slack shrinks
it to a ~400 px preview. Figures are built with the object-oriented API (no pyplot state), so
rendering in a long-running worker neither leaks figures nor shares state between threads.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

# One palette and one set of type sizes for every chart.
ALERT = "#C62828"
PRIMARY = "#1F5FA8"
MUTED = "#A7AFB8"
INK = "#1F2328"
SUBTLE = "#57606A"
GRID = "#E4E7EB"
BAND = "#FBE9E7"

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 6.75, 100  # 1200 x 675 px
TITLE_SIZE = 28
SUBTITLE_SIZE = 21
LABEL_SIZE = 22
TICK_SIZE = 20
NOTE_SIZE = 21
MARGIN_PX = 14

TOP_CATEGORIES = 10
MAX_FEATURE_BARS = 10
MAX_DATE_TICKS = 6
TICK_STEPS = [1, 2, 2.5, 5, 10]
HIST_BINS = 30
LOG_SPAN = 50  # high/low ratio of a positive feature above which bins are log-spaced
MAX_NAME_CHARS = 28
MIN_LABEL_SIZE = 13
USD_UNITS = {"usd", "$"}
PERCENT_UNITS = {"%", "percent", "rate", "ratio"}
METRIC_NAMES = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "f1": "F1", "auc": "AUC", "mae": "MAE",
                "rmse": "RMSE", "log_loss": "Log loss", "brier": "Brier score"}


@dataclass(frozen=True)
class Chart:
    path: Path
    title: str
    alt_text: str


def format_value(value: float, unit: str | None) -> str:
    """Format a figure for people: "$18,300" (USD), "2.4%" (a rate given as a fraction), "0.81".

    Percent units ("%", "percent", "rate", "ratio") expect the value as a fraction: 0.024 -> "2.4%".
    Any other unit is appended after a space: "120 ms".
    """
    if value is None or math.isnan(value):
        return "n/a"
    key = (unit or "").strip().lower()
    if key in USD_UNITS:
        sign = "-" if value < 0 else ""
        amount = abs(value)
        digits = 0 if amount >= 100 or float(amount).is_integer() else 2
        return f"{sign}${amount:,.{digits}f}"
    if key in PERCENT_UNITS:
        text = f"{value * 100:.1f}"
        return (text[:-2] if text.endswith(".0") else text) + "%"
    number = _plain_number(value)
    return f"{number} {unit.strip()}" if key else number


def _plain_number(value: float) -> str:
    size = abs(value)
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    if size == 0:
        return "0"
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:.{1 if size >= 10 else 2}f}".rstrip("0").rstrip(".")
    if size >= 0.01:
        # 0.999 must not read as "1.00": near-perfect metrics differ in the third decimal.
        return f"{value:.{3 if size >= 0.995 else 2}f}"
    return f"{value:.2g}"


def labelled_readings(breaches: list[int], values: np.ndarray) -> list[int]:
    """Which breaching readings get their value written: the latest, and the worst when it is not next to
    it (a label is wider than the gap between neighbouring readings, so neighbours' labels collide)."""
    if not breaches:
        return []
    latest = breaches[-1]
    worst = max(breaches, key=lambda i: (values[i], i))
    return [worst, latest] if latest - worst >= 2 else [latest]


def kpi_trend(*, label: str, unit: str | None, points: Sequence[tuple[datetime, float]],
              threshold: float | None, breach_indices: Sequence[int], out: Path,
              title: str | None = None) -> Chart:
    """Line chart of a KPI over time, with the alert threshold and the breaching points marked."""
    if not points:
        raise ValueError(f"kpi_trend: no points to plot for {label!r}")
    dates = [when for when, _ in points]
    values = np.array([float(v) for _, v in points])
    if not np.isfinite(values).any():
        raise ValueError(f"kpi_trend: every value of {label!r} is missing")
    breaches = sorted(set(breach_indices))
    for index in breaches:
        if not 0 <= index < len(points):
            raise ValueError(f"kpi_trend: breach index {index} is outside the {len(points)} points "
                             f"of {label!r}")
        if not math.isfinite(values[index]):
            raise ValueError(f"kpi_trend: breach index {index} of {label!r} points at a missing value")

    title = title or label
    fig, ax = _new_figure()
    x = date2num(dates)
    last = len(points) - 1
    step = float(np.median(np.diff(x))) if len(x) > 1 else 7.0
    ax.axvspan(x[last] - step / 2, x[last] + step / 2, color=BAND, zorder=0)
    ax.plot(x, values, color=PRIMARY, linewidth=4, marker="o", markersize=11, zorder=3)
    if threshold is not None:
        ax.axhline(threshold, color=INK, linestyle=(0, (6, 4)), linewidth=2.5, zorder=2)
    if breaches:
        ax.plot(x[breaches], values[breaches], linestyle="none", marker="o", markersize=20,
                markerfacecolor=ALERT, markeredgecolor="white", markeredgewidth=2.5, zorder=4)
    for index in labelled_readings(breaches, values):
        ax.annotate(_safe(format_value(values[index], unit)), (x[index], values[index]),
                    xytext=(0, 18), textcoords="offset points", ha="center", va="bottom",
                    fontsize=NOTE_SIZE, fontweight="bold", color=ALERT, zorder=5)

    finite = values[np.isfinite(values)]
    low = min(finite.min(), threshold if threshold is not None else np.inf)
    high = max(finite.max(), threshold if threshold is not None else -np.inf)
    bottom = 0.0 if 0 <= low <= high / 2 else low - 0.1 * (high - low or abs(high) or 1)
    ax.set_ylim(bottom, high + 0.28 * (high - bottom or abs(high) or 1))
    ax.set_xlim(x[0] - step * 0.6, x[last] + step * 0.6)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=TICK_STEPS))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _safe(format_value(v, unit))))
    # Tick every k-th reading counting back from the latest, which is named ("This week").
    ticked = list(range(last, -1, -math.ceil(len(x) / MAX_DATE_TICKS)))[::-1]
    latest = _period_name(step) or _day(dates[last])
    ax.set_xticks(x[ticked], [_day(dates[i]) for i in ticked[:-1]] + [latest])
    ax.get_xticklabels()[-1].set(fontweight="bold", color=ALERT if last in breaches else INK)
    if threshold is not None:
        ax.annotate(_safe(f"alert above {format_value(threshold, unit)}"), (0, threshold),
                    xycoords=("axes fraction", "data"), xytext=(8, 6), textcoords="offset points",
                    ha="left", va="bottom", fontsize=NOTE_SIZE, color=INK)
    _style_axes(ax, grid_axis="y")
    _set_titles(fig, ax, title, "")
    _save(fig, out)

    alt = _kpi_alt_text(label, unit, dates, values, threshold, breaches, _period_name(step) or "Latest")
    return Chart(path=out, title=title, alt_text=alt)


def _period_name(step_days: float) -> str | None:
    """What people call the latest reading of a series sampled every step_days."""
    for low, high, name in ((0.9, 1.1, "Today"), (6, 8, "This week"), (28, 31.5, "This month")):
        if low <= step_days <= high:
            return name
    return None


def _kpi_alt_text(label: str, unit: str | None, dates: Sequence[datetime], values: np.ndarray,
                  threshold: float | None, breaches: Sequence[int], latest: str) -> str:
    finite = values[np.isfinite(values)]
    span = f"from {_day(dates[0], year=True)} to {_day(dates[-1], year=True)}"
    text = (f"Line chart of {_mid_sentence(label)}, {len(values)} readings {span}. "
            f"{latest} ({_day(dates[-1])}): {format_value(values[-1], unit)}; "
            f"range {format_value(finite.min(), unit)} to {format_value(finite.max(), unit)}.")
    if threshold is not None:
        text += f" Alert threshold {format_value(threshold, unit)}."
    if breaches:
        listed = ", ".join(f"{_day(dates[i])} ({format_value(values[i], unit)})" for i in breaches)
        text += f" Breached at {len(breaches)} of {len(values)} readings: {listed}."
    else:
        text += " No reading breached the threshold."
    return text


def drift_bars(*, model: str, features: Sequence[tuple[str, float, float, bool]], method_label: str,
               out: Path) -> Chart:
    """Horizontal bars of each feature's drift statistic, each with its own threshold tick."""
    if not features:
        raise ValueError(f"drift_bars: no features to plot for {model!r}")
    names = [name for name, *_ in features]
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"drift_bars: feature names repeat for {model!r}: {', '.join(duplicates)}")
    for name, statistic, threshold, _ in features:
        if not (math.isfinite(statistic) and math.isfinite(threshold)):
            raise ValueError(f"drift_bars: feature {name!r} of {model!r} has a non-finite statistic "
                             f"({statistic}) or threshold ({threshold})")

    # Drifted features first, then by how close each is to its own threshold.
    ranked = sorted(features, key=lambda f: (not f[3], -_ratio(f[1], f[2])))
    shown = ranked[:MAX_FEATURE_BARS]
    hidden = len(ranked) - len(shown)
    drifted = [f for f in ranked if f[3]]
    title = f"Input drift on {model}: {len(drifted)} of {len(features)} features"

    fig, ax = _new_figure()
    rows = np.arange(len(shown))[::-1]
    colors = [ALERT if f[3] else MUTED for f in shown]
    stats = np.array([f[1] for f in shown])
    thresholds = np.array([f[2] for f in shown])
    ax.barh(rows, stats, height=0.62, color=colors, zorder=2)
    ax.vlines(thresholds, rows - 0.42, rows + 0.42, colors=INK, linewidth=4, zorder=3)
    span = max(stats.max(), thresholds.max()) or 1.0
    ax.set_xlim(0, span * 1.18)
    ax.set_ylim(-0.6, len(shown) - 0.4)
    ax.set_yticks(rows, [_safe(_shorten(f[0])) for f in shown])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=TICK_STEPS))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _plain_number(v)))
    ax.set_xlabel(_safe(f"Drift statistic ({method_label})"), fontsize=LABEL_SIZE, color=INK)
    handles = [Patch(color=ALERT, label="drifted")] if any(f[3] for f in shown) else []
    handles += [Patch(color=MUTED, label="stable")] if not all(f[3] for f in shown) else []
    handles += [Line2D([], [], color=INK, linewidth=4, label="alert threshold")]
    legend = _top_legend(ax, handles)
    _style_axes(ax, grid_axis="x")
    ax.tick_params(axis="y", length=0)
    subtitle = f"{hidden} more stable features not shown" if hidden else ""
    _set_titles(fig, ax, title, subtitle, beside=legend)
    _label_bar_ends(fig, ax, rows, shown)
    _save(fig, out)

    return Chart(path=out, title=title, alt_text=_drift_alt_text(model, features, method_label))


def _label_bar_ends(fig: Figure, ax: Axes, rows: np.ndarray,
                    shown: Sequence[tuple[str, float, float, bool]]) -> None:
    # Each value sits at its bar's end, or just past the threshold tick when the tick would cross it.
    fig.draw_without_rendering()  # runs the layout, so data units per pixel are final
    renderer = fig.canvas.get_renderer()
    per_px = (ax.get_xlim()[1] - ax.get_xlim()[0]) / ax.bbox.width
    gap = 8 * per_px
    for row, (_, stat, threshold, is_drifted) in zip(rows, shown, strict=True):
        text = _plain_number(stat)
        weight = "bold" if is_drifted else "normal"
        width = renderer.get_text_width_height_descent(
            text, FontProperties(size=NOTE_SIZE, weight=weight), ismath=False)[0] * per_px
        start = stat + gap
        if stat - gap < threshold < start + width + gap:
            start = max(stat, threshold) + gap
        ax.text(start, row, text, va="center", ha="left", fontsize=NOTE_SIZE, fontweight=weight,
                color=ALERT if is_drifted else SUBTLE)


def _label_bar_tops(fig: Figure, ax: Axes, groups: list[tuple[np.ndarray, np.ndarray, str]],
                    bar_width: float) -> None:
    # Values share one number of decimals ("1.000" next to "0.999") and shrink to fit their bar.
    texts = _same_decimals(np.concatenate([values for _, values, _ in groups]))  # "n/a" where missing
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    bar_px = bar_width * ax.bbox.width / (ax.get_xlim()[1] - ax.get_xlim()[0])
    font = FontProperties(size=NOTE_SIZE, weight="bold")
    widest = max(renderer.get_text_width_height_descent(t, font, ismath=False)[0] for t in texts)
    size = max(MIN_LABEL_SIZE, min(NOTE_SIZE, NOTE_SIZE * bar_px * 0.92 / widest))
    lift = (ax.get_ylim()[1] - ax.get_ylim()[0]) * 0.012
    labels = iter(texts)
    for positions, values, color in groups:
        for x_pos, value in zip(positions, values, strict=True):
            ax.text(x_pos, max(np.nan_to_num(value), 0) + lift, next(labels), ha="center", va="bottom",
                    fontsize=size, fontweight="bold", color=color)


def _same_decimals(values: np.ndarray) -> list[str]:
    plain = [format_value(float(v), None) for v in values]
    if any("e" in text for text in plain):
        return plain
    decimals = max(len(text.partition(".")[2]) for text in plain if text != "n/a")
    return ["n/a" if math.isnan(v) else f"{v:,.{decimals}f}" for v in values]


def _drift_alt_text(model: str, features: Sequence[tuple[str, float, float, bool]],
                    method_label: str) -> str:
    drifted = sorted((f for f in features if f[3]), key=lambda f: -_ratio(f[1], f[2]))
    stable = sorted((f for f in features if not f[3]), key=lambda f: -_ratio(f[1], f[2]))
    text = (f"Bar chart of input drift on {model} ({method_label}): "
            f"{len(drifted)} of {len(features)} features drifted.")
    if drifted:
        listed = ", ".join(f"{n} {_plain_number(s)} (alert {_plain_number(t)})" for n, s, t, _ in drifted)
        text += f" Drifted: {listed}."
    if stable and len(stable) <= 5:
        listed = ", ".join(f"{n} {_plain_number(s)} (alert {_plain_number(t)})" for n, s, t, _ in stable)
        text += f" Stable: {listed}."
    elif stable:
        name, stat, threshold, _ = stable[0]
        text += (f" The other {len(stable)} features are stable; the closest to its threshold is "
                 f"{name} at {_plain_number(stat)} (alert {_plain_number(threshold)}).")
    return text


def distribution(*, feature: str, kind: str, reference: pd.Series, current: pd.Series, out: Path,
                 statistic_text: str = "", current_label: str = "This week") -> Chart:
    """Reference vs current distribution of one feature; missing values are dropped and counted."""
    if kind not in ("numeric", "categorical"):
        raise ValueError(f"distribution: kind must be 'numeric' or 'categorical', got {kind!r} "
                         f"for {feature!r}")
    for which, series in (("reference", reference), ("current", current)):
        if len(series) == 0:
            raise ValueError(f"distribution: the {which} series for feature {feature!r} is empty")
    if kind == "numeric":
        ref, ref_missing = _numeric(reference, feature, "reference")
        cur, cur_missing = _numeric(current, feature, "current")
    else:
        ref, ref_missing = reference.dropna().astype(str), int(reference.isna().sum())
        cur, cur_missing = current.dropna().astype(str), int(current.isna().sum())
    for which, values, total in (("reference", ref, len(reference)), ("current", cur, len(current))):
        if len(values) == 0:
            raise ValueError(f"distribution: the {which} series for feature {feature!r} has no values "
                             f"left after dropping {total} missing")

    title = f"{feature}: reference vs {current_label.lower()}"
    fig, ax = _new_figure()
    if kind == "numeric":
        summary = _draw_histograms(ax, ref, cur, feature, current_label)
        subtitle = f"median {_plain_number(float(np.median(ref)))} → {_plain_number(float(np.median(cur)))}"
        alt_body = summary
    else:
        alt_body = _draw_category_shares(ax, ref, cur, current_label)
        subtitle = ""
    _style_axes(ax, grid_axis="y" if kind == "numeric" else "x")
    subtitle = " · ".join(part for part in (statistic_text, subtitle) if part)
    _set_titles(fig, ax, title, subtitle, beside=ax.get_legend())
    _save(fig, out)

    chart_kind = "Histogram" if kind == "numeric" else "Bar chart of category shares"
    alt = (f"{chart_kind} of {feature}, reference ({len(ref):,} rows) vs {current_label.lower()} "
           f"({len(cur):,} rows). {alt_body}")
    if statistic_text:
        alt += f" {statistic_text}."
    if ref_missing or cur_missing:
        alt += (f" Missing values dropped: {ref_missing:,} in the reference, "
                f"{cur_missing:,} {current_label.lower()}.")
    return Chart(path=out, title=title, alt_text=alt)


def _numeric(series: pd.Series, feature: str, which: str) -> tuple[np.ndarray, int]:
    present = series.dropna()
    try:
        values = present.to_numpy(dtype="float64")
    except (TypeError, ValueError) as error:
        raise ValueError(f"distribution: the {which} values of numeric feature {feature!r} are not "
                         f"numbers ({error})") from None
    finite = values[np.isfinite(values)]
    return finite, len(series) - len(finite)


def _draw_histograms(ax: Axes, ref: np.ndarray, cur: np.ndarray, feature: str, current_label: str) -> str:
    # Shared bins over the central 99% of both windows, so a long tail does not squash the bulk;
    # heights are shares of each window's rows, so windows of different size compare.
    low = min(np.quantile(ref, 0.005), np.quantile(cur, 0.005))
    high = max(np.quantile(ref, 0.995), np.quantile(cur, 0.995))
    if high <= low:
        low, high = low - 0.5, high + 0.5
    # A positive feature spanning orders of magnitude (ages, amounts) reads better on log bins.
    log_scale = low > 0 and high / low > LOG_SPAN
    edges = np.geomspace(low, high, HIST_BINS + 1) if log_scale else np.linspace(low, high, HIST_BINS + 1)
    ref_share = np.histogram(ref, bins=edges)[0] / len(ref)
    cur_share = np.histogram(cur, bins=edges)[0] / len(cur)
    ax.stairs(ref_share, edges, fill=True, color=MUTED, alpha=0.75, label="Reference", zorder=2)
    ax.stairs(cur_share, edges, color=ALERT, linewidth=4, label=current_label, zorder=3)
    ax.set_xlim(low, high)
    ax.set_ylim(0, max(ref_share.max(), cur_share.max()) * 1.25)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=TICK_STEPS))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_value(v, "%")))
    if log_scale:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _plain_number(v)))
    ax.set_xlabel(_safe(feature + (" (log scale)" if log_scale else "")), fontsize=LABEL_SIZE, color=INK)
    ax.set_ylabel("Share of rows", fontsize=LABEL_SIZE, color=INK)
    ax.legend(loc="best", fontsize=NOTE_SIZE, frameon=True, framealpha=0.9, edgecolor=GRID)
    ax.get_legend().set_in_layout(False)  # inside the axes: not beside the subtitle

    p10, p90 = np.quantile(ref, [0.1, 0.9])
    below, above = float(np.mean(cur < p10)), float(np.mean(cur > p90))
    return (f"Median {_plain_number(float(np.median(ref)))} in the reference vs "
            f"{_plain_number(float(np.median(cur)))} {current_label.lower()}. "
            f"{current_label}: {format_value(below, '%')} of values are below the reference's 10th "
            f"percentile ({_plain_number(float(p10))}) and {format_value(above, '%')} above its 90th "
            f"({_plain_number(float(p90))}), against 10% each in the reference.")


def _draw_category_shares(ax: Axes, ref: pd.Series, cur: pd.Series, current_label: str) -> str:
    ref_share = ref.value_counts(normalize=True)
    cur_share = cur.value_counts(normalize=True)
    table = pd.DataFrame({"ref": ref_share, "cur": cur_share}).fillna(0.0)
    # Rank by the larger of the two shares, so a category that surged this week is kept.
    table = table.loc[table.max(axis=1).sort_values(ascending=False, kind="stable").index]
    folded = ""
    if len(table) > TOP_CATEGORIES:
        rest = table.iloc[TOP_CATEGORIES:].sum()
        folded = (f" The {len(table) - TOP_CATEGORIES} smallest of {len(table)} categories are grouped as "
                  f"other: {format_value(rest['ref'], '%')} → {format_value(rest['cur'], '%')}.")
        other = pd.DataFrame([rest], index=[f"other ({len(table) - TOP_CATEGORIES})"])
        table = pd.concat([table.iloc[:TOP_CATEGORIES], other])

    rows = np.arange(len(table))[::-1]
    height = 0.4
    ax.barh(rows + height / 2, table["ref"], height=height, color=MUTED, label="Reference", zorder=2)
    ax.barh(rows - height / 2, table["cur"], height=height, color=ALERT, label=current_label, zorder=2)
    top = float(table.to_numpy().max())
    if len(table) <= 6:
        for row, (ref_value, cur_value) in zip(rows, table.itertuples(index=False), strict=True):
            for offset, value, color in ((height / 2, ref_value, SUBTLE), (-height / 2, cur_value, ALERT)):
                ax.text(value + top * 0.01, row + offset, format_value(value, "%"), va="center",
                        ha="left", fontsize=NOTE_SIZE - 2, color=color)
    ax.set_xlim(0, top * 1.15)
    ax.set_ylim(-0.6, len(table) - 0.4)
    ax.set_yticks(rows, [_safe(_shorten(str(name))) for name in table.index])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, steps=TICK_STEPS))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_value(v, "%")))
    ax.set_xlabel("Share of rows", fontsize=LABEL_SIZE, color=INK)
    ax.tick_params(axis="y", length=0)
    _top_legend(ax)

    change = (table["cur"] - table["ref"]).abs().sort_values(ascending=False, kind="stable")
    listed = ", ".join(f"{name} {format_value(table.at[name, 'ref'], '%')} → "
                       f"{format_value(table.at[name, 'cur'], '%')}" for name in change.index[:3])
    return f"Largest changes in share: {listed}.{folded}"


def champion_vs_challenger(*, champion_label: str, challenger_label: str, champion: Mapping[str, float],
                           challenger: Mapping[str, float], out: Path, window_text: str = "") -> Chart:
    """Grouped bars comparing the production model and a candidate on the same metrics.

    A metric that one side lacks (or has as NaN) gets no bar on that side and reads "n/a".
    """
    if not champion or not challenger:
        side = champion_label if not champion else challenger_label
        raise ValueError(f"champion_vs_challenger: no metrics for {side!r}")
    metrics = list(dict.fromkeys([*challenger, *champion]))
    for label, values in ((champion_label, champion), (challenger_label, challenger)):
        if all(math.isnan(values.get(m, math.nan)) for m in metrics):
            raise ValueError(f"champion_vs_challenger: every metric of {label!r} is missing")

    title = f"{challenger_label} vs {champion_label}"
    fig, ax = _new_figure()
    slots = np.arange(len(metrics))
    width = 0.4
    old = np.array([champion.get(m, math.nan) for m in metrics], dtype=float)
    new = np.array([challenger.get(m, math.nan) for m in metrics], dtype=float)
    ax.bar(slots - width / 2, old, width=width, color=MUTED, label=_safe(champion_label), zorder=2)
    ax.bar(slots + width / 2, new, width=width, color=PRIMARY, label=_safe(challenger_label), zorder=2)
    high = max(np.nanmax(old), np.nanmax(new), 0.0)
    low = min(np.nanmin(old), np.nanmin(new), 0.0)
    unit_scale = low >= 0 and high <= 1
    top = 1.0 if unit_scale else high
    # Headroom above the tallest bar keeps its value clear of the legend row.
    ax.set_ylim(low, top * 1.32 if top > 0 else 1)
    ax.set_xticks(slots, [_safe(metric_name(m)) for m in metrics])
    if unit_scale:
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1], ["0", "0.25", "0.5", "0.75", "1"])
    else:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=TICK_STEPS))
    ax.legend(loc="upper left", ncols=2, fontsize=NOTE_SIZE, frameon=False)
    _style_axes(ax, grid_axis="y")
    ax.tick_params(axis="x", length=0, labelsize=LABEL_SIZE)
    _set_titles(fig, ax, title, window_text)
    _label_bar_tops(fig, ax, [(slots - width / 2, old, SUBTLE), (slots + width / 2, new, PRIMARY)], width)
    _save(fig, out)

    listed = "; ".join(
        f"{metric_name(m)}: {champion_label} {format_value(a, None)}, {challenger_label} {format_value(b, None)}"
        + ("" if math.isnan(b - a) else f" ({_signed(b - a)})") for m, a, b in zip(metrics, old, new, strict=True))
    window = f" {window_text.rstrip('.')}." if window_text else ""
    alt = f"Bar chart comparing {champion_label} with {challenger_label}.{window} {listed}."
    return Chart(path=out, title=title, alt_text=alt)


def _new_figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(w_pad=0.2, h_pad=0.15)
    return fig, fig.add_subplot()


def _style_axes(ax: Axes, *, grid_axis: str) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(SUBTLE)
    ax.tick_params(labelsize=TICK_SIZE, colors=INK, width=1.5, length=6)
    ax.grid(axis=grid_axis, color=GRID, linewidth=1.5, zorder=0)
    ax.set_axisbelow(True)


def _top_legend(ax: Axes, handles: list | None = None) -> Legend:
    """A one-row legend above the plot, right-aligned, so it never covers a bar."""
    count = len(handles or ax.get_legend_handles_labels()[0])
    return ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1, 1), ncols=count, fontsize=NOTE_SIZE,
                     frameon=False, borderaxespad=0.3, handlelength=1.4, columnspacing=1.2)


def _set_titles(fig: Figure, ax: Axes, title: str, subtitle: str, *, beside: Legend | None = None) -> None:
    # Title and subtitle both start at the figure's left edge, whatever the width of the y labels.
    left = MARGIN_PX / fig.bbox.width
    fig.suptitle(_safe(_fit(fig, title, TITLE_SIZE, "bold", max_lines=2)), x=left, ha="left",
                 fontsize=TITLE_SIZE, fontweight="bold", color=INK)
    if subtitle:
        taken = 0.0
        if beside is not None and beside.get_in_layout():
            taken = beside.get_window_extent(fig.canvas.get_renderer()).width + 3 * MARGIN_PX
        line = _fit(fig, subtitle, SUBTITLE_SIZE, "normal", max_lines=1, taken_px=taken)
        ax.annotate(_safe(line), (left, 1),
                    xycoords=("figure fraction", "axes fraction"), xytext=(0, 14),
                    textcoords="offset points", va="bottom", fontsize=SUBTITLE_SIZE, color=SUBTLE)


def _fit(fig: Figure, text: str, size: float, weight: str, *, max_lines: int,
         taken_px: float = 0.0) -> str:
    """Wrap text to the canvas width as rendered, ending with an ellipsis past max_lines."""
    renderer = fig.canvas.get_renderer()
    font = FontProperties(size=size, weight=weight)
    limit = fig.bbox.width - 2 * MARGIN_PX - taken_px

    def fits(line: str) -> bool:
        return renderer.get_text_width_height_descent(line, font, ismath=False)[0] <= limit

    lines = [text]
    for width in range(len(text), 0, -1):
        lines = textwrap.wrap(text, width) or [""]
        if all(fits(line) for line in lines):
            break
    # Balance the lines, so a wrapped title does not end on a lone word.
    for width in range(math.ceil(len(text) / len(lines)), len(text) + 1):
        balanced = textwrap.wrap(text, width)
        if len(balanced) == len(lines) and all(fits(line) for line in balanced):
            lines = balanced
            break
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        while lines[-1] and not fits(lines[-1] + "…"):
            lines[-1] = lines[-1][:-1]
        lines[-1] = lines[-1].rstrip() + "…"
    return "\n".join(lines)


def _save(fig: Figure, out: Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, format="png", dpi=DPI, facecolor="white")
    finally:
        fig.clear()  # breaks the figure/axes reference cycles now rather than at the next gc pass


def _safe(text: str) -> str:
    # A pair of "$" would switch matplotlib into math mode ("$18,300 vs $10,000").
    return text.replace("$", r"\$")


def _shorten(name: str) -> str:
    # Cut in the middle: long feature names often share a prefix and differ at the end.
    if len(name) <= MAX_NAME_CHARS:
        return name
    head = (MAX_NAME_CHARS - 1) * 2 // 5
    return name[:head] + "…" + name[len(name) - (MAX_NAME_CHARS - 1 - head):]


def _ratio(statistic: float, threshold: float) -> float:
    return statistic / threshold if threshold > 0 else math.inf


def metric_name(metric: str) -> str:
    """How a metric is named to people, in Slack, charts and pages alike: "ROC AUC", "Log loss"."""
    return METRIC_NAMES.get(metric.lower(), metric.replace("_", " ").capitalize())


def _mid_sentence(label: str) -> str:
    # "Weekly fraud amount missed" -> "weekly fraud amount missed", but "ROC AUC" stays as it is.
    return label[0].lower() + label[1:] if label[:2].istitle() else label


def _signed(delta: float) -> str:
    return ("+" if delta >= 0 else "-") + _plain_number(abs(delta))


def _day(when: datetime, *, year: bool = False) -> str:
    return f"{when:%b} {when.day}" + (f", {when.year}" if year else "")
