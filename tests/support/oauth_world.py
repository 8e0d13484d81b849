"""The app in OAuth mode (installed per workspace) over real HTTP against the fake Slack, as `flywheel serve`
runs it: installs go through /slack/install and /slack/oauth_redirect and the fake's oauth.v2.access."""

from __future__ import annotations

import socket
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from pydantic import SecretStr

from bot.app import build
from bot.config import Settings
from bot.web import build_web
from store.installations import InstallationStore
from tests.support.slack_fake import FakeSlack, sign
from tests.support.waiting import wait_until

SECRET = "test-signing-secret"
KEY = "a-test-secret-key-long-enough-for-flywheel-0123456789"
STATE_COOKIE = "slack-app-oauth-state"


def oauth_settings(db, fake: FakeSlack, **more: object) -> Settings:
    return Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_PUBLIC_URL="https://flywheel.example.com",
                    SLACK_SIGNING_SECRET=SecretStr(SECRET), FLYWHEEL_SLACK_API_URL=fake.api_url,
                    FLYWHEEL_SLACK_CLIENT_ID=fake.client_id, FLYWHEEL_SLACK_CLIENT_SECRET=SecretStr(fake.client_secret),
                    FLYWHEEL_SECRET_KEY=SecretStr(KEY), **more)


class Served:
    """The app in OAuth mode over real HTTP, as `flywheel serve` runs it."""

    def __init__(self, db, fake: FakeSlack):
        self.db, self.fake = db, fake
        self.settings = oauth_settings(db, fake)
        self.app, self.ops = build(self.settings, db=db, inline_work=True, queued=True)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._server = uvicorn.Server(uvicorn.Config(build_web(self.app), log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        wait_until(lambda: self._server.started, 30, "the app's HTTP server to start", poll=0.01)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=30)

    @property
    def store(self) -> InstallationStore:
        return self.app.installation_store

    def close(self) -> None:
        self.ops.join()
        self.http.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def start_install(self) -> tuple[str, str]:
        """GET /slack/install: the state in Slack's authorize URL, and the browser cookie that carries it."""
        started = self.http.get("/slack/install")
        assert started.status_code == 302, started.text
        query = parse_qs(urlsplit(started.headers["location"]).query)
        return query["state"][0], started.cookies[STATE_COOKIE]

    def finish_install(self, team_id: str, state: str, cookie: str) -> httpx.Response:
        code = self.fake.authorize_code(team_id, team_name=f"Workspace {team_id}")
        return self.http.get("/slack/oauth_redirect", params={"code": code, "state": state},
                             headers={"Cookie": f"{STATE_COOKIE}={cookie}"})

    def install(self, team_id: str) -> None:
        finished = self.finish_install(team_id, *self.start_install())
        assert finished.status_code == 200, finished.text

    def signed(self, body: bytes, content_type: str) -> httpx.Response:
        return self.http.post("/slack/events", content=body,
                              headers={"Content-Type": content_type, **sign(body, SECRET)})
