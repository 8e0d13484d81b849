"""The demo's links opened in a real headless Chromium: each persona follows the View details / Model card
button of their message, lands on the page with its charts loaded and its key figures shown, at a laptop's
and a phone's width. Screenshots go to build/test-artifacts/dashboard (or FLYWHEEL_TEST_ARTIFACTS).

Needs Playwright for Python and a Chromium binary (Debian's `chromium`; FLYWHEEL_CHROMIUM names another);
skipped, saying which is missing, without them. `playwright install` is never needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
import uvicorn

from bot.config import Settings
from bot.dashboard.access import Signer
from bot.dashboard.app import build_dashboard
from bot.demo import run_demo
from store import registry
from store.db import Database
from store.models import SignOff
from tests.support.waiting import wait_until

CHROMIUM = os.environ.get("FLYWHEEL_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECRET = "browser-test-secret-0123456789abcdef"
READER = {"business": "U0BIZ001", "ml_engineer": "U0ML0001", "risk_manager": "U0RISK01", "it_ops": "U0OPS001"}
ARTIFACTS = Path(os.environ.get("FLYWHEEL_TEST_ARTIFACTS", Path(__file__).parents[3] / "build" / "test-artifacts"))

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                               "(pip install 'playwright>=1.45'; no `playwright install` needed)")
if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set FLYWHEEL_CHROMIUM)",
                allow_module_level=True)

pytestmark = pytest.mark.charts  # the pages are checked with the charts the demo drew

# What each message's button must lead to: (header words, figures that must be on the page).
EXPECTED = {
    "ml_engineer-performance_alert": ("Performance alert on fraud-detector v1", ["Recall", "below the line"]),
    "ml_engineer-drift_alert": ("Input drift alert on fraud-detector v1", ["card_age_days", "Wasserstein", "drifted"]),
    "business-kpi_alert": ("Business KPIs alert on fraud-detector v1", ["Fraud amount missed", "$"]),
    "ml_engineer-candidate": ("Model card: fraud-detector v2", ["Against v1 on the same labelled window", "Recall"]),
    # Settled once v2 is deployed, the sign-off request keeps its model card button.
    "risk_manager-signoff_request": ("Model card: fraud-detector v2", ["Against v1 on the same labelled window"]),
    "it_ops-deployment": ("fraud-detector", ["In production", "v2", "version deployed"]),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The demo's registry behind the dashboard on a real port; the demo's messages link to it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    out = tmp_path_factory.mktemp("demo") / "flywheel-demo"
    report = run_demo(out, rows_per_week=20_000, public_url=base, log=lambda *_: None)
    settings = Settings(FLYWHEEL_DATABASE_URL=f"sqlite:///{out / 'flywheel.db'}", FLYWHEEL_PUBLIC_URL=base,
                        FLYWHEEL_SECRET_KEY=SECRET, FLYWHEEL_ARTIFACTS=out / "artifacts")
    db = Database(settings.database_url)
    last_check = max(w["as_of"] for w in report.weeks) + timedelta(days=1)  # after the demo's deploy
    server = uvicorn.Server(uvicorn.Config(build_dashboard(settings, db, clock=lambda: last_check,
                                                           charts_dir=out / "charts"), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the dashboard to start", poll=0.01)
    yield out, Signer(settings), last_check
    server.should_exit = True
    thread.join(timeout=10)
    db.dispose()


def _links(out: Path) -> list[tuple[str, str, str]]:
    """(message, persona, page URL) of every View details / Model card button the demo posted."""
    found = []
    for folder in sorted((out / "preview" / "messages").iterdir()):
        message = json.loads((folder / "message.json").read_text())
        _, persona, kind = folder.name.split("-", 2)
        for block in message["blocks"]:
            for element in block.get("elements", []) if block["type"] == "actions" else []:
                if element.get("action_id") in ("flywheel.view_details", "flywheel.model_card"):
                    found.append((f"{persona}-{kind}", persona, element["value"]))
    return found


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as playwright:
        yield playwright


@contextmanager
def _browser(playwright, width: int):
    # A new empty profile per browser: no cookie, cache or state from anything else; removed after.
    with tempfile.TemporaryDirectory(prefix="flywheel-chromium-") as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=FLAGS, headless=True, viewport={"width": width, "height": 900})
        try:
            yield browser
        finally:
            browser.close()


def test_each_persona_follows_their_link_to_a_page_with_its_charts_and_figures(served, chromium):
    out, signer, now = served
    links = _links(out)
    assert {name for name, _, _ in links} == set(EXPECTED), links
    folder = ARTIFACTS / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    for width, device in ((1366, "laptop"), (390, "phone")):
        for name, persona, page_url in links:
            with _browser(chromium, width) as browser:
                page = browser.new_page()
                signed, _ = signer.link(page_url, slack_id=READER[persona], now=now)
                response = page.goto(signed)
                assert response is not None and response.ok, f"{name}: {response and response.status}"
                assert "t=" not in page.url, "the token stays out of the address bar"
                header, figures = EXPECTED[name]
                assert header in page.inner_text("h1"), f"{name}: {page.inner_text('h1')}"
                body = page.inner_text("main").lower()  # labels are upper-cased by the style sheet
                for figure in figures:
                    assert figure.lower() in body, f"{name}: {figure!r} not shown"
                images = page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.complete, e.naturalWidth])")
                assert all(done and w > 0 for _, done, w in images), f"{name}: a chart did not load: {images}"
                charts = len(images) + page.locator("svg.chart").count()
                assert charts > 0 or name.endswith("signoff_request"), f"{name}: no chart"
                wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
                assert not wide, f"{name}: the page scrolls sideways at {width} px"
                page.screenshot(path=str(folder / f"{device}-{name}.png"), full_page=True)


def test_a_browser_without_a_link_is_told_how_to_get_one(served, chromium):
    _, signer, _ = served
    base = signer.public_url
    with _browser(chromium, 1366) as browser:
        page = browser.new_page()
        response = page.goto(f"{base}/models/fraud-detector")
        assert response.status == 401
        assert "/flywheel status fraud-detector" in page.inner_text("main")
        page.screenshot(path=str(ARTIFACTS / "dashboard" / "refused.png"), full_page=True)


def test_the_card_and_project_pages_read_on_a_phone(served, chromium):
    """At 390 px the wide tables (segments, blueprint places) scroll inside their own box: the page itself
    never scrolls sideways and no table is cut off by the page's edge."""
    _, signer, now = served
    base = signer.public_url
    for path in ("/models/fraud-detector/versions/2/card", "/models/fraud-detector/versions/1/card",
                 "/projects/card-fraud"):
        with _browser(chromium, 390) as browser:
            page = browser.new_page()
            response = page.goto(signer.link(base + path, slack_id=READER["risk_manager"], now=now)[0])
            assert response is not None and response.ok, path
            sizes = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert sizes[0] == sizes[1], f"{path}: the page is {sizes[0]} px wide in a {sizes[1]} px screen"
            boxes = page.eval_on_selector_all("table", "ts => ts.map(t => [t.parentElement.className, "
                                              "getComputedStyle(t.parentElement).overflowX, "
                                              "t.parentElement.getBoundingClientRect().right])")
            assert boxes, path
            for parent, overflow, right in boxes:
                assert parent == "scroll" and overflow == "auto" and right <= sizes[1], (path, parent, overflow, right)
            page.screenshot(path=str(ARTIFACTS / "dashboard" / f"phone{path.replace('/', '-')}.png"), full_page=True)


def test_an_evidence_pack_downloaded_from_the_card_page_opens_offline_from_disk(served, chromium, tmp_path):
    """A risk manager downloads v2's evidence pack from its card page, then opens the saved file with no
    network: it shows the card's heading, the comparison with v1, every sign-off with its reason and the
    artifact's SHA-256, and asks for nothing but itself."""
    out, signer, now = served
    db = Database(f"sqlite:///{out / 'flywheel.db'}")
    try:
        with db.read() as s:
            v2 = registry.get_version(session=s, model_key="fraud-detector", number=2)
            sha256, uri = v2.artifact_sha256, v2.artifact_uri
            reasons = [(o.person, o.reason) for o in s.query(SignOff).filter_by(version_id=v2.id).order_by(SignOff.id)]
            names = {i: p.name for i, p in registry.people_by_id(session=s, slack_ids=[i for i, _ in reasons]).items()}
    finally:
        db.dispose()
    assert reasons and all(reason for _, reason in reasons)
    assert sha256 == hashlib.sha256(Path(url2pathname(urlparse(uri).path)).read_bytes()).hexdigest()
    saved = tmp_path / "fraud-detector-v2-evidence.html"
    with _browser(chromium, 1366) as browser:
        page = browser.new_page()
        card = f"{signer.public_url}/models/fraud-detector/versions/2/card"
        assert page.goto(signer.link(card, slack_id=READER["risk_manager"], now=now)[0]).ok
        with page.expect_download() as downloading:
            page.get_by_role("link", name="Download the evidence pack").click()
        download = downloading.value
        assert download.suggested_filename == saved.name
        download.save_as(saved)
    with _browser(chromium, 1366) as browser:
        browser.set_offline(True)
        requested: list[str] = []
        page = browser.new_page()
        page.on("request", lambda r: requested.append(r.url))
        response = page.goto(saved.as_uri())
        assert response is not None and response.ok
        assert page.inner_text("h1") == "Evidence pack: fraud-detector v2"
        comparison = page.inner_text("#comparison ~ p")
        assert comparison.startswith("v2 against v1 on the same labelled window"), comparison
        assert page.locator("#comparison ~ figure svg.chart").first.is_visible()
        signoffs = page.eval_on_selector_all("#signoffs + div table tr", "rows => rows.slice(1).map("
                                             "r => [r.cells[1].innerText, r.cells[4].innerText])")
        assert signoffs == [[names[person], reason] for person, reason in reasons]
        assert sha256 in page.inner_text("#artifact + div")
        page.screenshot(path=str(ARTIFACTS / "dashboard" / "evidence-pack-offline.png"), full_page=True)
    assert requested == [saved.as_uri()]  # styles and charts inline: nothing fetched but the file itself
