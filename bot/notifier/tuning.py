"""Threshold suggestions in the ML engineers' channel: posted once, settled in place when decided."""

from __future__ import annotations

from dataclasses import replace

from bot.blocks.common import settled
from bot.blocks.tuning import ThresholdProposal, threshold_proposal
from bot.notifier.outlet import Outlet
from jobs.monitor import load_spec
from store import tuning


class ThresholdNews:
    def __init__(self, outlet: Outlet) -> None:
        self.outlet = outlet

    def _proposal(self, suggestion_id: int) -> tuple[ThresholdProposal, str | None, str | None]:
        with self.outlet.db.read() as s:
            found = tuning.get_suggestion(session=s, suggestion_id=suggestion_id)
            model = found.model
            proposal = ThresholdProposal(found.id, model.key, found.subject, found.current, found.proposed,
                                         dict(found.evidence), found.created_at,
                                         load_spec(model).drift.threshold_for(found.subject))
            return proposal, model.project.channel_for("ml_engineer"), found.message_ref

    def suggested(self, suggestion_id: int) -> str:
        proposal, channel, _ = self._proposal(suggestion_id)
        ref = self.outlet.post(threshold_proposal(proposal), channel)
        with self.outlet.db.session() as s:
            tuning.get_suggestion(session=s, suggestion_id=suggestion_id).message_ref = ref
        return ref

    def settle(self, suggestion_id: int, note: str) -> bool:
        """The suggestion's message without its buttons, with who decided; False if it was never posted."""
        proposal, _, ref = self._proposal(suggestion_id)
        if ref is None:
            return False
        message = threshold_proposal(proposal)
        self.outlet.delivery.update(ref, replace(message, blocks=tuple(settled([b.to_dict() for b in message.blocks],
                                                                               note))))
        return True
