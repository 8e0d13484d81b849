"""App Home as a portfolio ordered by urgency, published through Slack's Web API (the fake) after a signed
app_home_opened event: an ML engineer's open alerts and models, a risk manager's sign-offs."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block, SectionBlock

from bot.blocks.home import ALERTS, MAX_VIEW_BLOCKS, MODELS, SIGNOFFS
from bot.ids import BlockId
from store import governance, monitoring, registry
from store.models import (
    Blueprint,
    BlueprintStep,
    CheckKind,
    Decision,
    Model,
    Person,
    Project,
    RiskTier,
    Verdict,
)
from tests.support.factories import fraud_project, grant
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import World

ELI, NOOR, RITA = "U0ML0001", "U0ML0002", "U0RISK01"
DAY = timedelta(days=1)
T0 = datetime(2026, 10, 1)


@pytest.fixture
def fake():
    with FakeSlack() as slack:
        yield slack
        assert slack.invalid == [], "the app sent a payload Slack would refuse"


def _alert(s, model: Model, kind: CheckKind, at: datetime, *, acknowledged: bool = False) -> None:
    run = monitoring.record_check_run(session=s, model=model, version=None, kind=kind, window_start=at - 7 * DAY,
                                      window_end=at, as_of=at, figures={}, verdict=Verdict.breach,
                                      message=f"{kind} breach", now=at)
    alert, _ = monitoring.raise_alert(session=s, run=run, persona="ml_engineer", subjects=[str(kind)],
                                      channel="C0ML", now=at)
    if acknowledged:
        alert.state, alert.acknowledged_by, alert.acknowledged_at = "acknowledged", NOOR, at


def _in_review(s, model: Model, at: datetime) -> None:
    version = registry.register_version(session=s, model_key=model.key, created_by=ELI, artifact_uri=model.key,
                                        now=at)
    governance.submit_for_review(session=s, version=version, by=ELI, now=at)
    governance.sign_off(session=s, version=version, person=registry.require_person(session=s, slack_id=NOOR),
                        decision=Decision.approve, reason="fine", now=at)


@pytest.fixture
def portfolio(db):
    """card-fraud (high risk, risk review needs two approvals) and churn (low risk, one approval): each has a
    version whose technical validation Noor signed, waiting for the risk review; alerts of both models."""
    with db.session() as s:
        fraud = fraud_project(s, quorum=2)
        churn_project = Project(key="churn", name="Churn", initiative="Keep customers", owner=ELI, sponsors=[],
                                risk_tier=RiskTier.low, tags=[])
        churn_project.blueprint = Blueprint(name="internal", steps=[
            BlueprintStep(position=1, name="technical validation", role="ml_engineer", quorum=1),
            BlueprintStep(position=2, name="risk review", role="risk_manager", quorum=1)])
        s.add(churn_project)
        for slack_id, role in ((ELI, "ml_engineer"), (NOOR, "ml_engineer"), (RITA, "risk_manager")):
            grant(registry.require_person(session=s, slack_id=slack_id), churn_project, role)
        churn = Model(key="churn-model", project=churn_project, owner=ELI, task="binary_classification")
        s.add(churn)
        s.flush()
        _alert(s, churn, CheckKind.drift, T0)  # open, low risk, the oldest
        _alert(s, fraud, CheckKind.drift, T0 + DAY, acknowledged=True)  # high risk but acknowledged
        _alert(s, fraud, CheckKind.performance, T0 + 4 * DAY)  # open, high risk, the newest
        _in_review(s, fraud, T0)  # older, high risk, but Rita's approval would leave one missing
        _in_review(s, churn, T0 + 3 * DAY)  # Rita's approval is the last one: it blocks a deploy


def _home(db, tmp_path, fake, user: str) -> list[dict]:
    app = World(db, tmp_path, fake)
    try:
        app.event({"type": "app_home_opened", "user": user, "channel": "D0X", "tab": "home",
                   "event_ts": f"{time.time():.6f}"})
        app.ops.join()
    finally:
        app.close()
    blocks = fake.home[user]["blocks"]
    parsed = Block.parse_all(blocks)
    assert len(parsed) == len(blocks) <= MAX_VIEW_BLOCKS
    return [b.to_dict() for b in parsed]


def _section_after(blocks: list[dict], header: str) -> list[dict]:
    start = next(i for i, b in enumerate(blocks) if b["type"] == "header" and b["text"]["text"] == header)
    end = next((i for i, b in enumerate(blocks[start + 1:], start + 1) if b["type"] in ("header", "divider")),
               len(blocks))
    return blocks[start + 1:end]


def test_the_ml_engineer_sees_open_alerts_and_models_most_urgent_first(db, tmp_path, fake, portfolio):
    blocks = _home(db, tmp_path, fake, ELI)
    (alerts,) = [SectionBlock.parse(b) for b in _section_after(blocks, ALERTS)]
    lines = alerts.text.text.splitlines()
    # Unacknowledged before acknowledged; among the unacknowledged, high risk before the older low-risk one.
    assert [(line.split("*")[1], line.split("|")[1].split(">")[0]) for line in lines] == [
        ("fraud-detector", "Performance"), ("churn-model", "Input drift"), ("fraud-detector", "Input drift")]
    assert "not acknowledged" in lines[0] and "acknowledged" in lines[2] and "not acknowledged" not in lines[2]
    models = [b["block_id"].split(":")[1] for b in _section_after(blocks, MODELS)
              if b.get("block_id", "").startswith(BlockId.home_model)]
    assert models == ["fraud-detector", "churn-model"]  # key order would put churn-model first


def test_the_risk_manager_sees_the_sign_off_that_blocks_a_deploy_first(db, tmp_path, fake, portfolio):
    blocks = _home(db, tmp_path, fake, RITA)
    due = [b["block_id"].split(":")[1:] for b in _section_after(blocks, SIGNOFFS)
           if b.get("block_id", "").startswith(BlockId.home_signoff)]
    # churn v1 is newer and of lower risk, but Rita's approval is the last it needs before it can deploy.
    assert due == [["churn-model", "1"], ["fraud-detector", "1"]]
    assert not any(b["type"] == "header" and b["text"]["text"] == ALERTS for b in blocks)  # not her alerts


CARA, RAVI, DANA = "U0CMP001", "U0RISK02", "U0BIZ001"  # compliance (business role), a second risk manager


def _waiting(blocks: list[dict]) -> dict[str, str]:
    """model key -> the step the viewer's sign-off list says is due now for them (none: no such list)."""
    if not any(b["type"] == "header" and b["text"]["text"] == SIGNOFFS for b in blocks):
        return {}
    listed = _section_after(blocks, SIGNOFFS)
    return {b["block_id"].split(":")[1]: SectionBlock.parse(listed[i - 1]).text.text.split("due now: *")[1].split("*")[0]
            for i, b in enumerate(listed) if b.get("block_id", "").startswith(BlockId.home_signoff)}


@pytest.fixture
def reviews(db):
    """fraud-detector v1 waits for a risk review and, in parallel, a compliance review only Cara may sign; churn
    v1 waits for a risk review naming Ravi alone. Eli retrained and submitted both."""
    with db.session() as s:
        fraud = fraud_project(s)
        risk, compliance = fraud.project.blueprint.steps
        risk.name, risk.role = "risk review", "risk_manager"
        compliance.name, compliance.role, compliance.people, compliance.parallel = \
            "compliance review", "business", [CARA], True
        churn_project = Project(key="churn", name="Churn", initiative="Keep customers", owner=ELI, sponsors=[],
                                risk_tier=RiskTier.low, tags=[])
        churn_project.blueprint = Blueprint(name="named", steps=[
            BlueprintStep(position=1, name="risk review", role="risk_manager", quorum=1, people=[RAVI])])
        s.add(churn_project)
        cara, ravi = Person(slack_id=CARA, name="Cara"), Person(slack_id=RAVI, name="Ravi")
        s.add_all([cara, ravi])
        grant(cara, fraud.project, "business")
        grant(ravi, fraud.project, "risk_manager")
        grant(ravi, churn_project, "risk_manager")
        for slack_id, role in ((ELI, "ml_engineer"), (RITA, "risk_manager")):
            grant(registry.require_person(session=s, slack_id=slack_id), churn_project, role)
        churn = Model(key="churn-model", project=churn_project, owner=ELI, task="binary_classification")
        s.add(churn)
        s.flush()
        for model in (fraud, churn):
            version = registry.register_version(session=s, model_key=model.key, created_by=ELI,
                                                artifact_uri=model.key, now=T0)
            governance.submit_for_review(session=s, version=version, by=ELI, now=T0)


def test_parallel_steps_are_due_to_the_risk_manager_and_the_compliance_person_at_once(db, tmp_path, fake, reviews):
    assert _waiting(_home(db, tmp_path, fake, RITA)) == {"fraud-detector": "risk review"}
    assert _waiting(_home(db, tmp_path, fake, CARA)) == {"fraud-detector": "compliance review"}
    assert _waiting(_home(db, tmp_path, fake, DANA)) == {}  # business too, but the step names Cara alone
    assert _waiting(_home(db, tmp_path, fake, ELI)) == {}  # he submitted both


def test_a_step_naming_a_person_is_theirs_alone(db, tmp_path, fake, reviews):
    assert _waiting(_home(db, tmp_path, fake, RAVI)) == {"churn-model": "risk review",
                                                         "fraud-detector": "risk review"}
    assert "churn-model" not in _waiting(_home(db, tmp_path, fake, RITA))


def test_whoever_signed_no_longer_sees_the_version_and_the_others_still_do(db, tmp_path, fake, reviews):
    with db.session() as s:
        version = registry.get_model(session=s, key="fraud-detector").versions[0]
        governance.sign_off(session=s, version=version, person=registry.require_person(session=s, slack_id=RITA),
                            decision=Decision.approve, reason="fine", now=T0 + DAY)
    assert _waiting(_home(db, tmp_path, fake, RITA)) == {}
    assert _waiting(_home(db, tmp_path, fake, RAVI)) == {"churn-model": "risk review"}  # risk review is done
    assert _waiting(_home(db, tmp_path, fake, CARA)) == {"fraud-detector": "compliance review"}


@pytest.mark.parametrize("viewer", [RITA, RAVI, CARA, DANA, ELI, NOOR])
def test_app_home_lists_exactly_what_governance_lets_each_person_sign(db, tmp_path, fake, reviews, viewer):
    with db.read() as s:
        expected = {v.model.key: [p.step.name for p, people in governance.signable_steps(session=s, version=v)
                                  if viewer in {person.slack_id for person in people}][0]
                    for m in ("fraud-detector", "churn-model") for v in registry.get_model(session=s, key=m).versions
                    if any(viewer in {person.slack_id for person in people}
                           for _, people in governance.signable_steps(session=s, version=v))}
    assert _waiting(_home(db, tmp_path, fake, viewer)) == expected
