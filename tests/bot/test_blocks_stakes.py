"""The money at stake, as the risk manager's sign-off request says it: production then the candidate on the
same window, per week when the window is a week; a task with no positive class says what is compared."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.blocks import risk
from jobs.incidents import CandidateIncident, MetricComparison, ModelRef

BASE = CandidateIncident(
    model=ModelRef("fraud-detector", "v2", "card-fraud", "Card fraud detection", "U0ML0001", None, 2),
    champion_version="v1", window_start=datetime(2026, 11, 16), window_end=datetime(2026, 11, 23),
    labelled_rows=20_000, metrics=(MetricComparison("recall", 0.64, 0.81),), requested_by="U0ML0001",
    trigger="retrained after input drift", train_start=None, train_end=None, details_url="https://f.example.com/m")
MISSED = {"name": "missed_fraud_amount", "label": "Fraud amount missed", "unit": "USD", "aggregate": "sum"}


def test_binary_stakes_read_both_ways_per_week_with_the_window():
    candidate = replace(BASE, champion_outcomes={"kpis": [{**MISSED, "value": 20_100.0}], "missed": 41,
                                                 "false_alarms": 310},
                        challenger_outcomes={"kpis": [{**MISSED, "value": 12_400.0}], "missed": 25,
                                             "false_alarms": 420})
    assert risk.stakes_text(candidate) == (
        "*At stake*, v1 (production) -> v2 on the same window (Nov 16 - Nov 22, 2026, 20,000 labelled rows):\n"
        "Fraud amount missed: down 38% ($20.1k -> $12.4k a week); false alarms: up 35% (310 -> 420 a week); "
        "missed positives: down 39% (41 -> 25 a week)")


def test_a_task_without_a_positive_class_says_what_is_compared_instead():
    candidate = replace(BASE, champion_outcomes={"kpis": []}, challenger_outcomes={"kpis": []})
    assert risk.stakes_text(candidate).endswith(
        "no positive class for this task, so no missed positives or false alarms: the metrics above compare the "
        "versions' errors instead")
    assert risk.stakes_text(replace(BASE)) is None  # compared before these figures were kept


def test_an_odd_window_and_no_production_say_the_figures_per_window_without_a_change():
    candidate = replace(BASE, champion_version=None, window_end=datetime(2026, 11, 19),
                        challenger_outcomes={"kpis": [{**MISSED, "value": 4_200.0},
                                                      {"name": "missed_rate", "label": "Missed fraud", "unit": "rate",
                                                       "aggregate": "rate", "value": 0.0008}],
                                             "missed": 9, "false_alarms": 120})
    assert risk.stakes_text(candidate) == (
        "*At stake*, v2 alone (nothing in production to set beside it) on the same window (Nov 16 - Nov 18, 2026, "
        "20,000 labelled rows):\n"
        "Fraud amount missed: $4,200 per 3-day window; false alarms: 120 per 3-day window; "
        "missed positives: 9 per 3-day window; Missed fraud: 0.08%")
