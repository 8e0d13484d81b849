"""Issue 17: a KPI's baseline is the last healthy windows before the incident, not a rolling mean that absorbs it."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from slack_sdk.models.blocks import Block

from bot.blocks import business
from jobs import checks
from jobs.incidents import KpiFigure, KpiIncident, ModelRef
from jobs.spec.model import KpiAlertSpec, KpiSpec
from store.models import Verdict

WEEK = timedelta(days=7)
START = datetime(2026, 8, 3)
REF = ModelRef(key="fraud-detector", version="v1", project_key="card-fraud", project_name="Card fraud detection",
               owner="U0ML0001", alert_id=12, version_number=1)


def _kpi(**alert) -> KpiSpec:
    return KpiSpec(name="missed_fraud", label="Missed fraud", aggregate="sum", column="amount", unit="USD",
                   window="7d", alert=KpiAlertSpec(**alert))


def _windows(levels: list[float]) -> list[tuple[datetime, pd.DataFrame]]:
    """One window a week; each its level plus small noise (about ±1%), so the truth is known."""
    rng = np.random.default_rng(7)
    return [(START + i * WEEK, pd.DataFrame({"amount": [level * (1 + rng.uniform(-0.01, 0.01))]}))
            for i, level in enumerate(levels)]


def _run(kpi: KpiSpec, levels: list[float]) -> list[dict]:
    """The KPI check as each week would see it, with the history up to that week."""
    windows = _windows(levels)
    return [checks.kpis([kpi], {kpi.name: windows[:i + 1]}).figures["kpis"][0] for i in range(4, len(levels))]


def _change(result: dict) -> float:
    return (result["value"] - result["baseline"]) / result["baseline"] * 100


def test_a_doubled_kpi_is_reported_against_the_weeks_before_the_incident_every_week() -> None:
    kpi = _kpi(above_baseline_pct=25, baseline_windows=4)
    levels = [10_000.0] * 8 + [20_000.0] * 6
    results = _run(kpi, levels)[4:]  # the six incident weeks
    incident_start = START + 8 * WEEK
    for result in results:
        assert result["breached"]
        # The old rolling mean absorbed the incident: by its third week it read +33%, then +14%, then 0%.
        assert 95 <= _change(result) <= 105
        assert result["baseline_end"] == incident_start.isoformat()
        assert result["baseline_start"] == (incident_start - 4 * WEEK).isoformat()
        assert not result["baseline_earliest"]


def test_an_absolute_alert_also_shows_the_change_against_the_healthy_baseline() -> None:
    kpi = _kpi(above=15_000, baseline_windows=4)
    last = _run(kpi, [10_000.0] * 8 + [20_000.0] * 6)[-1]
    assert last["breached"] and 95 <= _change(last) <= 105


def test_a_kpi_back_to_normal_resolves_and_its_baseline_moves_on() -> None:
    kpi = _kpi(above_baseline_pct=25, baseline_windows=4)
    levels = [10_000.0] * 8 + [20_000.0] * 3 + [10_000.0] * 6
    results = _run(kpi, levels)
    recovered = results[-6:]
    assert all(not r["breached"] for r in recovered)
    assert all(-5 <= _change(r) <= 5 for r in recovered)
    # Four healthy weeks after the incident, the baseline is those weeks: it has moved past the incident.
    assert recovered[-1]["baseline_start"] == (START + 12 * WEEK).isoformat()
    assert recovered[0]["baseline_end"] == (START + 8 * WEEK).isoformat()


def test_an_incident_older_than_the_history_read_says_its_baseline_is_the_earliest_read() -> None:
    kpi = _kpi(above=15_000, baseline_windows=4)
    result = checks.kpis([kpi], {kpi.name: _windows([20_000.0] * 10)}).figures["kpis"][0]
    assert result["breached"] and result["baseline_earliest"]
    assert result["baseline_start"] == START.isoformat()


def test_the_alert_names_the_baseline_by_its_dates_and_parses_as_block_kit() -> None:
    kpi = _kpi(above_baseline_pct=25, baseline_windows=4)
    windows = _windows([10_000.0] * 8 + [20_000.0] * 6)
    outcome = checks.kpis([kpi], {kpi.name: windows})
    assert outcome.verdict == Verdict.breach
    k = outcome.figures["kpis"][0]
    figure = KpiFigure(k["name"], k["label"], k["unit"], k["value"], k["baseline"], k["threshold"], k["breached"],
                       k["rule"], **KpiFigure.baseline_of(k))
    incident = KpiIncident(model=REF, window_start=START + 13 * WEEK, window_end=START + 14 * WEEK,
                           checked_at=START + 14 * WEEK, kpis=(figure,), labels_complete_to=None,
                           details_url="https://flywheel.example.com/alerts/12")
    payload = business.kpi_alert(incident, baseline_windows=4).payload()
    blocks = [Block.parse(b) for b in payload["blocks"]]
    assert [b.type for b in blocks] == [b["type"] for b in payload["blocks"]]
    header = blocks[0].text.text
    assert header.startswith("Missed fraud is up ") and header.split(" ")[4].endswith("%")
    assert 95 <= int(header.split(" ")[4].rstrip("%")) <= 105
    assert "over the four weeks before Sep 28" in blocks[1].text.text  # START + 8 weeks: the incident's first
    assert "earliest" not in blocks[1].text.text


def test_a_baseline_from_the_earliest_history_says_so_in_the_alert() -> None:
    figure = KpiFigure("missed_fraud", "Missed fraud", "USD", 20_000, 20_000, 15_000, True, "above $15,000",
                       baseline_end=datetime(2026, 8, 31), baseline_earliest=True)
    incident = KpiIncident(model=REF, window_start=START, window_end=START + WEEK, checked_at=START + WEEK,
                           kpis=(figure,), labels_complete_to=None, details_url="https://f.example.com/a")
    text = business.kpi_alert(incident, baseline_windows=4).payload()["blocks"][1]["text"]["text"]
    assert "over the four weeks before Aug 31, 2026 (the earliest history read: the change began before it)" in text
