"""The model card: one version's facts, training window, comparison with its parent and sign-offs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bot.services.pages.alert import Happening, happening
from bot.services.pages.constants import MAX_EVENTS
from bot.services.pages.reads import (
    audit_rows,
    blueprint_steps,
    kpi_series,
    person_names,
    sample,
    version_row,
)
from bot.services.pages.shapes import Decided, Series, VersionRow
from bot.services.pages.viewer import Viewer
from jobs import explain
from jobs.explain import Importance, Reliance
from jobs.incidents import Comparison
from store import registry
from store.clock import utcnow
from store.models import CheckKind, CheckRun, Evaluation, ModelVersion


@dataclass(frozen=True)
class Card:
    model_key: str
    description: str
    task: str
    tags: tuple[str, ...]
    project_key: str
    project_name: str
    initiative: str
    project_description: str
    risk_tier: str
    owner: str
    sponsors: tuple[str, ...]
    version: VersionRow
    parent: str | None
    data: tuple[tuple[str, str], ...]  # (what, where): sources and columns, without hosts or credentials
    features: tuple[tuple[str, str], ...]  # (name, numeric | categorical)
    evaluations: tuple[tuple[datetime, datetime, int, dict[str, float]], ...]  # latest of this version
    comparison: Comparison | None
    drift: tuple[tuple[str, int, int, float | None, float | None], ...]  # feature, runs drifted, runs, last, line
    drift_runs: int
    kpis: tuple[Series, ...]
    signoffs: tuple[Decided, ...]
    blueprint: str
    deployments: tuple[Happening, ...]
    generated_at: datetime
    names: dict[str, str] = field(default_factory=dict)
    intended_use: str = ""
    out_of_scope: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()
    segment_columns: tuple[str, ...] = ()  # what the spec names
    segments: Segments | None = None
    # Which features it relies on, on its latest evaluation that measured them (jobs.explain), most first.
    importances: tuple[Importance, ...] = ()
    importance_metric: str | None = None
    reliance: tuple[Reliance, ...] = ()  # against the parent on the same window
    reliance_compared: bool = False  # both measured the same way: an empty `reliance` means nothing moved


@dataclass(frozen=True)
class Segments:
    """Per-segment figures of the version's latest performance check that has them."""

    window_start: datetime
    window_end: datetime
    metrics: tuple[str, ...]
    # (column, ((value, rows, {metric: value}), ...), rows in values beyond the listed ones)
    columns: tuple[tuple[str, tuple[tuple[str, int, dict[str, float]], ...], int], ...]


def _segments(session: Session, model_id: int, version_id: int) -> Segments | None:
    runs = session.execute(select(CheckRun).where(
        CheckRun.model_id == model_id, CheckRun.version_id == version_id, CheckRun.kind == CheckKind.performance)
        .order_by(CheckRun.as_of.desc(), CheckRun.id.desc()).limit(10)).scalars()
    run = next((r for r in runs if r.figures.get("segments")), None)  # an error run has none: the one before
    if run is None:
        return None
    return Segments(run.window_start, run.window_end, tuple(run.figures.get("metrics") or ()), tuple(
        (s["column"], tuple((v["value"], v["rows"], dict(v["metrics"])) for v in s["values"]), s.get("other_rows", 0))
        for s in run.figures["segments"]))


def _source(spec: dict[str, Any] | None) -> str:
    if not spec:
        return "not set"
    if spec.get("path"):
        return f"file {spec['path']}"
    try:
        backend = make_url(spec["url"]).get_backend_name()
    except Exception:  # noqa: BLE001 - an unparsable URL is described, never shown (it may hold a password)
        backend = "SQL"
    what = f"table {spec['table']}" if spec.get("table") else "a query"
    return f"{what} in a {backend} database"


def model_card(*, session: Session, key: str, number: int, viewer: Viewer, now: datetime | None = None) -> Card:
    version = registry.get_version(session=session, model_key=key, number=number)
    model, project = version.model, version.model.project
    viewer = viewer.within(project)
    spec = model.spec or {}
    data = spec.get("data") or {}
    evaluations = list(session.execute(select(Evaluation).where(Evaluation.version_id == version.id)
                                       .order_by(Evaluation.window_end.desc(), Evaluation.id.desc())
                                       .limit(8)).scalars())
    comparison = None
    parent = session.get(ModelVersion, version.parent_id) if version.parent_id else None
    if evaluations and parent is not None:
        theirs = registry.latest_evaluation(session=session, version=parent, window_end=evaluations[0].window_end)
        if theirs is not None:
            mine = evaluations[0]
            comparison = Comparison(model.key, parent.label, version.label, mine.window_start, mine.window_end,
                                    mine.rows, dict(theirs.metrics), dict(mine.metrics),
                                    champion_importances=theirs.importances, challenger_importances=mine.importances)
    measured = next((e.importances for e in evaluations if e.importances), None)
    mine = (CheckRun.model_id == model.id, CheckRun.version_id == version.id)
    drift_runs = sample(session, (*mine, CheckRun.kind == CheckKind.drift))
    drifted: dict[str, int] = defaultdict(int)
    for run in drift_runs:
        for f in run.figures.get("features", []):
            drifted[f["feature"]] += bool(f.get("drifted"))
    last = {f["feature"]: f for f in (drift_runs[-1].figures.get("features", []) if drift_runs else [])}
    drift_total = session.scalar(select(func.count()).select_from(CheckRun)
                                 .where(*mine, CheckRun.kind == CheckKind.drift))
    kpi_runs = sample(session, (*mine, CheckRun.kind == CheckKind.kpi))
    deployments = audit_rows(session, model.key, limit=MAX_EVENTS,
                         actions=("version.adopted", "version.deployed", "version.rolled_back"))
    names = person_names(session, [model.owner, project.owner, *project.sponsors, version.created_by,
                             version.deployed_by or "", *(e.actor for e in deployments),
                             *(s.person for s in version.sign_offs)])
    signoffs = tuple(Decided(s.step.name, s.person, names.get(s.person, s.person), s.decision.value, s.reason,
                             s.created_at, version.label) for s in version.sign_offs)
    columns = [("production data", _source(data.get("production"))), ("reference data", _source(data.get("reference"))),
               ("time column", data.get("timestamp") or ""), ("label", data.get("label") or "none"),
               ("prediction", data.get("prediction") or ""), ("score", data.get("score") or "")]
    features = spec.get("features") or {}
    written = spec.get("card") or {}
    return Card(
        model_key=model.key, description=model.description, task=model.task, tags=tuple(model.tags),
        project_key=project.key, project_name=project.name, initiative=project.initiative,
        project_description=project.description, risk_tier=project.risk_tier.value, owner=model.owner,
        sponsors=tuple(project.sponsors), version=version_row(version, blueprint_steps(session, [version], names)),
        parent=parent.label if parent else None, data=tuple((a, b) for a, b in columns if b),
        features=tuple((f, "numeric") for f in features.get("numeric", []))
        + tuple((f, "categorical") for f in features.get("categorical", [])),
        evaluations=tuple((e.window_start, e.window_end, e.rows, dict(e.metrics)) for e in evaluations),
        comparison=comparison,
        drift=tuple((name, drifted[name], len(drift_runs), last.get(name, {}).get("statistic"),
                     last.get(name, {}).get("threshold")) for name in (last or drifted)),
        drift_runs=drift_total or 0, kpis=kpi_series(kpi_runs, spec), signoffs=signoffs,
        blueprint=project.blueprint.name if project.blueprint else "",
        deployments=tuple(happening(e) for e in reversed(deployments)), generated_at=now or utcnow(), names=names,
        intended_use=written.get("intended_use") or "", out_of_scope=tuple(written.get("out_of_scope") or ()),
        limitations=tuple(written.get("limitations") or ()), segment_columns=tuple(spec.get("segments") or ()),
        segments=_segments(session, model.id, version.id) if spec.get("segments") else None,
        importances=tuple(explain.ranked(measured)), importance_metric=(measured or {}).get("metric"),
        reliance=tuple(explain.reliance_shifts(comparison.champion_importances, comparison.challenger_importances))
        if comparison else (),
        reliance_compared=bool(comparison) and explain.comparable(comparison.champion_importances,
                                                                  comparison.challenger_importances))
