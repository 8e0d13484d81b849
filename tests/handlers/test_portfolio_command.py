"""A risk manager's portfolio, from Slack (`/flywheel portfolio`, a signed slash command) and on the dashboard:
every project they govern, the one whose sign-off has waited longest past the deadline first."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest
from pydantic import SecretStr
from slack_sdk.models.blocks import Block

from bot.services.pages import OVERDUE
from store import governance, registry
from store.models import Blueprint, BlueprintStep, Decision, Model, Project, RiskTier
from tests.support.factories import fraud_project, grant
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import NOW, World

ELI, NOOR, RITA, DANA = "U0ML0001", "U0ML0002", "U0RISK01", "U0BIZ001"


def _in_review(s, model: Model, submitted, *, approved_at=None) -> None:
    version = registry.register_version(session=s, model_key=model.key, created_by=ELI, artifact_uri=model.key,
                                        now=submitted)
    governance.submit_for_review(session=s, version=version, by=ELI, now=submitted)
    if approved_at is not None:
        governance.sign_off(session=s, version=version, person=registry.require_person(session=s, slack_id=NOOR),
                            decision=Decision.approve, reason="fine", now=approved_at)


@pytest.fixture
def governed(db, tmp_path):
    """Three projects Rita governs: churn (low risk) waits since yesterday, card-fraud (high risk) has waited
    for the risk review for five days (its technical validation was signed then), and pricing for a week.
    Pricing's deploys go ahead with sign-offs missing (warn); the others' wait for them (block)."""
    with db.session() as s:
        fraud = fraud_project(s, quorum=1)
        models = {"card-fraud": s.query(Model).filter_by(project_id=fraud.id).first()}
        for key, tier in (("churn", RiskTier.low), ("pricing", RiskTier.medium)):
            project = Project(key=key, name=key.capitalize(), initiative="", owner=ELI, sponsors=[], risk_tier=tier,
                              tags=[], deploy_policy="warn" if key == "pricing" else None)
            project.blueprint = Blueprint(name="internal", steps=[
                BlueprintStep(position=1, name="technical validation", role="ml_engineer", quorum=1),
                BlueprintStep(position=2, name="risk review", role="risk_manager", quorum=1)])
            s.add(project)
            for slack_id, role in ((ELI, "ml_engineer"), (NOOR, "ml_engineer"), (RITA, "risk_manager")):
                grant(registry.require_person(session=s, slack_id=slack_id), project, role)
            models[key] = Model(key=f"{key}-model", project=project, owner=ELI, task="binary_classification")
            s.add(models[key])
        s.flush()
        _in_review(s, models["churn"], NOW - timedelta(days=1))
        _in_review(s, models["card-fraud"], NOW - timedelta(days=9), approved_at=NOW - timedelta(days=5))
        _in_review(s, models["pricing"], NOW - timedelta(days=7))
    with FakeSlack() as fake:
        world = World(db, tmp_path, fake, FLYWHEEL_SECRET_KEY=SecretStr("k" * 40))
        yield world
        world.close()
        assert fake.invalid == []


def test_the_command_lists_overdue_sign_offs_first_the_longest_waiting_first(governed):
    said = governed.command("portfolio", RITA)

    assert said.status == 200
    blocks = [b.to_dict() for b in Block.parse_all(said.body["blocks"])]
    assert blocks[0]["text"]["text"] == (f"You govern 3 projects: 3 versions waiting for sign-off, *2 overdue* "
                                         f"(due for more than {OVERDUE.days} days).")
    lines = [b["text"]["text"] for b in blocks[1:4]]
    # pricing waits since its submission a week ago; card-fraud since its technical validation five days ago.
    assert lines[0].startswith(":red_circle: *Pricing* (medium risk): sign-off overdue\noverdue: pricing-model v1: "
                               "technical validation")
    assert lines[1].startswith(":red_circle: *Card fraud detection* (high risk): sign-off overdue\noverdue: ")
    assert lines[1].endswith(": risk review\nDeploy policy: block (no deploy until every sign-off is in)")
    assert lines[0].endswith("\nDeploy policy: warn (deploys go ahead, missing sign-offs are reported)")
    assert lines[2].startswith(":hourglass: *Churn* (low risk): waiting for sign-off\nchurn-model v1: technical "
                               "validation 0 of 1")
    assert blocks[-1]["elements"][0]["value"].endswith("/projects")


def test_the_dashboard_portfolio_has_the_same_order_and_others_are_told_it_is_for_risk_managers(governed, db):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from bot.dashboard.access import Signer
    from bot.dashboard.app import build_dashboard

    settings = governed.ops.settings
    browser = TestClient(build_dashboard(settings, db, clock=lambda: NOW), base_url=settings.public_url)
    page = browser.get(Signer(settings).link(settings.link("projects"), slack_id=RITA, now=NOW)[0])
    assert page.status_code == 200
    text = page.text
    assert text.index(">Pricing<") < text.index(">Card fraud detection<") < text.index(">Churn<")
    assert "Overdue: pricing-model v1: technical validation" in text
    rows = {row.split("</a>")[0]: row for row in text.split('<a href="/projects/')[1:]}
    assert "deploy policy: warn (deploys go ahead, missing sign-offs are reported)" in rows['pricing">Pricing']
    assert "deploy policy: block (no deploy until every sign-off is in)" in rows['card-fraud">Card fraud detection']
    refused = governed.command("portfolio", ELI)
    assert refused.body["text"].startswith("The portfolio lists the projects a risk manager governs")
