"""A whole story with FLYWHEEL_LOG_FORMAT=json, run as an operator runs it: `flywheel serve` and `flywheel worker`
processes, a signed `/flywheel retrain` that queues work, the worker running it and its outbox sending the news
to the fake Slack. Every line either process logged is one JSON object; the request id Slack's request got is
on the app's lines and on the worker's (running the work item, sending its messages); no secret is anywhere."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from jobs import synthetic
from tests.support.backend_world import set_spec
from tests.support.slack_fake import TEAM_ID, FakeSlack, command_body, sign
from tests.support.slack_world import ELI, MODEL, register_fraud_model, write_fraud_data
from tests.support.waiting import wait_until
from tests.support.workers import stop

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-logstorybottoken",
    "SLACK_SIGNING_SECRET": "log-story-signing-secret-3141",
    "SLACK_APP_TOKEN": "xapp-1-A0LOG-1-logstoryapptoken",
    "FLYWHEEL_SECRET_KEY": "log-story-dashboard-key-" + "k" * 24,
    "FLYWHEEL_API_TOKEN": "log-story-api-token-2718",
    "FLYWHEEL_WEBHOOK_SECRET": "log-story-webhook-secret-1618",
}
STARTUP_SECONDS = 120


@pytest.fixture(scope="module")
def live_data(tmp_path_factory):
    """The fraud story's weeks ending today: the worker process runs on the real clock."""
    today = datetime.utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    scenario = synthetic.Scenario(start=today - timedelta(weeks=7), weeks=6, rows_per_week=20_000,
                                  drift_from_week=5)
    folder = tmp_path_factory.mktemp("log-story")
    write_fraud_data(folder, scenario)
    return folder, scenario


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(env: dict[str, str], folder: Path, name: str, *args: str) -> subprocess.Popen:
    """A `flywheel` command with its logs (stderr) and its messages to the operator (stdout) in two files."""
    return subprocess.Popen([sys.executable, "-m", "bot.cli", *args], cwd=folder, env=env,
                            stdin=subprocess.DEVNULL, stdout=(folder / f"{name}.out").open("ab"),
                            stderr=(folder / f"{name}.log").open("ab"))


def _lines(path: Path) -> list[dict]:
    parsed = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"{path.name} line {number} is not JSON: {line[:300]}") from None
    return parsed


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json() == {"status": "ok"}
    except httpx.HTTPError:
        return False


def test_a_retrain_asked_in_slack_is_followed_by_its_request_id_into_the_worker_with_no_secret_logged(
        db, live_data, tmp_path):
    folder, scenario = live_data
    register_fraud_model(db, folder, scenario)
    set_spec(db, artifact_roots=[str(folder / "artifacts")])
    port = _free_port()
    with FakeSlack(token=SECRETS["SLACK_BOT_TOKEN"]) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FLYWHEEL_", "SENTRY_"))}
        env.update(SECRETS, FLYWHEEL_LOG_FORMAT="json", FLYWHEEL_LOG_LEVEL="DEBUG", FLYWHEEL_DATABASE_URL=db.url,
                   FLYWHEEL_SLACK_API_URL=fake.api_url, FLYWHEEL_ARTIFACTS=str(tmp_path / "artifacts"),
                   FLYWHEEL_OUTBOX=str(tmp_path / "outbox"), FLYWHEEL_PUBLIC_URL="https://flywheel.example.com",
                   PYTHONPATH=str(ROOT))
        app = _start(env, tmp_path, "app", "serve", "--port", str(port))
        worker = None
        try:
            wait_until(lambda: app.poll() is None and _answers(port), STARTUP_SECONDS, "serve to answer",
                       poll=0.2, detail=lambda: (tmp_path / "app.log").read_text()[-3000:])
            body = command_body("/flywheel", f"retrain {MODEL} card age drifted", user_id=ELI,
                                response_url=fake.response_url())
            answer = httpx.post(f"http://127.0.0.1:{port}/slack/events", content=body, timeout=30,
                                headers={"Content-Type": "application/x-www-form-urlencoded",
                                         **sign(body, SECRETS["SLACK_SIGNING_SECRET"])})
            assert answer.status_code == 200, answer.text
            assert answer.json()["text"].startswith(f"Retraining {MODEL}")
            request_id = answer.headers["x-request-id"]
            worker = _start(env, tmp_path, "worker", "worker")
            wait_until(lambda: any(m.get("text", "").startswith(f"{MODEL} v2 is ready for review")
                                   for m in fake.messages.values()), 300, "the candidate message in Slack",
                       detail=lambda: (tmp_path / "worker.log").read_text()[-3000:])
            for process, name in ((worker, "worker"), (app, "app")):
                process.send_signal(signal.SIGTERM)  # uvicorn ends by raising the signal again once stopped
                assert process.wait(timeout=60) in (0, -signal.SIGTERM), (tmp_path / f"{name}.log").read_text()[-3000:]
        finally:
            stop(app, worker)

    app_lines, worker_lines = _lines(tmp_path / "app.log"), _lines(tmp_path / "worker.log")
    for line in app_lines + worker_lines:
        assert {"timestamp", "level", "logger", "event"} <= line.keys(), line
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() == timedelta(0), line
    asked = [line for line in app_lines if line.get("request_id") == request_id]
    assert any(line["logger"] == "flywheel.web" and line.get("path") == "/slack/events" and line["status"] == 200
               and line.get("slack_user") == ELI and line.get("slack_team") == TEAM_ID for line in asked), asked
    ran = [line for line in worker_lines if line.get("request_id") == request_id]
    assert any(line["logger"] == "flywheel.worker" and line["event"].startswith("running retrain work item")
               and line.get("model") == MODEL and "work_item" in line for line in ran), worker_lines[-20:]
    assert any(line["logger"] == "flywheel.outbox" and line["event"].startswith("outbox") and "outbox" in line
               for line in ran), ran

    # The signed dashboard links the story put in Slack are secrets too.
    links = set(re.findall(r"[?&]t=([^&\"'\s>|]+)", json.dumps(list(fake.messages.values()))))
    logged = "\n".join((tmp_path / name).read_text() for name in ("app.log", "worker.log", "app.out", "worker.out"))
    for name, secret in [*SECRETS.items(), *(("a dashboard link", t) for t in links)]:
        assert secret not in logged, f"{name} is in the logs"
