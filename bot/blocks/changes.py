"""How a change from a baseline to a value is said, the way a person reads it: "up 97% ($10.2k -> $20.1k a
week)", "up 4x", "down 12 points (42% -> 30%)", "unchanged at 2.4%", "up from $0 to $5,000". One wording
for every message that states a change: KPI headlines and sentences, digests, thread follow-ups."""

from __future__ import annotations

import math
from dataclasses import dataclass

from jobs.number_format import PERCENT_UNITS, USD_UNITS, format_value, two_significant

TIMES_FROM = 3.0  # a ratio this large reads as "4x", not "up 300%"
PER_WINDOW = {"sum", "count"}  # aggregates that add up over the window: "$20.1k a week"
_ARTICLES = {"week": "a week", "day": "a day", "hour": "an hour", "month": "a month"}


@dataclass(frozen=True)
class Change:
    """`short` for a headline ("up 97%"), `values` for the parenthesis ("$10.2k -> $20.1k a week")."""

    short: str
    values: str = ""

    def __str__(self) -> str:
        return f"{self.short} ({self.values})" if self.values else self.short


def is_rate(unit: str | None) -> bool:
    return (unit or "").strip().lower() in PERCENT_UNITS


def is_money(unit: str | None) -> bool:
    return (unit or "").strip().lower() in USD_UNITS


def compact(value: float, unit: str | None) -> str:
    """Money shortened for a parenthesis: "$950", "$10.2k", "$1.3M"; anything else as format_value has it."""
    if not is_money(unit) or value is None or not math.isfinite(value) or abs(value) < 1000:
        return format_value(value, unit)
    sign = "-" if value < 0 else ""
    amount = abs(value)
    for size, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "B")):
        scaled = amount / size
        text = f"{scaled:.0f}" if round(scaled, 1) >= 100 else f"{scaled:.1f}".removesuffix(".0")
        if float(text) < 1000 or suffix == "B":  # $999,960 is $1M, not $1000k
            return f"{sign}${text}{suffix}"
    raise AssertionError("unreachable")


def per_period(unit: str | None) -> str:
    """" a week" for the period unit of wording.period ("week"); " per 3-day window" for an odd one."""
    if not unit:
        return ""
    return f" {_ARTICLES[unit]}" if unit in _ARTICLES else f" per {unit}"


def _points(delta_points: float) -> str:
    size = abs(delta_points)
    text = f"{size:.0f}" if size >= 10 else f"{size:.1f}".removesuffix(".0")
    if size < 0.095:  # tiny rates keep two significant digits: "0.069 points", never "0.1" or "0 points"
        text = two_significant(size)
    return f"{text} point{'' if text == '1' else 's'}"


def _percent(pct: float) -> str:
    size = abs(pct)
    text = f"{size:.0f}" if size >= 1 else f"{size:.1f}"
    if float(text) == 0:
        text = two_significant(size)
    return f"{text}%"


def _times(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}".removesuffix(".0") + "x"


def change(baseline: float | None, value: float, unit: str | None, *, period: str | None = None) -> Change:
    """The change from `baseline` to `value`. `period` ("week", "day"...) adds " a week" to the figures: give it
    only for KPIs that add up over their window (sums, counts), never for means or rates."""
    per = per_period(period)
    if baseline is None or value is None or not (math.isfinite(baseline) and math.isfinite(value)):
        return Change(f"at {format_value(value, unit)}{per}")
    before, after = compact(baseline, unit), compact(value, unit)
    if before == after:
        return Change(f"unchanged at {after}{per}")
    direction = "up" if value > baseline else "down"
    values = f"{before} -> {after}{per}"
    if is_rate(unit):
        return Change(f"{direction} {_points((value - baseline) * 100)}", values)
    if baseline == 0:
        return Change(f"{direction} from {format_value(baseline, unit)} to {format_value(value, unit)}{per}")
    ratio = value / baseline
    if baseline > 0 and ratio >= TIMES_FROM:
        return Change(f"up {_times(ratio)}", values)
    return Change(f"{direction} {_percent((value - baseline) / abs(baseline) * 100)}", values)
