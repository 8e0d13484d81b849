"""How periods and KPIs are said in business words."""

from __future__ import annotations

from datetime import timedelta

from bot.blocks.changes import Change, change
from bot.blocks.common import day, escape_mrkdwn
from bot.charts import format_value
from jobs.incidents import KpiFigure

_PERIODS = {timedelta(days=7): ("this week", "week"), timedelta(days=1): ("today", "day"),
            timedelta(hours=1): ("this hour", "hour"), timedelta(days=30): ("this month", "month")}
_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def period(length: timedelta) -> tuple[str, str]:
    """("this week", "week") for a 7-day window; ("in the last 3 days", "3-day window") otherwise."""
    if length in _PERIODS:
        return _PERIODS[length]
    days = length / timedelta(days=1)
    amount = f"{days:g} days" if days >= 1 else f"{length / timedelta(hours=1):g} hours"
    return f"in the last {amount}", f"{amount.replace(' ', '-')[:-1]} window"


def count_words(n: int, unit: str) -> str:
    return f"{_NUMBERS.get(n, str(n))} {unit}{'s' if n != 1 else ''}"


def kpi_change(kpi: KpiFigure, length: timedelta) -> Change:
    """The KPI's change from its baseline, with " a week" only for a sum or count over the window."""
    _, unit = period(length)
    return change(kpi.baseline, kpi.value, kpi.unit, period=unit if kpi.per_window else None)


def kpi_headline(kpi: KpiFigure, length: timedelta) -> str:
    """As written, for a header (plain text); escape it for mrkdwn."""
    now, _ = period(length)
    if kpi.baseline is not None:  # "this week" says the period: no " a week" besides it
        return f"{kpi.label} is {change(kpi.baseline, kpi.value, kpi.unit).short} {now}"
    return f"{kpi.label} is {format_value(kpi.value, kpi.unit)} {now}"


def baseline_words(kpi: KpiFigure, baseline_windows: int, unit: str) -> str:
    """"over the four weeks before Oct 12": the healthy baseline, named by when it ends."""
    if kpi.baseline_end is None:  # a run stored before baselines were named
        return f"over the previous {count_words(baseline_windows, unit)}"
    words = f"over the {count_words(baseline_windows, unit)} before {day(kpi.baseline_end)}"
    if kpi.baseline_earliest:
        words += " (the earliest history read: the change began before it)"
    return words


def kpi_sentence(kpi: KpiFigure, length: timedelta, baseline_windows: int) -> str:
    now, unit = period(length)
    sentence = f"{escape_mrkdwn(kpi.label)} *{escape_mrkdwn(format_value(kpi.value, kpi.unit))}* {now}"
    if kpi.baseline is not None:
        sentence += f", {escape_mrkdwn(kpi_change(kpi, length))} {baseline_words(kpi, baseline_windows, unit)}"
    if kpi.threshold is not None:
        sentence += f" (alert {kpi.rule})"
    return sentence + "."
