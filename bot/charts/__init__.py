"""PNG charts for Slack alerts and the HTML preview, one module per chart: kpi.py (a KPI over time),
drift.py (drift per feature), distribution.py (one feature, reference vs current), comparison.py (champion
vs challenger); style.py holds the palette, type and canvas they share, names.py how metrics are named.
Numbers read as jobs/number_format.py formats them.

The names below are the package's interface; format_value and metric_name are re-exported for the
messages and pages that word figures the way the charts do.
"""

from bot.charts.comparison import champion_vs_challenger
from bot.charts.distribution import distribution
from bot.charts.drift import drift_bars
from bot.charts.kpi import kpi_trend, labelled_readings
from bot.charts.names import metric_name
from bot.charts.style import ALERT, BAND, GRID, INK, MUTED, PRIMARY, SUBTLE, Chart
from jobs.number_format import PERCENT_UNITS, USD_UNITS, format_value

__all__ = ["ALERT", "BAND", "GRID", "INK", "MUTED", "PERCENT_UNITS", "PRIMARY", "SUBTLE", "USD_UNITS", "Chart",
           "champion_vs_challenger", "distribution", "drift_bars", "format_value", "kpi_trend",
           "labelled_readings", "metric_name"]
