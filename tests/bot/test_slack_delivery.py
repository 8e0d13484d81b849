"""Slack delivery against the local Slack fake: real WebClient, real HTTP, real retry handlers."""

import logging
import time
import traceback
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.blocks import business, it_ops
from bot.blocks.common import Message
from bot.charts import kpi_trend
from bot.config import Settings
from bot.slack_delivery import DeliveryError, SlackDelivery, make_client
from jobs.incidents import ChartRef, Deployment, KpiFigure, KpiIncident, ModelRef
from tests.support.slack_fake import FakeSlack

TOKEN = "xoxb-1111-flywheel-secret-token"
MON = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
REF = ModelRef(key="fraud-detector", version="v2", project_key="card-fraud", project_name="Card fraud detection",
               owner="U0ML0001", alert_id=12, version_number=2)


@pytest.fixture
def fake():
    with FakeSlack(token=TOKEN) as running:
        yield running


def _delivery(fake, *, token=TOKEN, timeout=5, public_charts=False):
    settings = Settings(SLACK_BOT_TOKEN=token, FLYWHEEL_SLACK_API_URL=fake.api_url)
    return SlackDelivery(make_client(settings, timeout=timeout), public_charts=public_charts)


@pytest.fixture(scope="module")
def chart(tmp_path_factory):
    weeks = [(MON - timedelta(weeks=5 - i), v) for i, v in enumerate([5400, 6300, 5100, 6900, 16200, 18300])]
    drawn = kpi_trend(label="Fraud amount missed", unit="USD", points=weeks, threshold=10000, breach_indices=[4, 5],
                      out=tmp_path_factory.mktemp("charts") / "missed.png")
    return ChartRef(path=str(drawn.path), title=drawn.title, alt_text=drawn.alt_text)


def _kpi_alert(charts):
    incident = KpiIncident(
        model=REF, window_start=MON - timedelta(days=7), window_end=MON, checked_at=MON,
        kpis=(KpiFigure("missed_fraud_amount", "Fraud amount missed", "USD", 18300, 12000, 10000, True,
                        "above $10,000"),),
        labels_complete_to=MON - timedelta(days=4), details_url="https://flywheel.example.com/alerts/12",
        charts=tuple(charts))
    return replace(business.kpi_alert(incident, baseline_windows=4), channel="C0BIZ")


def _deployment(channel="C0OPS"):
    deployment = Deployment(model=REF, deployed_by="U0ML0001", deployed_at=MON,
                            sign_offs=(("U0RISK01", "risk review"),), previous_version="v1",
                            details_url="https://flywheel.example.com/models/fraud-detector")
    return replace(it_ops.deployment_notice(deployment), channel=channel)


def test_a_persona_message_is_posted_with_its_chart_uploaded_into_its_thread(fake, chart):
    message = _kpi_alert([chart])
    ref = _delivery(fake).post(message)

    ((channel, ts), posted), = fake.messages.items()
    assert ref == f"C0BIZ:{ts}" and channel == "C0BIZ"
    assert posted["text"] == message.text and posted["blocks"] == message.payload()["blocks"]
    (upload,) = fake.uploads.values()
    assert upload.content == Path(chart.path).read_bytes() and upload.content[:4] == b"\x89PNG"
    assert (upload.channel, upload.thread_ts, upload.completed) == ("C0BIZ", ts, True)
    assert (upload.title, upload.alt_txt, upload.filename) == (chart.title, chart.alt_text, "missed.png")
    assert fake.invalid == [] and fake.warnings == []


def test_charts_at_a_url_are_shown_inline_only_when_slack_can_fetch_them(fake, chart):
    served = replace(chart, url="https://flywheel.example.com/charts/missed.png")
    message = _kpi_alert([served])
    assert any(b["type"] == "image" for b in message.payload()["blocks"])

    _delivery(fake, public_charts=True).post(message)
    _delivery(fake, public_charts=False).post(message)
    public, private = fake.messages.values()
    assert [b["type"] for b in public["blocks"]].count("image") == 1
    assert "image" not in [b["type"] for b in private["blocks"]]
    (upload,) = fake.uploads.values()  # only the private-network post uploaded its chart
    assert upload.thread_ts == private["ts"]


def test_reply_and_update_hit_the_right_message(fake):
    delivery = _delivery(fake)
    other = delivery.post(_deployment(channel="C0OTHER"))
    ref = delivery.post(_deployment())
    reply = delivery.reply(ref, "Rolled back to v1 by <@U0OPS001>")
    rolled_back = replace(_deployment(), text="fraud-detector v1 is live again", blocks=_deployment().blocks[:2])
    delivery.update(ref, rolled_back)

    channel, ts = ref.split(":")
    assert [m["text"] for m in fake.thread(channel, ts)] == ["Rolled back to v1 by <@U0OPS001>"]
    assert reply.startswith("C0OPS:") and reply != ref
    (update,) = fake.calls_to("chat.update")
    assert (update.params["channel"], update.params["ts"]) == (channel, ts)
    assert fake.messages[(channel, ts)]["text"] == "fraud-detector v1 is live again"
    assert len(fake.messages[(channel, ts)]["blocks"]) == 2
    assert len(fake.messages[tuple(other.split(":"))]["blocks"]) == len(_deployment().blocks)  # the other post is untouched


def test_a_rate_limit_is_waited_out_and_posts_once(fake):
    fake.fail("chat.postMessage", status=429, retry_after=0)
    ref = _delivery(fake).post(_deployment())
    assert len(fake.calls_to("chat.postMessage")) == 2 and len(fake.messages) == 1
    assert ref == "C0OPS:" + next(iter(fake.messages))[1]


def test_a_server_error_is_retried(fake):
    fake.fail("chat.postMessage", status=500)
    _delivery(fake).post(_deployment())
    assert len(fake.calls_to("chat.postMessage")) == 2 and len(fake.messages) == 1


def test_slack_errors_name_the_method_channel_and_code(fake):
    fake.fail("chat.postMessage", error="channel_not_found")
    with pytest.raises(DeliveryError, match=r"^chat\.postMessage to C0OPS failed: channel_not_found$"):
        _delivery(fake).post(_deployment())
    with pytest.raises(DeliveryError, match="has no channel"):
        _delivery(fake).post(_deployment(channel=None))
    with pytest.raises(DeliveryError, match="expected CHANNEL:TS"):
        _delivery(fake).reply("1700000000.000100", "x")
    with pytest.raises(DeliveryError, match="SLACK_BOT_TOKEN is not set"):
        make_client(Settings(SLACK_BOT_TOKEN=None))


def test_a_failed_chart_upload_keeps_the_posted_reference(fake, chart):
    fake.fail("files.completeUploadExternal", error="not_in_channel")
    with pytest.raises(DeliveryError) as failed:
        _delivery(fake).post(_kpi_alert([chart]))
    ((_, ts), _), = fake.messages.items()
    assert failed.value.ref == f"C0BIZ:{ts}"
    assert str(failed.value) == (f"files.completeUploadExternal to C0BIZ failed: not_in_channel; chart "
                                 f"'Fraud amount missed' is missing from message C0BIZ:{ts}")


def test_a_late_answer_is_a_timeout_and_is_not_posted_twice(fake):
    fake.fail("chat.postMessage", delay=2.0)
    with pytest.raises(DeliveryError, match=r"chat\.postMessage to C0OPS failed: no answer within 1 s"):
        _delivery(fake, timeout=1).post(_deployment())
    assert len(fake.calls_to("chat.postMessage")) == 1


def test_the_token_never_reaches_errors_or_logs(fake, caplog):
    caplog.set_level(logging.DEBUG)
    failures = []
    fake.fail("chat.postMessage", error="channel_not_found")
    fake.fail("chat.update", status=502)  # a gateway error: not retried, reported with Slack's body
    fake.fail("chat.postMessage", delay=2.0)
    delivery = _delivery(fake, timeout=1)
    for attempt in (lambda: delivery.post(_deployment()), lambda: delivery.update("C0OPS:1.2", _deployment()),
                    lambda: delivery.post(_deployment()),
                    lambda: _delivery(fake, token=TOKEN + "-revoked").post(_deployment())):
        with pytest.raises(DeliveryError) as failed:
            attempt()
        failures.append("".join(traceback.format_exception(failed.value)))
    assert [f.strip().splitlines()[-1].split(": ", 1)[1] for f in failures] == [
        "chat.postMessage to C0OPS failed: channel_not_found",
        "chat.update to C0OPS failed: fatal_error",
        "chat.postMessage to C0OPS failed: no answer within 1 s (the message may have been posted)",
        "chat.postMessage to C0OPS failed: invalid_auth"]
    assert any("Sending a request" in r.getMessage() for r in caplog.records)  # the SDK logged at debug level
    for text in failures + [r.getMessage() for r in caplog.records]:
        assert "1111-flywheel-secret" not in text



def _outbox_key(row_id: int) -> dict:
    return {"event_type": "flywheel_outbox", "event_payload": {"id": row_id}}


def _note(text: str) -> Message:
    return Message(kind="deployment", persona="ops", model_key="m", text=text, blocks=(), channel="C0FIND")


def test_a_message_is_found_again_by_its_metadata_in_the_channel_or_its_thread(fake):
    delivery = _delivery(fake)
    before = time.time() - 1
    for n in range(250):  # more than a page of history
        delivery.post(_note(f"noise {n}"), metadata=_outbox_key(100 + n))
    posted = delivery.post(_note("it"), metadata=_outbox_key(7))
    for n in range(250):
        delivery.post(_note(f"later {n}"))
    assert delivery.find("C0FIND", _outbox_key(7), oldest=before) == posted
    assert delivery.find("C0FIND", _outbox_key(7), oldest=float(posted.partition(":")[2])) is None  # exclusive
    assert delivery.find("C0OTHER", _outbox_key(7), oldest=before) is None
    reply = delivery.reply(posted, "in the thread", metadata=_outbox_key(8))
    assert delivery.find("C0FIND", _outbox_key(8), oldest=before) is None  # replies are not in the history
    assert delivery.find("C0FIND", _outbox_key(8), oldest=before, thread=posted) == reply
    assert fake.messages[tuple(reply.split(":", 1))]["metadata"] == _outbox_key(8)
