"""`flywheel evidence`: one version's evidence pack for a reviewer, on the house-price regressor (not the
demo's model): retrained, signed with a reason, deployed, then packed as a self-contained HTML file and its
JSON, checked against the registry, the artifact's bytes and a real Chromium that may fetch nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from jobs import explain
from store import registry
from store.models import AuditEvent, Decision
from tests.bot.cli.conftest import Cli
from tests.support.backend_world import actor, make_worker
from tests.support.task_worlds import (
    ELI,
    NOOR,
    NOW,
    OMAR,
    PRICES,
    RITA,
    register_first_versions,
    write_task_project,
)

CHROMIUM = os.environ.get("FLYWHEEL_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def deployed_v2(db, tmp_path):
    folder = tmp_path / "homes"
    write_task_project(folder)
    register_first_versions(db, folder)
    worker, ops = make_worker(db, folder, tmp_path / "outbox", clock=lambda: NOW)
    ops.retraining.request_retrain(actor(db, ELI), PRICES, reason="prices moved")
    worker.drain_work()
    ops.releases.submit(actor(db, ELI), PRICES, 2)
    ops.releases.sign(actor(db, NOOR), PRICES, 2, Decision.approve, "errors halved on the holdout <!channel>")
    ops.releases.deploy(actor(db, ELI), PRICES, 2)
    ops.join()
    return Cli(db, folder, tmp_path)


class _Resources(HTMLParser):
    """Every address the page would fetch by itself (links a reader clicks are not fetched)."""

    def __init__(self):
        super().__init__()
        self.fetched: list[str] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag in ("img", "script", "iframe", "source", "video", "audio") and found.get("src"):
            self.fetched.append(found["src"])
        if tag == "link":
            self.fetched.append(found.get("href") or "")


def test_the_pack_holds_the_card_comparison_importances_signoffs_and_audit_records_of_the_version(
        deployed_v2, db, tmp_path):
    out = tmp_path / "pack"

    result = deployed_v2("evidence", PRICES, "v2", "--out", str(out), "--as", RITA)

    assert result.exit_code == 0, result.output
    html = (out / f"{PRICES}-v2-evidence.html").read_text()
    pack = json.loads((out / f"{PRICES}-v2-evidence.json").read_text())
    with db.session() as s:
        v2 = registry.get_version(session=s, model_key=PRICES, number=2)
        uri, train_end = v2.artifact_uri, v2.train_end
        events = [(e.seq, e.action, e.hash) for e in s.query(AuditEvent).filter_by(subject=f"model:{PRICES}/v2")
                  .order_by(AuditEvent.seq) if e.action != "evidence.packed"]  # the pack's own record comes after
        stored = registry.latest_evaluation(session=s, version=v2).importances
    artifact = Path(url2pathname(urlparse(uri).path)).read_bytes()
    assert pack["artifact_sha256"] == hashlib.sha256(artifact).hexdigest()
    assert pack["artifact_sha256"] in html
    assert [(r["seq"], r["action"], r["hash"]) for r in pack["records"]] == events
    assert [a for _, a, _ in events][-1] == "version.deployed" and "records_check" in pack
    assert pack["records_check"]["broken_at"] is None
    assert [i["feature"] for i in pack["card"]["importances"]] == [i.feature for i in explain.ranked(stored)]
    assert pack["card"]["importances"][0]["feature"] == "sqft"
    assert pack["card"]["version"]["train_end"].startswith(str(train_end.date()))
    assert [(s["name"], s["reason"]) for s in pack["card"]["signoffs"]] == [
        ("Noor", "errors halved on the holdout <!channel>")]
    assert "errors halved on the holdout &lt;!channel&gt;" in html  # escaped, never markup
    assert "What the model relies on" in html and "sqft" in html
    assert "Nothing was in production to compare v2 with" in html  # its first production version
    page = _Resources()
    page.feed(html)
    assert page.fetched == []  # styles and charts inline: it opens from a disk
    with db.session() as s:
        packed = s.query(AuditEvent).filter_by(action="evidence.packed").one()
        assert (packed.actor, packed.subject) == (RITA, f"model:{PRICES}/v2")


@pytest.mark.parametrize(("policy", "said"), [
    ("warn", "deploy policy: warn (deploys go ahead, missing sign-offs are reported)"),
    ("block", "deploy policy: block (no deploy until every sign-off is in)")])
def test_the_pack_says_the_deploy_policy_in_force(deployed_v2, db, tmp_path, policy, said):
    with db.session() as s:
        registry.get_model(session=s, key=PRICES).project.deploy_policy = policy
    out = tmp_path / "pack"

    assert deployed_v2("evidence", PRICES, "v2", "--out", str(out), "--as", RITA).exit_code == 0

    html = (out / f"{PRICES}-v2-evidence.html").read_text()
    assert f'<span id="deploy-policy">{said}</span>' in html
    assert json.loads((out / f"{PRICES}-v2-evidence.json").read_text())["deploy_policy"] == policy


def test_someone_without_the_audit_trail_gets_no_pack_and_no_file(deployed_v2, tmp_path):
    out = tmp_path / "pack"
    refused = deployed_v2("evidence", PRICES, "v2", "--out", str(out), "--as", "U0NOBODY")
    assert refused.exit_code == 2 and "not a Flywheel user" in refused.output
    typo = deployed_v2("evidence", PRICES, "second", "--out", str(out), "--as", OMAR)
    assert typo.exit_code == 2 and "'second' is not a version" in typo.output
    assert not list(out.glob("*.html"))


@pytest.mark.skipif(not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()), reason=f"no Chromium at {CHROMIUM}")
def test_the_pack_opens_in_a_browser_from_disk_on_a_phone(deployed_v2, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    out = tmp_path / "pack"
    assert deployed_v2("evidence", PRICES, "2", "--out", str(out), "--as", OMAR).exit_code == 0
    path = out / f"{PRICES}-v2-evidence.html"
    with sync_api.sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, viewport={"width": 390, "height": 900},
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            requested: list[str] = []
            page = browser.new_page()
            page.on("request", lambda r: requested.append(r.url))
            assert page.goto(path.as_uri()) is not None
            assert page.inner_text("h1") == f"Evidence pack: {PRICES} v2"
            assert page.locator("#explainability + p + figure svg.chart").count() == 1  # drawn inline
            assert "version deployed" in page.inner_text("main").lower()
            assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
            assert requested == [path.as_uri()]  # nothing else fetched
            page.screenshot(path=str(tmp_path / "pack.png"), full_page=True)
        finally:
            browser.close()


def test_the_card_page_offers_the_pack_as_a_download(deployed_v2, db):
    import warnings

    from pydantic import SecretStr

    from bot.config import Settings
    from bot.dashboard.access import Signer
    from bot.dashboard.app import build_dashboard
    with warnings.catch_warnings():  # starlette nags about its httpx dependency; not ours to fix
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    base = "https://flywheel.example.com"
    settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_PUBLIC_URL=base,
                        FLYWHEEL_ARTIFACTS=deployed_v2.folder / "artifacts",
                        FLYWHEEL_SECRET_KEY=SecretStr("a-dashboard-secret-of-32-chars-or-more"))
    browser = TestClient(build_dashboard(settings, db, clock=lambda: NOW), base_url=base)
    card = browser.get(Signer(settings).link(f"{base}/models/{PRICES}/versions/2/card", slack_id=RITA, now=NOW)[0])
    assert card.status_code == 200 and f"/models/{PRICES}/versions/2/evidence.html" in card.text
    download = browser.get(f"/models/{PRICES}/versions/2/evidence.html")  # the session cookie of the link
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="{PRICES}-v2-evidence.html"'
    assert "<h1>Evidence pack: house-prices v2</h1>" in download.text
