"""Automated blueprint steps, run when they fall due (on submission, or when the human steps before them are
signed): the facts each check reads are gathered here from the registry, judged by jobs.blueprint_checks,
and recorded through store.governance (signed by Flywheel, or the version rejected with the failing figures)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from jobs.blueprint_checks import CheckRunFact, Evaluated, Facts, judge
from jobs.spec import CheckSpec
from store import governance, monitoring, registry
from store.models import CheckKind, Evaluation, ModelVersion, VersionStatus

RUNS_LOOKED_AT = 500  # data-quality runs read back from the end of the training window


@dataclass(frozen=True)
class Judged:
    step: str
    passed: bool
    reason: str


def _evaluated(version: ModelVersion, evaluation: Evaluation | None) -> Evaluated | None:
    if evaluation is None:
        return None
    return Evaluated(version.label, evaluation.window_start, evaluation.window_end, evaluation.rows,
                     dict(evaluation.metrics))


def _run(run) -> CheckRunFact:
    return CheckRunFact(run.as_of, run.verdict.value, run.message, dict(run.figures or {}))


def facts_of(*, session: Session, version: ModelVersion) -> Facts:
    """The candidate's latest evaluation and production's on the same window (as stored by the comparison with
    production), the model's data-quality runs inside the candidate's training window and its latest drift run."""
    model = version.model
    mine = registry.latest_evaluation(session=session, version=version)
    champion = registry.production_version(session=session, model=model)
    if champion is None or champion.id == version.id:
        champion = version.parent
    theirs = registry.latest_evaluation(session=session, version=champion, window_end=mine.window_end) \
        if champion is not None and mine is not None else None
    quality: tuple[CheckRunFact, ...] = ()
    if version.train_start is not None and version.train_end is not None:
        runs = monitoring.check_history(session=session, model=model, kind=CheckKind.data_quality,
                                        before=version.train_end, limit=RUNS_LOOKED_AT)
        quality = tuple(_run(r) for r in runs if r.as_of > version.train_start)
    drift = [r for r in monitoring.check_history(session=session, model=model, kind=CheckKind.drift, limit=5)
             if r.verdict.value != "error"]
    return Facts(model.key, version.label, _evaluated(version, mine), _evaluated(champion, theirs) if theirs else None,
                 version.train_start, version.train_end, quality, _run(drift[-1]) if drift else None)


def run_due(*, session: Session, version: ModelVersion, now: datetime | None = None) -> list[Judged]:
    """Judge every automated step due now, and those that fall due once they pass, until a person's step is
    due, a check fails (the version is rejected) or the version is approved."""
    judged: list[Judged] = []
    facts = None
    while version.status == VersionStatus.in_review:
        due = [p.step for p in governance.due_steps(session=session, version=version) if p.step.automated]
        if not due:
            break
        facts = facts or facts_of(session=session, version=version)
        for step in due:
            verdict = judge(CheckSpec.model_validate(step.check), facts)
            governance.record_check(session=session, version=version, step=step, passed=verdict.passed,
                                    reason=verdict.reason, now=now)
            judged.append(Judged(step.name, verdict.passed, verdict.reason))
            if not verdict.passed:
                break
    return judged
