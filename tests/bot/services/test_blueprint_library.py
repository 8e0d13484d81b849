"""The blueprint library: spec problems on their lines, the choice by risk tier, and a library applied alone
re-syncing every project that uses it (refused as a whole when it would drop a signed step)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.services.library import apply_all, stored_library
from jobs.spec import SpecError, load_documents
from store import governance, registry
from store.errors import Conflict
from store.models import Decision
from tests.support.projects import write_project

INLINE = """\
blueprint:
  name: standard
  steps:
    - {name: technical validation, role: ml_engineer}
"""

LIBRARY = """\
blueprints:
  - name: reviewed
    tiers: [medium]
    steps:
      - {name: technical validation, role: ml_engineer}
  - name: automatic
    tiers: [low]
    policy: allow
    steps:
      - name: enough rows
        check: {min_labelled_rows: 1000}
"""


def _project(folder: Path, blueprint: str = "", **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = write_project(folder, **kwargs)
    path.write_text(path.read_text().replace(INLINE, blueprint))
    return path


def _library(folder: Path, text: str = LIBRARY) -> Path:
    path = folder / "blueprints.yml"
    path.write_text(text)
    return path


def _problems(*paths: Path, library=None) -> list[str]:
    with pytest.raises(SpecError) as refused:
        load_documents(list(paths), library=library or {})
    return [str(issue) for issue in refused.value.issues]


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def _apply(db, *paths: Path):
    with db.session() as s:
        library = stored_library(session=s)
    loaded = load_documents(list(paths), library=library)
    with db.session() as s:
        return apply_all(session=s, loaded=loaded, actor="U0ML0001")


def _steps(db, key: str) -> tuple[str | None, list[tuple[str, str]]]:
    with db.read() as s:
        blueprint = registry.get_project(session=s, key=key).blueprint
        return blueprint.library, [(step.name, step.role) for step in blueprint.steps]


def test_an_unknown_blueprint_name_is_a_problem_on_its_line_naming_the_library(tmp_path):
    spec = _project(tmp_path, "blueprint: reviewd\n")
    library = _library(tmp_path)
    assert _problems(library, spec) == [
        (f"{spec}:{_line(spec, 'blueprint: reviewd')} blueprint: unknown blueprint 'reviewd' (did you mean 'reviewed'?); "
        "the library has automatic (low), reviewed (medium)")]


def test_no_blueprint_for_the_risk_tier_is_a_problem_on_the_tier_line(tmp_path):
    spec = _project(tmp_path)
    library = _library(tmp_path, LIBRARY.replace("tiers: [medium]", "tiers: [high]"))
    assert _problems(spec, library) == [
        (f"{spec}:{_line(spec, 'risk_tier')} project.risk_tier: no blueprint for risk tier 'medium': the spec names "
        "none and the library has automatic (low), reviewed (high); name one under blueprint:, or list the tier in one")]


def test_a_check_of_unknown_kind_and_a_quorum_above_the_named_people_are_problems_on_their_lines(tmp_path):
    spec = _project(tmp_path)
    library = _library(tmp_path, """\
blueprints:
  - name: reviewed
    tiers: [medium]
    steps:
      - name: fairness
        check: {fairness_gap: 0.1}
      - {name: risk review, role: risk_manager, quorum: 2, people: [U0RISK01]}
""")
    assert _problems(library, spec) == [
        (f"{library}:6 blueprints[0].steps[0].check: unknown key 'fairness_gap' (expected one of metric, "
        "min_labelled_rows, data_quality_clean, max_drift)"),
        f"{library}:7 blueprints[0].steps[1]: quorum 2 is more than the 1 people named"]


def test_named_people_must_hold_the_role_in_the_project(tmp_path):
    spec = _project(tmp_path, "blueprint:\n  name: own\n  steps:\n"
                              "    - {name: risk review, role: risk_manager, people: [U0RISK01, U0ML0002]}\n")
    assert _problems(spec) == [(f"{spec}:{_line(spec, 'risk review')} blueprint.steps[0].people[1]: 'U0ML0002', "
                               "named to sign risk review, does not hold the risk_manager role here")]


def test_the_tier_chooses_and_a_library_applied_alone_resyncs_both_projects(db, tmp_path):
    library = _library(tmp_path)
    loans = _project(tmp_path / "loans")
    cards = _project(tmp_path / "cards", project="cards", model="card-risk")
    _apply(db, loans, library, cards)  # any order: the library first
    assert _steps(db, "loans") == _steps(db, "cards") == ("reviewed", [("technical validation", "ml_engineer")])

    _library(tmp_path, LIBRARY.replace("      - {name: technical validation, role: ml_engineer}\n",
                                       "      - {name: technical validation, role: ml_engineer}\n"
                                       "      - {name: risk review, role: risk_manager, parallel: true}\n"))
    results = _apply(db, library)
    assert [r.project for r in results] == ["blueprint library blueprints.yml", "cards", "loans"]
    assert results[1].changes == ["added blueprint step risk review"]
    for key in ("loans", "cards"):
        assert _steps(db, key) == ("reviewed", [("technical validation", "ml_engineer"),
                                                ("risk review", "risk_manager")])


def test_a_library_change_dropping_a_signed_step_is_refused_and_nothing_is_applied(db, tmp_path):
    library = _library(tmp_path, LIBRARY.replace("      - {name: technical validation, role: ml_engineer}\n",
                                                 "      - {name: technical validation, role: ml_engineer}\n"
                                                 "      - {name: risk review, role: risk_manager}\n"))
    loans = _project(tmp_path / "loans")
    _apply(db, library, loans)
    with db.session() as s:
        v1 = registry.register_version(session=s, model_key="default-risk", created_by="U0ML0001", artifact_uri="x")
        governance.submit_for_review(session=s, version=v1, by="U0ML0001")
        for signer in ("U0ML0002", "U0RISK01"):
            governance.sign_off(session=s, version=v1, person=registry.require_person(session=s, slack_id=signer),
                                decision=Decision.approve)
    _library(tmp_path)
    with pytest.raises(Conflict, match="'risk review' has 1 sign-offs recorded against it on loans"):
        _apply(db, library)
    with db.read() as s:
        assert len(stored_library(session=s)["reviewed"].steps) == 2  # the library row was not changed either
    assert _steps(db, "loans")[1] == [("technical validation", "ml_engineer"), ("risk review", "risk_manager")]


def test_a_low_tier_project_takes_the_automatic_blueprint_and_its_allow_policy(db, tmp_path):
    library = _library(tmp_path)
    loans = _project(tmp_path / "loans")
    loans.write_text(loans.read_text().replace("risk_tier: medium", "risk_tier: low"))
    _apply(db, library, loans)
    with db.read() as s:
        project = registry.get_project(session=s, key="loans")
        assert (project.blueprint.library, project.blueprint.by_tier, governance.policy_of(project)) == \
            ("automatic", True, "allow")
        assert [(st.role, st.check) for st in project.blueprint.steps] == [("automated", {"min_labelled_rows": 1000})]


def test_the_example_library_loads_and_serves_every_tier():
    example = Path(__file__).resolve().parents[3] / "examples" / "blueprints.yml"
    [library] = load_documents([example]).libraries
    assert sorted(t for b in library.spec.blueprints for t in b.tiers) == ["high", "low", "medium"]
    assert {s.check.kind for b in library.spec.blueprints for s in b.steps if s.check} == \
        {"metric", "min_labelled_rows", "data_quality_clean", "max_drift"}


def test_a_step_naming_its_people_takes_only_them(db, tmp_path):
    from store.errors import Forbidden

    loans = _project(tmp_path, "blueprint:\n  name: own\n  steps:\n"
                               "    - {name: technical validation, role: ml_engineer, people: [U0ML0002]}\n")
    loans.write_text(loans.read_text().replace("name: Dana, roles: [business]", "name: Dana, roles: [business, ml_engineer]"))
    _apply(db, loans)
    with db.session() as s:
        v1 = registry.register_version(session=s, model_key="default-risk", created_by="U0ML0001", artifact_uri="x")
        governance.submit_for_review(session=s, version=v1, by="U0ML0001")
        assert [p.slack_id for p in governance.signable_now(session=s, version=v1)[1]] == ["U0ML0002"]
        with pytest.raises(Forbidden, match="names who may sign it, and you are not among them"):
            governance.sign_off(session=s, version=v1, person=registry.require_person(session=s, slack_id="U0BIZ001"),
                                decision=Decision.approve)
        governance.sign_off(session=s, version=v1, person=registry.require_person(session=s, slack_id="U0ML0002"),
                            decision=Decision.approve)
        assert v1.status.value == "approved"
