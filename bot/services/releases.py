"""Governed releases: submit for sign-off, sign, deploy and roll back, each once on the version the person saw."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.blocks.common import escape_mrkdwn, mention, when
from bot.services import automated_steps
from bot.services.common import Actor, Service, refusals_audited, stale_refusals_worded
from jobs import metrics_registry as metrics
from jobs.monitor import load_spec
from store import authority, governance, monitoring, registry, work
from store.errors import Forbidden
from store.models import Decision, ModelVersion, Role, VersionStatus


@dataclass(frozen=True)
class Deploy:
    """What a deploy request did: moved production now (registry backend), asked the deploy webhook to
    (the worker moves it when the team's system answers), or found a deploy already under way."""

    LIVE, ASKED, ALREADY_ASKED = "live", "asked", "already_asked"

    note: str
    outcome: str


@dataclass(frozen=True)
class VersionLine:
    """One version as the terminal lists it: its stage, training window, key metrics, sign-offs, who and when."""

    number: int
    stage: VersionStatus
    train_start: datetime | None
    train_end: datetime | None
    metrics: dict[str, float]  # the latest evaluation's; the trainer's own when it was never evaluated
    evaluated: bool
    sign_off: str
    created_by: str
    created_at: datetime
    deployed_by: str | None
    deployed_at: datetime | None
    names: dict[str, str]  # Slack id -> name, for everyone above


class Releases(Service):
    def _version(self, s, model_key: str, number: int) -> ModelVersion:
        return registry.get_version(session=s, model_key=model_key, number=number)

    def versions(self, model_key: str) -> list[VersionLine]:
        """Every version of a model, newest first (a read: no grant needed, as `/flywheel status`)."""
        with self.db.read() as s:
            model = registry.get_model(session=s, key=model_key)
            versions = sorted(model.versions, key=lambda v: v.number, reverse=True)
            people = sorted({x for v in versions
                             for x in (v.created_by, v.deployed_by, *(o.person for o in v.sign_offs)) if x})
            names = {k: p.name for k, p in registry.people_by_id(session=s, slack_ids=people).items()}
            lines = []
            for v in versions:
                evaluation = registry.latest_evaluation(session=s, version=v)
                lines.append(VersionLine(v.number, v.status, v.train_start, v.train_end,
                                         dict(evaluation.metrics) if evaluation else dict(v.metrics),
                                         evaluation is not None, self._sign_off_state(s, v, names), v.created_by,
                                         v.created_at, v.deployed_by, v.deployed_at, names))
            return lines

    @staticmethod
    def _sign_off_state(s, version: ModelVersion, names: dict[str, str]) -> str:
        def by(o) -> str:
            return f"{o.step.name} by {names.get(o.person, o.person)}"

        rejected = [o for o in version.sign_offs if o.decision == Decision.reject]
        if version.status == VersionStatus.rejected and rejected:
            return f"rejected: {by(rejected[-1])}" + (f' ("{rejected[-1].reason}")' if rejected[-1].reason else "")
        signed = [by(o) for o in version.sign_offs if o.decision == Decision.approve]
        if version.status == VersionStatus.in_review:
            waiting = ", ".join(p.describe() for p in governance.waiting_steps(session=s, version=version))
            return f"waiting for {waiting}" + (f"; signed {', '.join(signed)}" if signed else "")
        if version.status == VersionStatus.candidate:
            return "not submitted"
        if signed:
            return "signed: " + ", ".join(signed)
        return "adopted without sign-off" if version.deployed_at and not version.submitted_by else "-"

    def submit(self, actor: Actor, model_key: str, number: int) -> str:
        with refusals_audited(self.db, actor.slack_id, "version.submit", f"model:{model_key}/v{number}"), \
                self.db.session() as s:
            version = self._version(s, model_key, number)
            authority.require(session=s, slack_id=actor.slack_id, project=version.model.project, team=actor.team,
                              roles=Role.ml_engineer, doing=f"Submitting {model_key} v{number} for sign-off")
            governance.submit_for_review(session=s, version=version, by=actor.slack_id, now=self.clock())
            judged = automated_steps.run_due(session=s, version=version, now=self.clock())
            waiting = governance.waiting_steps(session=s, version=version)
            status = version.status
        self.notifier.signoff_requested(model_key, number)
        checked = "".join(f" {_judged(j)}." for j in judged)
        if status == VersionStatus.rejected:
            self._after_checks(model_key, number, judged, over=True)
            return f"{model_key} v{number} submitted for sign-off by {mention(actor.slack_id)} and rejected:{checked}"
        if judged:
            self._after_checks(model_key, number, judged, over=status == VersionStatus.approved)
        steps = escape_mrkdwn(", ".join(p.describe() for p in waiting)) or "nothing: it is approved"
        return (f"{model_key} v{number} submitted for sign-off by {mention(actor.slack_id)}.{checked} "
                f"Waiting for: {steps}.")

    def _after_checks(self, model_key: str, number: int, judged: list, *, over: bool) -> None:
        """Automated steps judged: each said in the alert's thread; the request settled with the outcome when the
        review is over (rejected by a check, or approved), else redrawn for the people due next."""
        for j in judged:
            self.notifier.signed(model_key, number, _judged(j))
        if not over:
            self.notifier.refresh_request(model_key, number)
            return
        failed = next((j for j in judged if not j.passed), None)
        if failed is not None:
            self.notifier.settle_request(model_key, number, f"Rejected by Flywheel ({escape_mrkdwn(failed.step)}), "
                                                            f"{when(self.clock())}: {escape_mrkdwn(failed.reason)}")
            return
        self.notifier.settle_request(model_key, number, f"Approved, {when(self.clock())}: every step of its "
                                                        "blueprint is signed")
        self.notifier.approved(model_key, number)

    def sign(self, actor: Actor, model_key: str, number: int, decision: Decision, reason: str = "", *,
             shown_on: str | None = None) -> tuple[str, bool]:
        """Record a decision; returns the sentence to show and whether the version's review is over. When it
        is over, the version's sign-off request is settled in place, unless it is `shown_on` (CHANNEL:TS of
        the message the caller settles itself: the request clicked)."""
        with refusals_audited(self.db, actor.slack_id, f"signoff.{decision.value}", f"model:{model_key}/v{number}"), \
                stale_refusals_worded("sign"), self.db.session() as s:
            if actor.person is None:
                raise Forbidden(f"You're not set up in Flywheel yet, so you can't sign off {model_key} v{number}.")
            version = self._version(s, model_key, number)
            person = registry.require_person(session=s, slack_id=actor.slack_id)
            record = governance.sign_off(session=s, version=version, person=person, decision=decision,
                                         reason=reason, now=self.clock())
            judged = automated_steps.run_due(session=s, version=version, now=self.clock())
            status, step, signoff_ref = version.status, record.step.name, version.signoff_ref
        verb = "Approved" if decision == Decision.approve else "Rejected"
        said = f': "{escape_mrkdwn(reason.strip())}"' if reason.strip() else ""
        self.later(self.notifier.refresh_home)  # after the ack: it writes a refresh per Home viewer
        note = f"{verb} by {mention(actor.slack_id)} ({step}), {when(self.clock())}{said}"
        note += "".join(f". {_judged(j)}" for j in judged)
        over = status != VersionStatus.in_review
        self.later(self._after_sign_off, model_key, number, note, status == VersionStatus.approved,
                   over and signoff_ref != shown_on, over)
        return note, over

    def _after_sign_off(self, model_key: str, number: int, note: str, approved: bool, settle: bool,
                        over: bool) -> None:
        # One follow-up, in this order: the alert's thread reads the sign-off before "can be deployed".
        self.notifier.signed(model_key, number, note)
        if settle:
            self.notifier.settle_request(model_key, number, note)
        elif not over:  # the same request, redrawn: this step signed, the next one's buttons and people
            self.notifier.refresh_request(model_key, number)
        if approved:
            self.notifier.approved(model_key, number)

    def deploy(self, actor: Actor, model_key: str, number: int, *, response_url: str | None = None) -> Deploy:
        """Governance is checked before the ack. The `registry` backend moves production now; the `webhook`
        backend records a deploy for the worker, which calls the team's system and then moves it."""
        subject = f"model:{model_key}/v{number}"
        queued, superseded = None, monitoring.Superseded()
        try:
            with refusals_audited(self.db, actor.slack_id, "deploy", subject), stale_refusals_worded("deploy"), \
                    self.db.session() as s:
                version = self._version(s, model_key, number)
                authority.require(session=s, slack_id=actor.slack_id, project=version.model.project,
                                  roles=Role.ml_engineer, team=actor.team, doing=f"Deploying {model_key}")
                previous = registry.production_version(session=s, model=version.model)
                previous_label = previous.label if previous else None
                policy = governance.policy_of(version.model.project)
                missing = governance.ensure_deployable(session=s, version=version)
                spec = load_spec(version.model)
                mirrored = spec.registry is not None
                if spec.deploy.backend == "registry":
                    governance.deploy(session=s, version=version, by=actor.slack_id, now=self.clock())
                    superseded = monitoring.resolve_superseded(session=s, live=version, now=self.clock())
                else:
                    governance.ensure_deployable(session=s, version=version)
                    item, created = work.request(session=s, model=version.model, kind="deploy",
                                                 requested_by=actor.slack_id, now=self.clock(),
                                                 payload={"version": number, "response_url": response_url})
                    queued = (item.id, created, item.payload.get("version"), item.requested_by)
        except governance.GovernanceBlocked as blocked:
            with self.db.session() as s:
                version = self._version(s, model_key, number)
                governance.note_deploy_request(session=s, version=version, by=actor.slack_id,
                                               reason=str(blocked), now=self.clock())
            asked = self.notifier.ask_approvers(model_key, number, blocked.waiting)
            raise governance.GovernanceBlocked(f"{blocked}{f' {asked}' if asked else ''}",
                                               blocked.waiting) from None
        if queued is not None:
            item_id, created, live_number, asked_by = queued
            if not created:
                return Deploy(f"A deploy of {model_key} v{live_number} is already under way "
                              f"(asked by {mention(asked_by)}).", Deploy.ALREADY_ASKED)
            if self.runner is not None:
                self.runner.submit(self.work.run, item_id)
            return Deploy(f"Deploying {model_key} v{number} through its deploy webhook. IT operations will be told "
                          f"when it is live; until then production stays "
                          f"{previous_label or 'empty (nothing is in production yet)'}.", Deploy.ASKED)
        if mirrored:  # MLflow's alias follows, after the answer
            self.later(self.ops.mlflow.after_release, model_key, number, actor.slack_id, "deploy")
        metrics.alerts_superseded(superseded.personas)
        metrics.work_finished("deploy", "done")  # the registry backend: done here, with no work item
        self.notifier.deployed(model_key, number, previous=previous_label, superseded=superseded.ids)
        if policy == governance.POLICY_WARN and missing:
            self.notifier.deployed_unsigned(model_key, number, by=actor.slack_id, missing=missing)
        said = _policy_said(policy, missing)
        if previous_label is None:
            return Deploy(f"{model_key} v{number} is live: it is the model's first production version.{said}",
                          Deploy.LIVE)
        return Deploy(f"{model_key} v{number} is live. Previous production version: {previous_label}.{said}",
                      Deploy.LIVE)

    def rollback(self, actor: Actor, model_key: str, *, to: int | None = None, seen_live: int | None = None,
                 response_url: str | None = None) -> str:
        """Return production to version `to` (default: the one before the current one). `seen_live`: the
        version the asker saw live (a Roll back button's); refused with what changed if production moved."""
        queued = None
        with refusals_audited(self.db, actor.slack_id, "rollback", f"model:{model_key}"), \
                stale_refusals_worded("rollback"), self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            authority.require(session=s, slack_id=actor.slack_id, project=model.project,
                              roles=(Role.it_ops, Role.ml_engineer), team=actor.team, doing=f"Rolling back {model_key}")
            spec = load_spec(model)
            mirrored = spec.registry is not None
            if spec.deploy.backend == "registry":
                done = governance.rollback(session=s, model=model, by=actor.slack_id, to=to, seen_live=seen_live,
                                           now=self.clock())
                superseded = monitoring.resolve_superseded(session=s, live=done.restored, now=self.clock())
                labels = (done.stopped.label, done.restored.label, done.restored.number)
            else:
                planned = governance.plan_rollback(session=s, model=model, to=to, seen_live=seen_live)
                current, target = planned.stopped, planned.restored
                item, created = work.request(session=s, model=model, kind="rollback", requested_by=actor.slack_id,
                                             now=self.clock(), payload={"from": current.number, "to": target.number,
                                                                        "response_url": response_url})
                queued = (item.id, created, item.requested_by, current.label, target.label)
        if queued is not None:
            item_id, created, asked_by, from_label, to_label = queued
            if not created:
                return f"A rollback of {model_key} is already under way (asked by {mention(asked_by)})."
            if self.runner is not None:
                self.runner.submit(self.work.run, item_id)
            return (f"Rolling back {model_key} to {to_label} through its deploy webhook. IT operations will be told "
                    f"when {to_label} is live again; {from_label} serves until then.")
        if mirrored:
            self.later(self.ops.mlflow.after_release, model_key, labels[2], actor.slack_id, "rollback")
        metrics.alerts_superseded(superseded.personas)
        metrics.work_finished("rollback", "done")
        self.notifier.rolled_back(model_key, labels[2], from_label=labels[0], by=actor.slack_id,
                                  superseded=superseded.ids)
        return f"Rolled back by {mention(actor.slack_id)}, {when(self.clock())}: {model_key} " \
               f"{labels[1]} is live again, {labels[0]} stopped."


def _judged(judged: automated_steps.Judged) -> str:
    verb = "Signed" if judged.passed else "Rejected"
    return f"{verb} by Flywheel ({escape_mrkdwn(judged.step)}): {escape_mrkdwn(judged.reason)}"


def _policy_said(policy: str, missing: list[str]) -> str:
    """The deploy policy in force, as the deployer is told it."""
    if policy == governance.POLICY_BLOCK:
        return ""
    if not missing:
        return f" Deploy policy: {policy}."
    listed = escape_mrkdwn(", ".join(missing))
    if policy == governance.POLICY_WARN:
        return (f" Deploy policy: warn, so it went ahead with sign-offs missing: {listed}. The risk channel was told "
                "and the audit log records it.")
    return f" Deploy policy: allow, so no sign-off was needed (not signed: {listed}); the audit log records it."
