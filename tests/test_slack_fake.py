"""The Slack fake, driven by slack_sdk's own clients over HTTP, as the app will drive it."""

import json
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import (
    FixedValueRetryIntervalCalculator,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.support.slack_fake import (
    FakeSlack,
    action_body,
    block_action,
    command_body,
    event_body,
    fake_slack,  # noqa: F401 - the fixture, imported the way other test modules use it
    sign,
    view_submission,
)

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*Missed fraud* is up 41%"}}
BUTTON = {"type": "actions", "block_id": "flywheel.kpi_actions", "elements": [
    {"type": "button", "action_id": "flywheel.ask_ml_team", "text": {"type": "plain_text", "text": "Ask"},
     "value": '{"m":"fraud-detector"}'}]}


def _client(fake, **kwargs):
    return WebClient(token=fake.token, base_url=fake.api_url, **kwargs)


def test_post_update_and_ephemeral_round_trip(fake_slack):
    client = _client(fake_slack)
    first = client.chat_postMessage(channel="C0ML", text="Missed fraud is up 41%", blocks=[SECTION])
    second = client.chat_postMessage(channel="C0ML", text="again")
    assert first["channel"] == "C0ML" and float(second["ts"]) > float(first["ts"])
    assert first["message"]["blocks"] == [SECTION]

    reply = client.chat_postMessage(channel="C0ML", thread_ts=first["ts"], text="Still breaching")
    client.chat_update(channel="C0ML", ts=first["ts"], text="Resolved", blocks=[SECTION, BUTTON])
    ephemeral = client.chat_postEphemeral(channel="C0ML", user="U0ML0001", text="Only you see this")

    assert fake_slack.messages[("C0ML", first["ts"])]["text"] == "Resolved"
    assert fake_slack.messages[("C0ML", first["ts"])]["blocks"] == [SECTION, BUTTON]
    assert [m["ts"] for m in fake_slack.thread("C0ML", first["ts"])] == [reply["ts"]]
    assert fake_slack.ephemeral[0]["user"] == "U0ML0001" and ephemeral["message_ts"]
    assert [c.method for c in fake_slack.calls] == ["chat.postMessage"] * 3 + ["chat.update", "chat.postEphemeral"]
    assert fake_slack.invalid == [] and fake_slack.warnings == []
    with pytest.raises(SlackApiError) as missing:
        client.chat_update(channel="C0ML", ts="1.2", text="x")
    assert missing.value.response["error"] == "message_not_found"


def test_form_encoded_bodies_are_parsed_like_json_ones(fake_slack):
    client = _client(fake_slack)
    client.api_call("chat.postMessage", params={"channel": "C0ML", "text": "hi", "blocks": json.dumps([SECTION])})
    call = fake_slack.calls_to("chat.postMessage")[0]
    assert call.params["blocks"] == [SECTION] and call.headers["Content-Type"].startswith("application/x-www-form")


def test_invalid_blocks_are_refused_and_recorded(fake_slack):
    client = _client(fake_slack)
    too_long = {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C0ML", text="x", blocks=[SECTION, too_long])
    assert refused.value.response["error"] == "invalid_blocks"
    assert fake_slack.messages == {}
    ((method, problem),) = fake_slack.invalid
    assert method == "chat.postMessage" and problem.startswith("block 1 (header)") and "150" in problem

    with pytest.raises(SlackApiError):
        client.views_open(trigger_id="1.2.3", view={"type": "modal", "title": {"type": "plain_text", "text": "t" * 30},
                                                    "blocks": []})
    assert fake_slack.invalid[1][0] == "views.open"


def test_blocks_without_text_fallback_are_warned_about(fake_slack):
    with pytest.warns(UserWarning):  # slack_sdk warns too; the fake keeps its own record for tests to assert
        _client(fake_slack).chat_postMessage(channel="C0ML", blocks=[SECTION])
    assert fake_slack.warnings == ["chat.postMessage to C0ML has blocks but no text fallback"]


def test_views_open_update_and_publish(fake_slack):
    client = _client(fake_slack)
    modal = {"type": "modal", "callback_id": "flywheel.reject_modal", "private_metadata": '{"m":"x"}',
             "title": {"type": "plain_text", "text": "Reject"}, "blocks": [SECTION]}
    opened = client.views_open(trigger_id="1.2.3", view=modal)["view"]
    updated = client.views_update(view_id=opened["id"], view={**modal, "blocks": [SECTION, SECTION]})["view"]
    home = client.views_publish(user_id="U0ML0001", view={"type": "home", "blocks": [SECTION]})["view"]
    assert updated["id"] == opened["id"] and len(fake_slack.views[opened["id"]]["blocks"]) == 2
    assert opened["private_metadata"] == '{"m":"x"}' and fake_slack.home["U0ML0001"]["id"] == home["id"]
    with pytest.raises(SlackApiError):
        client.views_open(view=modal, trigger_id="")


def test_files_upload_v2_stores_the_bytes_in_the_thread(fake_slack):
    client = _client(fake_slack)
    ts = client.chat_postMessage(channel="C0ML", text="chart below")["ts"]
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    done = client.files_upload_v2(content=png, filename="kpi.png", title="Missed fraud", alt_txt="rose to 2.4%",
                                  channel="C0ML", thread_ts=ts)
    assert [c.method for c in fake_slack.calls[1:]] == [
        "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    upload = fake_slack.uploads[done["file"]["id"]]
    assert (upload.content, upload.filename, upload.title) == (png, "kpi.png", "Missed fraud")
    assert (upload.channel, upload.thread_ts, upload.alt_txt, upload.completed) == ("C0ML", ts, "rose to 2.4%", True)
    assert done["file"]["size"] == len(png) and done["file"]["mimetype"] == "image/png"


def test_a_wrong_or_missing_token_is_refused(fake_slack):
    for token in ("xoxb-wrong", None):
        with pytest.raises(SlackApiError) as refused:
            WebClient(token=token, base_url=fake_slack.api_url).chat_postMessage(channel="C0ML", text="x")
        assert refused.value.response["error"] == "invalid_auth"
    assert fake_slack.messages == {}
    assert _client(fake_slack).auth_test()["user_id"] == "U0BOT"


def test_rate_limit_is_honoured_by_the_sdk_retry_handler(fake_slack):
    fake_slack.fail("chat.postMessage", status=429, retry_after=0, times=2)
    client = _client(fake_slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    assert client.chat_postMessage(channel="C0ML", text="x")["ok"]
    assert len(fake_slack.calls_to("chat.postMessage")) == 3 and len(fake_slack.messages) == 1

    fake_slack.fail("chat.update", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as limited:  # no retry handler: the 429 reaches the caller
        _client(fake_slack).chat_update(channel="C0ML", ts="1.2", text="x")
    assert limited.value.response.status_code == 429 and limited.value.response["error"] == "ratelimited"
    assert limited.value.response.headers["Retry-After"] == "7"


def test_server_errors_are_retried_by_the_sdk_handler(fake_slack):
    fake_slack.fail("chat.postMessage", status=500, times=2)
    handler = ServerErrorRetryHandler(max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01))
    assert _client(fake_slack, retry_handlers=[handler]).chat_postMessage(channel="C0ML", text="x")["ok"]
    assert len(fake_slack.calls_to("chat.postMessage")) == 3 and len(fake_slack.messages) == 1


def test_slack_error_codes_and_late_answers(fake_slack):
    fake_slack.fail("conversations.info", error="channel_not_found")
    client = _client(fake_slack)
    with pytest.raises(SlackApiError) as missing:
        client.conversations_info(channel="C0GONE")
    assert missing.value.response.status_code == 200 and missing.value.response["error"] == "channel_not_found"
    assert client.conversations_info(channel="C0ML")["channel"]["id"] == "C0ML"  # only once

    fake_slack.fail("auth.test", delay=1.5)
    with pytest.raises(TimeoutError):
        WebClient(token=fake_slack.token, base_url=fake_slack.api_url, timeout=0.3).auth_test()


def test_users_come_from_the_configured_directory():
    with FakeSlack(users={"U0ML0001": {"name": "eli", "real_name": "Eli Moreau", "tz": "Europe/Paris"}}) as fake:
        client = _client(fake)
        assert client.users_info(user="U0ML0001")["user"]["real_name"] == "Eli Moreau"
        with pytest.raises(SlackApiError) as unknown:
            client.users_info(user="U0NOBODY")
        assert unknown.value.response["error"] == "user_not_found"


def test_response_urls_record_what_the_app_posts(fake_slack):
    url = fake_slack.response_url()
    assert WebhookClient(url).send(text="Retraining started", blocks=[SECTION], replace_original=False).body == "ok"
    assert fake_slack.responses[url] == [{"text": "Retraining started", "blocks": [SECTION],
                                          "replace_original": False}]
    refused = WebhookClient(url).send(text="x", blocks=[{"type": "section"}])
    assert refused.status_code == 400 and fake_slack.invalid[0][0] == "response"
    assert WebhookClient(fake_slack.base_url + "/response/999").send(text="x").status_code == 404


def test_signed_requests_verify_with_slack_sdk():
    verifier = SignatureVerifier("signing-secret")
    url = "http://127.0.0.1/response/1"
    bodies = [command_body("/flywheel", "status fraud-detector", user_id="W111", response_url=url),
              action_body(block_action("flywheel.ask_ml_team", "v", user_id="W111", channel_id="C0ML",
                                       message_ts="1700000000.000100", response_url=url)),
              event_body({"type": "app_home_opened", "user": "W111", "channel": "D111", "tab": "home"})]
    for body in bodies:
        assert verifier.is_valid_request(body, sign(body, "signing-secret"))
        assert not verifier.is_valid_request(body, sign(body, "other-secret"))
        assert not verifier.is_valid_request(body, sign(body, "signing-secret", timestamp=1_000_000_000))
    form = parse_qs(bodies[0].decode())
    assert (form["command"], form["text"], form["response_url"]) == (["/flywheel"], ["status fraud-detector"], [url])


def test_payload_builders_match_slack_shapes():
    click = block_action("flywheel.ask_ml_team", '{"m":"fraud-detector"}', user_id="W111", channel_id="C0ML",
                         message_ts="1700000000.000100", response_url="http://x/response/1", message_blocks=[BUTTON])
    assert json.loads(parse_qs(action_body(click).decode())["payload"][0]) == click
    (action,) = click["actions"]
    assert (action["block_id"], action["type"], action["value"]) == ("flywheel.kpi_actions", "button",
                                                                     '{"m":"fraud-detector"}')
    assert click["container"]["message_ts"] == click["message"]["ts"] and click["message"]["blocks"] == [BUTTON]

    submitted = view_submission("flywheel.reject_modal", {"flywheel.reject_reason": {"reason": "Too few labels"}},
                                user_id="W111", private_metadata='{"m":"x"}')
    assert submitted["view"]["state"]["values"] == {
        "flywheel.reject_reason": {"reason": {"type": "plain_text_input", "value": "Too few labels"}}}
    assert submitted["view"]["callback_id"] == "flywheel.reject_modal"
    assert submitted["view"]["private_metadata"] == '{"m":"x"}'
