"""The `webhook` deploy backend: deploys and rollbacks are recorded before the ack and run by the worker;
production moves only when the team's system said yes, and IT operations hear of every move."""

import json
import threading
from datetime import timedelta

import pytest
from pydantic import SecretStr

from bot.ids import ActionId
from bot.services.releases import Deploy

from jobs.backends.signing import verify_signature
from jobs.retrain import compare_with_production
from store import governance, registry
from store.errors import Forbidden
from store.models import Decision, VersionStatus, WorkItem, WorkState
from tests.support.fleet import top_level
from tests.support.backend_world import WEBHOOK_SECRET, actor, make_worker, outbox_messages, set_spec
from tests.support.receiver import Answer, Receiver
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import ELI, MODEL, NOOR, NOW, OMAR, RITA, World, register_fraud_model


def approved_v2(db, fraud_data) -> None:
    v1 = json.loads((fraud_data / "v1.json").read_text())
    with db.session() as s:
        v2 = registry.register_version(session=s, model_key=MODEL, created_by=ELI, artifact_uri=v1["uri"],
                                       artifact_sha256=v1["sha256"], metrics=v1["metrics"], now=NOW)
        governance.submit_for_review(session=s, version=v2, by=ELI, now=NOW)
        for signer in (NOOR, RITA):
            governance.sign_off(session=s, version=v2, person=registry.get_person(session=s, slack_id=signer),
                                decision=Decision.approve, now=NOW)


def production(db) -> str:
    with db.session() as s:
        return registry.production_version(session=s, model=registry.get_model(session=s, key=MODEL)).label


def work_items(db) -> list[tuple[str, WorkState]]:
    with db.session() as s:
        return [(i.kind, i.state) for i in s.query(WorkItem).order_by(WorkItem.id)]


@pytest.fixture
def deploying(db, fraud_data, tmp_path):
    register_fraud_model(db, fraud_data)
    approved_v2(db, fraud_data)
    with Receiver() as serving:
        set_spec(db, deploy={"backend": "webhook", "url": f"{serving.url}/deploy"})
        worker, ops = make_worker(db, fraud_data, tmp_path / "outbox")
        yield serving, worker, ops, tmp_path / "outbox"


def test_a_deploy_moves_production_only_after_the_webhook_said_yes_and_it_ops_hear_of_it(db, deploying):
    serving, worker, ops, outbox = deploying
    reply = ops.releases.deploy(actor(db, ELI), MODEL, 2)
    assert reply == Deploy(f"Deploying {MODEL} v2 through its deploy webhook. IT operations will be told when it is "
                           "live; until then production stays v1.", Deploy.ASKED)
    assert production(db) == "v1" and work_items(db) == [("deploy", WorkState.queued)]
    assert ops.releases.deploy(actor(db, NOOR), MODEL, 2) == \
        Deploy(f"A deploy of {MODEL} v2 is already under way (asked by <@{ELI}>).", Deploy.ALREADY_ASKED)

    assert worker.drain_work() == 1
    got = serving.requests[0]
    assert verify_signature(WEBHOOK_SECRET, got.header("X-Flywheel-Timestamp"), got.body,
                            got.header("X-Flywheel-Signature"))
    assert got.json()["event"] == "deploy" and got.json()["version"] == 2 and got.json()["previous_version"] == "v1"
    assert production(db) == "v2" and work_items(db) == [("deploy", WorkState.done)]
    with db.session() as s:
        assert registry.get_version(session=s, model_key=MODEL, number=2).deployed_by == ELI
    live = [m for m in outbox_messages(outbox) if m["persona"] == "it_ops"]
    assert [(m["channel"], m["blocks"][0]["text"]["text"]) for m in live] == [("C0OPS", f"{MODEL} v2 is live")]

    reply = ops.releases.rollback(actor(db, OMAR), MODEL)
    assert reply.startswith(f"Rolling back {MODEL} to v1 through its deploy webhook.")
    assert production(db) == "v2"
    worker.drain_work()
    back = serving.requests[1].json()
    assert (back["event"], back["version"], back["previous_version"]) == ("rollback", 1, "v2")
    assert production(db) == "v1"
    it_ops = [m for m in outbox_messages(outbox) if m["persona"] == "it_ops"]
    assert len(it_ops) == 2 and it_ops[1]["channel"] == "C0OPS" and "v1" in it_ops[1]["text"]


def test_when_the_deploy_webhook_fails_nothing_moves_and_the_deployer_is_told(db, deploying):
    serving, worker, ops, outbox = deploying
    serving.default = Answer(502, {"error": "load balancer unhappy"})
    ops.releases.deploy(actor(db, ELI), MODEL, 2)
    worker.drain_work()
    assert len(serving.requests) == 3  # 502 is worth retrying
    assert production(db) == "v1"
    with db.session() as s:
        assert registry.get_version(session=s, model_key=MODEL, number=2).status == VersionStatus.approved
    assert work_items(db) == [("deploy", WorkState.failed)]
    told = [m for m in outbox_messages(outbox) if m["kind"] == "work_failed"]
    assert len(told) == 1 and told[0]["channel"] == "C0ML"
    assert told[0]["text"] == (f"<@{ELI}>: deploying {MODEL} v2 failed, so production is unchanged. The deploy "
                               f"webhook at {serving.url}/deploy answered 502 Bad Gateway: load balancer unhappy "
                               "(3 attempts)")
    assert not any(m["persona"] == "it_ops" for m in outbox_messages(outbox))

    # A refusal is final at once, and the deploy can be asked again afterwards.
    serving.default = Answer(409, {"error": "a deploy is already running"})
    ops.releases.deploy(actor(db, ELI), MODEL, 2)
    worker.drain_work()
    assert len(serving.requests) == 4 and production(db) == "v1"


def test_a_failed_rollback_leaves_production_where_it_was(db, deploying):
    serving, worker, ops, outbox = deploying
    ops.releases.deploy(actor(db, ELI), MODEL, 2)
    worker.drain_work()
    serving.default = Answer(500)
    ops.releases.rollback(actor(db, OMAR), MODEL)
    worker.drain_work()
    assert production(db) == "v2"
    told = [m for m in outbox_messages(outbox) if m["kind"] == "work_failed"]
    assert told[-1]["text"].startswith(f"<@{OMAR}>: rolling back {MODEL} to v1 failed, so production is unchanged.")


def test_governance_still_answers_before_the_ack(db, deploying, fraud_data):
    serving, worker, ops, outbox = deploying
    v1 = json.loads((fraud_data / "v1.json").read_text())
    with db.session() as s:
        registry.register_version(session=s, model_key=MODEL, created_by=ELI, artifact_uri=v1["uri"],
                                  artifact_sha256=v1["sha256"], train_end=NOW - timedelta(days=7), now=NOW)
    compare_with_production(db=db, model_key=MODEL, number=3, window_start=NOW - timedelta(days=7), window_end=NOW,
                            artifacts_dir=fraud_data / "artifacts")
    with pytest.raises(governance.GovernanceBlocked) as blocked:
        ops.releases.deploy(actor(db, ELI), MODEL, 3)
    assert str(blocked.value).startswith(f"{MODEL} v3 can't be deployed yet: it hasn't been submitted for sign-off.")
    with pytest.raises(Forbidden, match="Deploying fraud-detector needs the ML engineer role on"):
        ops.releases.deploy(actor(db, OMAR), MODEL, 2)
    assert work_items(db) == [] and serving.requests == []


def test_the_deploy_button_says_who_asked_and_a_second_click_is_told_it_is_under_way(db, fraud_data):
    """Through Slack: the clicked message says "Deploy asked by", not "Deployed", while the team's system
    works; someone clicking another Deploy button meanwhile is told privately and that message keeps its
    buttons."""
    register_fraud_model(db, fraud_data)
    approved_v2(db, fraud_data)
    answered = threading.Event()

    def slow_deploy(_request):
        answered.wait(30)
        return Answer(200)

    with Receiver() as system, FakeSlack() as fake:
        system.default = slow_deploy
        set_spec(db, deploy={"backend": "webhook", "url": f"{system.url}/deploy"})
        world = World(db, fraud_data, fake, FLYWHEEL_WEBHOOK_SECRET=SecretStr(WEBHOOK_SECRET),
                      FLYWHEEL_BACKEND_BACKOFF=0)
        try:
            world.ops.notifier.approved(MODEL, 2)
            world.ops.notifier.approved(MODEL, 2)  # posted twice (a second approval round, say): two buttons
            first, other = [("C0ML", ts) for ts, m in top_level(fake, "C0ML")
                            if m["blocks"][0]["text"]["text"] == f"{MODEL} v2 is approved"]

            world.click(ActionId.deploy, first, ELI)
            second = world.click(ActionId.deploy, other, NOOR)  # while the team's system still works on it
            answered.set()
            world.ops.join()

            settled = json.dumps(fake.messages[first]["blocks"])
            assert f"Deploy asked by <@{ELI}>. Deploying {MODEL} v2 through its deploy webhook" in settled
            assert "Deployed by" not in settled
            assert [r["text"] for r in world.responses(second.response_url)] == \
                [f"A deploy of {MODEL} v2 is already under way (asked by <@{ELI}>)."]
            assert any(b["type"] == "actions" for b in fake.messages[other]["blocks"])
            assert production(db) == "v2" and work_items(db) == [("deploy", WorkState.done)]
            assert len(system.requests) == 1
        finally:
            answered.set()
            world.close()
        assert fake.invalid == []
