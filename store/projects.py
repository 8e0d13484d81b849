"""Projects and the people in them: lookups every part of the registry shares. Every function takes the caller's session."""

from __future__ import annotations

import difflib

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.errors import NotFound
from store.models import Blueprint, LibraryBlueprint, Person, Project


def did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" Did you mean {close[0]}?" if close else ""


def get_project(*, session: Session, key: str) -> Project:
    project = session.execute(select(Project).where(Project.key == key)).scalar_one_or_none()
    if project is None:
        known = list(session.execute(select(Project.key)).scalars())
        raise NotFound(f"No project called {key}.{did_you_mean(key, known)}")
    return project


def list_projects(*, session: Session) -> list[Project]:
    return list(session.execute(select(Project).order_by(Project.key)).scalars())


def get_person(*, session: Session, slack_id: str) -> Person | None:
    return session.execute(select(Person).where(Person.slack_id == slack_id)).scalar_one_or_none()


def require_person(*, session: Session, slack_id: str) -> Person:
    person = get_person(session=session, slack_id=slack_id)
    if person is None:
        raise NotFound(f"{slack_id} is not a Flywheel user yet: add them to a project spec's people.")
    return person


def people_named(*, session: Session, name: str) -> list[Person]:
    """The people whose name is `name`, ignoring case (for the terminal's `--as`, which also takes a name)."""
    return list(session.execute(select(Person).where(func.lower(Person.name) == name.strip().lower())
                                .order_by(Person.slack_id)).scalars())


def people_by_id(*, session: Session, slack_ids: list[str]) -> dict[str, Person]:
    if not slack_ids:
        return {}
    rows = session.execute(select(Person).where(Person.slack_id.in_(slack_ids))).scalars()
    return {p.slack_id: p for p in rows}


def library_blueprints(*, session: Session) -> list[LibraryBlueprint]:
    """The blueprint library, by name."""
    return list(session.execute(select(LibraryBlueprint).order_by(LibraryBlueprint.name)).scalars())


def projects_using(*, session: Session, names: set[str]) -> list[Project]:
    """Projects whose blueprint copies one of these library blueprints, or was chosen by their risk tier."""
    return list(session.execute(select(Project).join(Blueprint, Blueprint.project_id == Project.id)
                                .where(Blueprint.library.in_(names) | Blueprint.by_tier.is_(True))
                                .order_by(Project.key)).scalars())
