"""Every time Flywheel shows is a date and a time: Slack's date token in mrkdwn (each reader's own time zone),
with a fallback that has the year and UTC; the fallback wherever tokens do not render."""

import re
from datetime import UTC, datetime, timedelta, timezone

from slack_sdk.models.blocks import (
    ActionsBlock,
    ContextBlock,
    HeaderBlock,
    SectionBlock,
)

from bot.blocks import dates
from bot.blocks.common import (
    Message,
    button,
    link_button,
    md,
    settled,
    validate_payload,
)
from bot.delivery import mrkdwn_to_html
from bot.ids import ActionContext, ActionId

MOMENT = datetime(2026, 12, 5, 14, 10)
UNIX = int(MOMENT.replace(tzinfo=UTC).timestamp())


def test_a_moment_in_mrkdwn_is_a_slack_date_token_with_a_full_fallback():
    assert dates.when(MOMENT) == f"<!date^{UNIX}^{{date_short_pretty}} at {{time}}|Dec 5, 2026 14:10 UTC>"
    assert dates.when_text(MOMENT) == "Dec 5, 2026 14:10 UTC"


def test_an_aware_moment_is_said_in_utc():
    paris = MOMENT.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=1)))
    assert dates.when(paris) == dates.when(MOMENT)
    assert dates.when_text(paris) == "Dec 5, 2026 14:10 UTC"


def test_days_and_windows_carry_their_year():
    assert dates.day(MOMENT) == "Dec 5, 2026"
    assert dates.span(datetime(2026, 11, 2), datetime(2026, 12, 1)) == "Nov 2 - Nov 30, 2026"  # half-open
    assert dates.span(datetime(2026, 12, 28), datetime(2027, 1, 4)) == "Dec 28, 2026 - Jan 3, 2027"
    assert dates.span(None, MOMENT) == "unknown"


def test_a_page_gets_a_time_element():
    assert dates.when_html(MOMENT) == '<time datetime="2026-12-05T14:10:00Z">Dec 5, 2026 14:10 UTC</time>'


def test_the_notification_text_says_the_fallback_never_the_token():
    note = f"Acknowledged by <@U0ML0001> · {dates.when(MOMENT)}"
    message = Message(kind="x", persona="ml_engineer", model_key="m", text=note,
                      blocks=(HeaderBlock(text="Input drift"), SectionBlock(text=md(note))))
    payload = message.payload()
    validate_payload(payload)
    assert payload["text"] == "Acknowledged by <@U0ML0001> · Dec 5, 2026 14:10 UTC"
    assert "<!date^" not in payload["text"]
    assert payload["blocks"][1]["text"]["text"] == note  # the block keeps the token: each reader's own zone


def test_the_preview_renders_a_token_as_a_time_element():
    html = mrkdwn_to_html(f"*Deployed* by <@U0ML0001>, {dates.when(MOMENT)}", {"U0ML0001": "Eli"})
    assert '<time datetime="2026-12-05T14:10:00Z">Dec 5, 2026 14:10 UTC</time>' in html
    assert "date_short_pretty" not in html and "&lt;!date" not in html
    assert html.startswith('<b>Deployed</b> by <span class="mention">@Eli</span>')


def test_the_token_is_never_read_after_at_or_on():
    """{date_short_pretty} says "today": "at today at 14:10" would be the result."""
    for said in (dates.when(MOMENT),):
        assert not re.search(r"\b(at|on) <!date", f"x {said}")


def test_a_settled_sign_off_request_keeps_its_evidence_buttons_only():
    ctx = ActionContext(model="fraud-detector", version=2)
    blocks = [SectionBlock(text=md("Sign-off requested")).to_dict(),
              ActionsBlock(block_id="flywheel.signoff_actions", elements=[
                  button("Approve", ActionId.approve, ctx), button("Reject", ActionId.reject, ctx),
                  link_button("Model card", "https://f.example.com/card", ActionId.model_card),
                  link_button("Comparison", "https://f.example.com/v2", ActionId.view_details)]).to_dict()]
    kept = [b.to_dict() for b in settled(blocks, f"Approved by <@U0RISK01>, {dates.when(MOMENT)}",
                                         keep_evidence=True)]
    assert [b["type"] for b in kept] == ["section", "context", "actions"]
    assert [e["action_id"] for e in kept[2]["elements"]] == [ActionId.model_card, ActionId.view_details]
    assert isinstance(settled(blocks, "done")[-1], ContextBlock)
    assert not any(b.type == "actions" for b in settled(blocks, "done"))  # other messages lose every button
    validate_payload({"text": "x", "blocks": kept})
