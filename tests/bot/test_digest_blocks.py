"""The digest builders: pure functions from digest lines to Block Kit, compared as built."""

from datetime import datetime, timedelta

from bot.blocks.common import validate_payload
from bot.blocks.dates import when
from bot.blocks.digest import daily_digest, storm_digest, thread_answer
from bot.ids import ActionId, BlockId
from store.digests import DailyChannel, DigestAlert
from store.models import AlertState, CheckKind

T = datetime(2026, 11, 23, 6, 0)


def drift(key: str, statistic: float, *, state=AlertState.open, alert_id: int = 1, **kw) -> DigestAlert:
    feature = {"feature": "card_age_days", "method_label": "Wasserstein", "statistic": statistic, "threshold": 0.15,
               "drifted": True, "severity": statistic / 0.15}
    return DigestAlert(alert_id=alert_id, model_key=key, project_name="Card fraud detection", version="v1",
                       kind=CheckKind.drift, persona="ml_engineer", state=state, snoozed_until=None, opened_at=T,
                       resolved_at=None, window_start=T - timedelta(days=7), window_end=T,
                       figures={"features": [feature]}, **kw)


def kpi(key: str, value: float, *, baseline: float, state=AlertState.open, opened=T, resolved=None, latest=None,
        alert_id: int = 1) -> DigestAlert:
    def figures(v):
        return {"kpis": [
            {"name": "missed_rate", "label": "Missed fraud", "unit": "rate", "value": v / 1_000_000, "baseline": 0.017,
             "threshold": None, "rule": "25% above the 4-window baseline", "breached": v > 10_000,
             "baseline_windows": 4},
            {"name": "missed_amount", "label": "Fraud amount missed", "unit": "USD", "aggregate": "sum", "value": v,
             "baseline": baseline,
             "threshold": 10_000, "rule": "above $10,000", "breached": v > 10_000, "baseline_windows": 4}]}
    return DigestAlert(alert_id=alert_id, model_key=key, project_name="Card fraud detection", version="v1",
                       kind=CheckKind.kpi, persona="business", state=state, snoozed_until=None, opened_at=opened,
                       resolved_at=resolved, window_start=T - timedelta(days=7), window_end=T,
                       figures=figures(18_300), latest=figures(latest) if latest else {})


def test_a_storm_lists_each_model_with_what_breached_how_far_and_a_thread_button():
    alerts = [drift("fraud-a", 0.60, alert_id=1), drift("fraud-b", 0.30, alert_id=2),
              drift("fraud-c", 0.16, alert_id=3, state=AlertState.acknowledged),
              drift("fraud-d", 0.20, alert_id=4, state=AlertState.resolved)]
    message = storm_digest(alerts, gathered_at=T)
    payload = message.payload()
    validate_payload(payload)
    blocks = payload["blocks"]
    assert blocks[0]["text"]["text"] == "4 models breaching at once · input drift on 4"
    assert blocks[1]["text"]["text"].startswith("They came in the same check cycle, so they are one message "
                                                "instead of four alerts.")
    assert [b["text"]["text"].split("\n")[1] for b in blocks[2:6]] == [
        ":red_circle: Input drift on card_age_days (Wasserstein 0.60, alert 0.15) · _far past its line_",
        ":large_orange_circle: Input drift on card_age_days (Wasserstein 0.30, alert 0.15) · _well past its line_",
        ":large_yellow_circle: Input drift on card_age_days (Wasserstein 0.16, alert 0.15) · _just past its line_"
        " · acknowledged",
        f":white_check_mark: Resolved {when(T)}: Input drift on card_age_days (Wasserstein 0.20, alert 0.15)",
    ]
    assert blocks[2]["block_id"] == f"{BlockId.digest_line}:fraud-a"
    assert blocks[2]["accessory"] == {"type": "button", "text": {"type": "plain_text", "text": "Open thread",
                                                                 "emoji": True},
                                      "action_id": ActionId.digest_thread, "value": '{"m":"fraud-a","a":1}'}
    assert message.kind == "storm_digest" and message.persona == "ml_engineer"


def test_a_huge_storm_still_fits_in_one_message():
    alerts = [drift(f"model-{n:03d}", 0.3, alert_id=n) for n in range(120)]
    payload = storm_digest(alerts, gathered_at=T).payload()
    validate_payload(payload)  # at most 50 blocks
    assert payload["blocks"][-2]["text"]["text"].startswith("And 74 more: model-046, model-047")


def test_the_daily_digest_says_what_opened_stayed_open_and_resolved_in_money():
    since = T - timedelta(days=1)
    report = DailyChannel("C0BIZ", "business", (
        kpi("fraud-detector", 18_300, baseline=12_900, opened=T - timedelta(hours=3), alert_id=1),
        kpi("chargeback-model", 18_300, baseline=12_900, opened=T - timedelta(days=3), alert_id=2),
        kpi("refund-model", 18_300, baseline=12_900, state=AlertState.resolved, opened=T - timedelta(days=2),
            resolved=T - timedelta(hours=1), latest=8_100, alert_id=3)))
    message = daily_digest(report, since=since, until=T, details_url=lambda p: f"https://f.example.com/{p}")
    blocks = message.payload()["blocks"]
    validate_payload(message.payload())
    assert blocks[0]["text"]["text"] == "Missed fraud is up 0.1 points this week · Card fraud detection · 1 more open"
    assert blocks[1]["text"]["text"] == "Two KPI alerts open (1 new), 1 resolved in the last 24 hours."
    texts = {b["block_id"].split(":", 1)[1]: b["text"]["text"] for b in blocks[2:5]}
    assert texts["fraud-detector"].split("\n")[1] == (
        f":new: Opened {when(T - timedelta(hours=3))}: Missed fraud *1.8%* this week, up 0.1 points (1.7% -&gt; 1.8%) over the "
        "previous four weeks. Fraud amount missed *$18,300* this week, up 42% ($12.9k -&gt; $18.3k a week) over the "
        "previous four weeks (alert above $10,000).")
    assert texts["chargeback-model"].split("\n")[1].startswith(
        f":large_orange_circle: Open since {when(T - timedelta(days=3))}: ")
    assert texts["refund-model"].split("\n")[1] == (
        f":white_check_mark: Resolved {when(T - timedelta(hours=1))}: Missed fraud *0.81%* this week, down 0.9 points (1.7% -&gt; "
        "0.81%) over the previous four weeks. Fraud amount missed *$8,100* this week, down 37% ($12.9k -&gt; $8.1k a "
        "week) over the previous four weeks (alert above $10,000).")
    assert blocks[2]["accessory"]["value"] == "https://f.example.com/models/fraud-detector"
    assert blocks[2]["accessory"]["action_id"] == ActionId.view_details
    assert message.persona == "business"


def test_a_quiet_day_has_no_daily_digest():
    assert daily_digest(DailyChannel("C0BIZ", "business", ()), since=T - timedelta(days=1), until=T,
                        details_url=str) is None


def test_the_thread_button_answers():
    assert thread_answer("m", queued_now=True, permalink=None) == "Posting m's full alert in this message's thread."
    assert thread_answer("m", queued_now=False, permalink="https://x/p1") == \
        "m's full alert is already in this thread: <https://x/p1|open it>."
    assert thread_answer("m", queued_now=False, permalink=None) == "m's full alert is on its way to this thread."
