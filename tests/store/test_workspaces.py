"""store.authority's workspace rule on its own: what a request of one Slack workspace reads and may do."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import select

from store import authority, catalog, catalog_writes, registry
from store.errors import NotFound
from store.models import AssetKind, AssetOrigin, Grant, Model, Person, Project, Role
from tests.support.factories import fraud_project

A, B = "T0AAA", "T0BBB"
NOW = datetime(2026, 11, 2, 6, 0)


@pytest.fixture
def two(db):
    """card-fraud (A) and a copy of it, card-fraud-b (B), with the same ML engineer in both."""
    with db.session() as s:
        fraud_project(s).project.team_id = A
        eli = s.execute(select(Person).where(Person.slack_id == "U0ML0001")).scalar_one()
        theirs = Project(key="card-fraud-b", name="Card fraud detection", initiative="", owner="U0ML0001",
                         risk_tier="high", team_id=B)
        s.add_all([theirs, Model(key="fraud-detector-b", project=theirs, description="", owner="U0ML0001",
                                 task="binary_classification"), Grant(person=eli, project=theirs, role="ml_engineer")])
    return db


def test_a_request_of_one_workspace_reads_none_of_another(two):
    with two.read() as s, authority.acting_in(A):
        assert [m.key for m in registry.list_models(session=s)] == ["fraud-detector"]
        assert [p.key for p in registry.list_projects(session=s)] == ["card-fraud"]
        assert s.execute(select(Model.key).join(Project)).scalars().all() == ["fraud-detector"]
        with pytest.raises(NotFound) as unknown:
            registry.get_model(session=s, key="fraud-detector-b")
        assert str(unknown.value) == "No model called fraud-detector-b. Did you mean fraud-detector?"
        assert authority.grants_of(session=s, slack_id="U0ML0001") == {"card-fraud": ["ml_engineer"]}
    with two.read() as s:  # the terminal, the API, the worker: no workspace, no rule
        assert [m.key for m in registry.list_models(session=s)] == ["fraud-detector", "fraud-detector-b"]


def test_the_authority_check_refuses_an_explicit_other_team_as_an_unknown_project(two):
    with two.read() as s:
        theirs = registry.get_project(session=s, key="card-fraud-b")
        authority.require(session=s, slack_id="U0ML0001", project=theirs, roles=Role.ml_engineer, doing="Retraining")
        with pytest.raises(NotFound, match="^No project called card-fraud-b.$"):
            authority.require(session=s, slack_id="U0ML0001", project=theirs, roles=Role.ml_engineer,
                              doing="Retraining", team=A)
        assert not authority.holds(session=s, slack_id="U0ML0001", project=theirs, roles=[Role.ml_engineer], team=A)
        assert authority.holds(session=s, slack_id="U0ML0001", project=theirs, roles=[Role.ml_engineer], team=B)
        assert authority.grants_of(session=s, slack_id="U0ML0001", team=A) == {"card-fraud": ["ml_engineer"]}
        assert set(authority.grants_of(session=s, slack_id="U0ML0001")) == {"card-fraud", "card-fraud-b"}


def test_a_project_without_a_workspace_is_everyones(two):
    with two.session() as s:
        s.execute(select(Project).where(Project.key == "card-fraud-b")).scalar_one().team_id = None
    with two.read() as s, authority.acting_in(A):
        assert [m.key for m in registry.list_models(session=s)] == ["fraud-detector", "fraud-detector-b"]


def test_the_workspace_is_the_request_thread_own(two):
    seen: list[list[str]] = []

    def elsewhere() -> None:  # another thread serves another request, or none
        with two.read() as s:
            seen.append([m.key for m in registry.list_models(session=s)])

    with authority.acting_in(B):
        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join()
        with two.read() as s:
            assert [m.key for m in registry.list_models(session=s)] == ["fraud-detector-b"]
    assert seen == [["fraud-detector", "fraud-detector-b"]]
    assert authority.current_team() is None


def test_a_catalog_search_pages_and_counts_only_the_workspace_assets(two):
    with two.session() as s:
        existing: dict = {}
        for n in range(3):  # B's match the words better: without the rule they would fill A's first page
            catalog_writes.put(s, existing, f"notebook:b{n}", {
                "kind": AssetKind.notebook, "origin": AssetOrigin.cli, "title": f"Quokka quokka notebook {n}",
                "project_key": "card-fraud-b", "owner": "U0ML0001"}, NOW)
        catalog_writes.put(s, existing, "notebook:a", {
            "kind": AssetKind.notebook, "origin": AssetOrigin.cli, "title": "Quokka report",
            "project_key": "card-fraud", "owner": "U0ML0001"}, NOW)
    with two.read() as s, authority.acting_in(A):
        found = catalog.search(session=s, query="quokka", limit=1)
        assert [a.key for a in found.assets] == ["notebook:a"] and not found.has_more
    with two.read() as s:
        assert len(catalog.search(session=s, query="quokka", limit=10).assets) == 4
