"""Running a model's checks and telling people what they found: on the worker's schedule, from the
terminal (`flywheel check`) and in the demo. A breach on a model whose spec says `retrain.auto` queues
a retrain as Flywheel."""

from __future__ import annotations

from datetime import datetime

from bot.blocks.common import escape_mrkdwn
from bot.services.common import Service
from jobs.monitor import ModelChecks, check_all, check_model
from store.db import unreachable
from store.models import CheckKind, Verdict

AUTO_RETRAIN_ON = (CheckKind.drift, CheckKind.performance, CheckKind.kpi)
_BREACHES = {CheckKind.drift: "input drift on", CheckKind.performance: "performance below its line on",
             CheckKind.kpi: "a business KPI breach on"}


def breach_reason(kind: CheckKind, subjects: tuple[str, ...]) -> str:
    """Why Flywheel retrained on its own, as the candidate and sign-off messages say it."""
    return f"retrained automatically after {_BREACHES[kind]} {', '.join(subjects) or 'the model'}"


class Checks(Service):
    def run(self, *, as_of: datetime, model_key: str | None = None, kinds: set[CheckKind] | None = None,
            now: datetime | None = None) -> tuple[list[ModelChecks], list[str]]:
        """Check one model or all now; returns what each found and the references of the alerts sent."""
        results = check_all(db=self.db, as_of=as_of, model_key=model_key, kinds=kinds, now=now)
        posted = [ref for result in results for ref in self.notifier.on_checks(result)]
        return results, posted

    def scheduled(self, model_key: str, kind: CheckKind) -> None:
        """One scheduled firing in the worker: check, tell, and retrain on a breach where the spec says so."""
        try:
            checked = check_model(db=self.db, model_key=model_key, as_of=self.clock(), kinds={kind}, now=self.clock())
            self.notifier.on_checks(checked)
            for result in checked.results:
                if result.outcome.verdict == Verdict.breach and result.kind in AUTO_RETRAIN_ON:
                    self.ops.retraining.auto_retrain(model_key, breach_reason(result.kind, result.outcome.subjects),
                                                     alert_id=result.alert_id)
        except Exception as exc:  # a job failure goes to the people who can fix it, then to the log
            if unreachable(exc):  # the database is away: the worker runs this firing again once it is back
                raise
            self.notifier.job_failed(model_key, f"The scheduled {kind.value.replace('_', ' ')} check of "
                                                f"{model_key} failed: {escape_mrkdwn(exc)}")
            raise
