"""Ephemeral answers to commands: short, first line answers the question, and say what would work."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ContextBlock,
    HeaderBlock,
    SectionBlock,
)

from bot.blocks.common import escape_mrkdwn, link_button, md, mention
from bot.ids import ActionId
from store.authority import role_name
from store.status import ModelStatus

COMMANDS = (
    # (usage, what it does, role needed or None)
    ("help", "what you can do here", None),
    ("status MODEL", "production version, latest checks, alerts and versions in review", None),
    ("models", "every registered model", None),
    ("whoami", "your roles and projects", None),
    ("catalog QUERY", "find models, datasets and their owners", None),
    ("portfolio", "the projects you govern, overdue sign-offs first", "risk_manager"),
    ("retrain MODEL [reason]", "train a new candidate on the latest data", "ml_engineer"),
    ("evaluate MODEL VERSION", "compare a candidate with production again, on the latest labelled window",
     "ml_engineer"),
    ("snooze MODEL DURATION", "silence a model's alerts for 1h, 4h, 24h or 7d", None),
    ("approve MODEL VERSION", "sign off the step that is due", "signer"),
    ("reject MODEL VERSION", "reject a version, with a reason", "signer"),
    ("deploy MODEL VERSION", "put an approved version in production", "ml_engineer"),
    ("rollback MODEL [--to VERSION]", "return production to VERSION, or to the previous version", "it_ops"),
    ("subscribe PERSONA [#channel] [PROJECT] [immediate|digest]",
     "send a persona's alerts to a channel; a business channel can take one digest a day instead", None),
)
VERDICT_ICON = {"ok": ":white_check_mark:", "warn": ":warning:", "breach": ":red_circle:", "error": ":x:"}


@dataclass(frozen=True)
class Reply:
    text: str
    blocks: tuple[Block, ...] = ()

    def kwargs(self) -> dict:
        # JSON with an explicit response_type: only the person who typed the command sees it.
        return {"text": self.text, "blocks": [b.to_dict() for b in self.blocks] or None,
                "response_type": "ephemeral"}


def plain(text: str) -> Reply:
    return Reply(text)


def help_reply(roles: list[str], command: str = "/flywheel") -> Reply:
    signer = {"ml_engineer", "risk_manager", "admin"} & set(roles)
    allowed = [(u, w) for u, w, role in COMMANDS
               if role is None or role in roles or "admin" in roles or (role == "signer" and signer)]
    lines = "\n".join(f"`{command} {u}`  {w}" for u, w in allowed)
    hidden = len(COMMANDS) - len(allowed)
    note = f"\n_{hidden} more need a role you don't have._" if hidden else ""
    return Reply(f"What you can do with {command}:\n{lines}{note}",
                 (SectionBlock(text=md(f"*What you can do with {command}*\n{lines}{note}")),))


def subscribed(persona: str, project: str, channel: str, delivery: str, digest_hour: int) -> str:
    how = f"as a daily digest, sent every day at {digest_hour:02d}:00 UTC" if delivery == "digest" else "as they happen"
    who = escape_mrkdwn(persona.replace('_', ' '))
    return f"{who} alerts of {escape_mrkdwn(project)} now go to <#{channel}> {how}."


def usage(problem: str, usage_line: str) -> Reply:
    return Reply(f"{problem} Usage: `{usage_line}`")


def status_reply(status: ModelStatus, details_url: str) -> Reply:
    production = status.production or "nothing in production"
    lines = [f"{VERDICT_ICON.get(v, '')} *{k.replace('_', ' ')}* {v}: {escape_mrkdwn(m)}"
             for k, v, m in status.verdicts] \
        or ["Not checked yet."]
    versions = [f"*{v.label}* {v.status.replace('_', ' ')}" + (f" ({v.progress})" if v.progress else "")
                for v in status.versions]
    head = f"{status.key}: {production} in production · {status.live_alerts} open alert" \
           f"{'s' if status.live_alerts != 1 else ''}"
    blocks = [
        HeaderBlock(text=head[:150]),
        SectionBlock(text=md("\n".join(lines)[:3000])),
    ]
    if versions:
        blocks.append(SectionBlock(text=md("In the pipeline: " + "; ".join(versions))))
    blocks += [ContextBlock(elements=[md(f"{escape_mrkdwn(status.project)} · owner {mention(status.owner)}")]),
               ActionsBlock(elements=[link_button("View details", details_url, ActionId.view_details)])]
    return Reply(head, tuple(blocks))


def models_reply(statuses: list[ModelStatus]) -> Reply:
    if not statuses:
        return Reply("No models are registered yet. An admin adds them with `flywheel apply SPEC.yml`.")
    lines = []
    for s in statuses:
        worst = next((v for v in ("error", "breach", "warn") if any(x[1] == v for x in s.verdicts)), "ok")
        lines.append(f"{VERDICT_ICON[worst]} *{s.key}* ({escape_mrkdwn(s.project)}): "
                     f"{s.production or 'nothing'} in production"
                     + (f", {len(s.versions)} in the pipeline" if s.versions else ""))
    text = "\n".join(lines)
    return Reply(f"{len(statuses)} models", (SectionBlock(text=md(text[:3000])),))


def whoami_reply(slack_id: str, name: str | None, grants: dict[str, list[str]], projects: list[str]) -> Reply:
    """`grants`: project key -> the person's roles there; `projects`: every project they are part of."""
    if name is None:
        return Reply(f"{mention(slack_id)}, you're not set up in Flywheel yet: ask an admin to add your Slack id "
                     f"`{slack_id}` to a project spec's `people:` and run `flywheel apply`.")
    role_text = "; ".join(f"{', '.join(role_name(r) for r in roles)} on {escape_mrkdwn(key)}"
                          for key, roles in grants.items()) or "no roles on any project"
    others = [p for p in projects if p not in grants]
    project_text = f" Also part of: {escape_mrkdwn(', '.join(others))}." if others else ""
    return Reply(f"You are {escape_mrkdwn(name)}: {role_text}.{project_text}")
