"""How Slack's HTTP requests become Bolt's: a click's form body is decoded exactly as Bolt would decode it."""

import json
import random
from urllib.parse import parse_qsl, quote, quote_plus

import pytest
from slack_bolt.adapter.starlette.handler import to_bolt_request
from starlette.requests import Request

from bot.web import bolt_request, form_payload
from tests.support.slack_fake import action_body, block_action, command_body

TRICKY = "é ü € 😀 \u2028 \\ % + & = \" ' { } [ ] \n \t ~ * ( ) ! / ? #"


def _bolt_decodes(body: bytes) -> str:
    return dict(parse_qsl(body.decode(), keep_blank_values=True))["payload"]


def test_a_click_payload_decodes_as_parse_qsl_decodes_it():
    rnd = random.Random(20261127)
    for n in range(2000):
        text = "".join(rnd.choice(TRICKY) for _ in range(rnd.randint(0, 40)))
        payload = json.dumps({"type": "block_actions", "n": n, "text": text, "nested": {"k": [text[::-1]]}},
                             ensure_ascii=rnd.random() < 0.5)
        encode = quote if n % 2 else quote_plus  # Slack's encoder may write a space as %20 or as +
        body = b"payload=" + encode(payload, safe="").encode()
        assert form_payload(body) == _bolt_decodes(body) == payload


@pytest.mark.parametrize("body", [
    b"command=%2Fflywheel&text=status",  # a slash command: every field matters
    b"payload=%7B%7D&extra=1",  # a second field
    b"payload=%7B%22a%22%3A%22%5C%22%7D\\",  # a raw backslash, which the codec would read as an escape
    b"payload=%7B%zz%7D",  # "%" without two hex digits
    b"payload=%7B%22a%22%3A%22%C3%22%7D",  # a lone UTF-8 lead byte
    b"payload=%5B1%5D",  # JSON that is not an object: Bolt would not read the body as JSON
])
def test_anything_else_is_left_to_bolt(body):
    assert form_payload(body) is None


def _starlette() -> Request:
    headers = [(b"content-type", b"application/x-www-form-urlencoded"), (b"x-slack-signature", b"v0=abc"),
               (b"x-slack-request-timestamp", b"1700000000")]
    return Request({"type": "http", "method": "POST", "path": "/slack/events", "headers": headers,
                    "query_string": b""})


def test_bolt_gets_the_same_request_and_the_bytes_slack_signed():
    click = block_action("flywheel.acknowledge", "a=1", user_id="U0ML0001", channel_id="C0ML",
                         message_ts="1700000000.000100", response_url="https://hooks.slack.com/actions/T/1/x",
                         message_blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": TRICKY}}])
    for body in (action_body(click), command_body("/flywheel", "status fraud-detector", user_id="U0ML0001",
                                                  response_url="https://hooks.slack.com/commands/T/1/x")):
        ours, bolts = bolt_request(_starlette(), body), to_bolt_request(_starlette(), body)
        assert ours.raw_body == bolts.raw_body == body.decode()  # what RequestVerification checks
        assert ours.body == bolts.body
        assert dict(ours.context) == dict(bolts.context)
        assert (ours.headers, ours.query, ours.content_type) == (bolts.headers, bolts.query, bolts.content_type)
