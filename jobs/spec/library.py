"""Blueprint libraries: a file whose top level is `blueprints:`, applied with the project specs (or alone), and
how a project spec's blueprint is chosen from it: by name, or by the project's risk tier when it names none."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jobs.spec.issues import (
    LoadedLibrary,
    LoadedSpec,
    _add_validation_error,
    _Document,
    _suggest,
)
from jobs.spec.model import (
    BlueprintSpec,
    LibraryBlueprintSpec,
    LibrarySpec,
    ProjectSpec,
)

Library = Mapping[str, LibraryBlueprintSpec]


def is_library(data: dict[str, Any]) -> bool:
    return "blueprints" in data and "project" not in data


def validate_library(data: dict[str, Any], path: Path, document: _Document) -> None:
    document.shape = LibrarySpec
    try:
        spec = LibrarySpec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            _add_validation_error(document, error)
        return
    first: dict[str, int] = {}
    tiers: dict[str, str] = {}
    for index, blueprint in enumerate(spec.blueprints):
        if blueprint.name in first:
            document.add(("blueprints", index, "name"),
                         f"duplicate blueprint name '{blueprint.name}' (also blueprints[{first[blueprint.name]}])")
        first.setdefault(blueprint.name, index)
        names: set[str] = set()
        for position, step in enumerate(blueprint.steps):
            if step.name in names:
                document.add(("blueprints", index, "steps", position, "name"), f"duplicate step name '{step.name}'")
            names.add(step.name)
        for tier in blueprint.tiers:
            if tier in tiers:
                document.add(("blueprints", index, "tiers"),
                             f"risk tier '{tier}' is also listed by blueprint '{tiers[tier]}'; a tier chooses one "
                             "blueprint")
            tiers.setdefault(tier, blueprint.name)
    if not document.issues:
        document.loaded = LoadedLibrary(spec=spec, path=path.resolve())


def merged(stored: Library, libraries: list[LoadedLibrary]) -> dict[str, LibraryBlueprintSpec]:
    """The library the specs applied now choose from: the library files being applied (together, the whole
    library: a blueprint they leave out is removed), else the registry's."""
    library = {} if libraries else dict(stored)
    for loaded in libraries:
        library.update({b.name: b for b in loaded.spec.blueprints})
    return library


def _listing(library: Library) -> str:
    if not library:
        return "the library is empty: apply a blueprint library file (blueprints: [...]) with this spec"
    return "the library has " + ", ".join(
        f"{b.name} ({', '.join(b.tiers) or 'no tier'})" for b in sorted(library.values(), key=lambda b: b.name))


def resolve(document: _Document, loaded: LoadedSpec, library: Library) -> None:
    """Choose the project's blueprint (inline, named, or by risk tier) and check the people its steps name;
    problems go on the spec's lines."""
    spec = loaded.spec
    if spec.blueprint is not None:
        chosen, name, by_tier, where = spec.blueprint, None, False, ("blueprint",)
    elif spec.blueprint_name is not None:
        name, by_tier, where = spec.blueprint_name, False, ("blueprint",)
        if name not in library:
            document.add(where, f"unknown blueprint '{name}'{_suggest(name, sorted(library))}; {_listing(library)}")
            return
        chosen = library[name]
    else:
        tier = spec.project.risk_tier
        fits = sorted((b for b in library.values() if tier in b.tiers), key=lambda b: b.name)
        where, by_tier = ("project", "risk_tier"), True
        if not fits:
            document.add(where, f"no blueprint for risk tier '{tier}': the spec names none and {_listing(library)}; "
                                "name one under blueprint:, or list the tier in one")
            return
        if len(fits) > 1:
            document.add(where, f"blueprints {' and '.join(b.name for b in fits)} both list risk tier '{tier}'; "
                                "name one under blueprint:")
            return
        chosen, name = fits[0], fits[0].name
    _check_people(document, spec, chosen, inline=name is None)
    document.loaded = replace(loaded, resolved=BlueprintSpec.model_validate(
        chosen.model_dump(exclude={"tiers"})), library=name, by_tier=by_tier)


def _check_people(document: _Document, spec: ProjectSpec, blueprint: BlueprintSpec, *, inline: bool) -> None:
    roles = {p.slack_id: set(p.roles) for p in spec.people}
    for index, step in enumerate(blueprint.steps):
        for position, slack_id in enumerate(step.people):
            held = roles.get(slack_id)
            problem = ("is not in this spec's people" if held is None else
                       f"does not hold the {step.role} role here" if step.role not in held and "admin" not in held
                       else None)
            if problem is None:
                continue
            if inline:
                document.add(("blueprint", "steps", index, "people", position),
                             f"'{slack_id}', named to sign {step.name}, {problem}")
            else:
                document.add(("blueprint",) if spec.blueprint_name else ("project", "risk_tier"),
                             f"blueprint '{blueprint.name}' names '{slack_id}' to sign {step.name}, who {problem}")
