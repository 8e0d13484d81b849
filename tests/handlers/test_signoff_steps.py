"""The full sign-off story on a two-step blueprint (technical validation, then risk review), driven over
signed HTTP as Slack drives it: one request message, edited in place after every step, read back from the
fake Slack and parsed with slack_sdk's models. Buttons only for the step due now, mentions only for those who
may sign it, and every signed step with who, when and why."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import timedelta

import pandas as pd
from slack_sdk.models.blocks import Block

from bot.blocks.changes import compact
from bot.blocks.dates import when
from bot.ids import ActionContext, ActionId
from jobs.retrain import compare_with_production
from store import registry
from tests.support.slack_world import ELI, MODEL, NOOR, NOW, RITA

WEEK = timedelta(days=7)


def _request(world, message) -> tuple[list[dict], str]:
    blocks = world.fake.messages[message]["blocks"]
    assert [b.to_dict() for b in Block.parse_all(blocks)] == blocks
    return blocks, world.fake.messages[message].get("text", "")


def _buttons(blocks) -> set[str]:
    return {e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]
            if e["action_id"] in (ActionId.approve, ActionId.reject)}


def _mentioned(blocks, text) -> set[str]:
    return set(re.findall(r"<@(\w+)>", json.dumps(blocks) + text))


def _step(blocks, name: str) -> str:
    return next(b["text"]["text"] for b in blocks if b["type"] == "section" and b.get("text")
                and f"*{name}*" in b["text"]["text"])


def _stakes(world) -> str:
    """The money at stake, computed here from the labelled window itself. v2 is v1's file, and the stored
    decisions are v1's, so both sides read the same."""
    with sqlite3.connect(world.folder / "data" / "transactions.db") as connection:
        rows = pd.read_sql("select * from scored_transactions", connection, parse_dates=["event_time"])
    rows = rows[(rows.event_time >= NOW - WEEK) & (rows.event_time < NOW) & rows.is_fraud.notna()]
    missed = rows[(rows.is_fraud == 1) & (rows.predicted_fraud == 0)]
    false_alarms = int(((rows.is_fraud == 0) & (rows.predicted_fraud == 1)).sum())
    money = compact(missed.amount.sum(), "USD")  # "$12.3k", as a change's figures are shortened
    return (f"Fraud amount missed: unchanged at {money} a week; false alarms: unchanged at {false_alarms:,} a week; "
            f"missed positives: unchanged at {len(missed):,} a week")


def test_the_request_is_redrawn_after_every_step_for_only_those_who_may_sign(world):
    v1 = json.loads((world.folder / "v1.json").read_text())
    with world.db.session() as s:
        registry.register_version(session=s, model_key=MODEL, created_by=ELI, artifact_uri=v1["uri"],
                                  artifact_sha256=v1["sha256"], metrics=v1["metrics"], train_end=NOW - WEEK, now=NOW)
    compare_with_production(db=world.db, model_key=MODEL, number=2, window_start=NOW - WEEK, window_end=NOW,
                            artifacts_dir=world.folder / "artifacts")
    ready = tuple(world.ops.notifier.candidate_ready(MODEL, 2, alert_id=None).split(":"))

    # 1. submitted: technical validation is due, for Noor (Eli retrained and submitted it); risk review waits.
    world.click(ActionId.submit_for_signoff, ready, ELI)
    world.ops.join()
    request = world.posted("C0RISK", f"Sign-off requested: {MODEL} v2")
    blocks, text = _request(world, request)
    assert _buttons(blocks) == {ActionId.approve, ActionId.reject}
    assert _mentioned(blocks, text) == {NOOR}
    assert "due now" in _step(blocks, "Technical validation") and f"<@{NOOR}>" in _step(blocks, "Technical validation")
    assert "waits for technical validation" in _step(blocks, "Risk review")
    assert _stakes(world) in json.dumps(blocks)
    updates = len(world.fake.calls_to("chat.update"))

    # Rita can't sign a step that waits; nothing changes.
    refused = world.click(ActionId.approve, request, RITA)
    assert [r["response_type"] for r in world.responses(refused.response_url)] == ["ephemeral"]
    assert len(world.fake.calls_to("chat.update")) == updates

    # 2. technical validation signed by Noor: the same message now asks Rita, and says who signed, when, why.
    world.command(f"approve {MODEL} v2 holds up on new cards", NOOR)
    world.ops.join()
    blocks, text = _request(world, request)
    assert len(world.fake.calls_to("chat.update")) == updates + 1
    assert _buttons(blocks) == {ActionId.approve, ActionId.reject}
    assert _mentioned(blocks, text) == {RITA}
    signed = _step(blocks, "Technical validation")
    assert signed.startswith(":white_check_mark:") and "Noor" in signed and when(NOW) in signed
    assert '"holds up on new cards"' in signed
    assert "due now" in _step(blocks, "Risk review")

    # 3. risk review signed by Rita's click: every step shown signed, no buttons, nobody pinged.
    world.click(ActionId.approve, request, RITA, value=ActionContext(model=MODEL, version=2).encode())
    world.ops.join()
    blocks, text = _request(world, request)
    assert _buttons(blocks) == set() and _mentioned(blocks, text) <= {RITA}
    assert "Rita" in _step(blocks, "Risk review") and "Noor" in _step(blocks, "Technical validation")
    # Only the evidence stays clickable: the model card and the comparison.
    assert [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]] == [
        ActionId.model_card, ActionId.view_details]

    # 4. deployed: the request says so, still every step, still no buttons.
    world.command(f"deploy {MODEL} v2", ELI)
    world.ops.join()
    blocks, _ = _request(world, request)
    assert f"Deployed to production by <@{ELI}>" in json.dumps(blocks) and _buttons(blocks) == set()
    assert "Rita" in _step(blocks, "Risk review") and "Noor" in _step(blocks, "Technical validation")
