"""The Slack app end to end: signed requests over HTTP in, Web API calls to a fake Slack out."""

import json
import threading
import time

import pytest

from bot.blocks.dates import when
from bot.blocks.modals import REASON_REQUIRED
from bot.ids import ActionContext, ActionId, BlockId, CallbackId
from jobs.monitor import check_model
from store import audit, registry
from store.models import AuditEvent, SignOff, VersionStatus, WorkItem
from tests.support.slack_fake import action_body, block_action
from tests.support.slack_world import DANA, ELI, MODEL, NOOR, NOW, OMAR, RITA, SECRET


def _versions(world):
    with world.db.session() as s:
        return {v.number: v.status for v in registry.get_model(session=s, key=MODEL).versions}


def _retrained(world):
    """Eli retrains from Slack; returns the candidate message's (channel, ts)."""
    sent = world.command(f"retrain {MODEL} card age drifted", ELI)
    assert sent.status == 200 and sent.body["text"].startswith(f"Retraining {MODEL} (card age drifted)")
    world.ops.join()
    return world.posted("C0ML", f"{MODEL} v2 is ready for review")


@pytest.mark.charts
def test_the_fraud_story_through_slack(world):
    # The weekly check posts the drift alert with its charts in the thread.
    checked = check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW)
    world.ops.notifier.on_checks(checked)
    alert = world.posted("C0ML", f"Input drift on {MODEL} v1")
    assert world.fake.uploads and all(u.thread_ts == alert[1] for u in world.fake.uploads.values()
                                      if u.channel == "C0ML")

    # Eli clicks Retrain on the alert: acknowledged at once, the candidate arrives in the channel.
    assert world.click(ActionId.retrain, alert, ELI).status == 200
    world.ops.join()
    thread = [m["text"] for m in world.fake.thread(*alert)]
    assert any(t.startswith(f"Retraining {MODEL}") and f"<@{ELI}>" in t for t in thread)
    assert any(f"{MODEL} v2 is ready for review" in t for t in thread)
    candidate = world.posted("C0ML", f"{MODEL} v2 is ready for review")

    # Submit for sign-off: the message settles, the risk channel gets the request.
    world.click(ActionId.submit_for_signoff, candidate, ELI)
    world.ops.join()
    assert not any(b["type"] == "actions" for b in world.fake.messages[candidate]["blocks"])
    request = world.posted("C0RISK", f"Sign-off requested: {MODEL} v2")

    # Eli tries to deploy too early: the governance blocker names what is missing and who was asked.
    blocked = world.command(f"deploy {MODEL} 2", ELI)
    assert blocked.body["text"].startswith(f"{MODEL} v2 can't be deployed yet. Waiting for: technical "
                                           "validation: 0 of 1, risk review: 0 of 1.")
    # Only who may sign now: Rita's risk review waits for Noor's technical validation.
    assert f"<@{NOOR}>" in blocked.body["text"] and f"<@{RITA}>" not in blocked.body["text"]

    # Noor and Rita approve from the request; the last approval settles it and offers the deploy.
    world.click(ActionId.approve, request, NOOR)
    world.ops.join()
    world.click(ActionId.approve, request, RITA)
    world.ops.join()
    assert _versions(world)[2] == VersionStatus.approved
    settled = world.fake.messages[request]["blocks"]
    # No decision buttons left; the evidence (model card, comparison) stays with the decision.
    assert [e["action_id"] for b in settled if b["type"] == "actions" for e in b["elements"]] == [
        ActionId.model_card, ActionId.view_details]
    assert f"Approved by <@{RITA}> (risk review)" in json.dumps(settled)
    ready = world.posted("C0ML", f"{MODEL} v2 is approved")

    world.click(ActionId.deploy, ready, ELI)
    world.ops.join()
    assert _versions(world) == {1: VersionStatus.archived, 2: VersionStatus.production}
    live = world.posted("C0OPS", f"{MODEL} v2 is live")
    assert f"after sign-offs by <@{NOOR}> (technical validation) and <@{RITA}> (risk review)" in \
        json.dumps(world.fake.messages[live]["blocks"])

    # Omar rolls back from the deployment notice.
    world.click(ActionId.rollback, live, OMAR)
    world.ops.join()
    assert _versions(world) == {1: VersionStatus.production, 2: VersionStatus.archived}
    world.posted("C0OPS", f"{MODEL} rolled back to v1")

    # The drift alert's thread tells the whole story in order, for whoever was watching that alert.
    story = [m["text"] for m in sorted(world.fake.thread(*alert), key=lambda m: float(m["ts"]))]
    told = [next(i for i, t in enumerate(story) if t.startswith(start)) for start in (
        f"Retraining {MODEL}", f"{MODEL} v2 is ready for review",
        f"Sign-off on {MODEL} v2: Approved by <@{NOOR}> (technical validation)",
        f"Sign-off on {MODEL} v2: Approved by <@{RITA}> (risk review)",
        f"{MODEL} v2 has every sign-off its blueprint asks for",
        f"{MODEL} v2 is live, deployed by <@{ELI}>",
        f"{MODEL} v2 was rolled back by <@{OMAR}>: v1 is live again.")]
    assert told == sorted(told)
    with world.db.session() as s:
        assert audit.verify(session=s).whole
        actions = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.seq)]
    for expected in ("work.retrain.requested", "version.submitted", "deploy.refused", "signoff.approve",
                     "version.approved", "version.deployed", "version.rolled_back"):
        assert expected in actions


def test_refusals_say_what_would_work_and_are_audited(world):
    wrong_role = world.command(f"retrain {MODEL}", DANA)
    assert wrong_role.body["text"] == (f"Retraining {MODEL} needs the ML engineer role on Card fraud detection; "
                                       "you have business there.")
    candidate = _retrained(world)
    world.click(ActionId.submit_for_signoff, candidate, ELI)
    world.ops.join()
    own = world.command(f"approve {MODEL} 2", ELI)
    assert own.body["text"] == "You can't sign off v2: it was retrained at your request. Another ML engineer or a " \
                               "risk manager can."
    risk_first = world.command(f"approve {MODEL} v2", RITA)
    assert "waiting for technical validation: 0 of 1. Signing technical validation needs the ML engineer role" in \
        risk_first.body["text"]
    world.command(f"reject {MODEL} 2 precision too low on small merchants", NOOR)
    rejected = world.command(f"deploy {MODEL} 2", ELI)
    assert rejected.body["text"] == f'{MODEL} v2 was rejected by <@{NOOR}>, {when(NOW)} ("precision too low on ' \
                                    "small merchants\"), so it can't be deployed."
    with world.db.session() as s:
        refused = [e.action for e in s.query(AuditEvent) if e.action.endswith(".refused")]
    assert {"retrain.refused", "signoff.approve.refused", "deploy.refused"} <= set(refused)
    assert _versions(world)[2] == VersionStatus.rejected


def test_reject_needs_a_reason_in_the_modal(world):
    candidate = _retrained(world)
    world.click(ActionId.submit_for_signoff, candidate, ELI)
    world.ops.join()
    request = world.posted("C0RISK", f"Sign-off requested: {MODEL} v2")
    world.click(ActionId.reject, request, NOOR)
    opened = world.fake.calls_to("views.open")
    assert opened, "the reject button opens a modal"
    view = opened[-1].params["view"]
    metadata = view["private_metadata"]
    empty = world.submit(CallbackId.reject_modal, {BlockId.reject_reason: {"reason": "   "}}, NOOR, metadata)
    assert empty.json() == {"response_action": "errors", "errors": {BlockId.reject_reason: REASON_REQUIRED}}
    assert _versions(world)[2] == VersionStatus.in_review
    done = world.submit(CallbackId.reject_modal, {BlockId.reject_reason: {"reason": "recall on new cards only"}},
                        NOOR, metadata)
    assert done.status_code == 200 and done.text == ""
    world.ops.join()
    assert _versions(world)[2] == VersionStatus.rejected
    assert 'Rejected by <@U0ML0002> (technical validation)' in json.dumps(world.fake.messages[request]["blocks"])


def test_duplicate_deliveries_never_double_an_action(world):
    checked = check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW)
    world.ops.notifier.on_checks(checked)
    alert = world.posted("C0ML", f"Input drift on {MODEL} v1")
    world.click(ActionId.retrain, alert, ELI)
    world.click(ActionId.retrain, alert, ELI, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
    world.ops.join()
    with world.db.session() as s:
        assert s.query(WorkItem).count() == 1
    assert set(_versions(world)) == {1, 2}
    candidate = world.posted("C0ML", f"{MODEL} v2 is ready for review")
    world.click(ActionId.submit_for_signoff, candidate, ELI)
    world.ops.join()
    request = world.posted("C0RISK", f"Sign-off requested: {MODEL} v2")
    world.click(ActionId.approve, request, NOOR)
    again = world.click(ActionId.approve, request, NOOR)
    world.ops.join()
    assert "already" in world.responses(again.response_url)[0]["text"]
    world.command(f"approve {MODEL} 2", RITA)
    world.ops.join()
    with world.db.session() as s:
        assert s.query(SignOff).count() == 2
    ctx = ActionContext(model=MODEL, version=2).encode()
    ready = world.posted("C0ML", f"{MODEL} v2 is approved")
    clicks = [threading.Thread(target=world.click, args=(ActionId.deploy, ready, ELI), kwargs={"value": ctx})
              for _ in range(3)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    world.ops.join()
    with world.db.session() as s:
        assert s.query(AuditEvent).filter_by(action="version.deployed").count() == 1
    assert _versions(world)[2] == VersionStatus.production


def test_requests_that_slack_did_not_sign_are_refused(world):
    from tests.support.slack_fake import command_body

    body = command_body("/flywheel", f"status {MODEL}", user_id=ELI, response_url=world.fake.response_url())
    forged = world.send(body, "application/x-www-form-urlencoded", secret="not-the-secret")
    assert forged.status_code == 401
    stale = world.send(body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 6 * 60)
    assert stale.status_code == 401
    fresh = world.send(body, "application/x-www-form-urlencoded")
    assert fresh.status_code == 200 and fresh.json()["text"].startswith(f"{MODEL}: v1 in production")
    assert SECRET not in fresh.text


def test_a_click_altered_after_slack_signed_it_is_refused_and_changes_nothing(world):
    from tests.support.slack_fake import sign

    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    channel, ts = world.posted("C0ML", f"Input drift on {MODEL} v1")
    blocks = world.fake.messages[(channel, ts)]["blocks"]
    value = next(e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
                 if e["action_id"] == ActionId.acknowledge)
    click = block_action(ActionId.acknowledge, value, user_id=ELI, channel_id=channel, message_ts=ts,
                         response_url=world.fake.response_url(), message_blocks=blocks)
    signed = sign(action_body(click), SECRET)
    click["user"]["id"] = DANA  # someone else's click, under Eli's signature
    answer = world.send(action_body(click), "application/x-www-form-urlencoded", headers=signed)
    assert answer.status_code == 401
    world.ops.join()
    with world.db.session() as s:
        assert s.query(AuditEvent).filter(AuditEvent.action.startswith("alert.ack")).count() == 0


def test_typos_get_usage_and_suggestions(world):
    assert world.command("stauts fraud-detector", ELI).body["text"] == \
        "`stauts` isn't a Flywheel command. Did you mean `status`?"
    assert world.command("status fraud-detectr", ELI).body["text"] == \
        "No model called fraud-detectr. Did you mean fraud-detector?"
    assert world.command("approve fraud-detector", RITA).body["text"] == \
        "`approve` needs more. Usage: `/flywheel approve MODEL VERSION`"
    assert "is not a version number" in world.command("deploy fraud-detector two", ELI).body["text"]
    assert "'3 days' is not a duration" not in world.command("snooze fraud-detector 3x", ELI).body["text"]
    helped = world.command("help", RITA).body["text"]
    assert "approve MODEL VERSION" in helped and "retrain MODEL" not in helped
    assert "you're not set up in Flywheel yet" in world.command("whoami", "U0STRANGER").body["text"]


def test_app_home_is_published_per_role(world):
    response = world.event({"type": "app_home_opened", "user": RITA, "channel": "D0RISK", "tab": "home",
                            "event_ts": f"{time.time():.6f}"})
    assert response.status_code == 200
    world.ops.join()
    home = world.fake.home[RITA]
    assert home["type"] == "home" and "Card fraud detection" in json.dumps(home)


def test_health_check(world):
    assert world.http.get("/healthz").json() == {"status": "ok"}


def test_a_button_this_version_no_longer_has_is_answered_not_ignored(world):
    """A message posted by an older Flywheel keeps its buttons; a click on one that is gone gets a private
    answer (Slack would otherwise show the clicker an error) and changes nothing."""
    blocks = [{"type": "actions", "block_id": "old", "elements": [
        {"type": "button", "action_id": "flywheel.retired", "value": "x",
         "text": {"type": "plain_text", "text": "Old button"}}]}]
    response_url = world.fake.response_url()
    payload = block_action("flywheel.retired", "x", user_id=ELI, channel_id="C0ML", message_ts="1700000000.000100",
                           response_url=response_url, message_blocks=blocks)
    with world.db.read() as s:
        events = s.query(AuditEvent).count()
    assert world.send(action_body(payload), "application/x-www-form-urlencoded").status_code == 200
    assert [r["text"] for r in world.responses(response_url)] == \
        ["This button no longer does anything in this version of Flywheel."]
    assert world.ops.commands_audit.drain(timeout=30)
    with world.db.read() as s:
        assert s.query(AuditEvent).count() == events
