"""Blueprints from a library by risk tier, automated steps, parallel steps and deploy policies, on the house
prices model (not the demo's project), driven over signed HTTP as Slack drives it: the request message and
the warning read back from the fake Slack and parsed with slack_sdk's models, the audit log read back."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
from slack_sdk.models.blocks import Block
from sqlalchemy import select

from bot.ids import ActionId
from bot.services.library import apply_all
from bot.services.pages.model import model_page
from bot.services.pages.viewer import viewer
from jobs.retrain import compare_with_production
from jobs.spec import load_documents
from jobs.task_training import train_regression
from store import registry
from store.models import AuditEvent, SignOff, VersionStatus
from tests.support.slack_world import World
from tests.support.task_worlds import (
    ELI,
    NOOR,
    NOW,
    PRICES,
    RITA,
    START,
    WEEK,
    homes_week,
    write_task_project,
)

INLINE = """\
blueprint:
  name: standard
  steps:
    - {name: technical validation, role: ml_engineer}
"""


def _homes(db, folder, library: str, *, tier: str = "low", project_extra: str = "") -> None:
    """The homes project with no blueprint of its own (its tier chooses one from `library`), v1 of house
    prices in production and v2 (v1's file, trained on the same week) compared with it on the latest week."""
    spec = write_task_project(folder)
    text = spec.read_text().replace(INLINE, "").replace("risk_tier: medium", f"risk_tier: {tier}{project_extra}")
    spec.write_text(text)
    (folder / "blueprints.yml").write_text(library)
    with db.session() as s:
        apply_all(session=s, loaded=load_documents([folder / "blueprints.yml", spec], library={}))
    trained = train_regression(homes_week(0), numeric=["sqft", "rooms"], categorical=["district"],
                               label="sold_price", artifacts_dir=folder / "artifacts", name=f"{PRICES}-v1")
    with db.session() as s:
        for number in (1, 2):
            version = registry.register_version(
                session=s, model_key=PRICES, created_by=ELI, artifact_uri=trained.artifact_uri,
                artifact_sha256=trained.artifact_sha256, metrics=trained.metrics, train_start=START,
                train_end=START + WEEK, now=START + WEEK)
            if number == 1:
                registry.adopt_as_production(session=s, version=version, actor=ELI, now=START + WEEK)
    compare_with_production(db=db, model_key=PRICES, number=2, window_start=NOW - WEEK, window_end=NOW,
                            artifacts_dir=folder / "artifacts")


@pytest.fixture
def open_world(db, tmp_path, slack):
    worlds = []

    def start(library: str, **kwargs) -> World:
        _homes(db, tmp_path, library, **kwargs)
        world = World(db, tmp_path, slack)
        worlds.append(world)
        return world

    yield start
    for world in worlds:
        world.close()


def _message(world, message) -> tuple[list[dict], str]:
    blocks = world.fake.messages[message]["blocks"]
    assert [b.to_dict() for b in Block.parse_all(blocks)] == blocks
    return blocks, world.fake.messages[message].get("text", "")


def _buttons(blocks) -> set[str]:
    return {e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]
            if e["action_id"] in (ActionId.approve, ActionId.reject)}


def _submit(world) -> tuple[str, str]:
    ready = tuple(world.ops.notifier.candidate_ready(PRICES, 2, alert_id=None).split(":"))
    world.click(ActionId.submit_for_signoff, ready, ELI)
    world.ops.join()
    return world.posted("C0RISK", f"Sign-off requested: {PRICES} v2")


def _answer(world, said) -> str:
    """What the person who typed the command was told: the command's own answer and any later ones."""
    return json.dumps([said.body, *world.responses(said.response_url)])


def _status(db, number: int = 2) -> VersionStatus:
    with db.read() as s:
        return registry.get_version(session=s, model_key=PRICES, number=number).status


@dataclass(frozen=True)
class Audited:
    actor: str
    details: dict


def _audit(db, action: str) -> list[Audited]:
    with db.read() as s:
        return [Audited(e.actor, dict(e.details or {})) for e in s.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).scalars()]


def _signed(db) -> list[tuple[str, str, str, str]]:
    """Every sign-off: who, which step, the decision and why."""
    with db.read() as s:
        return [(o.person, o.step.name, o.decision.value, o.reason)
                for o in s.execute(select(SignOff).order_by(SignOff.id)).scalars()]


AUTOMATIC = """\
blueprints:
  - name: low-risk-automatic
    tiers: [low]
    steps:
      - name: no worse than production
        check: {metric: {name: mae, max_drop: 1000}}
      - name: enough labelled rows
        check: {min_labelled_rows: %(rows)d}
  - name: high-risk-reviewed
    tiers: [medium, high]
    steps:
      - {name: technical validation, role: ml_engineer}
      - {name: risk review, role: risk_manager}
"""


def test_a_low_tier_candidate_passing_its_checks_is_approved_by_flywheel_alone(db, open_world):
    world = open_world(AUTOMATIC % {"rows": 100})
    request = _submit(world)

    assert _status(db) == VersionStatus.approved
    signed = _signed(db)
    assert [(who, decision) for who, _, decision, _ in signed] == [("flywheel", "approve"), ("flywheel", "approve")]
    assert re.fullmatch(r"mae ([\d,.]+) vs \1 in production, allowed rise 1,000 on \S+ to \S+", signed[0][3])
    assert signed[1][3].startswith("500 labelled rows in the evaluation window")
    blocks, _ = _message(world, request)
    shown = json.dumps(blocks)
    assert _buttons(blocks) == set() and "every step of its blueprint is signed" in shown
    assert "approved by Flywheel" in shown and "allowed rise 1,000" in shown
    assert "block: no deploy until every step is signed" in shown  # the policy in force
    assert [e.actor for e in _audit(db, "version.approved")] == ["flywheel"]


def test_a_failing_check_rejects_the_candidate_with_its_figures_in_the_request(db, open_world):
    world = open_world(AUTOMATIC % {"rows": 5000})
    request = _submit(world)

    assert _status(db) == VersionStatus.rejected
    blocks, _ = _message(world, request)
    shown = json.dumps(blocks)
    assert _buttons(blocks) == set()
    assert "Rejected by Flywheel (enough labelled rows)" in shown
    assert "500 labelled rows in the evaluation window" in shown and "fewer than the 5,000 required" in shown
    rejected = _audit(db, "version.rejected")
    assert [(e.actor, e.details["reason"].split(":")[0]) for e in rejected] == [("flywheel", "enough labelled rows")]
    # Nothing can be signed or deployed after it.
    said = world.command(f"deploy {PRICES} v2", ELI)
    assert "rejected by Flywheel" in _answer(world, said) and "fewer than the 5,000 required" in _answer(world, said)
    assert _status(db) == VersionStatus.rejected


WARN = """\
blueprints:
  - name: medium-reviewed
    tiers: [medium]
    policy: warn
    steps:
      - {name: technical validation, role: ml_engineer}
"""


def test_a_warn_policy_deploy_goes_ahead_tells_the_deployer_and_the_risk_channel_and_is_audited(db, open_world):
    world = open_world(WARN, tier="medium")
    said = world.command(f"deploy {PRICES} v2", ELI)
    world.ops.join()

    assert _status(db) == VersionStatus.production
    answer = _answer(world, said)
    assert "Deploy policy: warn" in answer and "technical validation: 0 of 1" in answer
    warning = world.posted("C0RISK", f"Deployed with sign-offs missing: {PRICES} v2")
    blocks, text = _message(world, warning)
    assert f"<@{ELI}>" in json.dumps(blocks) and "technical validation: 0 of 1" in text
    deployed = _audit(db, "version.deployed")[-1]
    assert deployed.details == {"previous": "v1", "policy": "warn", "missing": ["technical validation: 0 of 1"]}
    notice = world.posted("C0OPS", f"{PRICES} v2 is live")
    assert "Deploy policy: warn." in _message(world, notice)[1]
    with db.read() as s:  # the model page shows the policy in force and where the blueprint came from
        page = model_page(session=s, key=PRICES, viewer=viewer(session=s, slack_id=RITA))
        assert (page.policy, page.blueprint) == ("warn", "medium-reviewed")


def test_an_allow_policy_project_deploys_a_candidate_straight_and_audits_it(db, open_world):
    world = open_world(WARN, tier="medium", project_extra="\n  deploy_policy: allow")
    said = world.command(f"deploy {PRICES} v2", ELI)
    world.ops.join()

    assert _status(db) == VersionStatus.production
    assert "Deploy policy: allow, so no sign-off was needed" in _answer(world, said)
    assert _audit(db, "version.deployed")[-1].details["policy"] == "allow"
    with pytest.raises(AssertionError):  # no warning: allow needs no sign-off
        world.posted("C0RISK", "Deployed with sign-offs missing")


PARALLEL = """\
blueprints:
  - name: medium-parallel
    tiers: [medium]
    steps:
      - {name: technical validation, role: ml_engineer}
      - {name: risk review, role: risk_manager, parallel: true}
"""


@pytest.mark.parametrize("risk_first", [True, False], ids=["risk-first", "technical-first"])
def test_parallel_steps_are_due_together_and_signed_in_either_order(db, open_world, risk_first):
    world = open_world(PARALLEL, tier="medium")
    request = _submit(world)
    blocks, _text = _message(world, request)
    assert _buttons(blocks) == {ActionId.approve, ActionId.reject}
    shown = json.dumps(blocks)
    assert shown.count("due now") == 2 and f"<@{NOOR}>" in shown and f"<@{RITA}>" in shown

    first, second = ((RITA, "risk review"), (NOOR, "technical validation"))[::1 if risk_first else -1]
    world.command(f"approve {PRICES} v2 looks fine", first[0])
    world.ops.join()
    assert _status(db) == VersionStatus.in_review
    blocks, _ = _message(world, request)
    assert _buttons(blocks) == {ActionId.approve, ActionId.reject} and json.dumps(blocks).count("due now") == 1
    world.command(f"approve {PRICES} v2 fine by me", second[0])
    world.ops.join()
    assert _status(db) == VersionStatus.approved
    assert {(who, step) for who, step, _, _ in _signed(db)} == {first, second}


AFTER_A_PERSON = """\
blueprints:
  - name: reviewed-then-checked
    tiers: [medium]
    steps:
      - {name: technical validation, role: ml_engineer}
      - name: enough labelled rows
        check: {min_labelled_rows: 100}
"""


def test_an_automated_step_after_a_person_runs_once_they_sign(db, open_world):
    world = open_world(AFTER_A_PERSON, tier="medium")
    request = _submit(world)
    assert _status(db) == VersionStatus.in_review and [s[0] for s in _signed(db)] == []
    blocks, _ = _message(world, request)
    assert "waits for technical validation" in json.dumps(blocks)

    said = world.command(f"approve {PRICES} v2 holds up", NOOR)
    world.ops.join()
    assert _status(db) == VersionStatus.approved
    assert [(who, step) for who, step, _, _ in _signed(db)] == [(NOOR, "technical validation"),
                                                                 ("flywheel", "enough labelled rows")]
    assert "Signed by Flywheel (enough labelled rows): 500 labelled rows" in _answer(world, said)
    blocks, _ = _message(world, request)
    assert _buttons(blocks) == set() and "approved by Flywheel" in json.dumps(blocks)
