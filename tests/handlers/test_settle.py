"""Conversations that settle: a refused deploy is answered privately and posts nothing new in the channel;
repeated Acknowledge clicks edit the alert once; a sign-off request shows what became of its version
(deployed, rejected, superseded) without buttons, and alerts about a replaced version resolve in their
thread. Driven as Slack drives them: signed HTTP to /slack/events, read back from the fake Slack, every
Block Kit payload parsed with slack_sdk's models."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block

from bot.blocks.common import EVIDENCE_ACTIONS
from bot.blocks.dates import when
from bot.ids import ActionContext, ActionId
from bot.outbox import OutboxSender, StormPolicy
from bot.slack_delivery import SlackDelivery
from jobs.monitor import check_model
from jobs.retrain import compare_with_production
from store import governance, registry
from store.models import Alert, AlertState, AuditEvent, OutboxMessage
from tests.support.fleet import Clock, drain
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import (
    ELI,
    MODEL,
    NOOR,
    NOW,
    OMAR,
    RITA,
    World,
    register_fraud_model,
)

WEEK = timedelta(days=7)


def _top_level(fake) -> list[tuple[str, str]]:
    return sorted(k for k, m in fake.messages.items() if not m.get("thread_ts"))


def _blocks(world, message) -> list[dict]:
    """A message's blocks as Slack holds them, parsed back with slack_sdk (a payload it would refuse fails)."""
    blocks = world.fake.messages[message]["blocks"]
    assert [b.to_dict() for b in Block.parse_all(blocks)] == blocks
    return blocks


def _in_review(world, number: int) -> None:
    """`number` registered from v1's artifact, submitted by Eli and compared with production."""
    v1 = json.loads((world.folder / "v1.json").read_text())
    with world.db.session() as s:
        version = registry.register_version(session=s, model_key=MODEL, created_by=ELI, artifact_uri=v1["uri"],
                                            artifact_sha256=v1["sha256"], metrics=v1["metrics"],
                                            train_end=NOW - WEEK, now=NOW)
        assert version.number == number
        governance.submit_for_review(session=s, version=version, by=ELI, now=NOW)
    compare_with_production(db=world.db, model_key=MODEL, number=number, window_start=NOW - WEEK, window_end=NOW,
                            artifacts_dir=world.folder / "artifacts")


def _submitted(world, number: int) -> tuple[str, str]:
    """`number` in review, its sign-off request posted to the risk channel; returns the request."""
    _in_review(world, number)
    world.ops.notifier.signoff_requested(MODEL, number)
    return world.posted("C0RISK", f"Sign-off requested: {MODEL} v{number}")


# -- 1. a deploy refused for missing sign-offs -------------------------------------------------------


def test_a_deploy_asked_too_early_is_answered_privately_and_posts_nothing_new(world):
    request = _submitted(world, 2)
    before = _top_level(world.fake)

    refused = world.command(f"deploy {MODEL} v2", ELI)
    world.ops.join()

    assert refused.body["response_type"] == "ephemeral"
    assert refused.body["text"] == (
        f"{MODEL} v2 can't be deployed yet. Waiting for: technical validation: 0 of 1, risk review: 0 of 1. "
        f"<@{NOOR}> has been asked in the sign-off request's thread.")  # Rita's risk review waits for Noor's step
    assert _top_level(world.fake) == before, "a refused deploy posted a new message in a channel"
    assert [m["text"] for m in world.fake.thread(*request)] == [
        f"<@{NOOR}>: a deploy of {MODEL} v2 is waiting for your sign-off."]
    assert _has_buttons(world, request), "the request still takes sign-offs"
    with world.db.read() as s:
        assert s.query(AuditEvent).filter_by(action="deploy.refused").count() == 1, "one refusal, audited once"


# -- 2. repeated Acknowledge clicks ------------------------------------------------------------------


@pytest.fixture
def queued_alert(db, fraud_data):
    """The fraud model's drift alert posted through the outbox and its sender, as `flywheel serve` runs."""
    register_fraud_model(db, fraud_data)
    with FakeSlack() as fake:
        world = World(db, fraud_data, fake, queued=True, FLYWHEEL_SECRET_KEY=SecretStr("k" * 40))
        clock = Clock(NOW)
        sender = OutboxSender(db, SlackDelivery(WebClient(token=fake.token, base_url=fake.api_url, timeout=5)),
                              clock, storm=StormPolicy(window=timedelta(0)))
        world.ops.notifier.on_checks(check_model(db=db, model_key=MODEL, as_of=NOW, now=NOW))
        drain(sender, clock)
        yield world, world.posted("C0ML", f"Input drift on {MODEL} v1"), sender, clock
        world.close()
        assert fake.invalid == [], "the app sent a payload Slack would refuse"


def test_twenty_acknowledge_clicks_edit_the_alert_once(queued_alert):
    world, message, sender, clock = queued_alert
    updates_before = len(world.fake.calls_to("chat.update"))
    alert_id = ActionContext.decode(next(e["value"] for b in world.fake.messages[message]["blocks"]
                                         if b["type"] == "actions" for e in b["elements"]
                                         if e.get("action_id") == ActionId.acknowledge)).alert

    sent = [world.click(ActionId.acknowledge, message, NOOR if i % 2 else ELI) for i in range(20)]
    world.ops.join()
    drain(sender, clock)

    assert [s.status for s in sent] == [200] * 20
    with world.db.read() as s:
        edits = [r for r in s.query(OutboxMessage) if r.kind == "update"]
        assert len(edits) == 1
        assert s.query(AuditEvent).filter_by(action="alert.acknowledged").count() == 1
        assert s.query(AuditEvent).filter_by(action="alert.acknowledge.refused").count() == 19
        alert = s.get(Alert, alert_id)
        assert (alert.state, alert.acknowledged_by, alert.acknowledged_at) == (AlertState.acknowledged, ELI, NOW)
    assert len(world.fake.calls_to("chat.update")) == updates_before + 1
    assert f"Acknowledged by <@{ELI}> · {when(NOW)}" in json.dumps(_blocks(world, message), ensure_ascii=False)
    assert world.responses(sent[0].response_url) == []  # the first is answered by the edit itself
    later = [[(r["response_type"], r["text"]) for r in world.responses(s.response_url)] for s in sent[1:]]
    refusal = f"This alert is already acknowledged by <@{ELI}> ({when(NOW)}). Nothing changed."
    assert later == [[("ephemeral", refusal)]] * 19


# -- 3. sign-off requests settle; alerts about a replaced version resolve --------------------------------


def _has_buttons(world, message) -> bool:
    """Buttons that act (sign, deploy, acknowledge...); those that open evidence stay on a settled request."""
    return any(e["action_id"] not in EVIDENCE_ACTIONS for b in _blocks(world, message) if b["type"] == "actions"
               for e in b["elements"])


def _evidence(world, message) -> list[str]:
    return [e["action_id"] for b in _blocks(world, message) if b["type"] == "actions" for e in b["elements"]]


def _resolved_count(persona: str) -> float:
    return REGISTRY.get_sample_value("flywheel_alerts_total", {"persona": persona, "event": "resolved"}) or 0.0


def _deploys_done() -> float:
    return REGISTRY.get_sample_value("flywheel_deploy_outcomes_total", {"action": "deploy", "outcome": "done"}) or 0.0


def test_a_deploy_settles_its_request_supersedes_older_ones_and_resolves_the_old_versions_alerts(world):
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    alert = world.posted("C0ML", f"Input drift on {MODEL} v1")
    older, newer = _submitted(world, 2), _submitted(world, 3)
    for signer in (NOOR, RITA):
        world.command(f"approve {MODEL} v3", signer)
    world.ops.join()
    before = _top_level(world.fake)
    with world.db.read() as s:
        open_by_persona = Counter(a.persona for a in s.query(Alert) if a.state != AlertState.resolved)
    resolved_before = {p: _resolved_count(p) for p in open_by_persona}
    deploys_before = _deploys_done()

    assert world.command(f"deploy {MODEL} v3", ELI).body["text"] == \
        f"{MODEL} v3 is live. Previous production version: v1."
    world.ops.join()
    # /metrics counts them as resolved, by persona, as a check that passes would
    assert open_by_persona and {p: _resolved_count(p) - resolved_before[p] for p in open_by_persona} == \
        dict(open_by_persona)
    assert _deploys_done() - deploys_before == 1

    at = when(NOW)
    assert not _has_buttons(world, newer) and not _has_buttons(world, older)
    # Settled, each request keeps its evidence: the model card and the comparison.
    assert _evidence(world, newer) == _evidence(world, older) == [ActionId.model_card, ActionId.view_details]
    assert f"Deployed to production by <@{ELI}>, {at}" in json.dumps(_blocks(world, newer))
    assert f"Superseded: v3 went to production ({at})" in json.dumps(_blocks(world, older))
    with world.db.read() as s:
        assert {a.state for a in s.query(Alert)} == {AlertState.resolved}
    assert f":white_check_mark: Resolved: v3 replaced v1 in production ({at})." in \
        [m["text"] for m in world.fake.thread(*alert)]
    new_posts = [world.fake.messages[k].get("text", "") for k in _top_level(world.fake) if k not in before]
    assert len(new_posts) == 1 and new_posts[0].startswith(f"{MODEL} v3 is live")  # IT operations' notice only


def test_a_rejection_by_command_settles_the_request_in_place(world):
    request = _submitted(world, 2)
    before = _top_level(world.fake)

    world.command(f"reject {MODEL} v2 recall drops on new cards", NOOR)
    world.ops.join()

    assert not _has_buttons(world, request)
    assert f'Rejected by <@{NOOR}> (technical validation), {when(NOW)}: \\"recall drops on new cards\\"' in \
        json.dumps(_blocks(world, request))
    assert _top_level(world.fake) == before


def test_the_clicked_approval_that_ends_the_review_edits_the_request_once(world):
    request = _submitted(world, 2)
    world.command(f"approve {MODEL} v2", NOOR)
    world.ops.join()
    updates_before = len(world.fake.calls_to("chat.update"))

    world.click(ActionId.approve, request, RITA, value=ActionContext(model=MODEL, version=2).encode())
    world.ops.join()

    assert len(world.fake.calls_to("chat.update")) == updates_before + 1
    assert not _has_buttons(world, request)


def test_through_the_outbox_the_request_is_found_where_it_was_sent(queued_alert):
    """As `flywheel serve` runs: the request's outbox ref becomes where Slack put it once sent, and a deploy
    refused later pings the approvers in that thread, posting nothing new at the top of a channel."""
    world, _, sender, clock = queued_alert
    _in_review(world, 2)
    assert world.ops.notifier.signoff_requested(MODEL, 2).startswith("outbox:")
    drain(sender, clock)
    request = world.posted("C0RISK", f"Sign-off requested: {MODEL} v2")
    with world.db.read() as s:
        assert registry.get_version(session=s, model_key=MODEL, number=2).signoff_ref == ":".join(request)
    before = _top_level(world.fake)

    refused = world.command(f"deploy {MODEL} v2", ELI)
    world.ops.join()
    drain(sender, clock)

    assert refused.body["text"].endswith(f"<@{NOOR}> has been asked in the sign-off request's thread.")
    assert _top_level(world.fake) == before
    assert [m["text"] for m in world.fake.thread(*request)] == [
        f"<@{NOOR}>: a deploy of {MODEL} v2 is waiting for your sign-off."]


# -- 4. IT operations: what serves, its digest, what it replaced, and the way back ----------------------


def _facts(world, message) -> dict[str, str]:
    fields = next(b["fields"] for b in _blocks(world, message) if b["type"] == "section" and b.get("fields"))
    return dict(f["text"].split("\n", 1) for f in fields)


def _rollback_value(world, message) -> ActionContext:
    return ActionContext.decode(next(e["value"] for b in _blocks(world, message) if b["type"] == "actions"
                                     for e in b["elements"] if e["action_id"] == ActionId.rollback))


def test_deploy_and_rollback_notices_carry_the_artifact_digest_and_a_way_back_and_the_rollback_settles(world):
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    request = _submitted(world, 2)
    for signer in (NOOR, RITA):
        world.command(f"approve {MODEL} v2", signer)
    world.command(f"deploy {MODEL} v2", ELI)
    world.ops.join()
    notice = world.posted("C0OPS", f"{MODEL} v2 is live")
    uri = json.loads((world.folder / "v1.json").read_text())["uri"]  # v2 was registered from v1's file
    real = hashlib.sha256(Path(uri.removeprefix("file://")).read_bytes()).hexdigest()

    facts = _facts(world, notice)
    assert facts["*SHA-256*"] == f"`{real}`" and facts["*Replaced*"] == "v1"
    assert facts["*Artifact*"] == f"`{uri}`" and facts["*When*"] == when(NOW)
    assert _rollback_value(world, notice) == ActionContext(model=MODEL, version=2, to=1)

    # An alert about v2 opened while it served; the rollback takes v2 out and resolves it.
    later = NOW + WEEK
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=later, now=later))
    with world.db.read() as s:
        about_v2 = [a.id for a in s.query(Alert) if a.state != AlertState.resolved]
    world.click(ActionId.rollback, notice, OMAR)
    world.ops.join()

    back = world.posted("C0OPS", f"{MODEL} rolled back to v1")
    facts = _facts(world, back)
    with world.db.read() as s:
        v1 = registry.get_version(session=s, model_key=MODEL, number=1)
        assert facts["*SHA-256*"] == f"`{v1.artifact_sha256}`" and facts["*Replaced*"] == "v2"
        assert {a.state for a in s.query(Alert) if a.id in about_v2} <= {AlertState.resolved}
    assert _rollback_value(world, back) == ActionContext(model=MODEL, version=1, to=2)
    assert not _has_buttons(world, request)
    assert f"Rolled back by <@{OMAR}>" in json.dumps(_blocks(world, request))

    # The deploy notice's button again (a second tab still shows it), drawn when v2 was live.
    stale = world.click(ActionId.rollback, notice, OMAR, value=ActionContext(model=MODEL, version=2, to=1).encode())
    assert [r["text"] for r in world.responses(stale.response_url)][-1].endswith("Nothing changed.")
    with world.db.read() as s:
        assert registry.production_version(session=s, model=registry.get_model(session=s, key=MODEL)).number == 1
