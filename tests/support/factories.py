"""Rows for store tests, written straight through the ORM (specs are tested on their own)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from store.models import Blueprint, BlueprintStep, Grant, Model, PersonaChannel, Person, Project, RiskTier

PEOPLE = {
    "U0BIZ001": ("Dana", ["business"]),
    "U0ML0001": ("Eli", ["ml_engineer"]),
    "U0ML0002": ("Noor", ["ml_engineer"]),
    "U0RISK01": ("Rita", ["risk_manager"]),
    "U0OPS001": ("Omar", ["it_ops"]),
}


def fraud_project(session: Session, *, quorum: int = 1) -> Model:
    people = [Person(slack_id=slack_id, name=name) for slack_id, (name, _) in PEOPLE.items()]
    session.add_all(people)
    project = Project(key="card-fraud", name="Card fraud detection", initiative="Reduce payment fraud losses",
                      owner="U0ML0001", sponsors=["U0BIZ001"], risk_tier=RiskTier.high, tags=["fraud"])
    project.channels = [PersonaChannel(persona=p, channel=c) for p, c in
                        [("business", "C0BIZ"), ("ml_engineer", "C0ML"), ("risk_manager", "C0RISK"),
                         ("it_ops", "C0OPS")]]
    project.blueprint = Blueprint(name="customer-facing", steps=[
        BlueprintStep(position=1, name="technical validation", role="ml_engineer", quorum=1),
        BlueprintStep(position=2, name="risk review", role="risk_manager", quorum=quorum)])
    session.add(project)
    for person in people:
        grant(person, project, *PEOPLE[person.slack_id][1])
    model = Model(key="fraud-detector", project=project, description="Scores card transactions",
                  owner="U0ML0001", task="binary_classification")
    session.add(model)
    session.flush()
    return model


def grant(person: Person, project: Project, *roles: str) -> Person:
    """Give a person roles on one project (what applying the project's spec does)."""
    person.grants.extend(Grant(project=project, role=r) for r in roles)
    return person
