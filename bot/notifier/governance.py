"""A version's road to production, told to the people concerned: a candidate ready with its comparison,
sign-off requests and decisions, approval, deployment and rollback; each also in the thread of the alert the
version answers."""

from __future__ import annotations

from dataclasses import replace

from bot import charts
from bot.blocks import it_ops, ml_engineer, risk
from bot.blocks.common import Message, mention, settled, span, when
from bot.notifier.outlet import Outlet
from bot.notifier.threads import AlertThreads
from jobs.incidents import (
    CandidateIncident,
    Decided,
    Deployment,
    MetricComparison,
    SignOffRequest,
    StepStatus,
)
from jobs.retrain import stored_comparison
from jobs.tasks import charted
from store import governance, registry
from store.clock import utcnow
from store.errors import InvalidTransition
from store.models import FLYWHEEL, Decision, VersionStatus


class GovernanceNews:
    def __init__(self, outlet: Outlet, threads: AlertThreads) -> None:
        self.outlet, self.threads = outlet, threads

    def _candidate(self, model_key: str, number: int) -> CandidateIncident:
        settings = self.outlet.settings
        comparison = stored_comparison(db=self.outlet.db, model_key=model_key, number=number)
        if comparison is None:
            raise InvalidTransition(f"{model_key} v{number} has not been evaluated against production yet.")
        with self.outlet.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            ref = self.outlet.model_ref(model, version)
            requested_by, trigger = version.created_by, str(version.parameters.get("trigger", ""))
            task = model.task
            train_start, train_end = version.train_start, version.train_end
        metrics = tuple(MetricComparison(m, comparison.champion_metrics.get(m, float("nan")),
                                         comparison.challenger_metrics[m])
                        for m in comparison.challenger_metrics)
        drawn = ()
        shown = charted(task, comparison.challenger_metrics)
        if comparison.champion is not None and comparison.champion_metrics and shown:  # else nothing to set beside
            drawn = (self.outlet.chart_ref(charts.champion_vs_challenger(
                champion_label=f"{comparison.champion} (production)",
                challenger_label=f"{comparison.challenger} (candidate)",
                champion={m: v for m, v in comparison.champion_metrics.items() if m in shown},
                challenger={m: comparison.challenger_metrics[m] for m in shown},
                out=self.outlet.charts_dir / f"{model_key}-v{number}" / "comparison.png",
                window_text=f"{span(comparison.window_start, comparison.window_end)}, "
                            f"{comparison.labelled_rows:,} labelled rows")),)
        return CandidateIncident(
            model=ref, champion_version=comparison.champion, window_start=comparison.window_start,
            window_end=comparison.window_end, labelled_rows=comparison.labelled_rows, metrics=metrics,
            requested_by=requested_by, trigger=trigger, train_start=train_start, train_end=train_end,
            details_url=settings.link(f"models/{model_key}/versions/{number}"), charts=drawn,
            thresholds=comparison.thresholds, champion_outcomes=comparison.champion_outcomes,
            challenger_outcomes=comparison.challenger_outcomes,
            champion_importances=comparison.champion_importances,
            challenger_importances=comparison.challenger_importances)

    def signed(self, model_key: str, number: int, note: str) -> bool:
        """A sign-off given or refused, in the thread of the alert the version answers."""
        return self.threads.say_in_thread(self.threads.origin_alert(model_key, number),
                                          f"Sign-off on {model_key} v{number}: {note}")

    def candidate_ready(self, model_key: str, number: int, *, alert_id: int | None) -> str:
        message = ml_engineer.candidate_ready(self._candidate(model_key, number))
        self.threads.say_in_thread(alert_id, message.text)
        ref = self.outlet.post(message, self.outlet.channel(model_key, "ml_engineer"))
        self.outlet.refresh_home()
        return ref

    def signoff_requested(self, model_key: str, number: int) -> str:
        """Post the version's sign-off request and remember where: later news settles it or replies in it."""
        message, channel = self._signoff_message(model_key, number)
        ref = self.outlet.post(message, channel)
        with self.outlet.db.session() as s:
            governance.remember_request(session=s, version=registry.get_version(session=s, model_key=model_key,
                                                                                  number=number), ref=ref)
        self.outlet.refresh_home()
        return ref

    def settle_request(self, model_key: str, number: int, note: str) -> bool:
        """Settle the version's own sign-off request in place, wherever it was posted; False if none was."""
        with self.outlet.db.read() as s:
            ref = registry.get_version(session=s, model_key=model_key, number=number).signoff_ref
        if ref is None:
            return False
        self.settle_signoff(ref, model_key, number, note)
        return True

    def settle_signoff(self, ref: str, model_key: str, number: int, note: str) -> None:
        """Edit a sign-off request in place after a decision: current progress, who decided, no decision buttons
        (the model card and comparison stay)."""
        message, _ = self._signoff_message(model_key, number)
        blocks = tuple(settled([b.to_dict() for b in message.blocks], note, keep_evidence=True))
        self.outlet.delivery.update(ref, replace(message, blocks=blocks))

    def _signoff_message(self, model_key: str, number: int) -> tuple[Message, str | None]:
        candidate = self._candidate(model_key, number)
        card_url = self.outlet.settings.link(f"models/{model_key}/versions/{number}/card")
        with self.outlet.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            due = {p.step.id: [e.slack_id for e in eligible]
                   for p, eligible in governance.signable_steps(session=s, version=version)}
            progress = governance.progress(session=s, version=version)
            named = {version.created_by, version.submitted_by, model.owner,
                     *(a.person for p in progress for a in p.approvals)} - {None}
            names = {k: p.name for k, p in registry.people_by_id(session=s, slack_ids=sorted(named)).items()}
            names.setdefault(FLYWHEEL, "Flywheel")  # who signs automated steps
            steps = tuple(StepStatus(
                p.step.name, p.step.role, p.step.quorum, tuple(a.person for a in p.approvals), position=p.step.position,
                approvals=tuple(Decided(p.step.name, a.person, names.get(a.person, a.person), a.decision.value,
                                        a.reason, a.created_at) for a in p.approvals),
                due=p.step.id in due, eligible=tuple(due.get(p.step.id, ())))
                for p in progress)
            request = SignOffRequest(candidate=candidate, initiative=model.project.initiative,
                                     risk_tier=model.project.risk_tier.value, steps=steps,
                                     submitted_by=version.submitted_by or version.created_by,
                                     model_card_url=card_url, names=names,
                                     policy=governance.policy_of(model.project))
            channel = model.project.channel_for("risk_manager")
        return risk.signoff_request(request), channel

    def ask_approvers(self, model_key: str, number: int, waiting: list) -> str:
        """Name who can give the sign-off due now (for the refused asker), and ping them in the thread of the
        version's sign-off request when it has one: nothing new is posted in the channel. Nobody is pinged for
        a step that waits for an earlier one."""
        if not waiting:
            return ""
        with self.outlet.db.session() as s:
            version = registry.get_version(session=s, model_key=model_key, number=number)
            ref = version.signoff_ref
            people = [p.slack_id for p in governance.signable_now(session=s, version=version)[1]]
        if not people:
            return ""
        named = ", ".join(mention(p) for p in people)
        if ref is None:
            return f"{named} can sign it."
        self.outlet.delivery.reply(ref, f"{' '.join(mention(p) for p in people)}: a deploy of {model_key} "
                                        f"v{number} is waiting for your sign-off.")
        return f"{named} {'has' if len(people) == 1 else 'have'} been asked in the sign-off request's thread."

    def refresh_request(self, model_key: str, number: int) -> bool:
        """Redraw the version's sign-off request in place after a step was signed: every step with who signed
        it, when and why, buttons for the step due now. False if no request was posted."""
        with self.outlet.db.read() as s:
            ref = registry.get_version(session=s, model_key=model_key, number=number).signoff_ref
        if ref is None:
            return False
        message, _ = self._signoff_message(model_key, number)
        self.outlet.delivery.update(ref, message)
        return True

    def approved(self, model_key: str, number: int) -> str:
        with self.outlet.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            signers = tuple((a.person, a.step.name) for a in version.sign_offs if a.decision == Decision.approve)
            ref = self.outlet.model_ref(model, version)
            channel = model.project.channel_for("ml_engineer")
        ref = self.outlet.post(ml_engineer.ready_to_deploy(ref, signers), channel)
        self.threads.say_in_thread(self.threads.origin_alert(model_key, number),
                                   f"{model_key} v{number} has every sign-off its blueprint asks for and can be "
                                   "deployed.")
        self.outlet.refresh_home()
        return ref

    def deployed(self, model_key: str, number: int, *, previous: str | None, superseded: tuple[int, ...] = ()) -> str:
        with self.outlet.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            approvals = tuple((a.person, a.step.name) for a in version.sign_offs if a.decision == Decision.approve)
            ref = self.outlet.model_ref(model, version)
            deployment = Deployment(model=ref, deployed_by=version.deployed_by or "",
                                    deployed_at=version.deployed_at or utcnow(), sign_offs=approvals,
                                    previous_version=previous,
                                    details_url=self.outlet.settings.link(f"models/{model_key}"),
                                    artifact_uri=version.artifact_uri, artifact_sha256=version.artifact_sha256,
                                    notes=_policy_notes(session=s, version=version))
            channel = model.project.channel_for("it_ops")
        ref = self.outlet.post(it_ops.deployment_notice(deployment), channel)
        self.threads.say_in_thread(self.threads.origin_alert(model_key, number),
                                   f"{model_key} v{number} is live, deployed by {mention(deployment.deployed_by)}, "
                                   f"{when(deployment.deployed_at)}"
                                   + (f"; {previous} stopped." if previous else "."))
        self._settle_requests_after_deploy(model_key, number, deployment)
        for alert_id in superseded:
            self.threads.say_in_thread(alert_id, f":white_check_mark: Resolved: v{number} replaced "
                                                 f"{previous or 'the version it was about'} in production "
                                                 f"({when(deployment.deployed_at)}).")
        self.outlet.refresh_home()
        return ref

    def deployed_unsigned(self, model_key: str, number: int, *, by: str, missing: list[str]) -> str:
        """A warn-policy deploy went ahead with sign-offs missing: the risk channel is told which."""
        with self.outlet.db.read() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            channel, at = model.project.channel_for("risk_manager"), version.deployed_at or utcnow()
        message = risk.deploy_warning(model_key=model_key, label=f"v{number}", deployed_by=by, missing=missing, at=at,
                                      details_url=self.outlet.settings.link(f"models/{model_key}"))
        return self.outlet.post(message, channel)

    def _settle_requests_after_deploy(self, model_key: str, number: int, deployment: Deployment) -> None:
        """The deployed version's sign-off request says so; the requests of the version it replaced and of
        older versions still waiting say they were superseded. Each loses its buttons, edited in place."""
        at = when(deployment.deployed_at)
        with self.outlet.db.read() as s:
            model = registry.get_model(session=s, key=model_key)
            others = [v.number for v in model.versions if v.signoff_ref and v.number != number and (
                v.status in (VersionStatus.in_review, VersionStatus.approved) and v.number < number
                or v.label == deployment.previous_version)]
        self.settle_request(model_key, number, f"Deployed to production by {mention(deployment.deployed_by)}, {at}")
        for other in sorted(others):
            self.settle_request(model_key, other, f"Superseded: v{number} went to production ({at})")

    def rolled_back(self, model_key: str, number: int, *, from_label: str, by: str,
                    superseded: tuple[int, ...] = ()) -> str:
        """Tell IT operations; the rolled-back version's sign-off request says it was taken out of production,
        and the alerts about it (`superseded`, resolved with the rollback) say so in their threads."""
        with self.outlet.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            restored = Deployment(model=self.outlet.model_ref(model, version), deployed_by=by,
                                  deployed_at=version.deployed_at or utcnow(), sign_offs=(),
                                  previous_version=from_label,
                                  details_url=self.outlet.settings.link(f"models/{model_key}"),
                                  artifact_uri=version.artifact_uri, artifact_sha256=version.artifact_sha256)
            channel = model.project.channel_for("it_ops")
        ref = self.outlet.post(it_ops.rollback_notice(restored), channel)
        at = when(restored.deployed_at)
        stopped = int(from_label.lstrip("v")) if from_label.lstrip("v").isdigit() else None
        if stopped is not None:
            self.threads.say_in_thread(self.threads.origin_alert(model_key, stopped),
                                       f"{model_key} {from_label} was rolled back by {mention(by)}: v{number} is live "
                                       "again.")
            self.settle_request(model_key, stopped, f"Rolled back by {mention(by)}, {at}: {from_label} was taken "
                                                    f"out of production and v{number} is live again")
        for alert_id in superseded:
            self.threads.say_in_thread(alert_id, f":white_check_mark: Resolved: {from_label} was rolled back to "
                                                 f"v{number} ({at}).")
        self.outlet.refresh_home()
        return ref


def _policy_notes(*, session, version) -> tuple[str, ...]:
    """The deploy policy in force, on the deployment notice, when it is not block (today's rule)."""
    policy = governance.policy_of(version.model.project)
    if policy == governance.POLICY_BLOCK:
        return ()
    return (f"Deploy policy: {policy}.",)
