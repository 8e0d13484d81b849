"""Input drift: each feature's drift statistic as a bar, with its own threshold tick, drifted first."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from bot.charts.style import (
    ALERT,
    INK,
    LABEL_SIZE,
    MUTED,
    NOTE_SIZE,
    SUBTLE,
    TICK_STEPS,
    Chart,
    new_figure,
    safe,
    save,
    set_titles,
    shorten,
    style_axes,
    top_legend,
)
from jobs.number_format import plain_number

MAX_FEATURE_BARS = 10


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

    fig, ax = new_figure()
    rows = np.arange(len(shown))[::-1]
    colors = [ALERT if f[3] else MUTED for f in shown]
    stats = np.array([f[1] for f in shown])
    thresholds = np.array([f[2] for f in shown])
    ax.barh(rows, stats, height=0.62, color=colors, zorder=2)
    ax.vlines(thresholds, rows - 0.42, rows + 0.42, colors=INK, linewidth=4, zorder=3)
    span = max(stats.max(), thresholds.max()) or 1.0
    ax.set_xlim(0, span * 1.18)
    ax.set_ylim(-0.6, len(shown) - 0.4)
    ax.set_yticks(rows, [safe(shorten(f[0])) for f in shown])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=TICK_STEPS))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: plain_number(v)))
    ax.set_xlabel(safe(f"Drift statistic ({method_label})"), fontsize=LABEL_SIZE, color=INK)
    handles = [Patch(color=ALERT, label="drifted")] if any(f[3] for f in shown) else []
    handles += [Patch(color=MUTED, label="stable")] if not all(f[3] for f in shown) else []
    handles += [Line2D([], [], color=INK, linewidth=4, label="alert threshold")]
    legend = top_legend(ax, handles)
    style_axes(ax, grid_axis="x")
    ax.tick_params(axis="y", length=0)
    subtitle = f"{hidden} more stable features not shown" if hidden else ""
    set_titles(fig, ax, title, subtitle, beside=legend)
    _label_bar_ends(fig, ax, rows, shown)
    save(fig, out)

    return Chart(path=out, title=title, alt_text=_drift_alt_text(model, features, method_label))


def _label_bar_ends(fig: Figure, ax: Axes, rows: np.ndarray,
                    shown: Sequence[tuple[str, float, float, bool]]) -> None:
    # Each value sits at its bar's end, or just past the threshold tick when the tick would cross it.
    fig.draw_without_rendering()  # runs the layout, so data units per pixel are final
    renderer = fig.canvas.get_renderer()
    per_px = (ax.get_xlim()[1] - ax.get_xlim()[0]) / ax.bbox.width
    gap = 8 * per_px
    for row, (_, stat, threshold, is_drifted) in zip(rows, shown, strict=True):
        text = plain_number(stat)
        weight = "bold" if is_drifted else "normal"
        width = renderer.get_text_width_height_descent(
            text, FontProperties(size=NOTE_SIZE, weight=weight), ismath=False)[0] * per_px
        start = stat + gap
        if stat - gap < threshold < start + width + gap:
            start = max(stat, threshold) + gap
        ax.text(start, row, text, va="center", ha="left", fontsize=NOTE_SIZE, fontweight=weight,
                color=ALERT if is_drifted else SUBTLE)


def _drift_alt_text(model: str, features: Sequence[tuple[str, float, float, bool]],
                    method_label: str) -> str:
    drifted = sorted((f for f in features if f[3]), key=lambda f: -_ratio(f[1], f[2]))
    stable = sorted((f for f in features if not f[3]), key=lambda f: -_ratio(f[1], f[2]))
    text = (f"Bar chart of input drift on {model} ({method_label}): "
            f"{len(drifted)} of {len(features)} features drifted.")
    if drifted:
        listed = ", ".join(f"{n} {plain_number(s)} (alert {plain_number(t)})" for n, s, t, _ in drifted)
        text += f" Drifted: {listed}."
    if stable and len(stable) <= 5:
        listed = ", ".join(f"{n} {plain_number(s)} (alert {plain_number(t)})" for n, s, t, _ in stable)
        text += f" Stable: {listed}."
    elif stable:
        name, stat, threshold, _ = stable[0]
        text += (f" The other {len(stable)} features are stable; the closest to its threshold is "
                 f"{name} at {plain_number(stat)} (alert {plain_number(threshold)}).")
    return text


def _ratio(statistic: float, threshold: float) -> float:
    return statistic / threshold if threshold > 0 else math.inf
