"""A KPI over time: the line, the alert threshold, and the breaching readings marked and labelled."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from bot.charts.bands import alert_band  # noqa: F401 (the chart and its callers name the band the same way)
from bot.charts.style import (
    ALERT,
    BAND,
    INK,
    NOTE_SIZE,
    PRIMARY,
    SUBTLE,
    TICK_STEPS,
    Chart,
    date_labels,
    day,
    mid_sentence,
    new_figure,
    safe,
    save,
    set_titles,
    style_axes,
    top_legend,
)
from jobs.number_format import format_value

MAX_DATE_TICKS = 6


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
              title: str | None = None, baseline: float | None = None, baseline_name: str | None = None,
              alert_line: float | None = None, alert_name: str | None = None, below: bool = False) -> Chart:
    """Line chart of a KPI over time, with its baseline, the alert band and the breaching points marked."""
    fig = kpi_figure(label=label, unit=unit, points=points, threshold=threshold, breach_indices=breach_indices,
                     title=title, baseline=baseline, baseline_name=baseline_name, alert_line=alert_line,
                     alert_name=alert_name, below=below)
    save(fig, out)
    dates = [when for when, _ in points]
    values = np.array([float(v) for _, v in points])
    step = float(np.median(np.diff(date2num(dates)))) if len(dates) > 1 else 7.0
    line = alert_line if alert_line is not None else threshold
    alt = _kpi_alt_text(label, unit, dates, values, line, sorted(set(breach_indices)),
                        _period_name(step) or "Latest", baseline, baseline_name)
    return Chart(path=out, title=title or label, alt_text=alt)


def kpi_figure(*, label: str, unit: str | None, points: Sequence[tuple[datetime, float]],
               threshold: float | None, breach_indices: Sequence[int], title: str | None = None,
               baseline: float | None = None, baseline_name: str | None = None, alert_line: float | None = None,
               alert_name: str | None = None, below: bool = False) -> Figure:
    """The KPI chart as a matplotlib Figure. `threshold` is an absolute alert line; `alert_line` any alert line
    (a relative alert's: the baseline plus its percentage) and `alert_name` how the legend names its band;
    `below` draws the band under the line (an alert when the KPI falls)."""
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
    line = alert_line if alert_line is not None else threshold
    if line is not None and alert_name is None:
        alert_name = f"alert {'below' if below else 'above'} {format_value(line, unit)}"

    fig, ax = new_figure()
    x = date2num(dates)
    last = len(points) - 1
    step = float(np.median(np.diff(x))) if len(x) > 1 else 7.0
    ax.axvspan(x[last] - step / 2, x[last] + step / 2, color=BAND, zorder=0)
    ax.plot(x, values, color=PRIMARY, linewidth=4, marker="o", markersize=11, zorder=3, label="_value")
    if breaches:
        ax.plot(x[breaches], values[breaches], linestyle="none", marker="o", markersize=20,
                markerfacecolor=ALERT, markeredgecolor="white", markeredgewidth=2.5, zorder=4)
    for index in labelled_readings(breaches, values):
        ax.annotate(safe(format_value(values[index], unit)), (x[index], values[index]),
                    xytext=(0, 18), textcoords="offset points", ha="center", va="bottom",
                    fontsize=NOTE_SIZE, fontweight="bold", color=ALERT, zorder=5)

    finite = values[np.isfinite(values)]
    marks = [v for v in (line, baseline) if v is not None]
    low = min(finite.min(), *marks) if marks else finite.min()
    high = max(finite.max(), *marks) if marks else finite.max()
    # Rates, counts and money start at zero: a bar of the axis cut short would make a small change look big.
    bottom = 0.0 if low >= 0 else low - 0.1 * (high - low or abs(high) or 1)
    top = high + 0.28 * (high - bottom or abs(high) or 1)
    ax.set_ylim(bottom, top)
    if line is not None:
        ax.axhline(line, color=INK, linestyle=(0, (6, 4)), linewidth=2.5, zorder=2)
        ax.axhspan(bottom if below else line, line if below else top, color=ALERT, alpha=0.08, zorder=0,
                   label=safe(alert_name))
    if baseline is not None:
        ax.axhline(baseline, color=SUBTLE, linestyle=(0, (2, 3)), linewidth=2.5, zorder=2,
                   label=safe(baseline_name or f"baseline {format_value(baseline, unit)}"))
    ax.set_xlim(x[0] - step * 0.6, x[last] + step * 0.6)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=TICK_STEPS))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: safe(format_value(v, unit))))
    # Tick every k-th reading counting back from the latest; the first tick carries the year.
    ticked = list(range(last, -1, -math.ceil(len(x) / MAX_DATE_TICKS)))[::-1]
    ax.set_xticks(x[ticked], date_labels([dates[i] for i in ticked]))
    ax.get_xticklabels()[-1].set(fontweight="bold", color=ALERT if last in breaches else INK)
    style_axes(ax, grid_axis="y")
    legend = top_legend(ax) if ax.get_legend_handles_labels()[0] else None
    set_titles(fig, ax, title or label, "", beside=legend)
    return fig


def _period_name(step_days: float) -> str | None:
    """What people call the latest reading of a series sampled every step_days."""
    for low, high, name in ((0.9, 1.1, "Today"), (6, 8, "This week"), (28, 31.5, "This month")):
        if low <= step_days <= high:
            return name
    return None


def _kpi_alt_text(label: str, unit: str | None, dates: Sequence[datetime], values: np.ndarray,
                  threshold: float | None, breaches: Sequence[int], latest: str, baseline: float | None = None,
                  baseline_name: str | None = None) -> str:
    finite = values[np.isfinite(values)]
    span = f"from {day(dates[0], year=True)} to {day(dates[-1], year=True)}"
    text = (f"Line chart of {mid_sentence(label)}, {len(values)} readings {span}. "
            f"{latest} ({day(dates[-1])}): {format_value(values[-1], unit)}; "
            f"range {format_value(finite.min(), unit)} to {format_value(finite.max(), unit)}.")
    if baseline is not None:
        text += f" Baseline {format_value(baseline, unit)}" + (f" ({baseline_name})." if baseline_name else ".")
    if threshold is not None:
        text += f" Alert threshold {format_value(threshold, unit)}."
    if breaches:
        listed = ", ".join(f"{day(dates[i])} ({format_value(values[i], unit)})" for i in breaches)
        text += f" Breached at {len(breaches)} of {len(values)} readings: {listed}."
    else:
        text += " No reading breached the threshold."
    return text
