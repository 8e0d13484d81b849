"""`flywheel link` and `flywheel dashboard`: a signed link opens its page for that person (and only what their
roles allow), and the dashboard serves on its own, without any Slack setting."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import httpx
from starlette.testclient import TestClient

from bot.config import Settings
from bot.dashboard.app import build_dashboard
from tests.bot.cli.conftest import LENA, SECRET_KEY
from tests.support.slack_world import MODEL, RITA


def _dashboard(cli) -> TestClient:
    settings = Settings(FLYWHEEL_DATABASE_URL=cli.db.url, FLYWHEEL_SECRET_KEY=SECRET_KEY,
                        FLYWHEEL_PUBLIC_URL="http://dashboard.test", FLYWHEEL_ARTIFACTS=cli.folder / "artifacts")
    return TestClient(build_dashboard(settings, cli.db), base_url="http://dashboard.test")


def test_a_link_opens_its_page_for_that_person_and_no_further(cli):
    made = cli("link", "model:fraud-detector", "--as", "Rita")
    assert made.exit_code == 0, made.output
    url = made.stdout.strip()
    assert url.startswith(f"http://dashboard.test/models/{MODEL}?t={RITA}.")
    assert f"Opens {MODEL} for Rita until " in made.stderr
    with _dashboard(cli) as client:
        page = client.get(url)
        assert page.status_code == 200 and MODEL in page.text and "Rita" in page.text
        card = cli("link", "card:fraud-detector:v1", "--as", RITA).stdout.strip()
        assert card.startswith(f"http://dashboard.test/models/{MODEL}/versions/1/card?t=")
        assert client.get(card).status_code == 200
    for page in ("project:card-fraud", "model:fraud-detector", "card:fraud-detector:1"):
        with _dashboard(cli) as stranger:  # Lena holds roles on the loans project only
            refused = stranger.get(cli("link", page, "--as", LENA).stdout.strip())
            assert refused.status_code == 403, page
    with _dashboard(cli) as anyone:
        assert anyone.get(url.replace("/models/fraud-detector", "/projects/card-fraud")).status_code == 401


def test_link_refuses_an_unknown_person_or_page_and_needs_the_secret_key(cli):
    nobody = cli("link", "model:fraud-detector", "--as", "U0NOBODY")
    assert nobody.exit_code == 2
    assert "U0NOBODY is not a Flywheel user: add them to a project spec's people" in nobody.output
    bad = cli("link", "card:fraud-detector:two", "--as", RITA)
    assert bad.exit_code == 2 and "is not a model card: use card:MODEL:VERSION" in bad.output
    elsewhere = cli("link", "https://evil.example/models/x", "--as", RITA)
    assert elsewhere.exit_code == 2 and "is not a page of this Flywheel (http://dashboard.test)" in elsewhere.output
    keyless = cli("link", "model:fraud-detector", "--as", RITA, FLYWHEEL_SECRET_KEY="")
    assert keyless.exit_code == 2 and "FLYWHEEL_SECRET_KEY is not set" in keyless.output


def test_flywheel_dashboard_serves_alone_without_slack_settings(cli, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FLYWHEEL_"))}
    env.update(FLYWHEEL_DATABASE_URL=cli.db.url, FLYWHEEL_SECRET_KEY=SECRET_KEY,
               FLYWHEEL_ARTIFACTS=str(cli.folder / "artifacts"), FLYWHEEL_OUTBOX=str(tmp_path / "outbox"))
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "dashboard", "--port", "0"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 60)
        assert ready, "the dashboard printed no address within 60 s"
        line = server.stdout.readline()
        assert line.startswith("Flywheel dashboard listening on http://127.0.0.1:"), line + server.stderr.read()
        address = line.split()[4].rstrip("/")
        url = cli("link", "model:fraud-detector", "--as", RITA, FLYWHEEL_PUBLIC_URL=address).stdout.strip()
        for _ in range(50):  # uvicorn accepts a moment after the socket is bound
            try:
                page = httpx.get(url, follow_redirects=True, timeout=10)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert page.status_code == 200 and MODEL in page.text
        assert httpx.get(f"{address}/slack/events").status_code == 404  # the dashboard alone: no Slack endpoint
    finally:
        server.terminate()
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn stops, then re-raises the signal
