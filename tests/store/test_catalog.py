"""The catalog on a real database (SQLite, and PostgreSQL when configured): what enters it, how it
stays in step with specs and the registry, every filter, stemming, and what an empty search says."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from bot.services import catalog as catalog_service
from bot.services.specs import apply_spec
from jobs.spec import SpecError, load_spec
from store import catalog, catalog_writes, governance, registry
from store.models import CatalogAsset, CatalogTag
from store.errors import Conflict, NotFound
from bot.services.home import home_for
from store.models import AuditEvent, Decision, Person
from tests.support.projects import write_project

NOW = datetime(2026, 11, 20, 9, 0)
ELI, NOOR, DANA = "U0ML0001", "U0ML0002", "U0BIZ001"
CATALOG = """\
catalog:
  - kind: notebook
    title: Loan feature exploration
    description: Income and debt distributions per region, before the default-risk model
    owner: U0ML0002
    tags: [eda, loans]
    links: ["https://github.com/acme/loans/blob/main/eda.ipynb"]
  - kind: dashboard
    title: Customer review sentiment
    description: Weekly sentiment of customer reviews left after a loan decision
    owner: U0BIZ001
    tags: [nlp, reviews]
    status: live
  - kind: repository
    title: Scoring service
    key: scoring-service
    owner: U0ML0001
    links: ["https://github.com/acme/scoring"]
"""


def _keys(result) -> list[str]:
    return [a.key for a in result.assets]


def _search(db, query, **kwargs):
    with db.session() as s:
        return catalog.search(session=s, query=query, **kwargs)


def _apply(db, path, now=NOW):
    with db.session() as s:
        return apply_spec(session=s, loaded=load_spec(path), actor=ELI, now=now)


def _spec(folder, *, catalog_text=CATALOG, **kwargs):
    path = write_project(folder, **kwargs)
    path.write_text(path.read_text() + catalog_text)
    return path


@pytest.fixture
def applied(db, tmp_path):
    path = _spec(tmp_path)
    _apply(db, path)
    return path


def _register(db, created_by=ELI, now=NOW):
    with db.session() as s:
        return registry.register_version(session=s, model_key="default-risk", created_by=created_by,
                                         artifact_uri="file:///model.joblib", metrics={"recall": 0.81},
                                         train_start=NOW - timedelta(days=28), train_end=NOW, now=now).number


# --- what enters the catalog ---------------------------------------------------------------------

def test_a_spec_brings_its_project_model_datasets_and_declared_assets(db, applied):
    everything = _search(db, "project:loans", limit=20)
    assert set(_keys(everything)) == {
        "project:loans", "model:default-risk", "dataset:loans/data/reference.parquet", "dataset:loans/scored",
        "notebook:loans/loan-feature-exploration", "dashboard:loans/customer-review-sentiment",
        "repository:loans/scoring-service"}
    assets = {a.key: a for a in everything.assets}
    model = assets["model:default-risk"]
    assert (model.title, model.owner, model.owner_name, model.project_name, model.description) == \
        ("default-risk", ELI, "Eli", "Loan defaults", "Scores loan applications")
    reference = assets["dataset:loans/data/reference.parquet"]
    assert reference.description == "Reference data of default-risk. Columns: income, debt, region, y."
    notebook = assets["notebook:loans/loan-feature-exploration"]
    assert (notebook.owner, notebook.tags, notebook.links) == \
        (NOOR, ("eda", "loans"), ("https://github.com/acme/loans/blob/main/eda.ipynb",))
    assert assets["dashboard:loans/customer-review-sentiment"].status_text == "live"


def test_applying_the_same_spec_twice_changes_nothing(db, applied):
    with db.session() as s:
        before = s.execute(select(CatalogAsset.key, CatalogAsset.updated_at).order_by(CatalogAsset.key)).all()
    again = _apply(db, applied, now=NOW + timedelta(days=1))
    assert not again.changed
    with db.session() as s:
        assert s.execute(select(CatalogAsset.key, CatalogAsset.updated_at).order_by(CatalogAsset.key)).all() == before


def test_declared_entries_are_reported_and_audited_with_the_spec(db, tmp_path):
    first = _apply(db, _spec(tmp_path))
    assert {"added catalog notebook loan-feature-exploration", "added catalog dashboard customer-review-sentiment",
            "added catalog code repository scoring-service"} <= set(first.changes)
    with db.session() as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "spec.applied")).scalar_one()
    assert "added catalog code repository scoring-service" in event.details["changes"]


def test_a_registered_version_is_found_at_once(db, applied):
    number = _register(db)
    found = _search(db, "kind:version")
    assert _keys(found) == [f"model_version:default-risk/v{number}"]
    version = found.assets[0]
    assert (version.title, version.status, version.version_number, version.model_key) == \
        ("default-risk v1", "candidate", 1, "default-risk")
    assert version.description == ("Version 1 of default-risk, trained on data from Oct 23 2026 to Nov 20 2026. "
                                   "Metrics: recall 0.81.")


# --- index maintenance ---------------------------------------------------------------------------

def test_an_edited_model_is_found_by_its_new_description_and_not_its_old_one(db, tmp_path):
    _apply(db, _spec(tmp_path))
    assert _keys(_search(db, "applications")) == ["model:default-risk"]
    _apply(db, _spec(tmp_path, description="Flags risky mortgages"), now=NOW + timedelta(days=1))
    assert _keys(_search(db, "mortgages")) == ["model:default-risk"]
    assert _search(db, "applications").empty
    changed = _search(db, "mortgages").assets[0].changed_at
    assert changed == NOW + timedelta(days=1)


def test_a_removed_entry_is_not_found_any_more(db, tmp_path):
    _apply(db, _spec(tmp_path))
    assert _keys(_search(db, "sentiment")) == ["dashboard:loans/customer-review-sentiment"]
    kept = CATALOG.split("  - kind: dashboard")[0]
    result = _apply(db, _spec(tmp_path, catalog_text=kept), now=NOW + timedelta(days=1))
    assert result.changes == ["removed catalog dashboard customer-review-sentiment",
                              "removed catalog code repository scoring-service"]
    assert _search(db, "sentiment").empty
    assert _search(db, "tag:nlp").empty  # its tags went with it


def test_an_asset_removed_by_hand_is_not_found(db, applied):
    with db.session() as s:
        catalog_service.add_asset(session=s, kind="plugin", title="Drift webhook", owner=NOOR, actor=NOOR,
                          description="Posts drift alerts to PagerDuty", tags=["alerts"])
    assert _keys(_search(db, "pagerduty")) == ["plugin:drift-webhook"]
    with db.session() as s:
        catalog_writes.remove_asset(session=s, key="plugin:drift-webhook", actor=NOOR)
    assert _search(db, "pagerduty").empty and _search(db, "tag:alerts").empty
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(CatalogTag)
                         .where(CatalogTag.tag == "alerts")).scalar_one() == 0
        assert [e.action for e in s.execute(select(AuditEvent).where(AuditEvent.subject ==
                                                                    "catalog:plugin:drift-webhook")).scalars()] \
            == ["catalog.added", "catalog.removed"]


def test_a_renamed_person_and_project_are_found_by_their_new_names(db, tmp_path):
    path = _spec(tmp_path)
    _apply(db, path)
    path.write_text(path.read_text().replace("name: Eli,", "name: Eli Cohen,")
                    .replace("name: Loan defaults", "name: Mortgage book"))
    _apply(db, path, now=NOW + timedelta(days=1))
    assert set(_keys(_search(db, "cohen", limit=20))) == {
        "project:loans", "model:default-risk", "dataset:loans/data/reference.parquet", "dataset:loans/scored",
        "repository:loans/scoring-service"}
    assert _search(db, "mortgage kind:notebook").assets[0].project_name == "Mortgage book"


def test_the_registry_can_be_synced_into_an_empty_catalog(db, applied):
    _register(db)
    with db.session() as s:
        s.execute(delete(CatalogAsset).where(CatalogAsset.origin == "registry"))
    assert _search(db, "kind:model").empty
    with db.session() as s:
        assert catalog_writes.sync_registry(session=s, now=NOW) == 1
    assert _keys(_search(db, "kind:model kind:version")) == ["model_version:default-risk/v1", "model:default-risk"]


# --- filters -------------------------------------------------------------------------------------

def test_kind_filter(db, applied):
    assert _keys(_search(db, "kind:dataset")) == ["dataset:loans/scored", "dataset:loans/data/reference.parquet"]
    assert _keys(_search(db, "kind:repo")) == ["repository:loans/scoring-service"]
    assert set(_keys(_search(db, "loan kind:notebook kind:dashboard"))) == {
        "notebook:loans/loan-feature-exploration", "dashboard:loans/customer-review-sentiment"}


def test_tag_filter_needs_every_tag(db, applied):
    assert _keys(_search(db, "tag:NLP")) == ["dashboard:loans/customer-review-sentiment"]
    assert _keys(_search(db, "tag:eda tag:loans")) == ["notebook:loans/loan-feature-exploration"]
    assert _search(db, "tag:eda tag:nlp").empty


def test_owner_filter_by_name_mention_id_or_me(db, applied):
    noor = ["notebook:loans/loan-feature-exploration"]
    assert _keys(_search(db, "owner:@noor")) == noor
    assert _keys(_search(db, "owner:<@U0ML0002|noor>")) == noor
    assert _keys(_search(db, "<@U0ML0002>")) == noor
    assert _keys(_search(db, "owner:U0ML0002")) == noor
    assert _keys(_search(db, "owner:me", viewer=NOOR)) == noor
    assert _keys(_search(db, "@dana")) == ["dashboard:loans/customer-review-sentiment"]
    with pytest.raises(NotFound, match=r"No one called @nor is in Flywheel. Did you mean @Noor\?"):
        _search(db, "owner:@nor")


def test_project_filter(db, applied, tmp_path):
    _apply(db, write_project(tmp_path / "other", project="cards", model="card-scorer"))
    assert _keys(_search(db, "applications project:cards")) == ["model:card-scorer"]
    assert _keys(_search(db, "applications project:loans")) == ["model:default-risk"]
    with pytest.raises(NotFound, match=r"No project called laons. Did you mean loans\?"):
        _search(db, "project:laons")


def test_status_filter_follows_sign_off_deploy_and_rollback(db, applied):
    _register(db)
    with db.session() as s:
        registry.adopt_as_production(session=s, version=registry.get_version(session=s, model_key="default-risk",
                                                                             number=1), actor=ELI, now=NOW)
    assert _keys(_search(db, "status:production")) == ["model_version:default-risk/v1", "model:default-risk"]
    assert _search(db, "kind:model").assets[0].status_text == "v1 in production"
    _register(db, now=NOW + timedelta(days=1))
    assert _keys(_search(db, "status:candidate")) == ["model_version:default-risk/v2", "model:default-risk"]
    with db.session() as s:
        v2 = registry.get_version(session=s, model_key="default-risk", number=2)
        governance.submit_for_review(session=s, version=v2, by=ELI, now=NOW)
        governance.sign_off(session=s, version=v2, person=registry.require_person(session=s, slack_id=NOOR),
                            decision=Decision.approve, now=NOW)
        governance.deploy(session=s, version=v2, by=ELI, now=NOW + timedelta(days=2))
    assert _keys(_search(db, "status:production kind:version")) == ["model_version:default-risk/v2"]
    assert _keys(_search(db, "status:archived")) == ["model_version:default-risk/v1", "model:default-risk"]
    model = _search(db, "kind:model").assets[0]
    assert (model.status_text, model.changed_at) == ("v2 in production", NOW + timedelta(days=2))
    with db.session() as s:
        governance.rollback(session=s, model=registry.get_model(session=s, key="default-risk"), by=ELI, now=NOW)
    assert _keys(_search(db, "status:production kind:version")) == ["model_version:default-risk/v1"]
    assert _keys(_search(db, "status:live")) == ["dashboard:loans/customer-review-sentiment"]


# --- words ---------------------------------------------------------------------------------------

def test_free_words_are_stemmed(db, applied):
    assert _keys(_search(db, "reviews")) == ["dashboard:loans/customer-review-sentiment"]
    assert _keys(_search(db, "review")) == ["dashboard:loans/customer-review-sentiment"]
    assert _keys(_search(db, "distribution regions"))[0] == "notebook:loans/loan-feature-exploration"
    assert set(_keys(_search(db, "scoring"))) == {"repository:loans/scoring-service", "model:default-risk",
                                                   "dataset:loans/scored"}


def test_assets_holding_every_word_come_before_those_holding_some(db, applied):
    found = _search(db, "customer sentiment zeppelin")
    assert found.partial and _keys(found) == ["dashboard:loans/customer-review-sentiment"]
    both = _search(db, "loan exploration")
    assert _keys(both)[0] == "notebook:loans/loan-feature-exploration" and not both.partial
    assert len(both.assets) == 5  # then those holding "loan" alone


def test_words_match_owners_and_projects_too(db, applied):
    assert _keys(_search(db, "dana")) == ["dashboard:loans/customer-review-sentiment"]
    assert "notebook:loans/loan-feature-exploration" in _keys(_search(db, "noor loan"))


def test_pages_do_not_overlap_and_cover_every_match(db, applied):
    with db.session() as s:
        for n in range(12):
            catalog_service.add_asset(session=s, kind="notebook", title=f"Churn study {n}", owner=ELI, actor=ELI,
                              description="Why customers leave", now=NOW + timedelta(minutes=n))
    pages = [_search(db, "churn", offset=offset) for offset in (0, 5, 10)]
    assert [len(p.assets) for p in pages] == [5, 5, 2] and [p.has_more for p in pages] == [True, True, False]
    keys = [k for p in pages for k in _keys(p)]
    assert len(set(keys)) == 12
    assert _search(db, "churn", offset=15).empty and not _search(db, "churn", offset=15).suggestions


# --- nothing found -------------------------------------------------------------------------------

def test_nothing_found_suggests_the_closest_tags_and_titles(db, applied):
    found = _search(db, "sentimnt")
    assert found.empty
    assert catalog.Suggestion("title", "Customer review sentiment") in found.suggestions
    tags = _search(db, "tag:nlpp")
    assert tags.empty and tags.suggestions[0] == catalog.Suggestion("tag", "nlp")
    assert _search(db, "xyzzy").suggestions == ()


def test_filters_that_rule_everything_out_say_the_words_alone_would_match(db, applied):
    found = _search(db, "sentiment kind:plugin")
    assert found.empty and found.unfiltered_matches
    assert not _search(db, "xyzzy kind:plugin").unfiltered_matches


def test_a_query_that_cannot_run_says_how_to_write_it(db, applied):
    with pytest.raises(catalog.InvalidQuery, match=r"'modle' is not a kind of asset. Did you mean kind:model\?"):
        _search(db, "kind:modle")
    with pytest.raises(catalog.InvalidQuery, match=r"`tag:` needs a value, like tag:nlp"):
        _search(db, "fraud tag:")
    with pytest.raises(catalog.InvalidQuery, match="Nothing to search for in 'the of and': its words are too"):
        _search(db, "the of and")
    with pytest.raises(catalog.InvalidQuery, match="at most 500 characters; yours has 501"):
        _search(db, "x" * 501)


def test_odd_characters_in_words_are_searched_not_parsed(db, applied):
    assert _keys(_search(db, 'scoring" OR "x'))[0] == "repository:loans/scoring-service"
    assert _keys(_search(db, "loan-feature")) == ["notebook:loans/loan-feature-exploration"]
    assert _search(db, "NEAR(qx qy) * AND").empty


# --- adding by hand ------------------------------------------------------------------------------

def test_adding_by_hand_checks_like_a_spec(db, applied):
    bad_link = r"links\[0\]: expected an http\(s\) URL, got 'ftp"
    with db.session() as s, pytest.raises(catalog.InvalidAsset, match=bad_link):
        catalog_service.add_asset(session=s, kind="notebook", title="X", owner=ELI, actor=ELI, links=["ftp://x"])
    with db.session() as s, pytest.raises(catalog.InvalidAsset, match="'notebok' is not a kind of asset"):
        catalog_service.add_asset(session=s, kind="notebok", title="X", owner=ELI, actor=ELI)
    with db.session() as s, pytest.raises(NotFound, match="U0NOBODY is not in Flywheel"):
        catalog_service.add_asset(session=s, kind="notebook", title="X", owner="U0NOBODY", actor=ELI)
    with db.session() as s, pytest.raises(NotFound, match=r"No project called laons. Did you mean loans\?"):
        catalog_service.add_asset(session=s, kind="notebook", title="X", owner=ELI, actor=ELI, project="laons")
    with db.session() as s, pytest.raises(Conflict, match="declared in the loans spec's catalog: section"):
        catalog_service.add_asset(session=s, kind="repository", title="Scoring service", owner=ELI, actor=ELI,
                          project="loans")
    with db.session() as s, pytest.raises(Conflict, match="is declared in the loans spec"):
        catalog_writes.remove_asset(session=s, key="repository:loans/scoring-service", actor=ELI)
    with db.session() as s, pytest.raises(Conflict, match="follows the registry"):
        catalog_writes.remove_asset(session=s, key="model:default-risk", actor=ELI)


def test_adding_the_same_key_again_updates_it(db, applied):
    with db.session() as s:
        added = catalog_service.add_asset(session=s, kind="dashboard", title="Fraud losses", owner="Dana", actor=DANA,
                                  project="loans", tags=["finance"], now=NOW)
    assert added[1] == "added" and added[0].key == "dashboard:loans/fraud-losses" and added[0].owner == DANA
    with db.session() as s:
        same = catalog_service.add_asset(session=s, kind="dashboard", title="Fraud losses", owner=DANA, actor=DANA,
                                 project="loans", tags=["finance"], now=NOW)
        updated = catalog_service.add_asset(session=s, kind="dashboard", title="Fraud losses", owner=DANA, actor=DANA,
                                    project="loans", tags=["finance", "weekly"], now=NOW + timedelta(days=1))
    assert (same[1], updated[1]) == ("unchanged", "updated")
    assert _keys(_search(db, "tag:weekly")) == ["dashboard:loans/fraud-losses"]


def test_the_registry_takes_over_a_key_added_by_hand(db, tmp_path):
    with db.session() as s:
        s.add(Person(slack_id=ELI, name="Eli"))
    with db.session() as s:
        catalog_service.add_asset(session=s, kind="model", title="default-risk", owner=ELI, actor=ELI,
                          description="Our loan model, before Flywheel managed it")
    _apply(db, write_project(tmp_path))
    [model] = _search(db, "kind:model").assets
    assert (model.key, model.origin, model.description) == ("model:default-risk", "registry",
                                                            "Scores loan applications")


def test_a_spec_cannot_take_a_key_added_by_hand(db, tmp_path):
    _apply(db, write_project(tmp_path / "plain"))
    with db.session() as s:
        catalog_service.add_asset(session=s, kind="notebook", title="Loan feature exploration", owner=ELI, actor=ELI,
                          project="loans")
    with pytest.raises(Conflict, match="was added with `flywheel catalog add`"):
        _apply(db, _spec(tmp_path))


# --- the spec's catalog section ------------------------------------------------------------------

def _problems(path) -> list[str]:
    with pytest.raises(SpecError) as error:
        load_spec(path)
    return [str(issue).split(" ", 1)[1] for issue in error.value.issues]


def test_the_catalog_section_is_checked_like_the_rest_of_the_spec(tmp_path):
    bad = """\
catalog:
  - kind: notebok
    title: Loan EDA
    owner: U0ML0009
  - kind: notebook
    title: Loan EDA
    owner: Eli
  - kind: dashboard
    title: Loan EDA
    owner: U0ML0001
  - kind: repository
    title: Scoring code
    owner: U0ML0001
    links: [ftp://files.example.com/eda]
    tagz: [eda]
  - kind: model
    title: Default risk
    key: default-risk
    owner: U0ML0001
  - kind: plugin
    title: "!!!"
    owner: U0ML0001
"""
    found = _problems(_spec(tmp_path, catalog_text=bad))
    assert found == [
        ("catalog[0].kind: expected one of project, model, model_version, dataset, notebook, repository, dashboard, "
        "plugin, got 'notebok' (did you mean 'notebook'?)"),
        "catalog[0].owner: unknown person 'U0ML0009' (not in people; did you mean 'U0ML0002'?)",
        "catalog[1].owner: unknown person 'Eli' (use the Slack id: Eli is 'U0ML0001')",
        "catalog[2].key: duplicate catalog key 'loan-eda' (also at catalog[1].key)",
        "catalog[3].links[0]: expected an http(s) URL, got 'ftp://files.example.com/eda'",
        "catalog[3]: unknown key 'tagz' (did you mean 'tags'?)",
        ("catalog[4].key: 'default-risk' is a model of this spec, which the catalog lists already; list assets the "
        "registry doesn't know here"),
        "catalog[5]: give a 'key' (like team-dashboard): the title '!!!' has no letters or digits to make one from",
    ]
    path = tmp_path / "loans.yml"
    with pytest.raises(SpecError) as error:
        load_spec(path)
    line = path.read_text().splitlines().index("  - kind: notebok") + 1
    assert str(error.value.issues[0]).startswith(f"{path}:{line} catalog[0].kind: ")


def test_a_bad_catalog_entry_writes_nothing(db, tmp_path):
    path = _spec(tmp_path, catalog_text=CATALOG.replace("owner: U0BIZ001", "owner: U0NOBODY"))
    with pytest.raises(SpecError, match=r"loans.yml:\d+ catalog\[1\].owner: unknown person 'U0NOBODY'"):
        load_spec(path)
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(CatalogAsset)).scalar_one() == 0


# --- App Home and sharing ------------------------------------------------------------------------

def test_the_home_lists_the_viewers_own_assets_without_versions(db, applied):
    _register(db)
    with db.session() as s:
        eli = home_for(session=s, slack_id=ELI, now=NOW)
        noor = home_for(session=s, slack_id=NOOR, now=NOW)
    assert [a.key for a in noor.assets] == ["notebook:loans/loan-feature-exploration"]
    assert {a.kind.value for a in eli.assets} == {"project", "model", "dataset", "repository"}
    assert eli.more.assets == 0


def test_a_share_is_audited(db, applied):
    with db.session() as s:
        asset = catalog.share(session=s, key="model:default-risk", by=NOOR, channel="C0ML", now=NOW)
    assert asset.title == "default-risk"
    with db.session() as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "catalog.shared")).scalar_one()
        assert (event.actor, event.subject, event.details) == (NOOR, "catalog:model:default-risk", {"channel": "C0ML"})
    with db.session() as s, pytest.raises(NotFound, match="Nothing in the catalog is called model:gone"):
        catalog.share(session=s, key="model:gone", by=NOOR, channel="C0ML")
