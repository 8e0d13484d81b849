"""The deploy policy in force, said in one short phrase wherever a project's governance is summed up: the
evidence pack, the dashboard's portfolio and `/flywheel portfolio`."""

from __future__ import annotations

POLICY_PHRASES = {
    "block": "deploy policy: block (no deploy until every sign-off is in)",
    "warn": "deploy policy: warn (deploys go ahead, missing sign-offs are reported)",
    "allow": "deploy policy: allow (deploys go ahead, no sign-off is needed)",
}


def policy_phrase(policy: str) -> str:
    return POLICY_PHRASES.get(policy, f"deploy policy: {policy}")
