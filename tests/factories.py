"""Rows for store tests, written straight through the ORM (specs are tested on their own)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from store.models import Blueprint, BlueprintStep, Model, PersonaChannel, Person, Project, RiskTier

PEOPLE = {
    "U0BIZ001": ("Dana", ["business"]),
    "U0ML0001": ("Eli", ["ml_engineer"]),
    "U0ML0002": ("Noor", ["ml_engineer"]),
    "U0RISK01": ("Rita", ["risk_manager"]),
    "U0OPS001": ("Omar", ["it_ops"]),
}


def fraud_project(session: Session, *, quorum: int = 1) -> Model:
    for slack_id, (name, roles) in PEOPLE.items():
        session.add(Person(slack_id=slack_id, name=name, roles=roles))
    project = Project(key="card-fraud", name="Card fraud detection", initiative="Reduce payment fraud losses",
                      owner="U0ML0001", sponsors=["U0BIZ001"], risk_tier=RiskTier.high, tags=["fraud"])
    project.channels = [PersonaChannel(persona=p, channel=c) for p, c in
                        [("business", "C0BIZ"), ("ml_engineer", "C0ML"), ("risk_manager", "C0RISK"),
                         ("it_ops", "C0OPS")]]
    project.blueprint = Blueprint(name="customer-facing", steps=[
        BlueprintStep(position=1, name="technical validation", role="ml_engineer", quorum=1),
        BlueprintStep(position=2, name="risk review", role="risk_manager", quorum=quorum)])
    session.add(project)
    model = Model(key="fraud-detector", project=project, description="Scores card transactions",
                  owner="U0ML0001", task="binary_classification")
    session.add(model)
    session.flush()
    return model
