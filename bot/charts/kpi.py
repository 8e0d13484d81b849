"""A KPI over time: the line, the alert threshold, and the breaching readings marked and labelled."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from matplotlib.dates import date2num
from matplotlib.ticker import FuncFormatter, MaxNLocator

from bot.charts.style import (
    ALERT,
    BAND,
    INK,
    NOTE_SIZE,
    PRIMARY,
    TICK_STEPS,
    Chart,
    day,
    mid_sentence,
    new_figure,
    safe,
    save,
    set_titles,
    style_axes,
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
    fig, ax = new_figure()
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
        ax.annotate(safe(format_value(values[index], unit)), (x[index], values[index]),
                    xytext=(0, 18), textcoords="offset points", ha="center", va="bottom",
                    fontsize=NOTE_SIZE, fontweight="bold", color=ALERT, zorder=5)

    finite = values[np.isfinite(values)]
    low = min(finite.min(), threshold if threshold is not None else np.inf)
    high = max(finite.max(), threshold if threshold is not None else -np.inf)
    bottom = 0.0 if 0 <= low <= high / 2 else low - 0.1 * (high - low or abs(high) or 1)
    ax.set_ylim(bottom, high + 0.28 * (high - bottom or abs(high) or 1))
    ax.set_xlim(x[0] - step * 0.6, x[last] + step * 0.6)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=TICK_STEPS))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: safe(format_value(v, unit))))
    # Tick every k-th reading counting back from the latest, which is named ("This week").
    ticked = list(range(last, -1, -math.ceil(len(x) / MAX_DATE_TICKS)))[::-1]
    latest = _period_name(step) or day(dates[last])
    ax.set_xticks(x[ticked], [day(dates[i]) for i in ticked[:-1]] + [latest])
    ax.get_xticklabels()[-1].set(fontweight="bold", color=ALERT if last in breaches else INK)
    if threshold is not None:
        ax.annotate(safe(f"alert above {format_value(threshold, unit)}"), (0, threshold),
                    xycoords=("axes fraction", "data"), xytext=(8, 6), textcoords="offset points",
                    ha="left", va="bottom", fontsize=NOTE_SIZE, color=INK)
    style_axes(ax, grid_axis="y")
    set_titles(fig, ax, title, "")
    save(fig, out)

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
    span = f"from {day(dates[0], year=True)} to {day(dates[-1], year=True)}"
    text = (f"Line chart of {mid_sentence(label)}, {len(values)} readings {span}. "
            f"{latest} ({day(dates[-1])}): {format_value(values[-1], unit)}; "
            f"range {format_value(finite.min(), unit)} to {format_value(finite.max(), unit)}.")
    if threshold is not None:
        text += f" Alert threshold {format_value(threshold, unit)}."
    if breaches:
        listed = ", ".join(f"{day(dates[i])} ({format_value(values[i], unit)})" for i in breaches)
        text += f" Breached at {len(breaches)} of {len(values)} readings: {listed}."
    else:
        text += " No reading breached the threshold."
    return text
