"""The model card of a second project (house prices, a regressor): what the spec says it is for, its
performance by segment as the production checks measured it, and the sign-offs with their reasons."""

from __future__ import annotations

import re
import sqlite3
import warnings

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from bot.dashboard.card import card_markdown
from bot.services.pages.card import model_card
from bot.services.pages.viewer import viewer
from jobs.monitor import check_model
from store import registry
from store.models import Decision
from tests.support.backend_world import actor, make_worker
from tests.support.task_worlds import (
    ELI,
    NOOR,
    NOW,
    PRICES,
    RITA,
    START,
    WEEK,
    register_first_versions,
    write_task_project,
)

with warnings.catch_warnings():  # starlette nags about its httpx dependency; not ours to fix
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

INTENDED = "Suggest an asking price for an agent to review"
CARD = f"""\
    task: regression
    card:
      intended_use: {INTENDED}
      out_of_scope: [Mortgage valuations]
      limitations: [Few homes over 3000 sqft]
    segments: [district]
"""
REASON = "errors are even across districts"
BASE = "https://flywheel.example.com"


@pytest.fixture
def homes(db, tmp_path):
    folder = tmp_path / "homes"
    path = write_task_project(folder)
    path.write_text(path.read_text().replace("    task: regression\n", CARD, 1))
    register_first_versions(db, folder)
    with db.session() as s:
        registry.adopt_as_production(session=s, version=registry.get_version(session=s, model_key=PRICES, number=1),
                                     actor=ELI, now=START + WEEK)
    check_model(db=db, model_key=PRICES, as_of=NOW, now=NOW)
    worker, ops = make_worker(db, folder, tmp_path / "outbox", clock=lambda: NOW)
    return folder, worker, ops


def _expected(folder) -> dict[str, tuple[int, float]]:
    """Rows and MAE per district on the labelled rows of the latest week, computed here from the data."""
    with sqlite3.connect(folder / "data" / "homes.db") as connection:
        rows = pd.read_sql("select * from listings", connection, parse_dates=["listed_at"])
    week = rows[(rows.listed_at >= NOW - WEEK) & (rows.listed_at < NOW) & rows.sold_price.notna()]
    return {d: (len(g), float(np.mean(np.abs(g.sold_price - g.predicted_price)))) for d, g in week.groupby("district")}


def _page(db, folder, path: str) -> str:
    from bot.config import Settings
    from bot.dashboard.access import Signer
    from bot.dashboard.app import build_dashboard

    settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_PUBLIC_URL=BASE, FLYWHEEL_ARTIFACTS=folder / "artifacts",
                        FLYWHEEL_SECRET_KEY=SecretStr("a-dashboard-secret-of-32-chars-or-more"))
    browser = TestClient(build_dashboard(settings, db, clock=lambda: NOW), base_url=BASE)
    response = browser.get(Signer(settings).link(BASE + path, slack_id=RITA, now=NOW)[0])
    assert response.status_code == 200, response.text[:300]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))


def test_the_card_shows_per_segment_figures_equal_to_the_data(db, homes):
    folder, _worker, _ops = homes
    expected = _expected(folder)
    with db.session() as s:
        card = model_card(session=s, key=PRICES, number=1, viewer=viewer(session=s, slack_id=RITA))
    assert card.segments is not None and [c for c, _, _ in card.segments.columns] == ["district"]
    shown = {value: (rows, figures["mae"]) for value, rows, figures in card.segments.columns[0][1]}
    assert set(shown) == set(expected) == {"harbour", "old-town", "hills"}
    for district, (rows, mae) in expected.items():
        assert shown[district][0] == rows and shown[district][1] == pytest.approx(mae)
    text = _page(db, folder, f"/models/{PRICES}/versions/1/card")
    assert "Performance by segment" in text and "By district" in text
    for district, (rows, _) in expected.items():
        assert re.search(rf"{district} {rows:,} ", text), district

    markdown = card_markdown(card)
    for district, (rows, _) in expected.items():
        assert f"| {district} | {rows:,} |" in markdown


def test_the_card_says_what_the_model_is_for_and_the_reasons_of_its_sign_offs(db, homes):
    folder, worker, ops = homes
    ops.retraining.request_retrain(actor(db, ELI), PRICES)
    worker.drain_work()
    ops.releases.submit(actor(db, ELI), PRICES, 2)
    ops.releases.sign(actor(db, NOOR), PRICES, 2, Decision.approve, REASON)
    text = _page(db, folder, f"/models/{PRICES}/versions/2/card")
    assert f"Intended use {INTENDED}" in text
    assert "Out of scope Mortgage valuations" in text and "Limitations Few homes over 3000 sqft" in text
    assert re.search(rf"technical validation Noor approved .* {REASON}", text)
    assert "no performance check of v2 has recorded segment figures yet" in text
    # Which features v2 relies on, measured on the comparison window, and how that moved from v1.
    assert "What the model relies on" in text and "how much mean absolute error worsens" in text
    with db.session() as s:
        card = model_card(session=s, key=PRICES, number=2, viewer=viewer(session=s, slack_id=RITA))
        stored = registry.latest_evaluation(session=s, version=registry.get_version(
            session=s, model_key=PRICES, number=2)).importances
    assert [i.feature for i in card.importances] == [f["feature"] for f in stored["features"]]
    assert card.importances[0].feature == "sqft" and re.search(r"Rank Feature Importance Spread 1 sqft ", text)
    if card.reliance:  # whichever the retrain gave, the card says it (test_explain pins the rule)
        assert f"Compared with v1 {card.reliance[0].feature}: v2 relies on it" in text
    else:
        assert card.reliance_compared and "Compared with v1: v2 leans on the same features" in text
        assert "Compared with v1: v2 leans on the same features" in card_markdown(card)


def test_a_card_without_those_fields_says_they_are_not_written(db, tmp_path):
    folder = tmp_path / "plain"
    write_task_project(folder)
    register_first_versions(db, folder)
    text = _page(db, folder, f"/models/{PRICES}/versions/1/card")
    assert "No intended use written in the spec." in text
    assert "No out-of-scope uses written in the spec." in text and "No limitations written in the spec." in text
    assert "No segment columns named in the spec" in text
