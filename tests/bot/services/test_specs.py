import pytest

from store import registry
from bot.services.specs import apply_spec
from store.errors import Conflict
from store.models import AuditEvent, BlueprintStep, Model, Person, Project
from jobs.spec import SpecError, load_spec
from tests.support.projects import write_project


def _apply(db, path):
    with db.session() as s:
        return apply_spec(session=s, loaded=load_spec(path), actor="U0ML0001")


def test_apply_creates_everything_and_twice_changes_nothing(db, tmp_path):
    path = write_project(tmp_path)
    first = _apply(db, path)
    assert "created project loans" in first.changes and "created model default-risk" in first.changes
    with db.session() as s:
        events = s.query(AuditEvent).count()
        project = registry.get_project(session=s, key="loans")
        assert (project.name, project.risk_tier.value, project.channel_for("business")) == \
            ("Loan defaults", "medium", "C0BIZ")
        assert [(st.name, st.role, st.quorum) for st in project.blueprint.steps] == \
            [("technical validation", "ml_engineer", 1)]
        model = registry.get_model(session=s, key="default-risk")
        assert model.spec["drift"]["window"] == "7d" and model.spec_dir == str(tmp_path.resolve())
    second = _apply(db, path)
    assert not second.changed
    with db.session() as s:
        assert s.query(AuditEvent).count() == events  # no change, nothing audited


def test_a_spec_stored_before_an_upgrade_added_a_key_is_not_reported_as_changed(db, tmp_path):
    """A newer Flywheel adds a setting with a default (like `deploy`); applying the unchanged file again
    stores the new key quietly instead of reporting every model as updated."""
    path = write_project(tmp_path)
    _apply(db, path)
    with db.session() as s:
        model = registry.get_model(session=s, key="default-risk")
        older = {key: value for key, value in model.spec.items() if key != "deploy"}
        assert older != model.spec
        model.spec = older
    again = _apply(db, path)
    assert not again.changed, again.changes
    with db.session() as s:
        assert registry.get_model(session=s, key="default-risk").spec["deploy"] == {"backend": "registry", "url": None}
    edited = _apply(db, write_project(tmp_path, description="Scores every loan application"))
    assert edited.changes == ["updated model default-risk: description, spec"]


def test_an_edited_file_updates_the_registry(db, tmp_path):
    _apply(db, write_project(tmp_path))
    edited = _apply(db, write_project(tmp_path, description="Scores every loan application"))
    assert edited.changes == ["updated model default-risk: description, spec"]
    with db.session() as s:
        assert registry.get_model(session=s, key="default-risk").description == "Scores every loan application"
        audit = s.query(AuditEvent).filter_by(action="spec.applied").order_by(AuditEvent.seq.desc()).first()
        assert audit.details["changes"] == edited.changes


def test_a_bad_file_writes_nothing(db, tmp_path):
    path = write_project(tmp_path)
    path.write_text(path.read_text().replace("numeric: [income, debt]", "numeric: [income, dbet]"))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert "unknown column 'dbet' (did you mean 'debt'?)" in str(error.value)
    with db.session() as s:
        assert s.query(Project).count() == 0 and s.query(Person).count() == 0


def test_a_model_key_cannot_move_between_projects(db, tmp_path):
    _apply(db, write_project(tmp_path / "a"))
    with pytest.raises(Conflict, match="belongs to project loans"):
        _apply(db, write_project(tmp_path / "b", project="other"))
    with db.session() as s:  # the failed apply left nothing half-written
        assert [p.key for p in s.query(Project)] == ["loans"]
        assert s.query(Model).one().project.key == "loans"


def test_a_signed_step_cannot_be_removed(db, tmp_path):
    from store import governance
    from store.models import Decision

    path = write_project(tmp_path)
    one_step = path.read_text()
    path.write_text(one_step.replace("    - {name: technical validation, role: ml_engineer}\n",
                                     "    - {name: technical validation, role: ml_engineer}\n"
                                     "    - {name: risk review, role: risk_manager}\n"))
    _apply(db, path)
    with db.session() as s:
        v1 = registry.register_version(session=s, model_key="default-risk", created_by="U0ML0001", artifact_uri="x")
        governance.submit_for_review(session=s, version=v1, by="U0ML0001")
        for signer in ("U0ML0002", "U0RISK01"):
            governance.sign_off(session=s, version=v1, person=registry.require_person(session=s, slack_id=signer),
                                decision=Decision.approve)
    path.write_text(one_step)
    with pytest.raises(Conflict, match="'risk review' has 1 sign-offs recorded against it"):
        _apply(db, path)
    with db.session() as s:
        assert [st.name for st in s.query(BlueprintStep).order_by(BlueprintStep.position)] == \
            ["technical validation", "risk review"]


def _channels(db) -> dict[str, tuple[str, str]]:
    with db.read() as s:
        return {c.persona: (c.channel, c.delivery.value) for c in registry.get_project(session=s, key="loans").channels}


def _subscribe(db, persona: str, channel: str, delivery: str | None = None) -> None:
    """What `/flywheel subscribe` writes."""
    from store.status import set_channel

    with db.session() as s:
        set_channel(session=s, project_key="loans", persona=persona, channel=channel, actor="U0BIZ001",
                    delivery=delivery)


def test_channels_chosen_in_slack_survive_applying_the_same_spec_again(db, tmp_path):
    path = write_project(tmp_path)
    _apply(db, path)
    _subscribe(db, "business", "C0BIZDIGEST", "digest")
    _subscribe(db, "it_ops", "C0OPS")  # a persona the spec names no channel for
    again = _apply(db, path)
    assert not again.changed
    assert _channels(db) == {"business": ("C0BIZDIGEST", "digest"), "it_ops": ("C0OPS", "immediate"),
                             "ml_engineer": ("C0ML", "immediate"), "risk_manager": ("C0RISK", "immediate")}


def test_a_channel_the_spec_changes_follows_the_spec_and_keeps_its_delivery(db, tmp_path):
    path = write_project(tmp_path)
    _apply(db, path)
    _subscribe(db, "business", "C0BIZDIGEST", "digest")
    path.write_text(path.read_text().replace("business: C0BIZ,", "business: C0BIZNEW,")
                    .replace("risk_manager: C0RISK", "it_ops: C0OPS"))
    edited = _apply(db, path)
    assert edited.changes == ["set the business channel of loans to C0BIZNEW", "set the it_ops channel of loans to C0OPS",
                              "removed the risk_manager channel of loans"]
    assert _channels(db) == {"business": ("C0BIZNEW", "digest"), "it_ops": ("C0OPS", "immediate"),
                             "ml_engineer": ("C0ML", "immediate")}
    assert not _apply(db, path).changed


def test_a_persona_dropped_from_the_spec_keeps_a_channel_chosen_in_slack(db, tmp_path):
    path = write_project(tmp_path)
    _apply(db, path)
    _subscribe(db, "risk_manager", "C0RISKREVIEW")
    path.write_text(path.read_text().replace(", risk_manager: C0RISK", ""))
    _apply(db, path)
    assert _channels(db)["risk_manager"] == ("C0RISKREVIEW", "immediate")
    path.write_text(path.read_text().replace("ml_engineer: C0ML", "ml_engineer: C0ML, risk_manager: C0RISK"))
    assert "set the risk_manager channel of loans to C0RISK" in _apply(db, path).changes  # the spec names it again
    assert _channels(db)["risk_manager"] == ("C0RISK", "immediate")
