"""Slack requests as such: every command audited, every governed request claimed once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.services.common import Actor, Service
from store import slack_requests

if TYPE_CHECKING:
    pass


class SlackRequests(Service):
    def record_command(self, actor: Actor, command: str, text: str) -> None:
        """Every command is audited with who typed it, whatever it then does or refuses. Batched: under a
        burst a commit per command would cost more than answering it."""
        self.commands_audit.put(actor=actor.slack_id, action="command", subject=f"slack:{command}",
                                details={"text": text[:500]}, at=self.clock())

    def first_request(self, key: str) -> bool:
        """Claim a Slack request's identity before it acts: False when a retry or a repeat of the same
        payload already claimed it (in any process), so it must do nothing and answer nothing."""
        with self.db.session(changes_status=False) as s:
            return slack_requests.claim(session=s, key=key, now=self.clock())
