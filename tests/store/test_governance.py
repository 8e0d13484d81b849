from datetime import datetime

import pytest

from store import audit, governance, registry
from store.errors import Conflict, Forbidden, InvalidTransition
from store.governance import GovernanceBlocked
from store.models import AuditEvent, Decision, VersionStatus
from tests.support.factories import fraud_project

NOW = datetime(2026, 11, 20, 14, 0)


@pytest.fixture
def in_review(db):
    """v1 in production, v2 retrained at Eli's request and submitted by him."""
    with db.session() as s:
        model = fraud_project(s)
        v1 = registry.register_version(session=s, model_key=model.key, created_by="U0ML0001", artifact_uri="v1")
        registry.adopt_as_production(session=s, version=v1, actor="U0ML0001")
        v2 = registry.register_version(session=s, model_key=model.key, created_by="U0ML0001", artifact_uri="v2",
                                       parent=v1)
        governance.submit_for_review(session=s, version=v2, by="U0ML0001", now=NOW)
    return db


def _v(s, n):
    return registry.get_version(session=s, model_key="fraud-detector", number=n)


def _person(s, slack_id):
    return registry.get_person(session=s, slack_id=slack_id)


def test_the_whole_path_to_production_and_back(in_review):
    db = in_review
    with db.session() as s:
        governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0ML0002"), decision=Decision.approve)
        assert _v(s, 2).status == VersionStatus.in_review
        governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0RISK01"), decision=Decision.approve,
                            reason="recall gain outweighs the small precision loss")
        assert _v(s, 2).status == VersionStatus.approved
        governance.deploy(session=s, version=_v(s, 2), by="U0ML0001", now=NOW)
    with db.session() as s:
        assert (_v(s, 1).status, _v(s, 2).status) == (VersionStatus.archived, VersionStatus.production)
        done = governance.rollback(session=s, model=_v(s, 2).model, by="U0OPS001")
        assert (done.stopped.number, done.restored.number) == (2, 1)
    with db.session() as s:
        assert (_v(s, 1).status, _v(s, 2).status) == (VersionStatus.production, VersionStatus.archived)
        actions = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.seq)]
        assert actions[-5:] == ["signoff.approve", "signoff.approve", "version.approved", "version.deployed",
                                "version.rolled_back"]
        assert audit.verify(session=s).whole


def test_deploy_before_sign_off_names_what_is_missing(in_review):
    with in_review.session() as s, pytest.raises(GovernanceBlocked) as blocked:
        governance.deploy(session=s, version=_v(s, 2), by="U0ML0001")
    assert str(blocked.value) == ("fraud-detector v2 can't be deployed yet. Waiting for: technical validation: "
                                  "0 of 1, risk review: 0 of 1.")
    assert [w.role for w in blocked.value.waiting] == ["ml_engineer", "risk_manager"]


def test_whoever_asked_for_the_retrain_cannot_sign_it_off(in_review):
    with in_review.session() as s, pytest.raises(Forbidden, match="it was retrained at your request"):
        governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0ML0001"), decision=Decision.approve)


def test_only_the_role_of_the_due_step_may_sign(in_review):
    with in_review.session() as s:
        with pytest.raises(Forbidden, match="waiting for technical validation: 0 of 1. Signing technical validation needs the ML engineer role "
                                              "on Card fraud detection; you have risk manager there"):
            governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0RISK01"), decision=Decision.approve)
        with pytest.raises(Forbidden):
            governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0OPS001"), decision=Decision.approve)


def test_a_quorum_needs_distinct_people(db):
    with db.session() as s:
        model = fraud_project(s, quorum=2)
        v1 = registry.register_version(session=s, model_key=model.key, created_by="U0ML0001", artifact_uri="v1")
        governance.submit_for_review(session=s, version=v1, by="U0ML0001")
        governance.sign_off(session=s, version=v1, person=_person(s, "U0ML0002"), decision=Decision.approve)
        governance.sign_off(session=s, version=v1, person=_person(s, "U0RISK01"), decision=Decision.approve)
        with pytest.raises(Conflict, match="You already signed risk review for fraud-detector v1"):
            governance.sign_off(session=s, version=v1, person=_person(s, "U0RISK01"), decision=Decision.approve)
        progress = governance.progress(session=s, version=v1)
        assert [p.describe() for p in progress] == ["technical validation: 1 of 1", "risk review: 1 of 2"]
        assert v1.status == VersionStatus.in_review


def test_a_rejection_needs_a_reason_and_blocks_deploy(in_review):
    with in_review.session() as s:
        with pytest.raises(InvalidTransition, match="needs a reason"):
            governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0ML0002"),
                                decision=Decision.reject, reason="  ")
        governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0ML0002"), decision=Decision.reject,
                            reason="precision too low")
    with in_review.session() as s:
        assert _v(s, 2).status == VersionStatus.rejected
        with pytest.raises(InvalidTransition, match="was rejected and can't be deployed"):
            governance.deploy(session=s, version=_v(s, 2), by="U0ML0001")
        with pytest.raises(InvalidTransition, match="not waiting for sign-off"):
            governance.sign_off(session=s, version=_v(s, 2), person=_person(s, "U0RISK01"),
                                decision=Decision.approve)


def test_rollback_without_an_earlier_version_is_refused(in_review):
    with in_review.session() as s, pytest.raises(InvalidTransition, match="no earlier production version"):
        governance.rollback(session=s, model=_v(s, 1).model, by="U0OPS001")


def test_only_a_candidate_can_be_submitted(in_review):
    with in_review.session() as s, pytest.raises(InvalidTransition, match="only a candidate"):
        governance.submit_for_review(session=s, version=_v(s, 2), by="U0ML0001")
