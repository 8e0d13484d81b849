"""The fraud story wired to a fake Slack: the app served over real HTTP by uvicorn, a registry on the
test database, six weeks of scored transactions, and helpers that send requests exactly as Slack does."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

import httpx
import uvicorn
from pydantic import SecretStr

from bot.app import build
from bot.config import Settings
from bot.services.operations import Operations
from bot.readiness import Readiness
from bot.web import build_web
from jobs import synthetic, training
from store import registry
from bot.services.specs import apply_spec
from store.db import Database
from jobs.spec import load_spec
from tests.support.slack_fake import FakeSlack, action_body, block_action, command_body, event_body, sign, view_submission
from tests.support.waiting import wait_until

SECRET = "test-signing-secret"
MODEL = "fraud-detector"
ELI, NOOR, RITA, OMAR, DANA = "U0ML0001", "U0ML0002", "U0RISK01", "U0OPS001", "U0BIZ001"
SCENARIO = synthetic.Scenario(start=datetime(2026, 9, 21), weeks=6, rows_per_week=20_000, drift_from_week=5)
NOW = SCENARIO.week_start(SCENARIO.weeks + 1)


def write_fraud_data(folder: Path, scenario: synthetic.Scenario = SCENARIO) -> Path:
    """Reference and six production weeks scored by v1; returns the spec path and leaves v1's artifact."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    spec = folder / "card-fraud.yml"
    spec.write_text(resources.files("bot").joinpath("demo_spec", "card-fraud.yml").read_text())
    features = dict(numeric=list(synthetic.NUMERIC_FEATURES), categorical=list(synthetic.CATEGORICAL_FEATURES))
    v1 = training.train(synthetic.generate_week(scenario, 0), **features, label=synthetic.LABEL,
                        artifacts_dir=folder / "artifacts", name="fraud-detector-v1")
    model = training.load_model(v1.artifact_uri, sha256=v1.artifact_sha256, roots=[folder / "artifacts"])
    training.score(model, synthetic.generate_week(scenario, 0)).to_parquet(folder / "data" / "reference.parquet")
    with sqlite3.connect(folder / "data" / "transactions.db") as connection:
        for week in range(1, scenario.weeks + 1):
            training.score(model, synthetic.generate_week(scenario, week)).to_sql(
                "scored_transactions", connection, if_exists="append", index=False)
    (folder / "v1.json").write_text(json.dumps({"uri": v1.artifact_uri, "sha256": v1.artifact_sha256,
                                                "metrics": v1.metrics}))
    return spec


def register_fraud_model(db: Database, folder: Path, scenario: synthetic.Scenario = SCENARIO) -> None:
    v1 = json.loads((folder / "v1.json").read_text())
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(folder / "card-fraud.yml"))
        version = registry.register_version(session=s, model_key=MODEL, created_by=ELI, artifact_uri=v1["uri"],
                                            artifact_sha256=v1["sha256"], metrics=v1["metrics"], train_start=scenario.week_start(0),
                                            train_end=scenario.week_start(1), now=scenario.week_start(1))
        registry.adopt_as_production(session=s, version=version, actor=ELI, now=scenario.week_start(1))


@dataclass
class Sent:
    status: int
    body: dict | str
    response_url: str


class World:
    def __init__(self, db: Database, folder: Path, fake: FakeSlack, *, queued: bool = False, **settings: object):
        self.db, self.folder, self.fake = db, folder, fake
        settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_PUBLIC_URL="https://flywheel.example.com",
                            FLYWHEEL_ARTIFACTS=folder / "artifacts", SLACK_BOT_TOKEN=SecretStr(fake.token),
                            SLACK_SIGNING_SECRET=SecretStr(SECRET), FLYWHEEL_SLACK_API_URL=fake.api_url, **settings)
        # queued: messages go through the outbox table, as `flywheel serve` sends them with a worker
        self.app, self.ops = build(settings, db=db, clock=lambda: NOW, inline_work=True, queued=queued)
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(build_web(self.app, readiness=Readiness(db)), log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        wait_until(lambda: self._server.started, 30, "the app's HTTP server to start", poll=0.01)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    @property
    def operations(self) -> Operations:
        return self.ops

    def close(self) -> None:
        self.ops.join()
        self.http.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)

    # -- sending as Slack does ---------------------------------------------------------------

    def send(self, body: bytes, content_type: str, *, headers: dict | None = None,
             timestamp: int | None = None, secret: str = SECRET) -> httpx.Response:
        signed = sign(body, secret, timestamp)
        return self.http.post("/slack/events", content=body,
                              headers={"Content-Type": content_type, **signed, **(headers or {})})

    def command(self, text: str, user: str, *, command: str = "/flywheel", channel: str = "C0ML") -> Sent:
        response_url = self.fake.response_url()
        response = self.send(command_body(command, text, user_id=user, channel_id=channel,
                                          response_url=response_url), "application/x-www-form-urlencoded")
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") \
            else response.text
        return Sent(response.status_code, body, response_url)

    def click(self, action_id: str, message: tuple[str, str], user: str, *, value: str | None = None,
              headers: dict | None = None, action_ts: str | None = None) -> Sent:
        channel, ts = message
        posted = self.fake.messages[(channel, ts)]
        if value is None:
            value = next(e.get("value") for b in posted["blocks"] if b["type"] == "actions"
                         for e in b["elements"] if e.get("action_id") == action_id)
        response_url = self.fake.response_url()
        payload = block_action(action_id, value, user_id=user, channel_id=channel, message_ts=ts,
                               response_url=response_url, message_blocks=posted["blocks"], action_ts=action_ts)
        response = self.send(action_body(payload), "application/x-www-form-urlencoded", headers=headers)
        return Sent(response.status_code, response.text, response_url)

    def click_private(self, action_id: str, answer: dict, user: str, *, channel: str = "C0ML") -> Sent:
        """A click on a button in a private (ephemeral) answer the app sent through a response URL."""
        value = next(e.get("value") for b in answer["blocks"] if b["type"] == "actions"
                     for e in b["elements"] if e.get("action_id") == action_id)
        response_url = self.fake.response_url()
        payload = block_action(action_id, value, user_id=user, channel_id=channel, message_ts=f"{time.time():.6f}",
                               response_url=response_url, message_blocks=answer["blocks"], ephemeral=True)
        response = self.send(action_body(payload), "application/x-www-form-urlencoded")
        return Sent(response.status_code, response.text, response_url)

    def submit(self, callback_id: str, values: dict, user: str, private_metadata: str) -> httpx.Response:
        payload = view_submission(callback_id, values, user_id=user, private_metadata=private_metadata)
        return self.send(action_body(payload), "application/x-www-form-urlencoded")

    def event(self, event: dict, *, headers: dict | None = None) -> httpx.Response:
        return self.send(event_body(event), "application/json", headers=headers)

    # -- reading what Slack received -----------------------------------------------------------

    def posted(self, channel: str, header_starts: str) -> tuple[str, str]:
        """The newest top-level message in a channel whose header starts with the given words."""
        for (ch, ts), message in sorted(self.fake.messages.items(), key=lambda kv: float(kv[0][1]), reverse=True):
            header = next((b["text"]["text"] for b in message.get("blocks") or [] if b["type"] == "header"), "")
            if ch == channel and header.startswith(header_starts) and not message.get("thread_ts"):
                return ch, ts
        raise AssertionError(f"no message in {channel} starting {header_starts!r}; have "
                             f"{[(c, m.get('text', '')[:60]) for (c, _), m in self.fake.messages.items()]}")

    def responses(self, url: str) -> list[dict]:
        self.ops.join()
        return self.fake.responses.get(url, [])


def form(fields: dict) -> bytes:
    return urlencode(fields).encode()
