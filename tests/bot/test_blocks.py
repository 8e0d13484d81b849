"""Persona messages built from fixed incidents: the dicts Slack would receive."""

from datetime import datetime

import pytest
from slack_sdk.errors import SlackObjectFormationError

from bot.blocks import business, it_ops, ml_engineer, risk
from bot.blocks.common import MAX_BLOCKS, InvalidMessage, validate_payload
from bot.blocks.dates import when
from bot.ids import ActionContext, ActionId
from jobs.incidents import (
    CandidateIncident,
    ChartRef,
    Deployment,
    DriftIncident,
    FeatureFigure,
    KpiFigure,
    KpiIncident,
    MetricComparison,
    ModelRef,
    SignOffRequest,
    StepStatus,
)

MON = datetime(2026, 11, 23, 6, 0)
REF = ModelRef(key="fraud-detector", version="v1", project_key="card-fraud", project_name="Card fraud detection",
               owner="U0ML0001", alert_id=12, version_number=1)
CHART = ChartRef(path="/tmp/x.png", title="Fraud amount missed", alt_text="Fraud amount missed rose to $18,300.",
                 url="https://flywheel.example.com/charts/x.png")


def _buttons(message):
    return [e for b in message.payload()["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_business_alert_speaks_money_and_change():
    incident = KpiIncident(
        model=REF, window_start=datetime(2026, 11, 16), window_end=datetime(2026, 11, 23), checked_at=MON,
        kpis=(KpiFigure("missed_fraud_rate", "Missed fraud", "rate", 0.024, 0.017, None, True,
                        "25% above the 4-window baseline"),
              KpiFigure("missed_fraud_amount", "Fraud amount missed", "USD", 18300, 12000, 10000, True,
                        "above $10,000")),
        labels_complete_to=datetime(2026, 11, 19), details_url="https://flywheel.example.com/alerts/12",
        charts=(CHART,))
    message = business.kpi_alert(incident, baseline_windows=4)
    blocks = message.payload()["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text",
                                                   "text": "Missed fraud is up 0.7 points this week · Card fraud detection",
                                                   "emoji": True}}
    assert blocks[1]["text"]["text"] == (
        "Missed fraud *2.4%* this week, up 0.7 points (1.7% -&gt; 2.4%) over the previous four weeks.\n"
        "Fraud amount missed *$18,300* this week, up 52% ($12k -&gt; $18.3k) over the previous four weeks "
        "(alert above $10,000).")
    assert blocks[2]["type"] == "image" and blocks[2]["alt_text"] == CHART.alt_text
    assert blocks[3]["elements"][0]["text"] == ("fraud-detector v1 · owner <@U0ML0001> · checked "
                                                f"{when(MON)} · labels complete to Nov 19, 2026")
    view, ask, useful, noise = _buttons(message)
    assert (useful["action_id"], noise["action_id"]) == (ActionId.useful, ActionId.noise)
    # The page travels in the value: the click is answered with a link signed for whoever clicked.
    assert view["value"] == "https://flywheel.example.com/alerts/12" and "url" not in view
    assert ask["action_id"] == ActionId.ask_ml_team
    assert message.text.startswith("Missed fraud is up 0.7 points this week")
    validate_payload(message.payload())


def _drift(n_drifted=2, n_stable=5, related=None):
    drifted = tuple(FeatureFigure(f"feature_{i}", "Wasserstein", 0.21 + i / 100, 0.15, 1e-9, True)
                    for i in range(n_drifted))
    stable = tuple(FeatureFigure(f"stable_{i}", "Jensen-Shannon", 0.02, 0.1, 0.4, False) for i in range(n_stable))
    return DriftIncident(model=REF, window_start=datetime(2026, 11, 16), window_end=datetime(2026, 11, 23),
                         checked_at=MON, features=drifted + stable, current_rows=100_000, reference_rows=100_000,
                         details_url="https://flywheel.example.com/alerts/12", related=related)


def test_drift_alert_names_features_with_statistic_and_threshold():
    message = ml_engineer.drift_alert(_drift(related="Missed fraud is up 41% over the same window"))
    blocks = message.payload()["blocks"]
    assert blocks[0]["text"]["text"] == "Input drift on fraud-detector v1 · 2 of 7 features"
    assert [f["text"] for f in blocks[1]["fields"]] == ["*feature_0*\nWasserstein 0.21 (alert 0.15)",
                                                        "*feature_1*\nWasserstein 0.22 (alert 0.15)"]
    assert "The other 5 features are stable" in blocks[2]["text"]["text"]
    assert "Missed fraud is up 41%" in blocks[3]["text"]["text"]
    retrain, ack, snooze, view, useful, noise = _buttons(message)
    assert ActionContext.decode(noise["value"]).alert == 12
    assert (retrain["action_id"], retrain["style"], ack["action_id"]) == (ActionId.retrain, "primary",
                                                                         ActionId.acknowledge)
    assert [ActionContext.decode(o["value"]).choice for o in snooze["options"]] == ["1h", "4h", "24h", "7d"]
    assert ActionContext.decode(retrain["value"]) == ActionContext(model="fraud-detector", version=1, alert=12)
    validate_payload(message.payload())


def test_drift_alert_with_many_features_stays_within_slack_limits():
    message = ml_engineer.drift_alert(_drift(n_drifted=25, n_stable=40))
    payload = message.payload()
    assert len(payload["blocks"]) <= MAX_BLOCKS
    assert len(payload["blocks"][1]["fields"]) == 10
    assert "15 more drifted features in the details" in payload["blocks"][2]["text"]["text"]
    validate_payload(payload)


def _candidate():
    return CandidateIncident(
        model=ModelRef("fraud-detector", "v2", "card-fraud", "Card fraud detection", "U0ML0001", None, 2),
        champion_version="v1", window_start=datetime(2026, 11, 16), window_end=datetime(2026, 11, 23),
        labelled_rows=98_000, metrics=(MetricComparison("recall", 0.64, 0.81), MetricComparison("precision", 0.8, 0.78)),
        requested_by="U0ML0001", trigger="retrained after input drift on card_age_days",
        train_start=datetime(2026, 10, 1), train_end=datetime(2026, 11, 16), details_url="https://f.example.com/m")


def test_candidate_message_compares_on_the_same_window():
    message = ml_engineer.candidate_ready(_candidate())
    blocks = message.payload()["blocks"]
    assert blocks[1]["text"]["text"].startswith("*v2 ready:* recall 0.81 vs 0.64 for v1 on the latest labelled window")
    assert blocks[2]["fields"][0]["text"] == "*Recall*\n0.81 vs 0.64 for v1 (+0.17)"
    assert blocks[2]["fields"][1]["text"] == "*Precision*\n0.78 vs 0.80 for v1 (-0.02)"
    assert _buttons(message)[0]["action_id"] == ActionId.submit_for_signoff
    validate_payload(message.payload())


def test_signoff_request_shows_governance_context_and_what_is_missing():
    request = SignOffRequest(candidate=_candidate(), initiative="Reduce payment fraud losses", risk_tier="high",
                             steps=(StepStatus("technical validation", "ml_engineer", 1, ("U0ML0002",)),
                                    StepStatus("risk review", "risk_manager", 1, (), due=True)),
                             submitted_by="U0ML0001", model_card_url="https://f.example.com/card")
    message = risk.signoff_request(request)
    fields = [f["text"] for f in message.payload()["blocks"][1]["fields"]]
    assert fields[:3] == ["*Project*\nCard fraud detection", "*Business initiative*\nReduce payment fraud losses",
                          "*Risk tier*\nHigh"]
    assert fields[3] == "*Blueprint*\nRisk review: 0 of 1 · Technical validation: done by <@U0ML0002>"
    approve, reject, card, _ = _buttons(message)
    assert approve["confirm"]["title"]["text"] == "Approve v2?" and reject["style"] == "danger"
    assert card["value"] == "https://f.example.com/card" and "url" not in card
    assert message.text.endswith("Waiting for: Risk review: 0 of 1.")
    validate_payload(message.payload())


def test_deployment_notice_offers_rollback_with_confirmation():
    deployment = Deployment(model=ModelRef("fraud-detector", "v2", "card-fraud", "Card fraud", "U0ML0001", None, 2),
                            deployed_by="U0ML0001", deployed_at=datetime(2026, 11, 23, 14, 2),
                            sign_offs=(("U0ML0002", "technical validation"), ("U0RISK01", "risk review")),
                            previous_version="v1", details_url="https://f.example.com/m")
    message = it_ops.deployment_notice(deployment)
    blocks = message.payload()["blocks"]
    assert blocks[0]["text"]["text"] == "fraud-detector v2 is live"
    assert blocks[1]["text"]["text"] == (f"Deployed by <@U0ML0001>, {when(datetime(2026, 11, 23, 14, 2))}, after sign-offs by <@U0ML0002> "
                                         "(technical validation) and <@U0RISK01> (risk review). Previous production "
                                         "version: v1.")
    rollback = _buttons(message)[0]
    assert (rollback["text"]["text"], rollback["style"]) == ("Roll back to v1", "danger")
    assert rollback["confirm"]["style"] == "danger"
    assert ActionContext.decode(rollback["value"]) == ActionContext(model="fraud-detector", version=2, to=1)
    validate_payload(message.payload())


def test_button_values_carry_ids_only():
    context = ActionContext(model="fraud-detector", version=2, alert=12)
    assert context.encode() == '{"m":"fraud-detector","v":2,"a":12}'
    assert ActionContext.decode(context.encode()) == context


@pytest.mark.parametrize("payload, problem", [
    ({"text": "", "blocks": []}, "plain-text fallback"),
    ({"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "a"}}] * 51}, "51 blocks"),
    ({"text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}, "cannot exceed 150"),
])
def test_invalid_payloads_are_refused(payload, problem):
    with pytest.raises((InvalidMessage, SlackObjectFormationError), match=problem):
        validate_payload(payload)


def _performance_alert(*metrics: tuple):
    """The ML engineer's performance alert for a week's window, each metric (name, value, at training,
    rule, breached)."""
    from jobs.incidents import MetricFigure, PerformanceIncident

    return ml_engineer.performance_alert(PerformanceIncident(
        model=REF, window_start=datetime(2026, 11, 16), window_end=datetime(2026, 11, 23), checked_at=MON,
        labelled_rows=61_000, rows=100_000, details_url="https://f.example.com/a/3",
        metrics=tuple(MetricFigure(*m) for m in metrics)))


def test_performance_alert_compares_with_training_time():
    message = _performance_alert(("recall", 0.57, 0.74, "below 0.60", True), ("precision", 0.8, 0.79, "", False))
    blocks = message.payload()["blocks"]
    assert blocks[0]["text"]["text"] == "Recall below the line on fraud-detector v1"
    assert blocks[1]["fields"][0]["text"] == "*Recall*\n0.57 (alert below 0.60; 0.74 at training)"
    assert blocks[1]["fields"][1]["text"] == "*Precision*\n0.80 (0.79 at training)"
    assert "61,000 of 100,000 rows labelled so far" in blocks[2]["elements"][0]["text"]
    validate_payload(message.payload())


def test_data_quality_alert_lists_each_problem():
    from jobs.incidents import DataQualityIncident

    message = ml_engineer.data_quality_alert(DataQualityIncident(
        model=REF, window_start=datetime(2026, 11, 16), window_end=datetime(2026, 11, 23), checked_at=MON,
        problems=("columns missing from production: country", "too many missing values: amount 12.0%"),
        rows=100_000, details_url="https://f.example.com/a/4"))
    assert message.payload()["blocks"][1]["text"]["text"] == (
        "• Columns missing from production: country\n• Too many missing values: amount 12.0%")
    validate_payload(message.payload())


def test_metrics_are_named_in_slack_as_on_the_charts_and_pages():
    """One naming for Slack, charts and the dashboard: "PR AUC", not "Pr auc" in one place only."""
    from bot.charts import metric_name

    blocks = _performance_alert(("pr_auc", 0.41, 0.55, "below 0.45", True),
                                ("log_loss", 0.31, 0.28, "", False)).payload()["blocks"]
    assert blocks[0]["text"]["text"] == "PR AUC below the line on fraud-detector v1"
    assert blocks[1]["fields"][1]["text"].startswith("*Log loss*")
    assert metric_name("pr_auc") == "PR AUC"
