"""`GET /metrics` after a story through the fake Slack: signed requests, two check cycles, a retrain, a rate
limit, messages waiting in the outbox; scraped over HTTP and read with prometheus_client's own parser. The
counters are the process's (other tests in it count too), so each is compared before and after the story.
The worker's metrics come from a real `flywheel worker --metrics-port`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from slack_bolt import App
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.cli.common import EXPECTED_EXIT
from bot.config import Settings
from bot.ids import ActionId
from bot.metrics import registry_for
from bot.readiness import Readiness
from bot.slack_delivery import make_client
from bot.web import build_web
from jobs.monitor import PERSONA_FOR, check_model
from store import heartbeat, outbox
from store.clock import utcnow
from store.db import Database
from store.models import AuditEvent, CheckKind, OutboxMessage, OutboxState, Verdict
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import ELI, MODEL, NOW
from tests.support.waiting import wait_until
from tests.support.workers import stop

ROOT = Path(__file__).resolve().parents[2]


class Scrape:
    """One scrape of /metrics, parsed."""

    def __init__(self, text: str):
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include these (0 when there is none)."""
        return sum(s.value for s in self.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    def names(self) -> set[str]:
        """Every series name /metrics declares, sampled yet or not (a counter is declared as NAME_total)."""
        declared = {f"{f.name}_total" if f.type == "counter" else f.name for f in self.families.values()}
        return declared | {s.name for s in self.samples}


def scrape(url: str) -> Scrape:
    answer = httpx.get(f"{url}/metrics", timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return Scrape(answer.text)


def _api_calls(fake, since: int) -> Counter:
    return Counter(c.method for c in fake.calls[since:] if c.method not in ("response", "upload"))


def _frames(kinds: set[CheckKind]) -> int:
    """Windows a check of these kinds reads (jobs/monitor.py evaluate_model)."""
    return ((CheckKind.drift in kinds or CheckKind.data_quality in kinds) + (CheckKind.kpi in kinds)
            + (CheckKind.performance in kinds) + (CheckKind.data_quality in kinds))


def test_a_story_through_slack_is_counted_on_metrics(world):
    before, calls_before = scrape(world.url), len(world.fake.calls)

    # The weekly check: the drift alert goes to the ML engineers.
    first = check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW)
    world.ops.notifier.on_checks(first)
    alert = world.posted("C0ML", f"Input drift on {MODEL} v1")

    # Two commands and a click on Retrain, whose thread reply Slack first refuses with a 429.
    for _ in range(2):
        assert world.command(f"status {MODEL}", ELI).status == 200
    world.fake.fail("chat.postMessage", status=429, retry_after=0)
    assert world.click(ActionId.retrain, alert, ELI).status == 200
    world.ops.join()
    world.posted("C0ML", f"{MODEL} v2 is ready for review")
    # Eli opens the App Home: the listener publishes it with the client Bolt made for the request.
    assert world.event({"type": "app_home_opened", "user": ELI, "channel": "D0ELI", "tab": "home",
                        "event_ts": f"{time.time():.6f}"}).status_code == 200
    world.ops.join()
    assert ELI in world.fake.home

    # The next cycle finds the same incident: the alert is updated, not opened again.
    second = check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW + timedelta(hours=1))

    # Two messages waiting for the worker, the older for three minutes; the worker's heartbeat a minute old.
    with world.db.session() as s:
        heartbeat.beat(session=s, worker="host:1", started_at=utcnow(), now=utcnow() - timedelta(minutes=1))
        for minutes in (3, 1):
            outbox.enqueue(session=s, kind="post", channel="C0ML", payload={"text": "x"},
                           now=utcnow() - timedelta(minutes=minutes))
    after = scrape(world.url)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    results = [r for cycle in (first, second) for r in cycle.results]
    ran = Counter((r.kind.value, r.outcome.verdict.value) for r in results)
    assert ran[("drift", "breach")] == 2
    for (kind, verdict), count in ran.items():
        assert delta("flywheel_checks_total", kind=kind, verdict=verdict) == count, (kind, verdict)
    assert delta("flywheel_checks_total") == len(results)
    for kind in {r.kind for r in results}:
        assert delta("flywheel_check_duration_seconds_count", kind=kind.value) == 2
        assert delta("flywheel_check_duration_seconds_sum", kind=kind.value) > 0
    assert delta("flywheel_check_windows_read_total") == 2 * _frames({r.kind for r in first.results})
    assert delta("flywheel_check_rows_scanned_total") >= 2 * 20_000  # a week of transactions, at least, each cycle

    opened = Counter(PERSONA_FOR[r.kind] for r in first.results if r.alert_is_new)
    assert opened["ml_engineer"] >= 1
    for persona, count in opened.items():
        assert delta("flywheel_alerts_total", persona=persona, event="opened") == count
        assert delta("flywheel_alerts_total", persona=persona, event="updated") == \
            sum(1 for r in second.results if r.outcome.verdict == Verdict.breach and PERSONA_FOR[r.kind] == persona)
    assert delta("flywheel_alerts_total", event="opened") == sum(opened.values())
    assert delta("flywheel_alerts_total", event="resolved") == sum(len(r.resolved_alerts) for r in results)

    assert delta("flywheel_slack_ack_seconds_count", request="command") == 2
    assert delta("flywheel_slack_ack_seconds_count", request="action") == 1
    assert delta("flywheel_slack_ack_seconds_count", request="event") == 1
    assert 0 < delta("flywheel_slack_ack_seconds_sum") < 3 * 3  # each well inside Slack's three seconds
    assert delta("flywheel_slack_ack_seconds_bucket", request="command", le="+Inf") == 2

    # Every Web API call the fake answered is counted once by method; the refused one was retried inside it.
    answered = _api_calls(world.fake, calls_before)
    assert answered["chat.postMessage"] >= 2 and answered["views.publish"] == 1
    for method, count in answered.items():
        retried = 1 if method == "chat.postMessage" else 0
        assert delta("flywheel_slack_api_calls_total", method=method, outcome="ok") == count - retried, method
    assert delta("flywheel_slack_api_calls_total") == sum(answered.values()) - 1
    assert delta("flywheel_slack_rate_limit_waits_total", where="client") == 1
    assert 0 <= delta("flywheel_slack_rate_limit_wait_seconds_total", where="client") < 1

    assert delta("flywheel_retrain_outcomes_total", outcome="done") == 1
    assert after.value("flywheel_work_items", kind="retrain", state="done") == 1
    with world.db.read() as s:
        pending = s.execute(select(func.count(OutboxMessage.id))
                            .where(OutboxMessage.state == OutboxState.pending)).scalar_one()
        events = s.execute(select(func.count(AuditEvent.id))).scalar_one()
    assert pending >= 2 and after.value("flywheel_outbox_pending") == pending
    assert 180 <= after.value("flywheel_outbox_oldest_pending_age_seconds") < 240
    assert events > 0 and after.value("flywheel_audit_chain_length") == events
    assert after.value("flywheel_database_up") == 1
    assert 60 <= after.value("flywheel_worker_heartbeat_age_seconds") < 90
    assert after.value("flywheel_worker_leader") == 0  # the app's own: it leads nothing

    # Every metric the shipped alert rules and dashboard use is one /metrics shows.
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-rules.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert {rule["alert"] for group in rules["groups"] for rule in group["rules"]} >= {
        "FlywheelOutboxStuck", "FlywheelNoWorkerLeader", "FlywheelChecksFailing"}
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\bflywheel_[a-z_]+", expr)}
    assert len(used) >= 15 and used <= after.names(), used - after.names()


def test_a_database_that_does_not_answer_shows_as_down_and_the_rest_still_scrapes():
    gone = Database(f"postgresql+psycopg://flywheel@127.0.0.1:{_free_port()}/nowhere")
    bolt = App(signing_secret="test-signing-secret", token="xoxb-test", token_verification_enabled=False)
    try:
        answer = TestClient(build_web(bolt, readiness=Readiness(gone))).get("/metrics")
    finally:
        gone.dispose()
    assert answer.status_code == 200
    found = Scrape(answer.text)
    assert found.value("flywheel_database_up") == 0
    assert not {"flywheel_outbox_pending", "flywheel_audit_chain_length"} & found.names()
    assert {"flywheel_checks", "flywheel_slack_ack_seconds", "flywheel_worker_leader"} <= set(found.families)


def _worker_env(database_url: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FLYWHEEL_", "PROMETHEUS_"))}
    env.update(FLYWHEEL_DATABASE_URL=database_url, FLYWHEEL_ARTIFACTS=str(folder / "artifacts"),
               FLYWHEEL_OUTBOX=str(folder / "outbox"), FLYWHEEL_WORKER_NICE="0", PYTHONPATH=str(ROOT))
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_worker_serves_its_leadership_and_heartbeat_on_its_metrics_port(db, tmp_path):
    port = _free_port()
    log = tmp_path / "worker.out"
    worker = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", "--metrics-port", str(port)], cwd=ROOT,
                              env=_worker_env(db.url, tmp_path), stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        def leading() -> Scrape | None:
            assert worker.poll() is None, log.read_text()
            try:
                found = scrape(f"http://127.0.0.1:{port}")
            except httpx.HTTPError:
                return None
            return found if found.value("flywheel_worker_last_heartbeat_timestamp_seconds") else None

        found = wait_until(leading, 120, "the worker to lead and beat", poll=0.2, detail=lambda: log.read_text())
        assert found.value("flywheel_worker_leader") == 1
        assert abs(found.value("flywheel_worker_last_heartbeat_timestamp_seconds") - time.time()) < 30
        assert 0 <= found.value("flywheel_worker_heartbeat_age_seconds") < 30  # read from the database
        assert found.value("flywheel_database_up") == 1
        assert f"metrics on http://127.0.0.1:{port}/metrics" in log.read_text()
    finally:
        stop(worker)


def test_a_taken_metrics_port_stops_the_worker_with_one_line_before_it_leads(db, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "bot.cli", "worker", "--metrics-port", str(port)], cwd=ROOT,
                              env=_worker_env(db.url, tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == EXPECTED_EXIT, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines == [f"Error: can't serve metrics on 127.0.0.1:{port}: Address already in use; stop what is "
                     "using it or pick another --metrics-port"], lines
    with db.session() as s:  # it stopped before leading: no heartbeat was written
        assert heartbeat.latest(session=s) is None


def test_slack_calls_are_counted_by_outcome_when_slack_refuses_or_is_away():
    def calls() -> Scrape:  # this process's own, as /metrics would show them
        return Scrape(generate_latest(registry_for(None)).decode())

    before = calls()
    with FakeSlack() as fake:
        client = make_client(Settings(SLACK_BOT_TOKEN=SecretStr(fake.token), FLYWHEEL_SLACK_API_URL=fake.api_url))
        fake.fail("chat.postMessage", error="channel_not_found")
        with pytest.raises(SlackApiError):
            client.chat_postMessage(channel="C0GONE", text="x")
        client.chat_postMessage(channel="C0ML", text="y")
    away = make_client(Settings(SLACK_BOT_TOKEN=SecretStr("xoxb-test"),
                                FLYWHEEL_SLACK_API_URL=f"http://127.0.0.1:{_free_port()}/api/"), timeout=2)
    with pytest.raises(OSError):
        away.chat_update(channel="C0ML", ts="1.0", text="z")
    after = calls()

    def delta(**labels: str) -> float:
        return after.value("flywheel_slack_api_calls_total", **labels) - \
            before.value("flywheel_slack_api_calls_total", **labels)

    assert delta(method="chat.postMessage", outcome="error") == 1
    assert delta(method="chat.postMessage", outcome="ok") == 1
    assert delta(method="chat.update", outcome="unreachable") == 1
