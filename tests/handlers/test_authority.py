"""Authority is per project, through Slack's wire format: two projects with different people.

card-fraud (the fraud world): Dana business, Eli and Noor ML engineers, Rita risk manager, Omar IT ops.
loans (a second team's, applied from its own spec): Lena its ML engineer, Noor its risk manager, Eli only
a business reader there.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.ids import ActionId
from store import registry
from bot.services.specs import apply_spec
from store.models import Alert, AlertState, AuditEvent, WorkItem
from jobs.spec import load_spec
from tests.support.projects import SPEC, write_project
from jobs.monitor import check_model
from tests.support.slack_world import MODEL, NOW

ELI, NOOR, LENA = "U0ML0001", "U0ML0002", "U0LOAN01"
LOANS_PEOPLE = """people:
  - {{slack_id: U0LOAN01, name: Lena, roles: [ml_engineer]}}
  - {{slack_id: U0ML0002, name: Noor, roles: [risk_manager, business]}}
  - {{slack_id: U0ML0001, name: Eli, roles: [business]}}
  - {{slack_id: U0BIZ001, name: Dana, roles: [business]}}
"""


def _apply_loans(world, tmp_path, people: str = LOANS_PEOPLE) -> None:
    spec = SPEC[:SPEC.index("people:")] + people + SPEC[SPEC.index("channels:"):]
    spec = spec.replace("owner: U0ML0001", "owner: U0LOAN01")
    path = write_project(tmp_path)
    path.write_text(spec.format(project="loans", model="default-risk", description="Scores loan applications",
                                amount_alert=20_000))
    with world.db.session() as s:
        apply_spec(session=s, loaded=load_spec(path))


def _refusals(world, actor: str) -> list[tuple[str, str]]:
    with world.db.read() as s:
        return [(e.action, e.details.get("reason", "")) for e in s.execute(
            select(AuditEvent).where(AuditEvent.actor == actor, AuditEvent.action.like("%.refused"))
            .order_by(AuditEvent.seq)).scalars()]


def test_an_engineer_of_another_project_can_do_nothing_to_this_one(world, tmp_path):
    _apply_loans(world, tmp_path)
    none_there = "on Card fraud detection; you have none there."
    expected = {
        f"retrain {MODEL}": f"Retraining {MODEL} needs the ML engineer role {none_there}",
        f"deploy {MODEL} 1": f"Deploying {MODEL} needs the ML engineer role {none_there}",
        f"rollback {MODEL}": f"Rolling back {MODEL} needs the IT operations or ML engineer role {none_there}",
        f"evaluate {MODEL} v1": f"Comparing {MODEL} v1 with production needs the ML engineer role {none_there}",
        f"snooze {MODEL} 4h": f"Snoozing the alerts of {MODEL} needs a role {none_there}",
        "subscribe ml_engineer <#C0ML> card-fraud": "Choosing where card-fraud's alerts go (its owner <@U0ML0001> "
                                                    f"can) needs the admin role {none_there}",
    }
    for command, refusal in expected.items():
        assert world.command(command, LENA).body["text"] == refusal, command
    with world.db.read() as s:
        assert s.execute(select(WorkItem)).scalars().all() == []
        assert registry.production_version(session=s, model=registry.get_model(session=s, key=MODEL)).number == 1
    world.ops.join()  # queued audit events written
    refused = _refusals(world, LENA)
    # A snooze's refusal is audited through the queue of quick writes, so it may land after the next command's.
    assert sorted(a for a, _ in refused) == sorted(["retrain.refused", "deploy.refused", "rollback.refused",
                                                    "evaluate.refused", "alert.snooze.refused", "subscribe.refused"])
    assert all("Card fraud detection" in reason for _, reason in refused)


def test_an_alert_click_from_someone_without_a_role_there_is_refused_and_changes_nothing(world, tmp_path):
    _apply_loans(world, tmp_path)
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    alert = world.posted("C0ML", f"Input drift on {MODEL} v1")
    refused = world.click(ActionId.acknowledge, alert, LENA)
    assert [r["text"] for r in world.responses(refused.response_url)] == [
        "Acknowledging this alert needs a role on Card fraud detection; you have none there."]
    with world.db.read() as s:
        assert s.execute(select(Alert.state).where(Alert.message_ts == alert[1])).scalar_one() == AlertState.open
    assert [a for a, _ in _refusals(world, LENA)] == ["alert.acknowledge.refused"]
    accepted = world.click(ActionId.acknowledge, alert, NOOR)  # an engineer of this project
    world.responses(accepted.response_url)
    with world.db.read() as s:
        assert s.execute(select(Alert.state).where(Alert.message_ts == alert[1])).scalar_one() == \
            AlertState.acknowledged


def test_a_role_on_one_project_is_not_a_role_on_another(world, tmp_path):
    _apply_loans(world, tmp_path)
    # Eli is card-fraud's ML engineer and only a business reader of loans.
    assert world.command("retrain default-risk", ELI).body["text"] == (
        "Retraining default-risk needs the ML engineer role on Loan defaults; you have business there.")
    assert world.command(f"retrain {MODEL} drift", ELI).body["text"].startswith(f"Retraining {MODEL}")
    assert world.command("retrain default-risk", LENA).body["text"].startswith("Retraining default-risk")
    assert world.command("whoami", NOOR).body["text"] == (
        "You are Noor: ML engineer on card-fraud; business, risk manager on loans.")


def test_applying_one_projects_spec_changes_that_projects_grants_only(world, tmp_path):
    _apply_loans(world, tmp_path)
    _apply_loans(world, tmp_path, people=LOANS_PEOPLE.replace(
        "  - {{slack_id: U0ML0001, name: Eli, roles: [business]}}\n", "").replace(
        "roles: [risk_manager, business]", "roles: [business]"))
    with world.db.read() as s:
        fraud, loans = (registry.get_project(session=s, key=k) for k in ("card-fraud", "loans"))
        eli, noor = (registry.get_person(session=s, slack_id=p) for p in (ELI, NOOR))
        assert (eli.roles_on(fraud.id), eli.roles_on(loans.id)) == (["ml_engineer"], [])
        assert (noor.roles_on(fraud.id), noor.roles_on(loans.id)) == (["ml_engineer"], ["business"])
        changes = s.execute(select(AuditEvent.details).where(AuditEvent.action == "spec.applied")
                            .order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()["changes"]
    assert changes == ["took the business role on loans from Eli", "took the risk_manager role on loans from Noor"]
