"""A KPI alert's line and band as the chart draws it, without matplotlib: the alert's message computes it
before it knows whether a chart will be drawn."""

from __future__ import annotations

from typing import Any

from jobs.number_format import format_value


def alert_band(alert: Any, baseline: float | None, unit: str | None) -> dict[str, Any]:
    """The alert line of a KPI's spec alert as kpi_trend draws it: an absolute line, or a relative one from the
    baseline ("25% above baseline" -> the baseline times 1.25), and which side of it breaches."""
    if alert is None:
        return {}
    if alert.above is not None or alert.below is not None:
        below = alert.above is None
        line = alert.below if below else alert.above
        return {"alert_line": line, "below": below,
                "alert_name": f"alert {'below' if below else 'above'} {format_value(line, unit)}"}
    if baseline is None:
        return {}
    below = alert.above_baseline_pct is None
    pct = alert.below_baseline_pct if below else alert.above_baseline_pct
    return {"alert_line": baseline * (1 - pct / 100 if below else 1 + pct / 100), "below": below,
            "alert_name": f"alert: {pct:g}% {'below' if below else 'above'} baseline"}
