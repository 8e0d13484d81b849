"""Redraw the README's pictures: the demo's message preview and the dashboard page an ML engineer's
"View details" opens, as Chromium shows them.

    .venv/bin/python scripts/screenshots.py            # writes docs/img/preview.png, docs/img/dashboard-model.png
    .venv/bin/python scripts/screenshots.py --out DIR

Runs the demo offline into a temporary folder (20,000 rows a week), serves its registry behind the
dashboard on 127.0.0.1, and photographs both with Debian's Chromium (`apt-get install chromium`) driven by
Playwright (the `test` extra). Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SECRET = "screenshots-only-secret-0123456789abcdef"  # signs links to a throwaway registry, never kept
ML_ENGINEER = "U0ML0001"  # the demo's Eli


def draw(out: Path, *, chromium: str = CHROMIUM) -> list[Path]:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from bot.config import Settings
    from bot.dashboard.access import Signer
    from bot.dashboard.app import build_dashboard
    from bot.demo import run_demo
    from store.db import Database

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flywheel-screenshots-") as work:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        demo = Path(work) / "flywheel-demo"
        report = run_demo(demo, rows_per_week=20_000, public_url=base, log=lambda *_: None)
        settings = Settings(FLYWHEEL_DATABASE_URL=f"sqlite:///{demo / 'flywheel.db'}", FLYWHEEL_PUBLIC_URL=base,
                            FLYWHEEL_SECRET_KEY=SECRET, FLYWHEEL_ARTIFACTS=demo / "artifacts")
        db = Database(settings.database_url)
        after_deploy = max(w["as_of"] for w in report.weeks) + timedelta(days=1)
        server = uvicorn.Server(uvicorn.Config(build_dashboard(settings, db, clock=lambda: after_deploy,
                                                               charts_dir=demo / "charts"), log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.05)
            link, _ = Signer(settings).link(f"{base}/models/fraud-detector", slack_id=ML_ENGINEER, now=after_deploy)
            shots = [(report.preview.as_uri(), out / "preview.png"), (link, out / "dashboard-model.png")]
            with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="flywheel-chromium-") as profile:
                browser = playwright.chromium.launch_persistent_context(
                    profile, executable_path=chromium, args=FLAGS, headless=True,
                    viewport={"width": 1280, "height": 900})
                try:
                    for url, path in shots:
                        page = browser.new_page()
                        response = page.goto(url)
                        if response is not None and not response.ok:
                            raise SystemExit(f"{url.split('?')[0]} answered {response.status}")
                        page.wait_for_load_state("networkidle")
                        page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": 1280, "height": 1400},
                                        full_page=True)
                finally:
                    browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            db.dispose()
    return [path for _, path in shots]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="where the PNGs go")
    parser.add_argument("--chromium", default=CHROMIUM, help="the Chromium binary")
    args = parser.parse_args(argv)
    if not Path(args.chromium).is_file():
        raise SystemExit(f"no Chromium at {args.chromium}: apt-get install chromium, or pass --chromium PATH")
    for path in draw(args.out, chromium=args.chromium):
        print(path)


if __name__ == "__main__":
    main()
