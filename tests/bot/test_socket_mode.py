"""`flywheel serve --socket` end to end: the real command in its own process, slack_sdk's Socket Mode
client connecting to the fake Slack's WebSocket, envelopes in, acks and Web API calls out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient

from bot.app import make_notifier
from bot.blocks.common import validate_payload
from bot.config import Settings
from bot.ids import ActionId
from jobs.monitor import check_model
from store.models import Alert, AlertState, CheckKind
from tests.support.slack_fake import APP_ID, FakeSlack, block_action, command_payload, event_payload, view_problem
from tests.support.slack_world import ELI, MODEL, NOW, RITA, register_fraud_model
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BOT_TOKEN = "xoxb-socket-mode-bot-secret"
APP_TOKEN = "xapp-1-A0FLYWHEEL-1-socket-mode-secret"
SIGNING_SECRET = "socket-mode-signing-secret"
SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET)
STARTUP_SECONDS = 120  # importing the app and connecting, on a busy 2-core machine


def _env(fake: FakeSlack, database_url: str, folder: Path, app_token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "FLYWHEEL_")) and "proxy" not in k.lower()}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=app_token, SLACK_SIGNING_SECRET=SIGNING_SECRET,
               FLYWHEEL_SLACK_API_URL=fake.api_url, FLYWHEEL_DATABASE_URL=database_url,
               FLYWHEEL_PUBLIC_URL="https://flywheel.example.com", FLYWHEEL_ARTIFACTS=str(folder / "artifacts"),
               FLYWHEEL_OUTBOX=str(folder / "outbox"), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return env


def _worker(fake: FakeSlack, database_url: str, folder: Path) -> subprocess.Popen:
    """The worker beside the app, as installs run it: it sends what the app writes to the outbox."""
    with (folder / "worker.out").open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=folder,
                                env=_env(fake, database_url, folder, APP_TOKEN), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)


def _serve(fake: FakeSlack, database_url: str, folder: Path, *, app_token: str = APP_TOKEN) -> subprocess.Popen:
    env = _env(fake, database_url, folder, app_token)
    with (folder / "serve.out").open("wb") as out, (folder / "serve.err").open("wb") as err:
        # -v: log at INFO, so the secrets check below covers what an operator would see when debugging.
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "-v", "serve", "--socket"], cwd=folder, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)


def _output(folder: Path) -> str:
    return (folder / "serve.out").read_text(errors="replace") + (folder / "serve.err").read_text(errors="replace")


@dataclass
class SocketApp:
    fake: FakeSlack
    process: subprocess.Popen
    folder: Path

    def command(self, text: str, user: str, *, response_url: str | None = None) -> dict:
        payload = command_payload("/flywheel", text, user_id=user, response_url=response_url or
                                  self.fake.response_url())
        return self.fake.socket_mode.request("slash_commands", payload)

    def click(self, action_id: str, message: tuple[str, str], user: str, response_url: str) -> dict:
        channel, ts = message
        blocks = self.fake.messages[message]["blocks"]
        value = next(e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
                     if e.get("action_id") == action_id)
        payload = block_action(action_id, value, user_id=user, channel_id=channel, message_ts=ts,
                               response_url=response_url, message_blocks=blocks)
        return self.fake.socket_mode.request("interactive", payload)

    def wait(self, condition, what: str, seconds: float = 60):
        """Wait for a follow-up the app sends after its ack (it runs on the app's background threads)."""
        def alive_and():
            assert self.process.poll() is None, f"flywheel serve --socket died:\n{_output(self.folder)}"
            return condition()
        return wait_until(alive_and, seconds, what, poll=0.05, detail=lambda: _output(self.folder)[-3000:])


def _connected(app: SocketApp) -> None:
    app.wait(app.fake.socket_mode.open_links, "flywheel serve --socket to connect", STARTUP_SECONDS)


@pytest.fixture
def socket_app(db, fraud_data, tmp_path):
    register_fraud_model(db, fraud_data)
    with FakeSlack(token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        app = SocketApp(fake, _serve(fake, db.url, tmp_path), tmp_path)
        worker = _worker(fake, db.url, tmp_path)
        try:
            _connected(app)
            yield app
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            finally:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait(timeout=30)
            app.process.send_signal(signal.SIGINT)  # Ctrl-C: the handler closes its connection and exits
            try:
                app.process.wait(timeout=30)
            finally:
                if app.process.poll() is None:
                    app.process.kill()
                    app.process.wait(timeout=30)
        output = _output(tmp_path)
        assert not [s for s in SECRETS if s in output], "a secret reached the app's output"
        assert fake.invalid == [], "the app sent a payload Slack would refuse"
        assert app.process.returncode == 0, output[-3000:]


def test_slash_commands_are_answered_in_the_ack(socket_app):
    fake = socket_app.fake
    opened = fake.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].headers["Authorization"] == f"Bearer {APP_TOKEN}"

    helped = socket_app.command("help", RITA)
    answer = helped["payload"]
    assert answer["response_type"] == "ephemeral"
    assert "approve MODEL VERSION" in answer["text"] and "retrain MODEL" not in answer["text"]
    validate_payload(answer)

    status = socket_app.command(f"status {MODEL}", ELI)["payload"]
    assert status["response_type"] == "ephemeral" and status["text"].startswith(f"{MODEL}: v1 in production")
    validate_payload(status)

    typo = socket_app.command("stauts", ELI)["payload"]
    assert typo["text"] == "`stauts` isn't a Flywheel command. Did you mean `status`?"


def _post_alert(fake: FakeSlack, db, folder: Path) -> tuple[str, str]:
    """The weekly check, run here, posts the drift alert to the fake; returns its (channel, ts)."""
    settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_PUBLIC_URL="https://flywheel.example.com",
                        FLYWHEEL_ARTIFACTS=folder / "artifacts", SLACK_BOT_TOKEN=SecretStr(BOT_TOKEN),
                        FLYWHEEL_SLACK_API_URL=fake.api_url)
    notifier = make_notifier(settings, db, client=WebClient(token=BOT_TOKEN, base_url=fake.api_url))
    notifier.on_checks(check_model(db=db, model_key=MODEL, as_of=NOW, now=NOW))
    for (channel, ts), message in fake.messages.items():
        header = next((b["text"]["text"] for b in message.get("blocks") or [] if b["type"] == "header"), "")
        if channel == "C0ML" and header.startswith(f"Input drift on {MODEL} v1"):
            return channel, ts
    raise AssertionError(f"no drift alert posted; have {[m.get('text', '')[:60] for m in fake.messages.values()]}")


def test_a_click_is_acked_and_its_follow_ups_reach_slack(socket_app, db):
    fake = socket_app.fake
    alert = _post_alert(fake, db, socket_app.folder)

    # Someone Flywheel doesn't know clicks Acknowledge: acked, then told privately why not.
    stranger_url = fake.response_url()
    ack = socket_app.click(ActionId.acknowledge, alert, "U0STRANGER", stranger_url)
    assert set(ack) == {"envelope_id"}  # a button's ack carries no payload
    refusal = socket_app.wait(lambda: fake.responses[stranger_url], "no answer to the stranger")[0]
    assert refusal["response_type"] == "ephemeral" and refusal["replace_original"] is False
    assert refusal["text"] == "You're not set up in Flywheel yet, so you can't acknowledge alerts."
    assert not fake.calls_to("chat.update")

    # Eli acknowledges: the alert message is edited in place, its buttons replaced by who did it.
    ack = socket_app.click(ActionId.acknowledge, alert, ELI, fake.response_url())
    assert set(ack) == {"envelope_id"}
    update = socket_app.wait(lambda: fake.calls_to("chat.update"), "the alert was never updated")[0]
    assert (update.params["channel"], update.params["ts"]) == alert
    blocks = fake.messages[alert]["blocks"]
    assert not any(b["type"] == "actions" for b in blocks)
    assert f"Acknowledged by <@{ELI}>" in json.dumps(blocks)
    with db.session() as s:
        assert [a.state for a in s.query(Alert).filter_by(kind=CheckKind.drift)] == [AlertState.acknowledged]


def test_opening_app_home_publishes_the_home_view(socket_app):
    fake = socket_app.fake
    event = {"type": "app_home_opened", "user": RITA, "channel": "D0RISK", "tab": "home",
             "event_ts": f"{time.time():.6f}"}
    ack = fake.socket_mode.request("events_api", event_payload(event))
    assert set(ack) == {"envelope_id"}
    home = socket_app.wait(lambda: fake.home.get(RITA), "App Home was never published")
    published = fake.calls_to("views.publish")
    assert [c.params["user_id"] for c in published] == [RITA]
    assert view_problem(published[0].params["view"]) is None
    assert home["type"] == "home" and "Card fraud detection" in json.dumps(home)


def test_the_app_reconnects_when_slack_refreshes_or_drops_the_connection(socket_app):
    fake = socket_app.fake
    assert socket_app.command(f"status {MODEL}", ELI)["payload"]["text"].startswith(MODEL)

    # Slack asks for a refresh: the app opens a new connection (a new URL) and answers on it.
    fake.socket_mode.disconnect("refresh_requested")
    second = fake.socket_mode.wait_for_link(2)
    answered = socket_app.command(f"status {MODEL}", ELI)
    assert answered["payload"]["text"].startswith(f"{MODEL}: v1 in production")
    assert answered in second.received
    assert socket_app.wait(lambda: not fake.socket_mode.links[0].open, "the old connection stayed open")

    # The connection drops without warning: the app notices, reconnects and keeps answering.
    fake.socket_mode.close(1001, "going away")
    third = fake.socket_mode.wait_for_link(3, timeout=60)
    answered = socket_app.command("help", ELI)
    assert "retrain MODEL" in answered["payload"]["text"] and answered in third.received

    # Each connection used a URL of its own; none was refused or reused.
    assert len(fake.calls_to("apps.connections.open")) == 3 and fake.socket_mode.refused == []
    assert len({link.ticket for link in fake.socket_mode.links}) == 3


@pytest.mark.parametrize(("app_token", "error"), [("xapp-1-A0FLYWHEEL-1-revoked-secret", "invalid_auth"),
                                                   (BOT_TOKEN, "not_allowed_token_type")])
def test_an_app_token_slack_refuses_stops_serve_with_a_reason(db, tmp_path, app_token, error):
    with FakeSlack(token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        process = _serve(fake, db.url, tmp_path, app_token=app_token)
        try:
            process.wait(timeout=STARTUP_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        assert len(fake.calls_to("apps.connections.open")) == 1
        assert fake.socket_mode.links == []
    output = _output(tmp_path)
    assert process.returncode == 2, output
    last = (tmp_path / "serve.err").read_text().strip().splitlines()[-1]
    assert last.startswith("Error: ") and "SLACK_APP_TOKEN" in last and f"({error})" in last
    assert "Traceback" in output  # -v shows where it failed, before the one line
    assert not [s for s in (app_token, *SECRETS) if s in output], "a secret reached the app's output"


def test_the_fake_opens_one_use_urls_for_the_app_token_only():
    from slack_sdk.errors import SlackApiError
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with FakeSlack(token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        web = WebClient(base_url=fake.api_url)
        for token, error in ((BOT_TOKEN, "not_allowed_token_type"), ("xapp-1-A0OTHER-1-x", "invalid_auth")):
            with pytest.raises(SlackApiError) as refused:
                web.apps_connections_open(app_token=token)
            assert refused.value.response["error"] == error
        url = web.apps_connections_open(app_token=APP_TOKEN)["url"]
        with connect(url) as link:
            hello = json.loads(link.recv(timeout=30))
            assert hello["type"] == "hello" and hello["connection_info"] == {"app_id": APP_ID}
        with pytest.raises(InvalidStatus):
            connect(url)  # Slack's URLs work once
        assert len(fake.socket_mode.refused) == 1 and len(fake.socket_mode.links) == 1
