"""The fraud model with its retrain or deploy section pointed at a local receiver, a worker built as
`flywheel worker` builds it (messages to the outbox folder), and the web process's API on uvicorn."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import SecretStr
from slack_bolt import App

from bot.api import build_api
from bot.app import build_worker, make_operations
from bot.config import Settings
from bot.services.common import Actor
from bot.web import build_web
from store import registry
from store.db import Database
from tests.support.receiver import AsgiServer
from tests.support.slack_world import MODEL, NOW

API_TOKEN = "api-token-for-trainers-0123"
WEBHOOK_SECRET = "whsec-backends-0123456789"


def set_spec(db: Database, **sections: dict) -> None:
    """Replace sections of the model's stored spec (as `flywheel apply` would after an edit)."""
    with db.session() as s:
        model = registry.get_model(session=s, key=MODEL)
        model.spec = {**model.spec, **sections}


def actor(db: Database, slack_id: str) -> Actor:
    with db.session() as s:
        person = registry.get_person(session=s, slack_id=slack_id)
        s.expunge(person)
    return Actor(slack_id, person)


def worker_settings(db: Database, folder: Path, outbox: Path, public_url: str, **extra) -> Settings:
    return Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_PUBLIC_URL=public_url,
                    FLYWHEEL_ARTIFACTS=folder / "artifacts", FLYWHEEL_OUTBOX=outbox,
                    FLYWHEEL_WEBHOOK_SECRET=SecretStr(WEBHOOK_SECRET), FLYWHEEL_BACKEND_BACKOFF=0, **extra)


def make_worker(db: Database, folder: Path, outbox: Path, *, public_url: str = "https://fw.example.com",
                clock=lambda: NOW, **extra):
    return build_worker(worker_settings(db, folder, outbox, public_url, **extra), db=db, clock=clock)


def web_api(db: Database, folder: Path) -> AsgiServer:
    """The web process with the trainers' API mounted under /api, as `flywheel serve` builds it, sharing
    the worker's FLYWHEEL_ARTIFACTS (folder / "artifacts")."""
    bolt = App(signing_secret="test-signing-secret", token="xoxb-test", token_verification_enabled=False)
    settings = Settings(FLYWHEEL_API_TOKEN=SecretStr(API_TOKEN), FLYWHEEL_ARTIFACTS=folder / "artifacts")
    return AsgiServer(build_web(bolt, api=build_api(make_operations(settings, db, notifier=None))))


def outbox_messages(outbox: Path) -> list[dict]:
    """What the worker posted, oldest first, each with its persona and kind from the folder name."""
    found = []
    for path in sorted((outbox / "messages").glob("*/message.json")):
        _, persona, kind = path.parent.name.split("-", 2)
        found.append({"persona": persona, "kind": kind, **json.loads(path.read_text())})
    return found
