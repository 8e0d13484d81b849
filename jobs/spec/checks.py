"""Cross checks of a spec: people referenced, keys unique, columns present in the reference data, artifact roots."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from jobs.sources import ColumnKind, SourceError, open_source
from jobs.spec.issues import _Document, _format_loc, _suggest, _unwrap
from jobs.spec.model import (
    METRICS,
    BlueprintSpec,
    CatalogEntrySpec,
    Loc,
    ModelSpec,
    PersonSpec,
    ProjectInfoSpec,
    ProjectSpec,
    _column_refs,
    _Spec,
)
from jobs.spec.reach import url_problem
from jobs.spec.tasks import task_problems

# ---------------------------------------------------------------- cross checks


@dataclass
class _Parts:
    """The pieces of a spec that validated, so cross checks run even when something else failed.

    A model in `models` may be salvaged: rebuilt without its invalid optional keys. Only checks that
    cannot be misled by a missing optional key (people, columns) run on those; `exact` holds the
    indexes of models that validated as written.
    """

    project: ProjectInfoSpec | None
    people: list[PersonSpec] | None
    blueprint: BlueprintSpec | None
    models: list[tuple[int, ModelSpec]]
    exact: set[int]
    person_refs: list[tuple[Loc, str]]
    catalog: list[tuple[int, CatalogEntrySpec]] = field(default_factory=list)

    @classmethod
    def of(cls, spec: ProjectSpec) -> _Parts:
        refs = [(("project", "owner"), spec.project.owner)]
        refs += [(("project", "sponsors", i), s) for i, s in enumerate(spec.project.sponsors)]
        refs += [(("models", i, "owner"), m.owner) for i, m in enumerate(spec.models)]
        refs += [(("catalog", i, "owner"), c.owner) for i, c in enumerate(spec.catalog)]
        return cls(spec.project, spec.people, spec.blueprint, list(enumerate(spec.models)),
                   set(range(len(spec.models))), refs, list(enumerate(spec.catalog)))

    @classmethod
    def salvage(cls, data: dict[str, Any]) -> _Parts:
        raw_models = data.get("models") if isinstance(data.get("models"), list) else []
        models, exact = [], set()
        for index, raw in enumerate(raw_models):
            if (model := _try(ModelSpec, raw)) is not None:
                exact.add(index)
            elif (model := _salvage(ModelSpec, raw)) is None:
                continue
            models.append((index, model))
        project = data.get("project") if isinstance(data.get("project"), dict) else {}
        refs: list[tuple[Loc, str]] = []
        if isinstance(project.get("owner"), str):
            refs.append((("project", "owner"), project["owner"]))
        if isinstance(project.get("sponsors"), list):
            refs += [(("project", "sponsors", i), s) for i, s in enumerate(project["sponsors"]) if isinstance(s, str)]
        refs += [(("models", index, "owner"), raw["owner"]) for index, raw in enumerate(raw_models)
                 if isinstance(raw, dict) and isinstance(raw.get("owner"), str)]
        raw_catalog = data.get("catalog") if isinstance(data.get("catalog"), list) else []
        refs += [(("catalog", index, "owner"), raw["owner"]) for index, raw in enumerate(raw_catalog)
                 if isinstance(raw, dict) and isinstance(raw.get("owner"), str)]
        catalog = [(index, entry) for index, raw in enumerate(raw_catalog)
                   if (entry := _try(CatalogEntrySpec, raw)) is not None]
        return cls(_try(ProjectInfoSpec, project), _try(list[PersonSpec], data.get("people")) or None,
                   _try(BlueprintSpec, data.get("blueprint")), models, exact, refs, catalog)


def _try(kind: Any, value: object) -> Any:
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return None


def _salvage(kind: type[_Spec], raw: object) -> Any:
    """`kind` built from `raw` minus its invalid optional keys (required ones salvaged in turn), or None."""
    if not isinstance(raw, dict):
        return None
    value = dict(raw)
    for _ in range(len(value) + 1):
        try:
            return kind.model_validate(value)
        except ValidationError as exc:
            errors = exc.errors()
            if any(not error["loc"] for error in errors):  # the object as a whole is wrong
                return None
            failing = {error["loc"][0] for error in errors}
            for key in failing:
                info = kind.model_fields.get(str(key))
                if info is None or not info.is_required():
                    value.pop(key, None)
                    continue
                inner = _unwrap(info.annotation)
                if not (isinstance(inner, type) and issubclass(inner, _Spec)):
                    return None
                if (repaired := _salvage(inner, value.get(key))) is None:
                    return None
                value[key] = repaired
    return None


def _check_references(document: _Document, parts: _Parts) -> None:
    if parts.people is not None:
        first_index: dict[str, int] = {}
        for index, person in enumerate(parts.people):
            if person.slack_id in first_index:
                document.add(("people", index, "slack_id"),
                             f"duplicate slack_id '{person.slack_id}' (also people[{first_index[person.slack_id]}])")
            first_index.setdefault(person.slack_id, index)
        for loc, slack_id in parts.person_refs:
            if slack_id.strip() and slack_id.strip() not in first_index:
                document.add(loc, _unknown_person(slack_id.strip(), parts.people))
    if parts.blueprint is not None:
        _check_unique(document, [(("blueprint", "steps", i, "name"), s.name)
                                 for i, s in enumerate(parts.blueprint.steps)], "step name")
    _check_unique(document, [(("models", index, "key"), model.key) for index, model in parts.models], "model key")
    _check_catalog(document, parts)
    for index, model in parts.models:
        if index not in parts.exact:
            continue
        for loc, message in _model_problems(model):
            document.add(("models", index, *loc), message)


def _check_catalog(document: _Document, parts: _Parts) -> None:
    _check_unique(document, [(("catalog", index, "key"), entry.slug) for index, entry in parts.catalog],
                  "catalog key")
    model_keys = {model.key for _, model in parts.models}
    for index, entry in parts.catalog:
        if entry.kind == "model" and entry.slug in model_keys:
            document.add(("catalog", index, "key"), f"'{entry.slug}' is a model of this spec, which the catalog "
                                                     "lists already; list assets the registry doesn't know here")


def _unknown_person(slack_id: str, people: list[PersonSpec]) -> str:
    named = next((p for p in people if p.name.casefold() == slack_id.casefold()), None)
    if named is not None:
        return f"unknown person '{slack_id}' (use the Slack id: {named.name} is '{named.slack_id}')"
    close = difflib.get_close_matches(slack_id, [p.slack_id for p in people], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown person '{slack_id}' (not in people{hint})"


def _check_unique(document: _Document, items: list[tuple[Loc, str]], what: str) -> None:
    first: dict[str, Loc] = {}
    for loc, value in items:
        if value in first:
            document.add(loc, f"duplicate {what} '{value}' (also at {_format_loc(first[value])})")
        first.setdefault(value, loc)


def _model_problems(model: ModelSpec) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    listed: set[str] = set()
    for group in ("numeric", "categorical"):
        for index, name in enumerate(getattr(model.features, group)):
            if name in listed:
                problems.append((("features", group, index), f"feature '{name}' is listed twice"))
            listed.add(name)
    for key in model.drift.thresholds:
        if key != "default" and key not in listed:
            problems.append((("drift", "thresholds", key),
                             f"threshold for '{key}', which is not a listed feature{_suggest(key, sorted(listed))}"))
    kpi_names: dict[str, int] = {}
    for index, kpi in enumerate(model.kpis):
        if kpi.name in kpi_names:
            problems.append((("kpis", index, "name"),
                             f"duplicate KPI name '{kpi.name}' (also kpis[{kpi_names[kpi.name]}])"))
        kpi_names.setdefault(kpi.name, index)
    performance = model.performance
    if performance is not None:
        if model.data.label is None:
            problems.append((("performance",),
                             "performance metrics need data.label (the column with the true outcome)"))
        for index, metric in enumerate(performance.metrics):
            if metric == "roc_auc" and model.data.score is None:
                problems.append((("performance", "metrics", index),
                                 "roc_auc needs data.score (the column with the model's score or probability)"))
        for key in performance.alert:
            if key not in METRICS:
                problems.append((("performance", "alert", key),
                                 f"unknown metric '{key}'{_suggest(key, METRICS, list_all=True)}"))
            elif key not in performance.metrics:
                problems.append((("performance", "alert", key),
                                 f"alert on '{key}', which is not in performance.metrics"))
    return problems + task_problems(model)


def _check_columns(document: _Document, parts: _Parts, base_dir: Path) -> None:
    schemas: dict[str, dict[str, ColumnKind] | SourceError] = {}
    for index, model in parts.models:
        reference = model.data.reference
        if url_problem(reference) is not None:
            continue  # reported on its URL (reach.py)
        cache_key = reference.model_dump_json()
        if cache_key not in schemas:
            try:
                schemas[cache_key] = open_source(reference, base_dir).schema()
            except SourceError as exc:
                schemas[cache_key] = exc
        schema = schemas[cache_key]
        if isinstance(schema, SourceError):
            document.add(("models", index, "data", "reference"), f"cannot read the reference data: {schema}")
            continue
        for ref in _column_refs(model):
            loc = ("models", index, *ref.loc)
            kind = schema.get(ref.column)
            if kind is None:
                hint = _suggest(ref.column, list(schema)) or " (not in the reference data)"
                document.add(loc, f"unknown column '{ref.column}'{hint}")
            elif ref.kinds is not None and kind not in ref.kinds:
                wanted = "date-times" if "datetime" in ref.kinds else "numbers"
                advice = " (list it under categorical?)" if ref.purpose == "a numeric feature" else ""
                document.add(loc, f"column '{ref.column}' holds {kind} values in the reference data; "
                                  f"{ref.purpose} needs {wanted}{advice}")


def _check_artifact_roots(document: _Document, parts: _Parts, base_dir: Path) -> None:
    for index, model in parts.models:
        for position, root in enumerate(model.artifact_roots):
            folder = base_dir / root
            if not folder.is_dir():
                document.add(("models", index, "artifact_roots", position),
                             f"artifact root '{root}' is not a folder (looked for {folder.resolve()})")
