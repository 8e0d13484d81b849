"""Installed in several workspaces: each message goes out with its project's workspace's token, and a workspace
that uninstalled Flywheel gets nothing more while its history stays."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from slack_sdk.models.blocks import HeaderBlock, SectionBlock

from bot.app import make_outbox_sender
from bot.blocks.common import Message, md
from bot.cli import main
from bot.outbox import OutboxDelivery
from bot.services.specs import apply_spec
from jobs.spec import load_spec
from store.models import OutboxMessage, OutboxState, Project
from tests.support.oauth_world import KEY
from tests.support.projects import append_weeks, week, week_end, write_project, write_project_with_production
from tests.support.slack_fake import TEAM_ID, event_body
from tests.support.waiting import wait_until

OTHER = "T0OTHER"


def workspace_project(folder, *, key: str, model: str, team: str | None, channel: str):
    """The test project `key` ("Loan defaults" in every workspace) in `team`, its business channel `channel`."""
    spec = write_project_with_production(folder / key, project=key, model=model)
    text = spec.read_text().replace("business: C0BIZ", f"business: {channel}")
    if team is not None:
        text = text.replace("  risk_tier: medium\n", f"  risk_tier: medium\n  workspace: {team}\n")
    spec.write_text(text)
    return load_spec(spec)


@pytest.fixture
def two(served, tmp_path):
    """Workspaces A (TEAM_ID) and B (OTHER) installed, each with its own "Loan defaults" project."""
    with served.db.session() as s:
        apply_spec(session=s, loaded=workspace_project(tmp_path, key="loans-a", model="risk-a", team=TEAM_ID,
                                                       channel="C0BIZA"))
        apply_spec(session=s, loaded=workspace_project(tmp_path, key="loans-b", model="risk-b", team=OTHER,
                                                       channel="C0BIZB"))
    served.install(TEAM_ID)
    served.install(OTHER)
    return served


def _alert(model: str, channel: str, title: str) -> Message:
    return Message(kind="kpi_alert", persona="business", model_key=model, text=title, channel=channel,
                   blocks=(HeaderBlock(text=title), SectionBlock(text=md(f"*{title}*"))))


def _tokens_used(fake, channel: str) -> list[str]:
    return [c.headers["Authorization"].removeprefix("Bearer ") for c in fake.calls_to("chat.postMessage")
            if c.params.get("channel") == channel]


def test_each_workspace_gets_its_messages_with_its_own_token(two):
    outbox = OutboxDelivery(two.db)
    a = outbox.post(_alert("risk-a", "C0BIZA", "Missed defaults are up 30%"))
    outbox.reply(a, "still breaching")
    outbox.post(_alert("risk-b", "C0BIZB", "Missed defaults are up 12%"))
    sender = make_outbox_sender(two.settings, two.ops)
    assert sender.send_due() == 3

    token_a, token_b = two.store.bot_for(TEAM_ID).bot_token, two.store.bot_for(OTHER).bot_token
    assert token_a != token_b
    assert _tokens_used(two.fake, "C0BIZA") == [token_a, token_a]  # the post and its thread reply
    assert _tokens_used(two.fake, "C0BIZB") == [token_b]
    with two.db.read() as s:
        assert {r.team_id for r in s.query(OutboxMessage)} == {TEAM_ID, OTHER}


def test_a_project_naming_no_workspace_is_never_sent_with_some_workspace_token(served, tmp_path):
    with served.db.session() as s:
        apply_spec(session=s, loaded=workspace_project(tmp_path, key="loans", model="risk", team=None,
                                                       channel="C0BIZ"))
    served.install(TEAM_ID)
    OutboxDelivery(served.db).post(_alert("risk", "C0BIZ", "Missed defaults are up 30%"))
    assert make_outbox_sender(served.settings, served.ops).send_due() == 0
    assert served.fake.calls_to("chat.postMessage") == []
    with served.db.read() as s:
        (row,) = s.query(OutboxMessage).all()
        assert row.state == OutboxState.undeliverable and "not installed in workspace None" in row.last_error


def test_uninstall_stops_delivery_to_that_workspace_and_keeps_its_history(two):
    now = [datetime(2026, 12, 7, 9, 0)]
    outbox = OutboxDelivery(two.db, lambda: now[0])
    sender = make_outbox_sender(two.settings, two.ops, clock=lambda: now[0])
    outbox.post(_alert("risk-a", "C0BIZA", "Missed defaults are up 30%"))
    assert sender.send_due() == 1

    gone = two.signed(event_body({"type": "app_uninstalled", "event_ts": "1700000000.000100"}), "application/json")
    assert gone.status_code == 200
    wait_until(lambda: two.store.bot_for(TEAM_ID) is None, 10, "workspace A's installation to go")

    now[0] += timedelta(minutes=5)  # past the channel's posting pace
    later = outbox.post(_alert("risk-a", "C0BIZA", "Missed defaults are up 45%"))
    outbox.reply(later, "still breaching")
    outbox.post(_alert("risk-b", "C0BIZB", "Missed defaults are up 12%"))
    assert sender.send_due() == 1  # B's only
    assert len(_tokens_used(two.fake, "C0BIZA")) == 1  # the one from before the uninstall
    assert len(_tokens_used(two.fake, "C0BIZB")) == 1
    with two.db.read() as s:
        rows = {(r.team_id, r.payload["text"]): r for r in s.query(OutboxMessage)}
        assert rows[(TEAM_ID, "Missed defaults are up 30%")].state == OutboxState.sent
        assert rows[(TEAM_ID, "Missed defaults are up 45%")].state == OutboxState.undeliverable
        assert rows[(TEAM_ID, "still breaching")].state == OutboxState.undeliverable
        assert rows[(OTHER, "Missed defaults are up 12%")].state == OutboxState.sent
        assert s.query(Project).filter_by(key="loans-a").one().team_id == TEAM_ID  # the project stays
    assert sender.send_due() == 0  # kept, never retried


def test_flywheel_check_sends_its_alerts_with_the_project_workspace_token(served, tmp_path):
    spec = write_project(tmp_path)
    spec.write_text(spec.read_text().replace("  risk_tier: medium\n", f"  risk_tier: medium\n  workspace: {OTHER}\n"))
    append_weeks(tmp_path, [week(w) for w in range(4)] + [week(4, shift=1.0, miss=0.6)])
    served.install(TEAM_ID)
    served.install(OTHER)
    env = {"FLYWHEEL_DATABASE_URL": served.db.url, "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"),
           "FLYWHEEL_OUTBOX": str(tmp_path / "outbox"), "SLACK_BOT_TOKEN": None, "SLACK_APP_TOKEN": None,
           "FLYWHEEL_SLACK_API_URL": served.fake.api_url, "FLYWHEEL_SECRET_KEY": KEY,
           "FLYWHEEL_SLACK_CLIENT_ID": served.fake.client_id, "FLYWHEEL_SLACK_CLIENT_SECRET": served.fake.client_secret}
    assert CliRunner().invoke(main, ["apply", str(spec)], env=env).exit_code == 0
    checked = CliRunner().invoke(main, ["check", "default-risk", "--as-of", week_end(4).isoformat()], env=env)
    assert checked.exit_code == 0, checked.output
    assert "new alert(s) sent to Slack" in checked.output
    used = {c.headers["Authorization"] for c in served.fake.calls_to("chat.postMessage")}
    assert used == {f"Bearer {served.store.bot_for(OTHER).bot_token}"}


def test_the_sender_refreshes_an_expiring_workspace_token_before_it_posts(served):
    served.fake.token_lifetime = 600  # within the two hours before expiry the sender refreshes in
    served.install(OTHER)
    first = served.store.bot_for(OTHER)
    OutboxDelivery(served.db).post(_alert("risk-b", "C0BIZB", "Missed defaults are up 12%"))
    with served.db.session() as s:  # the row's workspace, as a project naming it would give
        s.query(OutboxMessage).update({"team_id": OTHER})
    assert make_outbox_sender(served.settings, served.ops).send_due() == 1

    refreshed = [c for c in served.fake.calls_to("oauth.v2.access") if c.params.get("grant_type") == "refresh_token"]
    assert [c.params["refresh_token"] for c in refreshed] == [first.bot_refresh_token]
    now = served.store.bot_for(OTHER)
    assert now.bot_token != first.bot_token
    assert _tokens_used(served.fake, "C0BIZB") == [now.bot_token]


def test_a_token_that_cannot_be_refreshed_puts_its_messages_off_without_losing_them(served):
    served.fake.token_lifetime = 600
    served.install(OTHER)
    served.fake.refresh_tokens.clear()  # Slack refuses the refresh token (invalid_refresh_token)
    OutboxDelivery(served.db).post(_alert("risk-b", "C0BIZB", "Missed defaults are up 12%"))
    with served.db.session() as s:
        s.query(OutboxMessage).update({"team_id": OTHER})
    assert make_outbox_sender(served.settings, served.ops).send_due() == 0
    assert served.fake.calls_to("chat.postMessage") == []
    with served.db.read() as s:
        (row,) = s.query(OutboxMessage).all()
        assert row.state == OutboxState.pending and "could not be refreshed (invalid_refresh_token)" in row.last_error
