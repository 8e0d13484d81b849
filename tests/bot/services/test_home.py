"""App Home data per role, read from a real registry built through the store's own functions."""

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from store import governance, monitoring, registry
from bot.services.home import MAX_PROJECTS, audience, home_for
from store.models import CheckKind, Decision, Model, Person, Project, RiskTier, Verdict
from tests.support.factories import fraud_project, grant

NOW = datetime(2026, 11, 20, 14, 0)
WEEK = timedelta(days=7)
AMOUNT = {"name": "missed_fraud_amount", "label": "Fraud amount missed", "unit": "USD", "value": 18300.0,
          "baseline": 12000.0, "baseline_windows": 4, "threshold": 10000.0, "breached": True,
          "rule": "above $10,000", "history": []}
RATE = {"name": "missed_fraud_rate", "label": "Missed fraud", "unit": "rate", "value": 0.024, "baseline": 0.017,
        "baseline_windows": 4, "threshold": None, "breached": False, "rule": "25% above the 4-window baseline",
        "history": []}


def _run(s, model, kind, verdict, *, as_of=NOW, figures=None, message="", version=None):
    return monitoring.record_check_run(session=s, model=model, version=version, kind=kind,
                                       window_start=as_of - WEEK, window_end=as_of, as_of=as_of,
                                       figures=figures or {}, verdict=verdict, message=message, now=as_of)


def _v(s, n, key="fraud-detector"):
    return registry.get_version(session=s, model_key=key, number=n)


def _person(s, slack_id):
    return registry.get_person(session=s, slack_id=slack_id)


def _other_project(s, key="loans", sponsor="U0BIZ002", owner="U0ML0002"):
    """A second project without blueprint, backed by someone else, with its own model. Its owner is its
    ML engineer and its sponsor its business reader."""
    project = Project(key=key, name=f"{key.capitalize()} project", initiative="", owner=owner,
                      sponsors=[sponsor], risk_tier=RiskTier.medium)
    s.add(project)
    s.flush()
    for slack_id, role in ((owner, "ml_engineer"), (sponsor, "business")):
        if (person := _person(s, slack_id)) is not None:
            grant(person, project, role)
    model = Model(key=f"{key}-model", project=project, owner=owner, task="binary_classification")
    s.add(model)
    s.flush()
    return model


@pytest.fixture
def world(db):
    """card-fraud: v1 in production, a breaching KPI check with an open alert, v2 in review (Eli's).

    loans: another team's project, sponsored by Bea, who reads card-fraud too; Max is admin of both."""
    with db.session() as s:
        model = fraud_project(s)
        fraud = model.project
        s.add_all([grant(Person(slack_id="U0BIZ002", name="Bea"), fraud, "business"),
                   grant(Person(slack_id="U0ADMIN1", name="Max"), fraud, "admin"),
                   grant(Person(slack_id="U0TWO001", name="Tess"), fraud, "business", "it_ops")])
        s.flush()
        loans = _other_project(s).project
        grant(_person(s, "U0ADMIN1"), loans, "admin")
        v1 = registry.register_version(session=s, model_key=model.key, created_by="U0ML0001", artifact_uri="v1",
                                       now=NOW - 4 * WEEK)
        registry.adopt_as_production(session=s, version=v1, actor="U0OPS001", now=NOW - 4 * WEEK)
        _run(s, model, CheckKind.drift, Verdict.breach, as_of=NOW - WEEK, message="2 of 7 features drifted")
        _run(s, model, CheckKind.drift, Verdict.ok, message="no drift in 7 features", version=v1)
        run = _run(s, model, CheckKind.kpi, Verdict.breach, figures={"kpis": [AMOUNT, RATE]}, version=v1,
                   message="KPI breached: Fraud amount missed $18,300 (above $10,000)")
        monitoring.raise_alert(session=s, run=run, persona="business", subjects=["missed_fraud_amount"],
                               channel="C0BIZ", now=NOW)
        v2 = registry.register_version(session=s, model_key=model.key, created_by="U0ML0001", artifact_uri="v2",
                                       parent=v1, train_start=datetime(2026, 10, 1), train_end=datetime(2026, 11, 20),
                                       now=NOW)
        governance.submit_for_review(session=s, version=v2, by="U0ML0001", now=NOW)
        registry.register_version(session=s, model_key=model.key, created_by="U0ML0002", artifact_uri="v3", now=NOW)
    return db


def _home(db, slack_id):
    with db.session() as s:
        return home_for(session=s, slack_id=slack_id, now=NOW)


def test_business_sees_the_kpis_and_open_alerts_of_the_projects_they_back(world):
    home = _home(world, "U0BIZ001")
    assert (home.person_name, home.roles, home.as_of) == ("Dana", ("business",), NOW)
    [project] = home.business
    assert (project.key, project.name, project.open_alerts) == ("card-fraud", "Card fraud detection", 1)
    [model] = project.models
    assert (model.model_key, model.owner, model.verdict) == ("fraud-detector", "U0ML0001", "breach")
    assert (model.window_start, model.window_end) == (NOW - WEEK, NOW)
    amount, rate = model.kpis
    assert (amount.label, amount.unit, amount.value, amount.threshold, amount.breached, amount.rule) == \
        ("Fraud amount missed", "USD", 18300.0, 10000.0, True, "above $10,000")
    assert (rate.value, rate.baseline, rate.baseline_windows, rate.breached) == (0.024, 0.017, 4, False)
    assert home.models == home.pending_signoffs == home.governed == home.deployments == ()


def test_a_business_reader_who_backs_no_project_follows_their_projects_alerting_first(world):
    home = _home(world, "U0BIZ002")  # Bea sponsors loans, so she sees loans only
    assert [p.key for p in home.business] == ["loans"]
    assert home.business[0].models[0].verdict is None  # no KPI check has run on loans-model
    with world.session() as s:
        aardvark = _other_project(s, key="aardvark", sponsor="U0BIZ001").project
        grant(_person(s, "U0BIZ002"), aardvark, "business")
        _other_project(s, key="zebra", sponsor="U0BIZ001")  # not hers: no role on it
        registry.get_project(session=s, key="loans").sponsors = []
    home = _home(world, "U0BIZ002")
    assert [p.key for p in home.business] == ["card-fraud", "aardvark", "loans"]  # open alerts first, then by key


def test_the_ml_engineer_sees_models_they_own_with_latest_verdicts_and_unreleased_versions(world):
    home = _home(world, "U0ML0001")
    [model] = home.models
    assert (model.key, model.project_name, model.production, model.open_alerts) == \
        ("fraud-detector", "Card fraud detection", "v1", 1)
    assert [(v.kind, v.verdict, v.message) for v in model.verdicts] == [
        ("drift", "ok", "no drift in 7 features"),  # the later run, not last week's breach
        ("kpi", "breach", "KPI breached: Fraud amount missed $18,300 (above $10,000)")]
    v3, v2 = model.versions
    assert (v3.label, v3.status, v3.created_by, v3.steps) == ("v3", "candidate", "U0ML0002", ())
    assert (v2.label, v2.status, v2.train_start) == ("v2", "in_review", datetime(2026, 10, 1))
    assert [(s.name, s.role, s.quorum, s.approvers, s.done) for s in v2.steps] == [
        ("technical validation", "ml_engineer", 1, (), False), ("risk review", "risk_manager", 1, (), False)]
    assert home.business == home.governed == home.deployments == ()


def test_the_creator_of_a_version_is_not_asked_to_sign_it(world):
    assert _home(world, "U0ML0001").pending_signoffs == ()  # Eli retrained and submitted v2
    [pending] = _home(world, "U0ML0002").pending_signoffs  # Noor may sign the technical validation
    assert (pending.model_key, pending.label, pending.due.name) == ("fraud-detector", "v2", "technical validation")
    assert [m.key for m in _home(world, "U0ML0002").models] == ["loans-model"]  # not fraud-detector


def test_a_signer_is_not_asked_twice_and_whoever_asked_to_deploy_is_not_asked_at_all(world):
    with world.session() as s:
        v3 = _v(s, 3)
        governance.submit_for_review(session=s, version=v3, by="U0ML0002", now=NOW)
        governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0ML0002"), decision=Decision.approve)
        s.add(grant(Person(slack_id="U0ML0003", name="Ada"), v3.model.project, "ml_engineer", "risk_manager"))
        s.flush()
        governance.note_deploy_request(session=s, version=v3, by="U0ML0003", reason="waiting for sign-off")
    assert _home(world, "U0ML0002").pending_signoffs == ()  # v2 signed already, v3 hers
    assert [(p.label, p.due.name) for p in _home(world, "U0ML0003").pending_signoffs] == [("v2", "risk review")]


def test_the_risk_manager_sees_sign_offs_due_from_them_and_the_projects_they_govern(world):
    assert _home(world, "U0RISK01").pending_signoffs == ()  # technical validation comes first
    with world.session() as s:
        governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0ML0002"), decision=Decision.approve)
    home = _home(world, "U0RISK01")
    [pending] = home.pending_signoffs
    assert (pending.model_key, pending.number, pending.project_name, pending.initiative, pending.risk_tier,
            pending.requested_by, pending.due.name) == \
        ("fraud-detector", 2, "Card fraud detection", "Reduce payment fraud losses", "high", "U0ML0001",
         "risk review")
    assert [(s.name, s.approvers) for s in pending.steps] == [("technical validation", ("U0ML0002",)),
                                                            ("risk review", ())]
    [project] = home.governed  # loans has no blueprint
    assert (project.key, project.name, project.initiative, project.sponsors, project.risk_tier, project.blueprint) \
        == ("card-fraud", "Card fraud detection", "Reduce payment fraud losses", ("Dana",), "high",
            "customer-facing")
    [model] = project.models
    assert (model.key, model.number, model.status) == ("fraud-detector", 2, "in_review")
    assert [(s.name, s.done) for s in model.steps] == [("technical validation", True), ("risk review", False)]
    assert home.business == home.models == home.deployments == ()


def test_a_governed_model_with_nothing_in_review_shows_its_production_version(world):
    with world.session() as s:
        governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0ML0002"), decision=Decision.reject,
                            reason="precision too low")
    [model] = _home(world, "U0RISK01").governed[0].models
    assert (model.number, model.status) == (1, "production")


def _ship_v2(db):
    with db.session() as s:
        governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0ML0002"), decision=Decision.approve)
        governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0RISK01"), decision=Decision.approve)
        governance.deploy(session=s, version=_v(s, 2), by="U0ML0001", now=NOW + timedelta(hours=1))


def test_it_ops_sees_recent_deployments_newest_first_with_where_a_rollback_goes(world):
    _ship_v2(world)
    home = _home(world, "U0OPS001")
    assert [(d.model_key, d.label, d.deployed_by, d.deployed_at, d.in_production, d.previous)
            for d in home.deployments] == [
        ("fraud-detector", "v2", "U0ML0001", NOW + timedelta(hours=1), True, "v1"),
        ("fraud-detector", "v1", "U0OPS001", NOW - 4 * WEEK, False, None)]
    with world.session() as s:
        governance.rollback(session=s, model=_v(s, 2).model, by="U0OPS001", now=NOW + timedelta(hours=2))
    assert [(d.label, d.in_production, d.previous) for d in _home(world, "U0OPS001").deployments] == [
        ("v1", True, "v2"), ("v2", False, None)]


def test_it_ops_with_nothing_deployed_sees_an_empty_list(db):
    with db.session() as s:
        fraud_project(s)
    home = _home(db, "U0OPS001")
    assert home.deployments == () and home.roles == ("it_ops",)


def test_a_person_with_two_roles_sees_both_sections(world):
    _ship_v2(world)
    home = _home(world, "U0TWO001")  # Tess: business and it_ops on card-fraud, backs no project
    assert [p.key for p in home.business] == ["card-fraud"]  # not loans: she holds no role there
    assert [d.label for d in home.deployments] == ["v2", "v1"]
    assert home.sees("business") and home.sees("it_ops") and not home.sees("risk_manager")
    assert home.models == home.governed == ()


def test_an_admin_sees_every_section(world):
    home = _home(world, "U0ADMIN1")
    assert [p.key for p in home.business] == ["card-fraud", "loans"]
    assert [m.key for m in home.models] == ["fraud-detector", "loans-model"]  # owns none, so all
    assert [p.label for p in home.pending_signoffs] == ["v2"]
    assert [p.key for p in home.governed] == ["card-fraud"]
    assert [d.label for d in home.deployments] == ["v1"]


def test_someone_unknown_to_the_registry_gets_an_empty_home(world):
    home = _home(world, "U0NOBODY")
    assert not home.known and home.person_name is None and home.roles == ()
    assert home.business == home.models == home.pending_signoffs == home.governed == home.deployments == ()


def test_long_lists_are_capped_and_say_how_many_were_left_out(world):
    with world.session() as s:
        for i in range(MAX_PROJECTS + 3):
            _other_project(s, key=f"p{i:02d}", sponsor="U0BIZ001")
    home = _home(world, "U0BIZ001")
    assert len(home.business) == MAX_PROJECTS and home.more.business == 4  # card-fraud + 11 others
    assert home.business[0].key == "card-fraud"  # the one with an open alert leads


def _statements(db, slack_id) -> int:
    count = 0

    def seen(*_args):
        nonlocal count
        count += 1

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        _home(db, slack_id)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    return count


def test_the_number_of_queries_does_not_grow_with_the_registry(world):
    few = _statements(world, "U0ADMIN1")
    with world.session() as s:
        for i in range(5):
            model = _other_project(s, key=f"p{i}", sponsor="U0BIZ001")
            v = registry.register_version(session=s, model_key=model.key, created_by="U0ML0001", artifact_uri="x")
            registry.adopt_as_production(session=s, version=v, actor="U0OPS001", now=NOW)
            registry.register_version(session=s, model_key=model.key, created_by="U0ML0001", artifact_uri="y")
            _run(s, model, CheckKind.kpi, Verdict.ok, figures={"kpis": [RATE]})
    assert _statements(world, "U0ADMIN1") == few


def test_the_audience_of_a_model_is_everyone_whose_home_shows_it(world):
    with world.session() as s:
        assert audience(session=s, model_key="fraud-detector") == (
            "U0ADMIN1", "U0BIZ001", "U0BIZ002", "U0ML0001", "U0ML0002", "U0OPS001", "U0RISK01", "U0TWO001")
        # loans: whoever holds a role on it (its owner, its sponsor, its admin); card-fraud's IT ops do not
        assert audience(session=s, model_key="loans-model") == ("U0ADMIN1", "U0BIZ002", "U0ML0002")


def test_an_admin_of_a_project_without_models_gets_empty_sections(db):
    with db.session() as s:
        project = Project(key="empty", name="Empty", owner="U0ML0001", risk_tier=RiskTier.low)
        s.add(grant(Person(slack_id="U0ADMIN1", name="Max"), project, "admin"))
    home = _home(db, "U0ADMIN1")
    assert home.known and home.sees("risk_manager")
    assert [(p.key, p.models) for p in home.business] == [("empty", ())]
    home = replace(home, business=())
    assert home.business == home.models == home.pending_signoffs == home.governed == home.deployments == ()
