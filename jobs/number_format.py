"""How a figure reads to people, the same in check messages, Slack, charts and pages: "$18,300" (USD),
"2.4%" (a rate given as a fraction), "0.81"."""

from __future__ import annotations

import math

USD_UNITS = {"usd", "$"}
PERCENT_UNITS = {"%", "percent", "rate", "ratio"}


def format_value(value: float, unit: str | None) -> str:
    """Format a figure for people: "$18,300" (USD), "2.4%" (a rate given as a fraction), "0.81".

    Percent units ("%", "percent", "rate", "ratio") expect the value as a fraction: 0.024 -> "2.4%".
    Any other unit is appended after a space: "120 ms".
    """
    if value is None or math.isnan(value):
        return "n/a"
    key = (unit or "").strip().lower()
    if key in USD_UNITS:
        sign = "-" if value < 0 else ""
        amount = abs(value)
        digits = 0 if amount >= 100 or float(amount).is_integer() else 2
        return f"{sign}${amount:,.{digits}f}"
    if key in PERCENT_UNITS:
        percent = value * 100
        if 0 < abs(percent) < 1:  # "0.08%", "0.011%": a small rate keeps two significant digits, never "0%"
            return two_significant(percent) + "%"
        text = f"{percent:.1f}"
        return text.removesuffix(".0") + "%"
    number = plain_number(value)
    return f"{number} {unit.strip()}" if key else number


def plain_number(value: float) -> str:
    size = abs(value)
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    if size == 0:
        return "0"
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:.{1 if size >= 10 else 2}f}".rstrip("0").rstrip(".")
    if size >= 0.01:
        # 0.999 must not read as "1.00": near-perfect metrics differ in the third decimal.
        return f"{value:.{3 if size >= 0.995 else 2}f}"
    return f"{value:.2g}"


def two_significant(value: float) -> str:
    """0.08, 0.011, 0.00012: two significant digits written out, never in exponent form."""
    if value == 0 or not math.isfinite(value):
        return plain_number(value)
    decimals = max(0, 1 - math.floor(math.log10(abs(value))))
    text = f"{round(value, decimals):.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def missing_share(share: float) -> str:
    """A feature's missing share as a person reads it: 0%, 0.4%, 20%."""
    if share == 0:
        return "0%"
    return f"{share:.1%}" if share < 0.1 else f"{share:.0%}"
