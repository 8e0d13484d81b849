"""Messages for models that are not binary classifiers: a candidate (also with nothing in production), and a
performance alert on an error metric."""

from datetime import datetime

from slack_sdk.models.blocks import Block

from bot.blocks import ml_engineer, risk
from bot.blocks.common import validate_payload
from jobs.incidents import (
    CandidateIncident,
    MetricComparison,
    MetricFigure,
    ModelRef,
    PerformanceIncident,
    SignOffRequest,
    StepStatus,
)
from jobs.tasks import ThresholdVerdict

NAN = float("nan")


def _prices(champion: str | None, metrics: tuple[MetricComparison, ...],
            thresholds: tuple[ThresholdVerdict, ...] = ()) -> CandidateIncident:
    return CandidateIncident(
        model=ModelRef("house-prices", "v2", "homes", "Homes", "U0ML0001", None, 2), champion_version=champion,
        window_start=datetime(2026, 4, 6), window_end=datetime(2026, 4, 13), labelled_rows=500, metrics=metrics,
        requested_by="U0ML0001", trigger="retrain requested", train_start=datetime(2026, 3, 9),
        train_end=datetime(2026, 4, 6), details_url="https://f.example.com/m", thresholds=thresholds)


def _parsed(payload: dict) -> list[dict]:
    validate_payload(payload)
    return [block.to_dict() for block in Block.parse_all(payload["blocks"])]


def test_a_candidate_over_an_error_line_with_nothing_in_production_says_both():
    incident = _prices(None, (MetricComparison("mae", NAN, 16_250.0), MetricComparison("r2", NAN, 0.91)),
                       (ThresholdVerdict("mae", 16_250.0, 15_000.0, None, True),
                        ThresholdVerdict("r2", 0.91, None, 0.5, False)))
    message = ml_engineer.candidate_ready(incident)
    blocks = _parsed(message.payload())
    assert blocks[1]["text"]["text"] == (
        "*v2 ready:* no version in production yet, so it was judged against the spec's performance alert lines on "
        "the latest labelled window (Apr 6 - Apr 12, 2026, 500 labelled rows): MAE 16,250, breaching the alert line of MAE.")
    assert [f["text"] for f in blocks[2]["fields"]] == [
        "*MAE* (lower is better)\n16,250 · alert above 15,000 · *breached*",
        "*R2*\n0.91 · alert below 0.50 · clear"]
    assert message.text == ("house-prices v2 is ready for review: no version in production yet; MAE 16,250, "
                            "breaching the alert line of MAE.")
    assert not any(b["type"] == "image" for b in blocks) and "nan" not in str(blocks).lower()

    request = SignOffRequest(candidate=incident, initiative="", risk_tier="medium",
                             steps=(StepStatus("technical validation", "ml_engineer", 1, ()),),
                             submitted_by="U0ML0001", model_card_url="https://f.example.com/card")
    evidence = _parsed(risk.signoff_request(request).payload())[2]["text"]["text"]
    assert evidence.startswith("No version in production yet: v2 was judged against the spec's performance alert "
                               "lines on the latest labelled window (Apr 6 - Apr 12, 2026, 500 rows).")


def test_an_error_metric_against_production_reads_lower_is_better():
    incident = _prices("v1", (MetricComparison("mae", 21_400.0, 13_900.0), MetricComparison("r2", 0.7, 0.95)))
    fields = [f["text"] for f in _parsed(ml_engineer.candidate_ready(incident).payload())[2]["fields"]]
    assert fields == ["*MAE* (lower is better)\n13,900 vs 21,400 for v1 (-7,500)", "*R2*\n0.95 vs 0.70 for v1 (+0.25)"]
    assert incident.metrics[0].better and incident.metrics[1].better


def test_a_candidate_with_no_alert_lines_and_nothing_in_production_says_there_is_no_yardstick():
    incident = _prices(None, (MetricComparison("rmse", NAN, 18_000.0),))
    message = ml_engineer.candidate_ready(incident)
    blocks = _parsed(message.payload())
    assert blocks[1]["text"]["text"].endswith(
        ": RMSE 18,000, and the spec draws no performance alert line to judge it by.")
    assert blocks[2]["fields"][0]["text"] == "*RMSE* (lower is better)\n18,000 · no alert line in the spec"


def test_a_performance_alert_on_an_error_metric_says_it_rose_above_the_line():
    incident = PerformanceIncident(
        model=ModelRef("house-prices", "v2", "homes", "Homes", "U0ML0001", 7, 2), window_start=datetime(2026, 4, 6),
        window_end=datetime(2026, 4, 13), checked_at=datetime(2026, 4, 13, 6), labelled_rows=480, rows=500,
        metrics=(MetricFigure("mae", 16_250.0, 11_900.0, "above 15,000", True),
                 MetricFigure("r2", 0.81, 0.93, "below 0.50", False)),
        details_url="https://f.example.com/alerts/7")
    message = ml_engineer.performance_alert(incident)
    blocks = _parsed(message.payload())
    assert blocks[0]["text"]["text"] == "MAE above the line on house-prices v2"
    assert [f["text"] for f in blocks[1]["fields"]] == [
        "*MAE* (lower is better)\n16,250 (alert above 15,000; 11,900 at training)",
        "*R2*\n0.81 (alert below 0.50; 0.93 at training)"]
    assert message.text == "MAE above the line on house-prices v2: MAE 16,250 (alert above 15,000)."
