"""PNG charts for Slack alerts and the HTML preview, one module per chart: kpi.py (a KPI over time),
drift.py (drift per feature), distribution.py (one feature, reference vs current), comparison.py (champion
vs challenger); style.py holds the palette, type and canvas they share, names.py how metrics are named.
Numbers read as jobs/number_format.py formats them.

The names below are the package's interface; format_value and metric_name are re-exported for the
messages and pages that word figures the way the charts do. Each name is imported from its module when it
is first asked for, so what only names metrics or formats figures does not load matplotlib.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.charts.comparison import champion_vs_challenger
    from bot.charts.distribution import distribution
    from bot.charts.drift import drift_bars
    from bot.charts.kpi import kpi_trend, labelled_readings
    from bot.charts.names import metric_name
    from bot.charts.style import ALERT, BAND, GRID, INK, MUTED, PRIMARY, SUBTLE, Chart
    from jobs.number_format import PERCENT_UNITS, USD_UNITS, format_value

_HOMES = {"champion_vs_challenger": "bot.charts.comparison", "distribution": "bot.charts.distribution",
          "drift_bars": "bot.charts.drift", "kpi_trend": "bot.charts.kpi", "labelled_readings": "bot.charts.kpi",
          "metric_name": "bot.charts.names", "PERCENT_UNITS": "jobs.number_format",
          "USD_UNITS": "jobs.number_format", "format_value": "jobs.number_format"} | dict.fromkeys(
    ("ALERT", "BAND", "GRID", "INK", "MUTED", "PRIMARY", "SUBTLE", "Chart"), "bot.charts.style")

__all__ = ["ALERT", "BAND", "GRID", "INK", "MUTED", "PERCENT_UNITS", "PRIMARY", "SUBTLE", "USD_UNITS", "Chart",
           "champion_vs_challenger", "distribution", "drift_bars", "format_value", "kpi_trend",
           "labelled_readings", "metric_name"]


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # asked once: later lookups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Charts(types.ModuleType):
    """Importing bot.charts.distribution binds the module to the package's `distribution`; the package keeps
    the function of that name instead, as it did when it imported everything up front."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _HOMES.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Charts
