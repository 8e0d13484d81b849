"""What a spec promises to reach, checked when it is loaded rather than when a check first fails: a channel for
every persona that gets alerts, data source URLs Flywheel can open (a known scheme, its driver installed),
and, when applying (`open_production`), each model's production data opened read-only (the file or table
there, its columns present, its timestamp holding date-times) and its python retrain entrypoint's package
importable, since its alerts offer a Retrain button."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.engine import make_url

from jobs.sources import ColumnKind, SourceError, SourceSpec, open_source
from jobs.sources.urls import ENV_VAR
from jobs.spec.issues import _Document, _suggest
from jobs.spec.model import ChannelsSpec, ModelSpec, _column_refs
from store.db import driver_problem, normalise_url

_CHANNEL_ID = "a Slack channel id like C0123ABCD (the channel's details, at the bottom)"


def check_reach(document: _Document, data: dict[str, Any], models: list[tuple[int, ModelSpec]],
                exact: set[int], base_dir: Path, *, open_production: bool) -> None:
    _check_channels(document, data, models)
    for index, model in models:
        for which in ("reference", "production"):
            source: SourceSpec = getattr(model.data, which)
            if (problem := url_problem(source)) is not None:
                document.add(("models", index, "data", which, "url"), problem)
        if open_production and index in exact and url_problem(model.data.production) is None:
            _check_production(document, index, model, base_dir)
        if open_production and index in exact:
            _check_retrain(document, index, model)


def url_problem(source: SourceSpec) -> str | None:
    """Why Flywheel cannot open this source's database URL: an unknown scheme, or its driver missing."""
    if source.url is None:
        return None
    scheme = source.url.partition("://")[0]
    if ENV_VAR.search(scheme):
        return None  # known once the variable is expanded, when the source is opened
    try:
        url = make_url(normalise_url(ENV_VAR.sub("x", source.url)))
    except Exception:  # noqa: BLE001 - the model's validator already refused a URL that does not parse
        return None
    return driver_problem(url)


def _check_channels(document: _Document, data: dict[str, Any], models: list[tuple[int, ModelSpec]]) -> None:
    """Alerts go to their persona's channel: without one they have nowhere to go."""
    try:
        channels = TypeAdapter(ChannelsSpec).validate_python(data.get("channels") or {})
    except ValidationError:
        return  # refused as it is written already
    needs: dict[str, str] = {}
    if models:
        needs["ml_engineer"] = "drift, performance and data quality alerts"
    kpi_alerts = [kpi.name for _, model in models for kpi in model.kpis if kpi.alert is not None]
    if kpi_alerts:
        needs["business"] = f"KPI alerts ({', '.join(dict.fromkeys(kpi_alerts))})"
    steps = data.get("blueprint", {}).get("steps") if isinstance(data.get("blueprint"), dict) else None
    if isinstance(steps, list) and any(isinstance(s, dict) and s.get("role") == "risk_manager" for s in steps):
        needs["risk_manager"] = "sign-off requests"
    for persona, what in needs.items():
        if not (channels.for_role(persona) or "").strip():
            document.add(("channels",), f"no channel for {persona}, who gets the {what}: add "
                                        f"channels.{persona}: {_CHANNEL_ID}")


def _check_production(document: _Document, index: int, model: ModelSpec, base_dir: Path) -> None:
    loc = ("models", index, "data", "production")
    try:
        schema = open_source(model.data.production, base_dir).schema()
    except SourceError as exc:
        document.add(loc, f"cannot read the production data: {exc}{_hint(str(exc), model.data.production)}")
        return
    for ref in _column_refs(model):
        kind = schema.get(ref.column)
        if kind is None:
            hint = _suggest(ref.column, list(schema)) or " (not in the production data)"
            document.add(("models", index, *ref.loc), f"unknown column '{ref.column}' in the production data{hint}")
        elif ref.kinds is not None and kind not in ref.kinds:
            wanted = "date-times" if "datetime" in ref.kinds else "numbers"
            document.add(("models", index, *ref.loc), f"column '{ref.column}' holds {kind} values in the production "
                                                      f"data; {ref.purpose} needs {wanted}{_kind_hint(kind, ref.kinds)}")


def _check_retrain(document: _Document, index: int, model: ModelSpec) -> None:
    """Alerts offer Retrain when the spec names a backend; the python backend's entrypoint must be importable
    where Flywheel runs, or every click fails. Only the top-level package is looked up: nothing is run."""
    retrain = model.retrain
    if retrain is None or retrain.backend != "python" or not retrain.entrypoint:
        return
    top = retrain.entrypoint.partition(":")[0].partition(".")[0]
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        document.add(("models", index, "retrain", "entrypoint"),
                     f"retrain entrypoint '{retrain.entrypoint}': no package '{top}' to import here, so the Retrain "
                     "button of this model's alerts could only fail; install the package where Flywheel runs, or "
                     "fix the entrypoint (package.module:function)")


def _hint(message: str, source: SourceSpec) -> str:
    if message.startswith("cannot connect"):
        return ("; apply opens each model's production data read-only to check it: start the database or fix "
                "the URL")
    if message.startswith("database file not found") or (source.path is not None and "not found" in message):
        return " (a relative path is read from the spec's folder)"
    return ""


def _kind_hint(kind: ColumnKind, wanted: frozenset[str]) -> str:
    if "datetime" in wanted and kind == "string":
        return " (store ISO 8601 text like 2026-01-05 10:00:00, or a timestamp column)"
    return ""
