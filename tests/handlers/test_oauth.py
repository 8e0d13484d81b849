"""Install in any workspace (OAuth v2): the app served over HTTP, Slack's side played by the fake Slack's
oauth.v2.access; installations land encrypted in the registry database and go on uninstall."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy import text

from bot.app import SetupError, build
from bot.oauth import BOT_SCOPES, BOTH_MODES, REDIRECT_PATH
from store.installations import TokenCipher
from tests.support.oauth_world import KEY, STATE_COOKIE, oauth_settings
from tests.support.slack_fake import TEAM_ID, FakeSlack, command_body, event_body
from tests.support.waiting import wait_until


def test_install_redirects_to_slack_with_a_state_and_the_manifest_scopes(served):
    started = served.http.get("/slack/install")
    assert started.status_code == 302
    location = urlsplit(started.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://slack.com/oauth/v2/authorize"
    query = parse_qs(location.query)
    assert query["client_id"] == [served.fake.client_id]
    assert query["scope"][0].split(",") == list(BOT_SCOPES)
    assert query["redirect_uri"] == ["https://flywheel.example.com/slack/oauth_redirect"]
    assert query["state"][0] and started.cookies[STATE_COOKIE] == query["state"][0]


def test_the_redirect_stores_the_installation_with_its_token_encrypted(served):
    served.install(TEAM_ID)

    exchanged = served.fake.calls_to("oauth.v2.access")
    assert len(exchanged) == 1 and exchanged[0].params["redirect_uri"] == \
        "https://flywheel.example.com/slack/oauth_redirect"
    token = next(iter(served.fake.installed))
    bot = served.store.bot_for(TEAM_ID)
    assert bot is not None and bot.bot_token == token and bot.team_name == f"Workspace {TEAM_ID}"
    # What the tables hold is ciphertext: no token in any column, and it opens only with the key.
    for table in ("slack_bots", "slack_installations"):
        with served.db.engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(text(f"SELECT * FROM {table}"))]
        assert len(rows) == 1
        assert token not in json.dumps(rows, default=str)
        assert TokenCipher(KEY.encode()).decrypt(rows[0]["bot_token"]) == token
    assert served.store.teams() == [TEAM_ID]


def test_a_bad_or_reused_state_is_refused(served):
    state, cookie = served.start_install()
    forged = served.finish_install(TEAM_ID, "not-a-state-we-issued", "not-a-state-we-issued")
    assert 400 <= forged.status_code < 500
    assert served.finish_install(TEAM_ID, state, cookie).status_code == 200
    reused = served.finish_install("T0OTHER", state, cookie)
    assert 400 <= reused.status_code < 500
    assert served.store.teams() == [TEAM_ID]
    # The refused attempts never reached Slack: the only code exchanged is the good one.
    assert len(served.fake.calls_to("oauth.v2.access")) == 1


def test_an_expiring_token_is_refreshed_before_a_request_uses_it(served):
    served.fake.token_lifetime = 600  # within Bolt's two hours of rotation margin at once
    served.install(TEAM_ID)
    first = served.store.bot_for(TEAM_ID)

    answered = served.signed(command_body("/flywheel", "help", user_id="U0ML0001", channel_id="C0ML",
                                          response_url=served.fake.response_url()),
                             "application/x-www-form-urlencoded")
    assert answered.status_code == 200

    refreshed = [c for c in served.fake.calls_to("oauth.v2.access") if c.params.get("grant_type") == "refresh_token"]
    assert [c.params["refresh_token"] for c in refreshed] == [first.bot_refresh_token]
    now = served.store.bot_for(TEAM_ID)
    assert now.bot_token != first.bot_token and now.bot_token in served.fake.installed
    with served.db.engine.connect() as connection:
        stored = [tuple(r) for r in connection.execute(text("SELECT bot_token, bot_refresh_token FROM slack_bots"))]
    assert all(now.bot_token not in v and now.bot_refresh_token not in v for row in stored for v in row)


def test_uninstalling_deletes_the_workspace_installation(served):
    served.install(TEAM_ID)
    served.install("T0OTHER")
    gone = served.signed(event_body({"type": "app_uninstalled", "event_ts": "1700000000.000100"}),
                         "application/json")
    assert gone.status_code == 200
    served.ops.join()
    wait_until(lambda: served.store.bot_for(TEAM_ID) is None, 10, "the uninstalled workspace's bot to go")
    assert served.store.teams() == ["T0OTHER"]


def test_a_token_and_oauth_at_once_is_refused_in_one_line(db):
    with FakeSlack() as fake:
        with pytest.raises(SetupError) as refused:
            build(oauth_settings(db, fake, SLACK_BOT_TOKEN=SecretStr("xoxb-test")), db=db)
    assert str(refused.value) == f"can't start the Slack app: {BOTH_MODES}"


def test_the_manifest_asks_for_the_scopes_an_install_asks_for_and_names_the_redirect():
    manifest = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())
    assert manifest["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)
    assert [urlsplit(u).path for u in manifest["oauth_config"]["redirect_urls"]] == [REDIRECT_PATH]


def test_a_modal_opens_with_the_requesting_workspace_token(served):
    served.install(TEAM_ID)
    asked = served.signed(command_body("/flywheel", "reject fraud-detector 2", user_id="U0RISK01",
                                       channel_id="C0RISK", response_url=served.fake.response_url()),
                          "application/x-www-form-urlencoded")
    assert asked.status_code == 200 and "Say why you reject fraud-detector v2" in asked.text
    (opened,) = served.fake.calls_to("views.open")
    assert opened.headers["Authorization"] == f"Bearer {served.store.bot_for(TEAM_ID).bot_token}"


def test_revoked_bot_tokens_delete_the_workspace_bot(served):
    served.install(TEAM_ID)
    revoked = served.signed(event_body({"type": "tokens_revoked", "event_ts": "1700000000.000200",
                                        "tokens": {"oauth": [], "bot": ["U0BOT"]}}), "application/json")
    assert revoked.status_code == 200
    wait_until(lambda: served.store.bot_for(TEAM_ID) is None, 10, "the revoked bot token to go")
