"""The version lifecycle and its sign-offs.

candidate -> in_review -> approved -> production -> archived; any rejection -> rejected.
A version is approved when every step of its project's blueprint has its quorum of approvals from
distinct people holding the step's role (among the step's named people, when it names some), signed in the
blueprint's order: a step marked parallel is due with the step before it. An automated step is signed (or
the version rejected) by Flywheel through record_check, judged above this layer (jobs.blueprint_checks).
The project's deploy policy (policy_of) decides whether a deploy waits for every sign-off (block) or goes
ahead with some missing (warn, allow).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import audit, authority
from store.clock import utcnow
from store.errors import Conflict, Forbidden, InvalidTransition, NotFound
from store.models import (
    FLYWHEEL,
    BlueprintStep,
    Decision,
    Model,
    ModelVersion,
    Person,
    Project,
    SignOff,
    VersionStatus,
)
from store.registry import lock_model, production_version


@dataclass(frozen=True)
class Waiting:
    """A step still missing sign-offs, as plain data that outlives the failed unit of work."""

    name: str
    role: str
    have: int
    quorum: int


class GovernanceBlocked(InvalidTransition):
    """Deploy refused because sign-offs are missing; `waiting` names the steps."""

    def __init__(self, message: str, waiting: list[StepProgress] | list[Waiting]):
        super().__init__(message)
        self.waiting = [w if isinstance(w, Waiting) else
                        Waiting(w.step.name, w.step.role, len(w.approvals), w.step.quorum) for w in waiting]


@dataclass(frozen=True)
class Change:
    """How a version came to be as it is now, as plain data: what a refused click is told changed since
    its message was drawn. `what`: approved, rejected, deployed, rolled back (production again through a
    rollback), stopped (no longer serving: `live` is what serves now), or the status itself."""

    model_key: str
    label: str
    what: str
    by: str | None = None
    at: datetime | None = None
    reason: str = ""
    live: str | None = None


class Settled(InvalidTransition):
    """Refused because the state the asker saw is gone, or what they ask for is already so (`already`):
    a stale button, a repeated or concurrent click. Nothing was changed; `change` says what had changed."""

    def __init__(self, message: str, change: Change, *, already: bool = False):
        super().__init__(message)
        self.change, self.already = change, already


@dataclass(frozen=True)
class Rollback:
    stopped: ModelVersion
    restored: ModelVersion


def _at(when: datetime | None) -> str:
    return f" at {when:%H:%M} UTC" if when else ""


def change_of(*, session: Session, version: ModelVersion) -> Change:
    """Who put `version` in its current state, and when."""
    key, label, status = version.model.key, version.label, version.status
    decisions = session.execute(select(SignOff).where(SignOff.version_id == version.id)
                                .order_by(SignOff.id.desc())).scalars().all()
    if status == VersionStatus.rejected:
        last = next((d for d in decisions if d.decision == Decision.reject), None)
        return Change(key, label, "rejected", last.person if last else None, last.created_at if last else None,
                      last.reason if last else "")
    if status == VersionStatus.approved:
        last = next((d for d in decisions if d.decision == Decision.approve), None)
        return Change(key, label, "approved", last.person if last else None, last.created_at if last else None)
    if status == VersionStatus.production:
        # Production again after a later version served: it came back through a rollback.
        back = any(v.number > version.number and v.deployed_at is not None and v.deployed_at <= version.deployed_at
                   for v in version.model.versions) if version.deployed_at else False
        return Change(key, label, "rolled back" if back else "deployed", version.deployed_by, version.deployed_at,
                      live=label)
    if status == VersionStatus.archived:
        live = production_version(session=session, model=version.model)
        return Change(key, label, "stopped", live.deployed_by if live else None, live.deployed_at if live else None,
                      live=live.label if live else None)
    return Change(key, label, status.value)


def describe(change: Change) -> str:
    """The change in plain words, with Slack ids as they are (bot/ wording turns them into mentions)."""
    by = f" by {change.by}" if change.by else ""
    if change.what == "stopped":
        return (f"{change.model_key} {change.label} stopped serving{_at(change.at)}: {change.live} is in production"
                if change.live else f"{change.model_key} {change.label} no longer serves")
    said = f' ("{change.reason}")' if change.reason else ""
    return f"{change.model_key} {change.label} was {change.what.replace('_', ' ')}{by}{_at(change.at)}{said}"


@dataclass(frozen=True)
class StepProgress:
    step: BlueprintStep
    approvals: tuple[SignOff, ...]

    @property
    def done(self) -> bool:
        return len(self.approvals) >= self.step.quorum

    def describe(self) -> str:
        return f"{self.step.name}: {len(self.approvals)} of {self.step.quorum}"


def _subject(version: ModelVersion) -> str:
    return f"model:{version.model.key}/{version.label}"


def blueprint_steps(version: ModelVersion) -> list[BlueprintStep]:
    blueprint = version.model.project.blueprint
    return list(blueprint.steps) if blueprint else []


def progress(*, session: Session, version: ModelVersion) -> list[StepProgress]:
    sign_offs = session.execute(
        select(SignOff).where(SignOff.version_id == version.id).order_by(SignOff.id)).scalars().all()
    return [StepProgress(step, tuple(s for s in sign_offs
                                     if s.step_id == step.id and s.decision == Decision.approve))
            for step in blueprint_steps(version)]


def waiting_steps(*, session: Session, version: ModelVersion) -> list[StepProgress]:
    return [p for p in progress(session=session, version=version) if not p.done]


def _groups(steps: list[StepProgress]) -> list[list[StepProgress]]:
    """Steps due together: a step marked `parallel` joins the group of the step before it."""
    groups: list[list[StepProgress]] = []
    for p in steps:
        if p.step.parallel and groups:
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups


def due_steps(*, session: Session, version: ModelVersion) -> list[StepProgress]:
    """The open steps of the first group not yet done, in the blueprint's order: every one may be signed now.
    Empty when the version is not waiting for sign-off."""
    return _due(version, progress(session=session, version=version))


def _due(version: ModelVersion, steps: Sequence[StepProgress]) -> list[StepProgress]:
    if version.status != VersionStatus.in_review:
        return []
    for group in _groups(list(steps)):
        still = [p for p in group if not p.done]
        if still:
            return still
    return []


def policy_of(project: Project) -> str:
    """The deploy policy in force: the project's own (its spec's deploy_policy), else its blueprint's, else block."""
    return project.deploy_policy or (project.blueprint.policy if project.blueprint else None) or POLICY_BLOCK


POLICY_BLOCK, POLICY_WARN, POLICY_ALLOW = "block", "warn", "allow"


def barred(version: ModelVersion) -> set[str]:
    """Who may not sign the version at all: whoever retrained it, submitted it, or asked to deploy it."""
    return {p for p in (version.created_by, version.submitted_by, version.deploy_requested_by) if p}


def _may_sign(person: Person, version: ModelVersion, due: StepProgress, kept_out: set[str]) -> bool:
    """The one rule of who may sign a due step: holds its role on the project, is among its named people when
    it names some, and is not kept out (barred, or signed a step of the version already)."""
    named = due.step.people
    return (person.slack_id not in kept_out and person.holds(due.step.role, version.model.project_id)
            and (not named or person.slack_id in named))


def _kept_out(version: ModelVersion, steps: Sequence[StepProgress]) -> set[str]:
    return {a.person for p in steps for a in p.approvals} | barred(version)


def signable_by(person: Person, version: ModelVersion, steps: Sequence[StepProgress]) -> list[StepProgress]:
    """The human steps due now that `person` may sign, given the version's `steps` (progress, or the same
    read for many versions at once): signable_steps' rule, for one person."""
    kept_out = _kept_out(version, steps)
    return [p for p in _due(version, steps) if not p.step.automated and _may_sign(person, version, p, kept_out)]


def signable_steps(*, session: Session, version: ModelVersion) -> list[tuple[StepProgress, list[Person]]]:
    """Every human step due now (several when parallel) with the people who may sign it: they hold its role
    on the project (and are among its named people, when it names some), are not barred and signed no other
    step of the version."""
    steps = progress(session=session, version=version)
    due = [p for p in _due(version, steps) if not p.step.automated]
    if not due:
        return []
    kept_out = _kept_out(version, steps)
    people = session.execute(select(Person).order_by(Person.name)).scalars().all()
    return [(p, [person for person in people if _may_sign(person, version, p, kept_out)]) for p in due]


def signable_now(*, session: Session, version: ModelVersion) -> tuple[StepProgress | None, list[Person]]:
    """The first human step due now (in the blueprint's order) and the people who may sign it; (None, []) when
    the version is not waiting for a person's sign-off. signable_steps has every due step."""
    steps = signable_steps(session=session, version=version)
    return steps[0] if steps else (None, [])


def submit_for_review(*, session: Session, version: ModelVersion, by: str,
                      now: datetime | None = None) -> ModelVersion:
    if version.status != VersionStatus.candidate:
        raise InvalidTransition(f"{version.model.key} {version.label} is {version.status.value}; "
                                "only a candidate can be submitted for sign-off.")
    version.status = VersionStatus.in_review
    version.submitted_by = by
    audit.record(session=session, actor=by, action="version.submitted", subject=_subject(version), at=now)
    if not blueprint_steps(version):
        _approve(session=session, version=version, now=now)
    session.flush()
    return version


def _approve(*, session: Session, version: ModelVersion, now: datetime | None) -> None:
    version.status = VersionStatus.approved
    audit.record(session=session, actor="flywheel", action="version.approved", subject=_subject(version),
                 details={"steps": [p.describe() for p in progress(session=session, version=version)]},
                 at=now)


def sign_off(*, session: Session, version: ModelVersion, person: Person, decision: Decision,
             reason: str = "", now: datetime | None = None) -> SignOff:
    """Record one person's decision on the step of the blueprint that is due. The model is locked first:
    a decision racing another (an approval and a rejection at once) sees the one before it."""
    lock_model(session=session, model=version.model)
    label = f"{version.model.key} {version.label}"
    if version.status != VersionStatus.in_review:
        change = change_of(session=session, version=version)
        raise Settled(f"{label} is {version.status.value.replace('_', ' ')}, not waiting for sign-off: "
                      f"{describe(change)}.", change)
    if decision == Decision.reject and not reason.strip():
        raise InvalidTransition("A rejection needs a reason.")
    if person.slack_id in barred(version):
        why = ("retrained at your request" if person.slack_id == version.created_by else
               "submitted by you" if person.slack_id == version.submitted_by else "you asked to deploy it")
        raise Forbidden(f"You can't sign off {version.label}: it was {why}. Another ML engineer or a "
                        "risk manager can.")
    signed = next((p.step.name for p in progress(session=session, version=version)
                   for a in p.approvals if a.person == person.slack_id), None)
    if signed is not None:
        raise Conflict(f"You already signed {signed} for {label}; each step needs a different person.")
    waiting = waiting_steps(session=session, version=version)
    if not waiting:
        raise InvalidTransition(f"{label} already has every sign-off it needs.")
    due = [p for p in due_steps(session=session, version=version) if not p.step.automated]
    if not due:
        raise InvalidTransition(f"{label} is waiting for its automated checks: "
                                f"{', '.join(p.step.name for p in waiting if p.step.automated)}.")
    project_id = version.model.project_id
    chosen = next((p for p in due if person.holds(p.step.role, project_id)
                   and (not p.step.people or person.slack_id in p.step.people)), None)
    if chosen is None:
        named = next((p for p in due if p.step.people and person.holds(p.step.role, project_id)), None)
        if named is not None:
            raise Forbidden(f"You can't sign {named.step.name} for {label}: it names who may sign it, and you are "
                            "not among them.")
        chosen = due[0]
    step = chosen.step
    authority.require(session=session, slack_id=person.slack_id, project=version.model.project, roles=step.role,
                      doing=f"{label} is waiting for {', '.join(p.describe() for p in due)}. Signing {step.name}")
    record = SignOff(version_id=version.id, step_id=step.id, person=person.slack_id, decision=decision,
                     reason=reason.strip(), created_at=now or utcnow())
    session.flush()  # pending changes first: the savepoint below must hold only this insert
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        raise Conflict(f"You already signed {step.name} for {label}.") from None
    audit.record(session=session, actor=person.slack_id, action=f"signoff.{decision.value}",
                 subject=_subject(version), details={"step": step.name, "reason": record.reason}, at=now)
    if decision == Decision.reject:
        version.status = VersionStatus.rejected
        audit.record(session=session, actor=person.slack_id, action="version.rejected",
                     subject=_subject(version), details={"reason": record.reason}, at=now)
    elif not waiting_steps(session=session, version=version):
        _approve(session=session, version=version, now=now)
    session.flush()
    return record


def record_check(*, session: Session, version: ModelVersion, step: BlueprintStep, passed: bool, reason: str,
                 now: datetime | None = None) -> SignOff:
    """An automated step judged: signed by Flywheel with why it passed, or the version rejected with why it
    failed, audited as a person's decision is."""
    lock_model(session=session, model=version.model)
    if version.status != VersionStatus.in_review or step.id not in {
            p.step.id for p in due_steps(session=session, version=version)}:
        raise InvalidTransition(f"{version.model.key} {version.label}: {step.name} is not due.")
    decision = Decision.approve if passed else Decision.reject
    record = SignOff(version_id=version.id, step_id=step.id, person=FLYWHEEL, decision=decision, reason=reason,
                     created_at=now or utcnow())
    session.add(record)
    session.flush()
    audit.record(session=session, actor=FLYWHEEL, action=f"signoff.{decision.value}", subject=_subject(version),
                 details={"step": step.name, "reason": reason, "check": step.check}, at=now)
    if not passed:
        version.status = VersionStatus.rejected
        audit.record(session=session, actor=FLYWHEEL, action="version.rejected", subject=_subject(version),
                     details={"reason": f"{step.name}: {reason}"}, at=now)
    elif not waiting_steps(session=session, version=version):
        _approve(session=session, version=version, now=now)
    session.flush()
    return record


def note_deploy_request(*, session: Session, version: ModelVersion, by: str, reason: str,
                        now: datetime | None = None) -> None:
    """Remember a refused deploy's asker: they may no longer sign the version. The refusal itself is audited
    once, by the service that refused it (bot.services.common.refusals_audited)."""
    if version.deploy_requested_by is None:
        version.deploy_requested_by = by
    session.flush()


def remember_request(*, session: Session, version: ModelVersion, ref: str) -> None:
    """Where the version's sign-off request was posted: later news settles it in place or replies in it."""
    version.signoff_ref = ref
    session.flush()


def ensure_deployable(*, session: Session, version: ModelVersion) -> list[str]:
    """Raise unless the version may go to production now under its project's deploy policy: approved (block),
    or not rejected (warn and allow: the deploy goes ahead). Returns the sign-offs still missing."""
    label = f"{version.model.key} {version.label}"
    if version.status in (VersionStatus.rejected, VersionStatus.production, VersionStatus.archived):
        change = change_of(session=session, version=version)
        if version.status == VersionStatus.rejected:
            raise Settled(f"{label} was rejected and can't be deployed: {describe(change)}.", change)
        if version.status == VersionStatus.production:
            raise Settled(f"{label} is already in production: {describe(change)}.", change, already=True)
        raise Settled(f"{label} is no longer approved: {describe(change)}.", change)
    if version.status == VersionStatus.approved:
        return []
    waiting = waiting_steps(session=session, version=version)
    if policy_of(version.model.project) != POLICY_BLOCK:
        return [p.describe() for p in waiting]
    if version.status == VersionStatus.candidate:
        raise GovernanceBlocked(f"{label} can't be deployed yet: it hasn't been submitted for sign-off.", waiting)
    missing = ", ".join(p.describe() for p in waiting)
    raise GovernanceBlocked(f"{label} can't be deployed yet. Waiting for: {missing}.", waiting)


def deploy(*, session: Session, version: ModelVersion, by: str, now: datetime | None = None) -> ModelVersion:
    """Make the version the model's production version (approved, or missing sign-offs under a warn or allow
    policy); the previous one is archived. The model is locked first: of two deploys (or a deploy and a
    rollback) at once, the second sees the first."""
    lock_model(session=session, model=version.model)
    label = f"{version.model.key} {version.label}"
    missing = ensure_deployable(session=session, version=version)
    policy, seen = policy_of(version.model.project), version.status
    previous = production_version(session=session, model=version.model)
    if previous is not None:
        previous.status = VersionStatus.archived
        session.flush()  # the one-production index must see the old row leave first
    # Conditional on the status read above: of two deploys at once, the second changes no row.
    moved = session.execute(
        update(ModelVersion).where(ModelVersion.id == version.id, ModelVersion.status == seen)
        .values(status=VersionStatus.production, deployed_at=now or utcnow(), deployed_by=by)
        .execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        raise Conflict(f"{label} was deployed by someone else a moment ago.")
    session.refresh(version)
    details = {"previous": previous.label if previous else None}
    if policy != POLICY_BLOCK:
        details.update(policy=policy, missing=missing)
    audit.record(session=session, actor=by, action="version.deployed", subject=_subject(version),
                 details=details, at=now)
    return version


def rollback_target(*, session: Session, model_version: ModelVersion) -> ModelVersion:
    """The version that served before `model_version` (the current one): where a rollback returns."""
    model = model_version.model
    if model_version.status != VersionStatus.production:
        raise InvalidTransition(f"{model.key} {model_version.label} is not in production.")
    earlier = session.execute(
        select(ModelVersion).where(ModelVersion.model_id == model.id,
                                   ModelVersion.status == VersionStatus.archived,
                                   ModelVersion.deployed_at.is_not(None),
                                   ModelVersion.id != model_version.id)
        .order_by(ModelVersion.deployed_at.desc()).limit(1)).scalar_one_or_none()
    if earlier is None:
        raise InvalidTransition(f"{model.key} has no earlier production version to roll back to.")
    return earlier


def plan_rollback(*, session: Session, model: Model, to: int | None = None,
                  seen_live: int | None = None) -> Rollback:
    """Lock the model and decide a rollback against what is live now, changing nothing.

    `to`: the version to return to (default: the one that served before the current one). `seen_live`: the
    version the asker saw in production (a Roll back button's); refused when production has moved since.
    Asking for the version already live is refused as already done: repeated clicks roll back once.
    """
    lock_model(session=session, model=model)
    current = production_version(session=session, model=model)
    target = None
    if to is not None:
        target = next((v for v in model.versions if v.number == to), None)
        if target is None:
            known = ", ".join(v.label for v in model.versions) or "none yet"
            raise NotFound(f"{model.key} has no version v{to}. Versions: {known}.")
        if current is not None and current.id == target.id:
            change = change_of(session=session, version=target)
            raise Settled(f"{model.key} is already on {target.label}: {describe(change)}.", change, already=True)
    if seen_live is not None and (current is None or current.number != seen_live):
        seen = next((v for v in model.versions if v.number == seen_live), None)
        change = change_of(session=session, version=seen) if seen is not None else \
            Change(model.key, f"v{seen_live}", "stopped", live=current.label if current else None)
        raise Settled(f"Production of {model.key} changed since v{seen_live} was live: {describe(change)}. "
                      "Nothing was rolled back.", change)
    if current is None:
        raise InvalidTransition(f"{model.key} has nothing in production to roll back.")
    if target is None:
        target = rollback_target(session=session, model_version=current)
    elif target.status != VersionStatus.archived or target.deployed_at is None:
        served = ", ".join(v.label for v in model.versions if v.status == VersionStatus.archived
                           and v.deployed_at is not None) or "none"
        raise InvalidTransition(f"{model.key} {target.label} has never served in production, so a rollback can't "
                                f"return to it. Versions that served before: {served}.")
    return Rollback(stopped=current, restored=target)


def rollback(*, session: Session, model: Model, by: str, to: int | None = None, seen_live: int | None = None,
             now: datetime | None = None) -> Rollback:
    """Return production to `to` (default: the version that served before the current one), once: see
    plan_rollback for what is refused."""
    planned = plan_rollback(session=session, model=model, to=to, seen_live=seen_live)
    current, earlier = planned.stopped, planned.restored
    current.status = VersionStatus.archived
    session.flush()  # the one-production index must see the old row leave first
    earlier.status = VersionStatus.production
    earlier.deployed_at = now or utcnow()
    earlier.deployed_by = by
    session.flush()
    audit.record(session=session, actor=by, action="version.rolled_back", subject=f"model:{model.key}",
                 details={"from": current.label, "to": earlier.label}, at=now)
    return planned
