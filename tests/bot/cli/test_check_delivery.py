"""`flywheel check` with a Slack token: its alerts go through the outbox, as the worker's do. Slack away while
it runs leaves them queued (exit 0), and the worker's outbox sender delivers them once Slack answers."""

from __future__ import annotations

import socket
from datetime import timedelta

from click.testing import CliRunner
from slack_sdk import WebClient
from sqlalchemy import select

from bot.app import build_worker
from bot.cli import main
from bot.config import Settings
from bot.ids import ActionId
from jobs.worker import leadership_for
from store.clock import utcnow
from store.models import OutboxMessage, OutboxState
from tests.support.projects import append_weeks, week, week_end, write_project
from tests.support.slack_fake import FakeSlack

TOKEN = "xoxb-check-delivery"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(tmp_path, database_url, api_url, *args):
    env = {"FLYWHEEL_DATABASE_URL": database_url, "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"),
           "FLYWHEEL_OUTBOX": str(tmp_path / "outbox"), "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": None,
           "SLACK_APP_TOKEN": None, "FLYWHEEL_SLACK_API_URL": api_url, "FLYWHEEL_STORM_WINDOW": "60"}
    return CliRunner().invoke(main, list(args), env=env)


def _drifting_project(tmp_path, database_url) -> None:
    spec = write_project(tmp_path)
    append_weeks(tmp_path, [week(w) for w in range(4)] + [week(4, shift=1.0, miss=0.6)])
    applied = _run(tmp_path, database_url, "http://127.0.0.1:9/api/", "apply", str(spec))
    assert applied.exit_code == 0, applied.output


def _rows(db) -> list[tuple[str, OutboxState]]:
    with db.read() as s:
        return [(r.kind, r.state) for r in s.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()]


def test_alerts_of_a_check_while_slack_is_away_stay_queued_and_the_worker_sends_them(db, tmp_path):
    _drifting_project(tmp_path, db.url)
    away = f"http://127.0.0.1:{_closed_port()}/api/"
    checked = _run(tmp_path, db.url, away, "check", "default-risk", "--as-of", week_end(4).isoformat())
    assert checked.exit_code == 0, checked.output
    assert "Traceback" not in checked.output
    assert "new alert(s) for Slack" in checked.output and "queued for the worker" in checked.output
    queued = _rows(db)
    assert queued and {state for _, state in queued} == {OutboxState.pending}
    posts = sum(kind == "post" for kind, _ in queued)
    assert posts >= 2  # drift and performance alerts, at least

    with FakeSlack(token=TOKEN) as fake:  # Slack is back: the worker's sender, past the back-off
        settings = Settings(FLYWHEEL_DATABASE_URL=db.url, SLACK_BOT_TOKEN=TOKEN, FLYWHEEL_SLACK_API_URL=fake.api_url,
                            FLYWHEEL_OUTBOX=str(tmp_path / "outbox"), FLYWHEEL_ARTIFACTS=str(tmp_path / "artifacts"))
        later = [utcnow() + timedelta(minutes=10)]
        worker, _ = build_worker(settings, db=db, client=WebClient(token=TOKEN, base_url=fake.api_url),
                                 clock=lambda: later[0])
        for _ in range(20):
            worker.send_outbox()
            later[0] += timedelta(seconds=2)
            if all(state == OutboxState.sent for _, state in _rows(db)):
                break
        assert {state for _, state in _rows(db)} == {OutboxState.sent}
        assert len(fake.calls_to("chat.postMessage")) >= posts
        assert not fake.invalid


def test_alerts_of_a_check_go_to_slack_at_once_when_it_answers(db, tmp_path):
    _drifting_project(tmp_path, db.url)
    with FakeSlack(token=TOKEN) as fake:
        checked = _run(tmp_path, db.url, fake.api_url, "check", "default-risk", "--as-of", week_end(4).isoformat())
        assert checked.exit_code == 0, checked.output
        alerts = int(checked.output.split(" new alert(s) sent to Slack")[0].rsplit("\n", 1)[-1])
        assert alerts >= 2
        assert {state for _, state in _rows(db)} == {OutboxState.sent}
        assert len([c for c in fake.calls_to("chat.postMessage") if "thread_ts" not in c.params]) == alerts
        assert not fake.invalid
        # The spec names no retrain backend: its alerts offer no Retrain button that could only be refused.
        offered = {element.get("action_id") for call in fake.calls_to("chat.postMessage")
                   for block in call.params.get("blocks") or [] for element in block.get("elements", [])}
        assert ActionId.acknowledge in offered and ActionId.retrain not in offered


def test_a_running_worker_is_left_to_send_the_alerts_of_a_check(db, tmp_path):
    _drifting_project(tmp_path, db.url)
    worker = leadership_for(db)
    assert worker.acquire(block=False)
    try:
        with FakeSlack(token=TOKEN) as fake:
            checked = _run(tmp_path, db.url, fake.api_url, "check", "default-risk",
                           "--as-of", week_end(4).isoformat())
            assert checked.exit_code == 0, checked.output
            assert "queued for the worker, which is running and sends them" in checked.output
            assert fake.calls_to("chat.postMessage") == []
    finally:
        worker.release()
    assert {state for _, state in _rows(db)} == {OutboxState.pending}


def test_a_token_slack_refuses_leaves_the_alerts_of_a_check_queued_and_says_so(db, tmp_path):
    _drifting_project(tmp_path, db.url)
    with FakeSlack(token="xoxb-the-real-one") as fake:
        checked = _run(tmp_path, db.url, fake.api_url, "check", "default-risk", "--as-of", week_end(4).isoformat())
        assert fake.calls_to("chat.postMessage") == []
    assert checked.exit_code == 2, checked.output
    assert "Traceback" not in checked.output
    last = checked.output.strip().splitlines()[-1]
    assert last.startswith("Error: Slack refused SLACK_BOT_TOKEN (invalid_auth): ")
    assert last.endswith("new alert(s) stay queued for the worker")
    assert {state for _, state in _rows(db)} == {OutboxState.pending}
