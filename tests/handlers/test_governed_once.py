"""Governed actions cannot misfire: a Roll back button names where it goes and rolls back once however
often or however concurrently it is clicked; a click drawn for a state that has since changed is refused
with what changed; Slack's retry of a command and the same click payload twice act once and answer once.
Driven as Slack drives them: signed HTTP to /slack/events, answers read back from the fake Slack."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from bot.blocks.dates import when
from bot.ids import ActionContext, ActionId
from jobs.retrain import compare_with_production
from store import governance, registry
from store.models import AuditEvent, Decision, SignOff, SlackRequest, VersionStatus
from tests.support.slack_fake import action_body, block_action, command_body
from tests.support.slack_world import ELI, MODEL, NOOR, NOW, OMAR, RITA

AT = when(NOW)
WEEK = timedelta(days=7)
ALREADY_ON_V1 = f"{MODEL} is already on v1 (rolled back by <@{OMAR}>, {AT}). Nothing changed."


def approved(world, number: int) -> None:
    """Register `number` from v1's artifact and have Noor and Rita approve it."""
    v1 = json.loads((world.folder / "v1.json").read_text())
    with world.db.session() as s:
        version = registry.register_version(session=s, model_key=MODEL, created_by=ELI, artifact_uri=v1["uri"],
                                            artifact_sha256=v1["sha256"], metrics=v1["metrics"], now=NOW)
        assert version.number == number
        governance.submit_for_review(session=s, version=version, by=ELI, now=NOW)
        for signer in (NOOR, RITA):
            governance.sign_off(session=s, version=version, person=registry.get_person(session=s, slack_id=signer),
                                decision=Decision.approve, now=NOW)


@pytest.fixture
def live_v2(world):
    """v2 deployed from Slack by Eli; returns IT operations' "v2 is live" notice with its Roll back button."""
    approved(world, 2)
    assert world.command(f"deploy {MODEL} v2", ELI).body["text"].startswith(f"{MODEL} v2 is live.")
    world.ops.join()
    return world.posted("C0OPS", f"{MODEL} v2 is live")


def _button(world, message, action_id: str) -> str:
    return next(e["value"] for b in world.fake.messages[message]["blocks"] if b["type"] == "actions"
                for e in b["elements"] if e.get("action_id") == action_id)


def _versions(world) -> dict[int, VersionStatus]:
    with world.db.read() as s:
        return {v.number: v.status for v in registry.get_model(session=s, key=MODEL).versions}


def _events(world, action: str) -> list[tuple[str, dict]]:
    """(actor, details) of each audit event of `action`, oldest first."""
    with world.db.read() as s:
        return [(e.actor, e.details) for e in s.query(AuditEvent).filter_by(action=action).order_by(AuditEvent.seq)]


def _rollback_notices(world) -> int:
    return sum(1 for (channel, _), m in world.fake.messages.items()
               if channel == "C0OPS" and m.get("text", "").startswith(f"{MODEL} rolled back to"))


def test_the_roll_back_button_names_where_it_goes(world, live_v2):
    assert ActionContext.decode(_button(world, live_v2, ActionId.rollback)) == \
        ActionContext(model=MODEL, version=2, to=1)


def test_twenty_clicks_on_one_roll_back_button_roll_back_once(world, live_v2):
    value = _button(world, live_v2, ActionId.rollback)
    sent = [world.click(ActionId.rollback, live_v2, OMAR, value=value) for _ in range(20)]

    assert [s.status for s in sent] == [200] * 20
    assert _versions(world) == {1: VersionStatus.production, 2: VersionStatus.archived}
    assert _events(world, "version.rolled_back") == [(OMAR, {"from": "v2", "to": "v1"})]
    assert _rollback_notices(world) == 1
    assert world.responses(sent[0].response_url) == []  # the first settles the notice in place
    assert f"Rolled back by <@{OMAR}>" in json.dumps(world.fake.messages[live_v2]["blocks"])
    later = [[r["text"] for r in world.responses(s.response_url)] for s in sent[1:]]
    assert later == [[ALREADY_ON_V1]] * 19


def test_ten_concurrent_clicks_roll_back_once(world, live_v2):
    """Ten people (or one impatient person) at once: serialized by the model's row lock on PostgreSQL and
    by the write transaction on SQLite, each click compares with what the previous one left."""
    value = _button(world, live_v2, ActionId.rollback)
    clickers = [(OMAR if i % 2 else ELI, f"{1_800_000_000 + i}.000100") for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        sent = list(pool.map(lambda c: world.click(ActionId.rollback, live_v2, c[0], value=value, action_ts=c[1]),
                             clickers))

    assert [s.status for s in sent] == [200] * 10
    assert _versions(world) == {1: VersionStatus.production, 2: VersionStatus.archived}
    ((rolled_by, _),) = _events(world, "version.rolled_back")
    assert _rollback_notices(world) == 1
    answers = [r["text"] for s in sent for r in world.responses(s.response_url)]
    assert sorted(answers) == sorted(f"{MODEL} is already on v1 (rolled back by <@{rolled_by}>, {AT}). "
                                     "Nothing changed." for _ in range(9))


def test_a_roll_back_button_drawn_before_a_newer_deploy_is_refused_with_what_changed(world, live_v2):
    approved(world, 3)
    world.command(f"deploy {MODEL} v3", ELI)
    world.ops.join()
    sent = world.click(ActionId.rollback, live_v2, OMAR)

    assert [r["text"] for r in world.responses(sent.response_url)] == [
        f"Production of {MODEL} changed since this was asked: {MODEL} v2 stopped serving when <@{ELI}> "
        f"put v3 in production ({AT}). Nothing was rolled back."]
    assert _versions(world) == {1: VersionStatus.archived, 2: VersionStatus.archived, 3: VersionStatus.production}
    assert _events(world, "version.rolled_back") == []
    assert len(_events(world, "rollback.refused")) == 1


def test_rollback_command_names_its_target_and_is_said_already_done_when_repeated(world, live_v2):
    first = world.command(f"rollback {MODEL} --to v1", OMAR)
    again = world.command(f"rollback {MODEL} v1", OMAR)
    typo = world.command(f"rollback {MODEL} --to one", OMAR)

    assert first.body["text"] == f"Rolled back by <@{OMAR}>, {AT}: {MODEL} v1 is live again, v2 stopped."
    assert again.body["text"] == ALREADY_ON_V1
    assert typo.body["text"] == ("'one' is not a version number like 2 or v2. Usage: "
                                 "`/flywheel rollback MODEL [--to VERSION]`")
    assert len(_events(world, "version.rolled_back")) == 1


@pytest.fixture
def signoff_request(world):
    """v2 submitted for sign-off; the request in the risk channel with its Approve button."""
    v1 = json.loads((world.folder / "v1.json").read_text())
    with world.db.session() as s:
        version = registry.register_version(session=s, model_key=MODEL, created_by=ELI, artifact_uri=v1["uri"],
                                            artifact_sha256=v1["sha256"], metrics=v1["metrics"],
                                            train_end=NOW - WEEK, now=NOW)
        governance.submit_for_review(session=s, version=version, by=ELI, now=NOW)
    compare_with_production(db=world.db, model_key=MODEL, number=2, window_start=NOW - WEEK, window_end=NOW,
                            artifacts_dir=world.folder / "artifacts")
    world.ops.notifier.signoff_requested(MODEL, 2)
    return world.posted("C0RISK", f"Sign-off requested: {MODEL} v2")


def _signers(world) -> list[tuple[str, Decision]]:
    with world.db.read() as s:
        return [(o.person, o.decision) for o in s.query(SignOff).order_by(SignOff.id)]


def test_an_approve_drawn_before_a_rejection_is_refused_with_what_changed(world, signoff_request):
    value = _button(world, signoff_request, ActionId.approve)
    world.command(f"reject {MODEL} v2 recall drops on new cards", NOOR)
    sent = world.click(ActionId.approve, signoff_request, RITA, value=value)

    assert [r["text"] for r in world.responses(sent.response_url)] == [
        f"{MODEL} v2 is no longer waiting for sign-off: {MODEL} v2 was rejected by <@{NOOR}>, {AT} "
        '("recall drops on new cards"). Your sign-off was not recorded.']
    assert _versions(world)[2] == VersionStatus.rejected
    assert _signers(world) == [(NOOR, Decision.reject)]


def test_an_approve_drawn_before_the_deploy_is_refused_with_what_changed(world, signoff_request):
    value = _button(world, signoff_request, ActionId.approve)
    for signer in (NOOR, RITA):
        world.command(f"approve {MODEL} v2", signer)
    world.command(f"deploy {MODEL} v2", ELI)
    sent = world.click(ActionId.approve, signoff_request, RITA, value=value)

    assert [r["text"] for r in world.responses(sent.response_url)] == [
        f"{MODEL} v2 is no longer waiting for sign-off: {MODEL} v2 is live (deployed by <@{ELI}>, {AT}). "
        "Your sign-off was not recorded."]
    assert _signers(world) == [(NOOR, Decision.approve), (RITA, Decision.approve)]


def test_a_deploy_drawn_before_a_rollback_is_refused_with_what_changed(world):
    approved(world, 2)
    world.ops.notifier.approved(MODEL, 2)
    ready = world.posted("C0ML", f"{MODEL} v2 is approved")
    value = _button(world, ready, ActionId.deploy)  # drawn while v2 was approved
    world.command(f"deploy {MODEL} v2", ELI)
    world.command(f"rollback {MODEL} --to v1", OMAR)
    sent = world.click(ActionId.deploy, ready, ELI, value=value)

    assert [r["text"] for r in world.responses(sent.response_url)] == [
        f"{MODEL} v2 is no longer approved: {MODEL} v2 stopped serving when <@{OMAR}> put v1 in "
        f"production ({AT}). Nothing was deployed."]
    assert _versions(world) == {1: VersionStatus.production, 2: VersionStatus.archived}


def test_a_slack_retry_of_a_command_acts_once_and_answers_once(world, live_v2):
    """Without a version the command returns to the previous one, so a retry run again would roll forward."""
    body = command_body("/flywheel", f"rollback {MODEL}", user_id=OMAR, channel_id="C0OPS",
                        response_url=world.fake.response_url())
    first = world.send(body, "application/x-www-form-urlencoded")
    retry = world.send(body, "application/x-www-form-urlencoded",
                       headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})

    assert first.json()["text"] == f"Rolled back by <@{OMAR}>, {AT}: {MODEL} v1 is live again, v2 stopped."
    assert (retry.status_code, retry.text) == (200, "")
    assert _versions(world) == {1: VersionStatus.production, 2: VersionStatus.archived}
    assert len(_events(world, "version.rolled_back")) == 1
    with world.db.read() as s:
        assert s.query(SlackRequest).count() == 2  # the deploy and the rollback, each claimed once


def test_the_same_click_payload_twice_acts_once_and_answers_once(world, live_v2):
    response_url = world.fake.response_url()
    payload = block_action(ActionId.rollback, _button(world, live_v2, ActionId.rollback), user_id=OMAR,
                           channel_id=live_v2[0], message_ts=live_v2[1], response_url=response_url,
                           message_blocks=world.fake.messages[live_v2]["blocks"])
    sent = [world.send(action_body(payload), "application/x-www-form-urlencoded") for _ in range(2)]
    world.ops.join()

    assert [(s.status_code, s.text) for s in sent] == [(200, "")] * 2
    assert len(_events(world, "version.rolled_back")) == 1
    assert world.responses(response_url) == []  # no second answer: neither "already on v1" nor anything else
    assert len([c for c in world.fake.calls_to("chat.update") if c.params.get("ts") == live_v2[1]]) == 1
    assert _rollback_notices(world) == 1
