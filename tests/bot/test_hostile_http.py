"""Hostile requests over real HTTP: what Slack did not sign is refused with 401 before anything parses it,
what it signed but no listener can read gets 400, and the version API and the dashboard's addresses answer
garbage with 400/413/422 and a reason, never 500."""

import json
import os

import httpx
import pytest
from pydantic import SecretStr
from slack_sdk.models.blocks import Block

from bot.api import build_api
from bot.app import make_operations
from bot.config import Settings
from bot.web import MALFORMED, UNSIGNED, build_web
from store.models import AuditEvent, ModelVersion
from tests.bot.test_api import GOOD, TOKEN
from tests.support.factories import fraud_project
from tests.support.receiver import AsgiServer
from tests.support.slack_fake import command_body, sign
from tests.support.slack_world import ELI, MODEL, SECRET

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_INT = b'{"a": ' + b"9" * 10_000 + b"}"
FORM = "application/x-www-form-urlencoded"


def _post(world, body: bytes, headers: dict, content_type: str = FORM) -> httpx.Response:
    return world.http.post("/slack/events", content=body, headers={"Content-Type": content_type, **headers})


GARBAGE = [os.urandom(512), b"payload=%ZZ", b"", DEEP, HUGE_INT, b"\xff\xfe" * 100, b"payload=" + b"%5B" * 50_000]
NOT_SIGNED = [{}, {"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "1"},  # stale
              {"X-Slack-Signature": "v0=zz", "X-Slack-Request-Timestamp": "now"},
              {"X-Slack-Signature": "v0=é".encode(), "X-Slack-Request-Timestamp": "9" * 5000},
              {"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "1e9"}]


def test_unsigned_garbage_is_refused_with_401_before_it_is_parsed(world):
    before = len(world.fake.calls)
    for body in GARBAGE:
        for headers in NOT_SIGNED + [sign(body, "not-the-secret"), sign(body + b"x", SECRET)]:
            for content_type in (FORM, "application/json"):
                answer = _post(world, body, headers, content_type)
                assert (answer.status_code, answer.text) == (401, UNSIGNED), (body[:20], headers)
    assert len(world.fake.calls) == before  # nothing reached a listener


def test_a_huge_body_is_refused_unread(world):
    huge = b"payload=" + b"A" * 10_000_000
    assert _post(world, huge, {}).status_code == 401  # no signature: not even its length is looked at
    forged = {"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": sign(b"", SECRET)[
        "X-Slack-Request-Timestamp"]}
    answer = _post(world, huge, forged)
    assert answer.status_code == 413 and "1,000,000 bytes" in answer.text

    def chunks():  # no Content-Length: read only up to the limit
        for _ in range(20):
            yield b"A" * 500_000
    answer = world.http.post("/slack/events", content=chunks(), headers={"Content-Type": FORM, **forged})
    assert answer.status_code == 413


SIGNED_GARBAGE = [
    (b"payload=%ZZ", FORM), (b"{not json", "application/json"), (DEEP, "application/json"),
    (HUGE_INT, "application/json"), (b"payload=%5B1%5D", FORM), (b"payload=%22x%22", FORM),
    (b'{"type":"event_callback","event":"x"}', "application/json"),
    (b"payload=" + json.dumps({"type": "view_submission", "view": "x", "user": {"id": ELI}}).encode(), FORM),
    (b"payload=" + json.dumps({"type": "block_actions", "user": {"id": ELI}, "actions": "x"}).encode(), FORM),
    (b"command=%2Fflywheel&text=status", FORM),  # no user
]


def test_signed_garbage_is_answered_400_never_500(world):
    for body, content_type in SIGNED_GARBAGE:
        answer = _post(world, body, sign(body, SECRET), content_type)
        assert answer.status_code == 400 and answer.text.startswith(MALFORMED), body[:60]


def test_signed_requests_still_work_and_the_check_is_on_the_bytes_slack_signed(world):
    body = command_body("/flywheel", f"status {MODEL}", user_id=ELI, response_url=world.fake.response_url())
    answer = _post(world, body, sign(body, SECRET))
    assert answer.status_code == 200 and answer.json()["text"].startswith(f"{MODEL}: v1 in production")
    Block.parse_all(answer.json()["blocks"])
    assert _post(world, body + b" ", sign(body, SECRET)).status_code == 401


@pytest.fixture
def api(db, tmp_path):
    with db.session() as s:
        fraud_project(s)
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "v1.joblib").write_bytes(b"the model of v1")
    settings = Settings(FLYWHEEL_API_TOKEN=SecretStr(TOKEN), FLYWHEEL_ARTIFACTS=tmp_path / "artifacts")
    with AsgiServer(build_web(_bolt(), api=build_api(make_operations(settings, db, notifier=None)))) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def _bolt():
    from slack_bolt import App

    return App(signing_secret="secret", token="xoxb-test", token_verification_enabled=False)


AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.mark.parametrize("body,status,reason", [
    (DEEP, 400, "nests too deep"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400, "nests too deep"),
    (json.dumps({**GOOD, "work_item": 0})[:-1].encode() + b', "x": ' + b"9" * 10_000 + b"}", 400, "4300 digits"),
    (json.dumps({**GOOD, "parameters": {"n": json.loads("[" * 40 + "]" * 40)}}).encode(), 422, "deeper than 32"),
    (json.dumps({**GOOD, "parameters": {"a": "x\u0000"}}).encode(), 422, "NUL"),
    (json.dumps({**GOOD, "work_item": 2 ** 70}).encode(), 422, "work_item"),
    (json.dumps({**GOOD, "train_start": "9999-12-31T23:59:59-23:00"}).encode(), 422, "out of range"),
    (json.dumps({"model": 5, "artifact_uri": [], "metrics": "x"}).encode(), 422, "valid string"),
    (json.dumps({**GOOD, "evil": 1}).encode(), 422, "Extra inputs"),
    (b'{"model": "\xff\xfe"}', 400, "UnicodeDecodeError"),
    (b"{" + b" " * 10_000_000 + b"}", 413, "1,000,000 bytes"),
], ids=["deep-list", "deep-object", "huge-int", "deep-parameters", "nul", "big-work-item", "date-overflow",
        "wrong-types", "unknown-field", "not-utf8", "10MB"])
def test_hostile_json_to_the_version_api_is_refused_with_a_reason(api, db, body, status, reason):
    answer = api.post("/api/versions", content=body, headers=AUTH)
    assert answer.status_code == status and reason in answer.json()["error"]
    with db.session() as s:
        assert s.query(ModelVersion).count() == 0


def test_a_chunked_body_is_read_only_up_to_the_limit(api):
    def chunks():
        for _ in range(40):
            yield b" " * 500_000
    answer = api.post("/api/versions", content=chunks(), headers=AUTH)
    assert answer.status_code == 413


@pytest.mark.parametrize("path", ["/models/%00", "/models/x%0Ay", "/alerts/" + "9" * 10_000,
                                  "/models/fraud-detector/versions/" + "9" * 30, "/models/" + "k" * 5_000,
                                  "/catalog?q=%00", "/healthz?" + "a" * 5_000, "/api/versions?x=%01"])
def test_hostile_addresses_are_answered_400_before_any_route(api, path):
    answer = api.get(path)
    assert answer.status_code == 400 and answer.text


def test_healthz_and_ordinary_pages_are_unaffected(api, db, tmp_path):
    assert api.get("/healthz").json() == {"status": "ok"}
    good = {**GOOD, "artifact_uri": (tmp_path / "artifacts" / "v1.joblib").as_uri()}
    assert api.post("/api/versions", json=good, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 201
    with db.session() as s:
        assert s.query(AuditEvent).filter_by(action="version.registered").count() == 1
