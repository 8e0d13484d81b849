"""The ML engineers' message proposing a drift threshold learnt from noise feedback."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, HeaderBlock, SectionBlock

from bot.blocks.common import Message, button, confirm, context, escape_mrkdwn, md, when
from bot.ids import ActionContext, ActionId, BlockId


@dataclass(frozen=True)
class ThresholdProposal:
    suggestion_id: int
    model_key: str
    feature: str
    current: float
    proposed: float
    evidence: dict
    created_at: datetime
    spec_value: float  # what the spec says, when the current threshold is an earlier accepted override


def _figure(value: float) -> str:
    return f"{value:.3g}"


def threshold_proposal(p: ThresholdProposal) -> Message:
    feature, e = escape_mrkdwn(p.feature), p.evidence
    noise = len(e["noise_alerts"])
    spread = (_figure(e["noise_low"]) if e["noise_low"] == e["noise_high"]
              else f"{_figure(e['noise_low'])} to {_figure(e['noise_high'])}")
    evidence = (f"*{noise} of the last {e['judged']}* drift alerts on *{feature}* ({escape_mrkdwn(p.model_key)}) "
                f"were marked noise, at {spread}. Its threshold is {_figure(p.current)}.")
    if e["windows"]:
        quieter = e["breaches_now"] - e["breaches_proposed"]
        effect = (f"With {_figure(p.proposed)}, {e['breaches_proposed']} of the last {e['windows']} checks would "
                  f"have alerted on {feature} instead of {e['breaches_now']} ({quieter} fewer).")
    else:
        effect = f"No recent check of {feature} to re-judge with {_figure(p.proposed)}."
    ctx = ActionContext(model=p.model_key, suggestion=p.suggestion_id)
    override = (f"Accepted, it overrides the spec's {_figure(p.spec_value)} until the spec says the same "
                "(`flywheel apply` shows the difference).")
    blocks = (
        HeaderBlock(text=f"Raise the drift threshold of {p.feature[:80]} to {_figure(p.proposed)}?"),
        SectionBlock(text=md(evidence)),
        SectionBlock(text=md(effect)),
        ActionsBlock(block_id=BlockId.threshold_actions, elements=[
            button(f"Accept {_figure(p.proposed)}", ActionId.threshold_accept, ctx, style="primary",
                   confirm=confirm("Accept the threshold?",
                                   f"Drift checks of {p.model_key} will alert on {feature} from "
                                   f"{_figure(p.proposed)}, not {_figure(p.current)}.", "Accept")),
            button("Dismiss", ActionId.threshold_dismiss, ctx),
        ]),
        context(f"Nothing changes until an ML engineer accepts. {override} Suggested {when(p.created_at)}."),
    )
    text = (f"{p.model_key}: {noise} of the last {e['judged']} drift alerts on {p.feature} were marked noise; "
            f"raise its threshold from {_figure(p.current)} to {_figure(p.proposed)}?")
    return Message(kind="threshold_suggestion", persona="ml_engineer", model_key=p.model_key, text=text,
                   blocks=blocks)
