"""Feedback that tunes alerts: noise marks turn into a proposed drift threshold for the model's ML engineers,
who accept or dismiss it. Nothing changes until someone accepts; an accepted threshold is used by the checks
and shown by `flywheel apply` as a difference from the spec until the spec says the same."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.blocks.common import mention, when
from bot.services.common import Actor, Service, refusals_audited
from jobs.monitor import load_spec
from jobs.statistics import P_VALUE_METHODS
from jobs.threshold_tuning import JudgedAlert, Window, suggest_drift_threshold
from store import authority, tuning
from store.errors import Conflict, NotFound
from store.models import Alert, CheckKind, Role, SuggestionState


@dataclass(frozen=True)
class Decided:
    note: str  # what the clicker is told, and the settled message says
    suggestion_id: int


class Tuning(Service):
    def consider(self, alert_id: int) -> list[int]:
        """After someone marked an alert: for each feature it names, propose a threshold if the feature's
        recent alerts were mostly noise, and post it. The ids of the suggestions posted."""
        now = self.clock()
        made: list[int] = []
        with self.db.session() as s:
            alert = s.get(Alert, alert_id)
            if alert is None or alert.kind != CheckKind.drift:
                return []
            model = alert.model
            spec = load_spec(model)
            in_force = tuning.overrides(session=s, model_id=model.id)
            for feature in alert.subjects or []:
                method = (spec.drift.numeric_method if feature in spec.features.numeric
                          else spec.drift.categorical_method)
                if method in P_VALUE_METHODS:
                    continue  # a significance level, not a distance: not tuned from feedback
                current = in_force[feature].proposed if feature in in_force else spec.drift.threshold_for(feature)
                # After a dismissal only new incidents count: people said to keep the line as it was.
                since = tuning.last_dismissed(session=s, model=model, kind=CheckKind.drift, subject=feature)
                judged = [JudgedAlert(v.alert_id, v.raised_at, v.statistic, v.noise > v.useful)
                          for v in tuning.judged_drift_alerts(session=s, model=model, feature=feature)
                          if v.statistic is not None and v.noise != v.useful
                          and (since is None or v.raised_at > since)]
                windows = [Window(end, value) for end, value in
                           tuning.recent_drift_statistics(session=s, model=model, feature=feature)]
                found = suggest_drift_threshold(feature, current, judged, windows)
                if found is None:
                    continue
                suggestion = tuning.suggest(session=s, model=model, kind=CheckKind.drift, subject=feature,
                                            current=current, proposed=found.proposed, evidence=found.evidence(),
                                            now=now)
                if suggestion is not None:
                    made.append(suggestion.id)
        for suggestion_id in made:
            self.notifier.threshold_suggested(suggestion_id)
        return made

    def decide(self, actor: Actor, suggestion_id: int | None, *, accept: bool, reason: str = "") -> Decided:
        """Accept or dismiss a suggestion, once, as an ML engineer of the model's project. A repeated or late
        click is refused with who decided and when."""
        if suggestion_id is None:
            raise NotFound("This button names no threshold suggestion; open the suggestion's own message.")
        now = self.clock()
        doing = "Accepting a threshold" if accept else "Dismissing a threshold"
        with refusals_audited(self.db, actor.slack_id, "threshold.decide", f"suggestion:{suggestion_id}"), \
                self.db.session() as s:
            suggestion = tuning.get_suggestion(session=s, suggestion_id=suggestion_id)
            model = suggestion.model
            authority.require(session=s, slack_id=actor.slack_id, project=model.project,
                              roles=[Role.ml_engineer], team=actor.team, doing=f"{doing} for {model.key}")
            if not tuning.decide(session=s, suggestion=suggestion, accept=accept, by=actor.slack_id,
                                 reason=reason, now=now):
                raise Conflict(already_decided(suggestion.state, suggestion.decided_by, suggestion.decided_at,
                                               suggestion.subject))
            what = f"{model.key}'s drift threshold for {suggestion.subject}"
            if accept:
                note = (f"Accepted by {mention(actor.slack_id)}: {what} is {suggestion.proposed:g} from the next "
                        f"check (the spec says {suggestion.current:g}; put {suggestion.proposed:g} in the spec to "
                        "make it permanent).")
            else:
                note = f"Dismissed by {mention(actor.slack_id)}: {what} stays {suggestion.current:g}."
        self.notifier.settle_threshold(suggestion_id, note)
        return Decided(note, suggestion_id)


def already_decided(state: SuggestionState, by: str | None, at: datetime | None, subject: str) -> str:
    who = f" by {mention(by)}" if by else ""
    said = f" ({when(at)})" if at else ""
    return f"This threshold suggestion for {subject} was already {state.value}{who}{said}. Nothing changed."


def overrides_against(session, model, spec, *, by: str, now: datetime | None = None
                      ) -> tuple[list[str], list[str]]:
    """At `flywheel apply`: accepted thresholds the spec now agrees with step aside (changes, audited); the
    others are differences from the spec, said until the spec adopts them."""
    adopted, differing = [], []
    for feature, accepted in sorted(tuning.overrides(session=session, model_id=model.id).items()):
        in_spec = spec.drift.threshold_for(feature)
        if in_spec == accepted.proposed:
            tuning.adopt(session=session, suggestion=accepted, by=by, now=now)
            adopted.append(f"{model.key}: the spec adopts the drift threshold {in_spec:g} accepted for {feature}")
        else:
            differing.append(f"{model.key}: checks use a drift threshold of {accepted.proposed:g} for {feature}, "
                             f"accepted by {accepted.decided_by}, not the spec's {in_spec:g}; put "
                             f"{accepted.proposed:g} in the spec to keep it")
    return adopted, differing
