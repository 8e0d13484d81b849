"""Champion vs challenger: the production model and a candidate side by side on the same metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator

from bot.charts.names import metric_name
from bot.charts.style import (
    LABEL_SIZE,
    MUTED,
    NOTE_SIZE,
    PRIMARY,
    SUBTLE,
    TICK_STEPS,
    Chart,
    new_figure,
    safe,
    save,
    set_titles,
    style_axes,
)
from jobs.number_format import format_value, plain_number

MIN_LABEL_SIZE = 13


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
    fig, ax = new_figure()
    slots = np.arange(len(metrics))
    width = 0.4
    old = np.array([champion.get(m, math.nan) for m in metrics], dtype=float)
    new = np.array([challenger.get(m, math.nan) for m in metrics], dtype=float)
    ax.bar(slots - width / 2, old, width=width, color=MUTED, label=safe(champion_label), zorder=2)
    ax.bar(slots + width / 2, new, width=width, color=PRIMARY, label=safe(challenger_label), zorder=2)
    high = max(np.nanmax(old), np.nanmax(new), 0.0)
    low = min(np.nanmin(old), np.nanmin(new), 0.0)
    unit_scale = low >= 0 and high <= 1
    top = 1.0 if unit_scale else high
    # Headroom above the tallest bar keeps its value clear of the legend row.
    ax.set_ylim(low, top * 1.32 if top > 0 else 1)
    ax.set_xticks(slots, [safe(metric_name(m)) for m in metrics])
    if unit_scale:
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1], ["0", "0.25", "0.5", "0.75", "1"])
    else:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=TICK_STEPS))
    ax.legend(loc="upper left", ncols=2, fontsize=NOTE_SIZE, frameon=False)
    style_axes(ax, grid_axis="y")
    ax.tick_params(axis="x", length=0, labelsize=LABEL_SIZE)
    set_titles(fig, ax, title, window_text)
    _label_bar_tops(fig, ax, [(slots - width / 2, old, SUBTLE), (slots + width / 2, new, PRIMARY)], width)
    save(fig, out)

    listed = "; ".join(
        f"{metric_name(m)}: {champion_label} {format_value(a, None)}, {challenger_label} {format_value(b, None)}"
        + ("" if math.isnan(b - a) else f" ({_signed(b - a)})") for m, a, b in zip(metrics, old, new, strict=True))
    window = f" {window_text.rstrip('.')}." if window_text else ""
    alt = f"Bar chart comparing {champion_label} with {challenger_label}.{window} {listed}."
    return Chart(path=out, title=title, alt_text=alt)


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


def _signed(delta: float) -> str:
    return ("+" if delta >= 0 else "-") + plain_number(abs(delta))
