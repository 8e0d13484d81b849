from datetime import datetime

import pytest
from sqlalchemy.exc import IntegrityError

from store import registry
from store.errors import InvalidTransition, NotFound
from store.models import ModelVersion, VersionStatus
from tests.support.factories import fraud_project

NOW = datetime(2026, 11, 2, 6, 0)


def test_versions_are_numbered_per_model_and_audited(db):
    with db.session() as s:
        fraud_project(s)
        v1 = registry.register_version(session=s, model_key="fraud-detector", created_by="U0ML0001",
                                       artifact_uri="file:///a/v1.joblib", metrics={"recall": 0.7}, now=NOW)
        v2 = registry.register_version(session=s, model_key="fraud-detector", created_by="U0ML0001",
                                       artifact_uri="file:///a/v2.joblib", parent=v1, now=NOW)
    with db.session() as s:
        model = registry.get_model(session=s, key="fraud-detector")
        assert [(v.number, v.status, v.parent_id) for v in model.versions] == [
            (1, VersionStatus.candidate, None), (2, VersionStatus.candidate, v1.id)]
        assert model.versions[0].metrics == {"recall": 0.7}


def test_unknown_model_suggests_the_closest_key(db):
    with db.session() as s:
        fraud_project(s)
    with db.session() as s, pytest.raises(NotFound, match="No model called fraud-detectr. Did you mean fraud-detector?"):
        registry.get_model(session=s, key="fraud-detectr")


def test_unknown_version_lists_the_known_ones(db):
    with db.session() as s:
        fraud_project(s)
        registry.register_version(session=s, model_key="fraud-detector", created_by="U0ML0001", artifact_uri="x")
    with db.session() as s, pytest.raises(NotFound, match="fraud-detector has no version v7. Versions: v1."):
        registry.get_version(session=s, model_key="fraud-detector", number=7)


def test_the_database_refuses_a_second_production_version(db):
    with db.session() as s:
        model = fraud_project(s)
        for n in (1, 2):
            registry.register_version(session=s, model_key=model.key, created_by="U0ML0001", artifact_uri=f"v{n}")
        registry.adopt_as_production(session=s, version=model.versions[0], actor="U0ML0001")
    # Even code that skips the governance functions cannot make two production versions.
    with pytest.raises(IntegrityError), db.session() as s:
        second = s.query(ModelVersion).filter_by(number=2).one()
        second.status = VersionStatus.production
        s.flush()
    with db.session() as s:
        statuses = sorted((v.number, v.status.value) for v in s.query(ModelVersion))
        assert statuses == [(1, "production"), (2, "candidate")]


def test_adopting_refuses_when_production_exists(db):
    with db.session() as s:
        model = fraud_project(s)
        v1 = registry.register_version(session=s, model_key=model.key, created_by="U0ML0001", artifact_uri="v1")
        v2 = registry.register_version(session=s, model_key=model.key, created_by="U0ML0001", artifact_uri="v2")
        registry.adopt_as_production(session=s, version=v1, actor="U0ML0001")
        with pytest.raises(InvalidTransition, match="already has v1 in production"):
            registry.adopt_as_production(session=s, version=v2, actor="U0ML0001")


def test_a_failed_unit_of_work_writes_nothing(db):
    with pytest.raises(RuntimeError), db.session() as s:
        fraud_project(s)
        registry.register_version(session=s, model_key="fraud-detector", created_by="U0ML0001", artifact_uri="v1")
        raise RuntimeError("boom")
    with db.session() as s:
        assert registry.list_models(session=s) == []


def test_a_read_unit_of_work_sees_committed_data_and_writes_nothing(db):
    with db.session() as s:
        fraud_project(s)
    with db.read() as s:
        model = registry.get_model(session=s, key="fraud-detector")
        model.description = "changed inside a read"
        s.flush()
    with db.session() as s:
        assert registry.get_model(session=s, key="fraud-detector").description == "Scores card transactions"
