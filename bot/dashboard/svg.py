"""Inline SVG charts for the pages: drawn as text in microseconds, so a page with a dozen trends stays fast,
in the palette and number formats of the PNG charts that go to Slack (bot/charts/)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

from bot.charts import (
    ALERT,
    GRID,
    INK,
    PERCENT_UNITS,
    PRIMARY,
    SUBTLE,
    USD_UNITS,
    format_value,
)
from bot.services.pages.shapes import KindHistory, Point, Series

WIDTH, HEIGHT = 520, 250
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 34, 30
LINE_COLORS = (PRIMARY, "#E07B00", "#2E7D32", "#6A1B9A", "#00838F", SUBTLE)
VERDICT_COLORS = {"ok": "#2E7D32", "warn": "#E0A800", "breach": ALERT, "error": "#6A1B9A"}
STRIP_WIDTH = 1000
MAX_DRAWN = 400  # points drawn per line; more are thinned, keeping each bucket's extremes


def _thin(points: Sequence[Point]) -> list[Point]:
    if len(points) <= MAX_DRAWN:
        return list(points)
    size = math.ceil(len(points) / (MAX_DRAWN // 2))
    kept: list[Point] = []
    for i in range(0, len(points), size):
        bucket = points[i:i + size]
        low, high = min(bucket, key=lambda p: p.value), max(bucket, key=lambda p: p.value)
        kept += sorted({low, high}, key=lambda p: p.at)
    return kept


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    span = high - low or abs(high) or 1.0
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(count + 2) if first + i * step <= high + step * 1e-9]


def _tick_label(value: float, unit: str | None, step: float) -> str:
    """Axis labels with as many decimals as the step needs, so neighbours never read the same."""
    key = (unit or "").strip().lower()
    scale = 100 if key in PERCENT_UNITS else 1
    decimals = max(0, -math.floor(math.log10(step * scale) + 1e-9)) if step > 0 else 0
    if key in USD_UNITS:
        return format_value(value, unit) if decimals == 0 else f"${value:,.{decimals}f}"
    text = f"{value * scale:,.{decimals}f}"
    return text + "%" if scale == 100 else text


def _day(moment: datetime, *, year: bool = False) -> str:
    """"Nov 9", or "Nov 9, 2026" where the year is shown (an axis's first label, a sentence)."""
    return f"{moment:%b} {moment.day}" + (f", {moment.year}" if year else "")


def _axis_days(moments: list[datetime]) -> list[str]:
    """Axis labels: the first with its year, and any where the year turns, as the PNG charts label theirs."""
    return [_day(m, year=i == 0 or m.year != moments[i - 1].year) for i, m in enumerate(moments)]


def _frame(title: str, summary: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(summary)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(summary)}</title>'
        f'<text x="4" y="20" class="t">{escape(title)}</text>{"".join(body)}</svg>')


def line_chart(lines: Sequence[Series], *, title: str, unit: str | None = None, start: datetime | None = None,
               end: datetime | None = None, threshold: float | None = None, legend: bool = False) -> Markup:
    """One or more lines over time; a dashed alert line (fixed, or moving with a baseline); flagged points red."""
    drawn = [(s, _thin(s.points), _thin(s.limits)) for s in lines]
    every = [p for _, pts, lim in drawn for p in (*pts, *lim)]
    if not every:
        return _frame(title, f"{title}: no readings in this period.",
                      [f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="n">'
                       + "No readings in this period</text>"])
    threshold = threshold if threshold is not None else next((s.threshold for s in lines if s.threshold is not None),
                                                             None)
    start = start or min(p.at for p in every)
    end = end or max(p.at for p in every)
    if end <= start:
        start, end = start - timedelta(hours=12), end + timedelta(hours=12)
    values = [p.value for p in every] + ([threshold] if threshold is not None else [])
    low, high = min(values), max(values)
    low = 0.0 if 0 <= low <= high / 2 else low - 0.1 * (high - low or abs(high) or 1)
    high = high + 0.12 * (high - low or abs(high) or 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    seconds = (end - start).total_seconds()

    def x(at: datetime) -> float:
        return LEFT + plot_w * (at - start).total_seconds() / seconds

    def y(value: float) -> float:
        return TOP + plot_h * (1 - (value - low) / (high - low))

    body = []
    ticks = _ticks(low, high)
    for tick in ticks:
        body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>'
                    f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="a">'
                    f'{escape(_tick_label(tick, unit, ticks[1] - ticks[0] if len(ticks) > 1 else 0))}</text>')
    moments = [start + (end - start) * i / 4 for i in range(5)]
    for i, (at, label) in enumerate(zip(moments, _axis_days(moments), strict=True)):
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        body.append(f'<text x="{x(at):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" class="a">{label}</text>')
    if threshold is not None:
        body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" '
                    f'stroke="{INK}" stroke-dasharray="6 4" stroke-width="1.5"/>')
    for i, (series, points, limits) in enumerate(drawn):
        color = LINE_COLORS[i % len(LINE_COLORS)] if len(lines) > 1 else PRIMARY
        if limits:
            body.append(f'<polyline fill="none" stroke="{INK}" stroke-dasharray="6 4" stroke-width="1.5" points="'
                        + " ".join(f"{x(p.at):.1f},{y(p.value):.1f}" for p in limits) + '"/>')
        if points:
            body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="'
                        + " ".join(f"{x(p.at):.1f},{y(p.value):.1f}" for p in points) + '"/>')
            last = points[-1]
            body.append(f'<circle cx="{x(last.at):.1f}" cy="{y(last.value):.1f}" r="4" fill="{color}"/>')
        body += [f'<circle cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" r="3.5" fill="{ALERT}"/>'
                 for p in points if p.flagged]
        if legend:
            body.append(f'<rect x="{WIDTH - RIGHT - 70 * (len(lines) - i)}" y="8" width="12" height="4" '
                        f'fill="{color}"/><text x="{WIDTH - RIGHT - 70 * (len(lines) - i) + 16}" y="14" '
                        f'class="a">{escape(series.label)}</text>')
    return _frame(title, _summary(title, lines, unit, threshold), body)


def _summary(title: str, lines: Sequence[Series], unit: str | None, threshold: float | None) -> str:
    parts = []
    for s in lines:
        if s.points:
            flagged = sum(p.flagged for p in s.points)
            parts.append(f"{s.label}: latest {format_value(s.points[-1].value, unit)} on {_day(s.points[-1].at, year=True)}, "
                         f"range {format_value(min(p.value for p in s.points), unit)} to "
                         f"{format_value(max(p.value for p in s.points), unit)}"
                         + (f", {flagged} of {len(s.points)} readings over the line" if flagged else ""))
    line = f" Alert line {format_value(threshold, unit)}." if threshold is not None else ""
    return f"{title}. " + "; ".join(parts) + "." + line


def bars(*, title: str, keys: Sequence[str], labels: Sequence[str],
         sides: Sequence[tuple[str, Mapping[str, float]]]) -> Markup:
    """Grouped bars on a 0-1 scale (metrics), a value on each bar; the last side is drawn in the primary colour."""
    groups = list(labels)
    series = [(name, [values.get(k) for k in keys]) for name, values in sides]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM - 14
    slot = plot_w / max(len(groups), 1)
    width = slot * 0.7 / max(len(series), 1)
    top = max([1.0] + [v for _, values in series for v in values if v is not None])

    def y(value: float) -> float:
        return TOP + 14 + plot_h * (1 - value / top)

    colors = [SUBTLE] * (len(series) - 1) + [PRIMARY]
    body = [f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="{GRID}"/>']
    for i, (label, values) in enumerate(series):
        body.append(f'<rect x="{WIDTH - RIGHT - 90 * (len(series) - i)}" y="8" width="12" height="12" '
                    f'fill="{colors[i]}"/><text x="{WIDTH - RIGHT - 90 * (len(series) - i) + 16}" y="19" '
                    f'class="a">{escape(label)}</text>')
        for j, value in enumerate(values):
            if value is None:
                continue
            x = LEFT + slot * j + slot * 0.15 + width * i
            body.append(f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{width:.1f}" height="{y(0) - y(value):.1f}" '
                        f'fill="{colors[i]}"/><text x="{x + width / 2:.1f}" y="{y(value) - 4:.1f}" '
                        f'text-anchor="middle" class="a">{escape(format_value(value, None))}</text>')
    body += [f'<text x="{LEFT + slot * (j + 0.5):.1f}" y="{HEIGHT - 8}" text-anchor="middle" class="a">'
             f'{escape(g)}</text>' for j, g in enumerate(groups)]
    summary = f"{title}. " + "; ".join(
        f"{g}: " + ", ".join(f"{label} {format_value(values[j], None) if values[j] is not None else 'n/a'}"
                            for label, values in series) for j, g in enumerate(groups)) + "."
    return _frame(title, summary, body)


def verdict_strip(histories: Sequence[KindHistory], *, start: datetime, end: datetime,
                  names: dict[str, str]) -> Markup:
    """One row per check: green where it ran, a coloured tick for every warn, breach or error.

    Rows are stretched SVG bars beside HTML labels, so the labels stay readable at a phone's width.
    """
    seconds = max((end - start).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return STRIP_WIDTH * min(max((at - start).total_seconds() / seconds, 0.0), 1.0)

    rows = []
    for h in histories:
        bars = []
        if h.first is not None:
            bars.append(f'<rect x="{x(h.first):.1f}" y="3" width="{max(x(end) - x(h.first), 2):.1f}" height="14" '
                        f'fill="{VERDICT_COLORS["ok"]}" opacity="0.25"/>')
        bars += [f'<rect x="{x(at) - 2:.1f}" y="0" width="4" height="20" fill="{VERDICT_COLORS[v]}"/>'
                 for at, v in h.marks]
        rows.append(f'<div class="row"><span class="lbl">{escape(names.get(h.kind, h.kind))}</span>'
                    f'<svg viewBox="0 0 {STRIP_WIDTH} 20" preserveAspectRatio="none" aria-hidden="true">'
                    f'{"".join(bars)}</svg></div>')
    axis = "".join(f"<span>{label}</span>" for label in _axis_days([start + (end - start) * i / 4 for i in range(5)]))
    summary = "Check verdicts over time. " + "; ".join(
        f"{names.get(h.kind, h.kind)}: " + ", ".join(f"{n} {v}" for v, n in h.counts) for h in histories) + "."
    return Markup(f'<div class="strip" role="img" aria-label="{escape(summary)}">{"".join(rows)}'
                  f'<div class="axis">{axis}</div></div>')
