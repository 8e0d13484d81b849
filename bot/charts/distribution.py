"""One feature's distribution, reference vs current: shared histogram bins for a numeric feature, category
shares for a categorical one; missing values are dropped and counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from bot.charts.style import (
    ALERT,
    GRID,
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
from jobs.number_format import format_value, plain_number

TOP_CATEGORIES = 10
HIST_BINS = 30
LOG_SPAN = 50  # high/low ratio of a positive feature above which bins are log-spaced


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
    fig, ax = new_figure()
    if kind == "numeric":
        summary = _draw_histograms(ax, ref, cur, feature, current_label)
        subtitle = f"median {plain_number(float(np.median(ref)))} → {plain_number(float(np.median(cur)))}"
        alt_body = summary
    else:
        alt_body = _draw_category_shares(ax, ref, cur, current_label)
        subtitle = ""
    style_axes(ax, grid_axis="y" if kind == "numeric" else "x")
    subtitle = " · ".join(part for part in (statistic_text, subtitle) if part)
    set_titles(fig, ax, title, subtitle, beside=ax.get_legend())
    save(fig, out)

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
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: plain_number(v)))
    ax.set_xlabel(safe(feature + (" (log scale)" if log_scale else "")), fontsize=LABEL_SIZE, color=INK)
    ax.set_ylabel("Share of rows", fontsize=LABEL_SIZE, color=INK)
    ax.legend(loc="best", fontsize=NOTE_SIZE, frameon=True, framealpha=0.9, edgecolor=GRID)
    ax.get_legend().set_in_layout(False)  # inside the axes: not beside the subtitle

    p10, p90 = np.quantile(ref, [0.1, 0.9])
    below, above = float(np.mean(cur < p10)), float(np.mean(cur > p90))
    return (f"Median {plain_number(float(np.median(ref)))} in the reference vs "
            f"{plain_number(float(np.median(cur)))} {current_label.lower()}. "
            f"{current_label}: {format_value(below, '%')} of values are below the reference's 10th "
            f"percentile ({plain_number(float(p10))}) and {format_value(above, '%')} above its 90th "
            f"({plain_number(float(p90))}), against 10% each in the reference.")


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
    ax.set_yticks(rows, [safe(shorten(str(name))) for name in table.index])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, steps=TICK_STEPS))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_value(v, "%")))
    ax.set_xlabel("Share of rows", fontsize=LABEL_SIZE, color=INK)
    ax.tick_params(axis="y", length=0)
    top_legend(ax)

    change = (table["cur"] - table["ref"]).abs().sort_values(ascending=False, kind="stable")
    listed = ", ".join(f"{name} {format_value(table.at[name, 'ref'], '%')} → "
                       f"{format_value(table.at[name, 'cur'], '%')}" for name in change.index[:3])
    return f"Largest changes in share: {listed}.{folded}"
