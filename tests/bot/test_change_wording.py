"""Issue 17, numbers: a change reads the way a person reads it, the same in every message that states one."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from slack_sdk.models.blocks import Block

from bot.blocks import business
from bot.blocks.changes import change, compact
from bot.blocks.common import day
from bot.blocks.wording import kpi_headline, kpi_sentence
from bot.notifier.lifecycle import follow_up
from jobs import checks
from jobs.incidents import KpiFigure, KpiIncident, ModelRef
from jobs.number_format import format_value
from jobs.spec.model import KpiAlertSpec, KpiSpec
from store.models import CheckKind

WEEK = timedelta(days=7)
START = datetime(2026, 8, 3)
REF = ModelRef(key="fraud-detector", version="v1", project_key="card-fraud", project_name="Card fraud detection",
               owner="U0ML0001", alert_id=12, version_number=1)


@pytest.mark.parametrize(("baseline", "value", "unit", "period", "said"), [
    (10_200, 20_100, "USD", "week", "up 97% ($10.2k -> $20.1k a week)"),
    (5_000, 20_000, "USD", "week", "up 4x ($5k -> $20k a week)"),
    (5_000, 17_500, "USD", "week", "up 3.5x ($5k -> $17.5k a week)"),
    (20_000, 12_000, "USD", "week", "down 40% ($20k -> $12k a week)"),
    (950, 1_300_000, "USD", None, "up 1368x ($950 -> $1.3M)"),
    (1_200, 1_500, None, "day", "up 25% (1,200 -> 1,500 a day)"),
    (300, 240, None, "hour", "down 20% (300 -> 240 an hour)"),
    (0.42, 0.30, "rate", None, "down 12 points (42% -> 30%)"),
    (0.021, 0.026, "rate", None, "up 0.5 points (2.1% -> 2.6%)"),
    (0.05, 0.06, "%", None, "up 1 point (5% -> 6%)"),
    (0.00011, 0.0008, "rate", None, "up 0.069 points (0.011% -> 0.08%)"),
    (0.024, 0.0241, "rate", None, "unchanged at 2.4%"),
    (12_000, 12_010, "USD", "week", "unchanged at $12k a week"),
    (0, 5_000, "USD", "week", "up from $0 to $5,000 a week"),
    (0, 5_000, "USD", None, "up from $0 to $5,000"),
    (0.0, 0.001, "rate", None, "up 0.1 points (0% -> 0.1%)"),
])
def test_a_change_is_worded_as_a_person_reads_it(baseline, value, unit, period, said):
    assert str(change(baseline, value, unit, period=period)) == said


def test_money_is_compact_in_the_parenthesis_only():
    assert [compact(v, "USD") for v in (950, 10_200, 1_300_000, 150_000, 999_960, 12.5)] == \
        ["$950", "$10.2k", "$1.3M", "$150k", "$1M", "$12.50"]
    assert format_value(20_100, "USD") == "$20,100"


def test_small_rates_keep_two_significant_digits_and_counts_their_separators():
    assert format_value(0.0008, "rate") == "0.08%"
    assert format_value(0.00011, "rate") == "0.011%"
    assert format_value(0.024, "rate") == "2.4%"
    assert format_value(0, "rate") == "0%"
    assert format_value(1_234_567, None) == "1,234,567"


def _figure(aggregate: str | None, unit: str | None, value: float, baseline: float) -> KpiFigure:
    return KpiFigure("k", "Missed fraud", unit, value, baseline, None, True, "25% above the 4-window baseline",
                     aggregate=aggregate)


@pytest.mark.parametrize(("aggregate", "unit", "suffix"), [
    ("sum", "USD", True), ("count", None, True), ("mean", "USD", False), ("rate", "rate", False), (None, "USD", False)])
def test_the_period_is_said_only_for_sums_and_counts(aggregate, unit, suffix):
    kpi = _figure(aggregate, unit, 2_000 if unit != "rate" else 0.2, 1_000 if unit != "rate" else 0.1)
    sentence = kpi_sentence(kpi, WEEK, 4)
    assert (" a week)" in sentence) is suffix, sentence
    assert (" a day)" in kpi_sentence(kpi, timedelta(days=1), 4)) is suffix


def test_the_headline_says_points_for_a_rate_and_x_for_a_multiple():
    assert kpi_headline(_figure("rate", "rate", 0.30, 0.42), WEEK) == "Missed fraud is down 12 points this week"
    assert kpi_headline(_figure("sum", "USD", 20_000, 5_000), WEEK) == "Missed fraud is up 4x this week"
    assert kpi_headline(_figure("sum", "USD", 5_000, 0), WEEK) == "Missed fraud is up from $0 to $5,000 this week"


def _windows(levels: list[float]) -> list[tuple[datetime, pd.DataFrame]]:
    rng = np.random.default_rng(7)
    return [(START + i * WEEK, pd.DataFrame({"amount": [level * (1 + rng.uniform(-0.01, 0.01))]}))
            for i, level in enumerate(levels)]


def test_a_kpi_that_doubles_reads_up_about_100_percent_with_its_dollars_through_the_check():
    kpi = KpiSpec(name="missed_fraud", label="Missed fraud", aggregate="sum", column="amount", unit="USD",
                  window="7d", alert=KpiAlertSpec(above_baseline_pct=25, baseline_windows=4))
    outcome = checks.kpis([kpi], {kpi.name: _windows([10_000.0] * 8 + [20_000.0] * 6)})
    k = outcome.figures["kpis"][0]
    assert k["aggregate"] == "sum"
    figure = KpiFigure(k["name"], k["label"], k["unit"], k["value"], k["baseline"], k["threshold"], k["breached"],
                       k["rule"], **KpiFigure.baseline_of(k))
    incident = KpiIncident(model=REF, window_start=START + 13 * WEEK, window_end=START + 14 * WEEK,
                           checked_at=START + 14 * WEEK, kpis=(figure,), labels_complete_to=None,
                           details_url="https://flywheel.example.com/alerts/12")
    payload = business.kpi_alert(incident, baseline_windows=4).payload()
    blocks = Block.parse_all(payload["blocks"])
    header = blocks[0].text.text
    up = re.match(r"Missed fraud is up (\d+)% this week", header)
    assert up and 95 <= int(up.group(1)) <= 105, header
    body = blocks[1].text.text
    said = re.search(r"up (\d+)% \((\$[\d.]+k) -&gt; (\$[\d.]+k) a week\) over the four weeks before Sep 28", body)
    assert said, body
    assert 95 <= int(said.group(1)) <= 105
    assert said.group(2).startswith("$10") and said.group(3).startswith("$19.") or said.group(3).startswith("$20")


def test_a_stored_run_without_its_aggregate_still_reads_without_a_period():
    stored = {"name": "k", "label": "Fraud", "unit": "USD", "value": 20_000, "baseline": 10_000,
              "threshold": None, "breached": True, "rule": "above $15,000"}
    figure = KpiFigure(**stored, **KpiFigure.baseline_of(stored))
    assert figure.aggregate is None
    assert "up 100% ($10k -> $20k) over the previous four weeks" in kpi_sentence(figure, WEEK, 4).replace("&gt;", ">")


def test_one_alert_names_one_baseline_for_every_kpi():
    amount = KpiSpec(name="amount", label="Fraud amount", aggregate="sum", column="amount", unit="USD", window="7d",
                     alert=KpiAlertSpec(above=15_000))
    count = KpiSpec(name="rows", label="Transactions", aggregate="count", window="7d",
                    alert=KpiAlertSpec(above_baseline_pct=50))
    windows = _windows([10_000.0] * 8 + [20_000.0] * 6)
    # The amount breaches its line from week 8; the row count never moves: it is read against the same weeks.
    figures = checks.kpis([amount, count], {"amount": windows, "rows": windows}).figures["kpis"]
    assert {k["baseline_end"] for k in figures} == {(START + 8 * WEEK).isoformat()}


def test_the_weekly_follow_up_of_a_kpi_says_its_change_with_the_date():
    def run(rate: float, amount: float) -> dict:
        return {"kpis": [
            {"name": "rate", "label": "Missed fraud", "unit": "rate", "aggregate": "rate", "value": rate,
             "breached": True},
            {"name": "amount", "label": "Fraud amount missed", "unit": "USD", "aggregate": "sum", "value": amount,
             "breached": True}]}

    as_of = datetime(2026, 11, 9)
    line = follow_up(CheckKind.kpi, run(0.295, 10_200), run(0.441, 20_100), as_of=as_of, length=WEEK,
                     message="KPI breached")
    assert line == (f"Still breaching ({day(as_of)}): Missed fraud up 15 points (29.5% -&gt; 44.1%), "
                    "Fraud amount missed up 97% ($10.2k -&gt; $20.1k a week)")
    assert follow_up(CheckKind.kpi, {}, run(0.441, 20_100), as_of=as_of, length=WEEK, message="x") == \
        f"Still breaching ({day(as_of)}): Missed fraud 44.1%, Fraud amount missed $20,100"
