"""Issue 17, plain words with dates: no message Flywheel sends says an internal word (v-next, None, an
exception's class, a raw state, "in production in production"), and every time it shows comes with its date.
Checked on everything the demo writes and everything a Slack story sends over signed HTTP."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.demo import run_demo
from bot.ids import ActionId
from jobs.monitor import check_model
from store.models import VersionStatus
from tests.support.slack_world import ELI, MODEL, NOOR, NOW, OMAR, RITA

FORBIDDEN = [
    re.compile(r"\bv-next\b", re.IGNORECASE),
    re.compile(r"\bNone\b"),
    re.compile(r"Traceback"),
    re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b"),
    re.compile(r"in production in production"),
    re.compile(r"\b(awaiting_signoff|in_review|signoff_requested|rolled_back|not_submitted|ml_engineer|risk_manager|"
               r"it_ops)\b"),
]
TOKEN = re.compile(r"<!date\^\d+\^[^|>]*\|[^>]*>")
TIME = re.compile(r"\b\d{1,2}:\d{2}\b")
# A time is dated when a day with its year comes just before it ("Dec 5, 2026 14:10 UTC"), or when it is a
# schedule rather than a moment ("every day at 09:00 UTC").
DATED = re.compile(r"([A-Z][a-z]{2} \d{1,2}, \d{4}|\d{4}-\d{2}-\d{2})[ T,]*$|every day at $")


def _texts(node: Any) -> list[str]:
    """Every text a reader sees in a payload: `text` fields, mrkdwn and plain text, alt text, titles."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("text", "alt_text", "fallback") and isinstance(v, str)]
        return found + [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def problems(text: str) -> list[str]:
    found = [f"{p.pattern!r} in {text!r}" for p in FORBIDDEN if p.search(text)]
    bare = TOKEN.sub(" ", text)  # a token is a date and a time by itself
    for m in TIME.finditer(bare):
        if not DATED.search(bare[:m.start()]):
            found.append(f"a time without its date ({m.group()}) in {text!r}")
    if "<!date^" in bare:
        found.append(f"a broken date token in {text!r}")
    return found


def _check(payload: dict[str, Any], where: str) -> list[str]:
    if payload.get("blocks"):
        blocks = payload["blocks"] if isinstance(payload["blocks"], list) else json.loads(payload["blocks"])
        assert [b.to_dict() for b in Block.parse_all(blocks)] == blocks, where
    if isinstance(payload.get("view"), (dict, str)):
        view = payload["view"] if isinstance(payload["view"], dict) else json.loads(payload["view"])
        Block.parse_all(view.get("blocks", []))
        payload = {**payload, "view": view}
    if isinstance(payload.get("text"), str):
        assert "<!date^" not in payload["text"] or not payload.get("blocks"), \
            f"{where}: a notification text with a raw date token: {payload['text']!r}"
    return [f"{where}: {p}" for t in _texts(payload) for p in problems(t)]


def test_the_checker_catches_what_it_names():
    assert problems("fraud-detector v-next is ready")
    assert problems("Status: None")
    assert problems("Something failed: ValueError")
    assert problems("nothing in production in production")
    assert problems("state awaiting_signoff")
    assert problems("Acknowledged by <@U1> at 14:10 UTC")
    assert problems("Snoozed until Mon 14:10 UTC")
    assert not problems("Acknowledged by <@U1> · <!date^1796479800^{date_short_pretty} at {time}|Dec 5, 2026 14:10 UTC>")
    assert not problems("Opens until Dec 5, 2026 14:10 UTC.")
    assert not problems("as a daily digest, sent every day at 09:00 UTC.")


# -- the demo ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("words") / "flywheel-demo"
    run_demo(out, rows_per_week=20_000, log=lambda *_: None)
    return out


def test_every_message_the_demo_writes_says_plain_words_with_dates(demo):
    found, seen = [], 0
    for record in sorted((demo / "preview" / "messages").glob("*/message.json")):
        message = json.loads(record.read_text())
        seen += 1
        found += _check(message, record.parent.name)
        for n, reply in enumerate(message.get("thread", [])):
            found += _check(reply, f"{record.parent.name} thread {n}")
    assert seen >= 5
    assert found == []


def test_the_demo_preview_shows_dates_not_tokens(demo):
    page = (demo / "preview" / "index.html").read_text()
    assert "&lt;!date" not in page and "date_short_pretty" not in page
    assert re.search(r'<time datetime="\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z">[A-Z][a-z]{2} \d{1,2}, \d{4} '
                     r'\d{2}:\d{2} UTC</time>', page)


# -- a Slack story ------------------------------------------------------------------------------


def _sent(world) -> list[tuple[str, dict[str, Any]]]:
    methods = ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.publish", "views.open",
               "views.update")
    calls = [(c.method, c.params) for m in methods for c in world.fake.calls_to(m)]
    calls += [("response_url", body) for bodies in world.fake.responses.values() for body in bodies]
    return calls


@pytest.mark.charts
def test_a_slack_story_and_its_digest_say_plain_words_with_dates(world):
    answers: list[dict[str, Any]] = []

    def command(text: str, user: str) -> None:
        sent = world.command(text, user)
        world.ops.join()
        if isinstance(sent.body, dict):
            answers.append(sent.body)

    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    alert = world.posted("C0ML", f"Input drift on {MODEL} v1")
    world.click(ActionId.acknowledge, alert, NOOR)
    world.click(ActionId.acknowledge, alert, ELI)  # already acknowledged: answered privately
    world.ops.join()

    command(f"retrain {MODEL} card age drifted", ELI)
    candidate = world.posted("C0ML", f"{MODEL} v2 is ready for review")
    world.click(ActionId.submit_for_signoff, candidate, ELI)
    world.ops.join()
    request = world.posted("C0RISK", f"Sign-off requested: {MODEL} v2")
    command(f"deploy {MODEL} 2", ELI)  # too early: what is missing, who is asked
    command(f"approve {MODEL} 2", RITA)  # not hers yet
    world.click(ActionId.approve, request, NOOR)
    world.ops.join()
    world.click(ActionId.approve, request, RITA)
    world.ops.join()
    ready = world.posted("C0ML", f"{MODEL} v2 is approved")
    world.click(ActionId.deploy, ready, ELI)
    world.ops.join()
    live = world.posted("C0OPS", f"{MODEL} v2 is live")
    undo = next(e["value"] for b in world.fake.messages[live]["blocks"] if b["type"] == "actions"
                for e in b["elements"] if e["action_id"] == ActionId.rollback)
    world.click(ActionId.rollback, live, OMAR)
    world.ops.join()
    world.click(ActionId.rollback, live, OMAR, value=undo)  # a second click: already done
    world.ops.join()
    command(f"status {MODEL}", ELI)
    command("subscribe business <#C0BIZ|fraud-business> card-fraud digest", ELI)
    command(f"snooze {MODEL} 4h", NOOR)
    command("nonsense words", ELI)

    # The next weeks breach the KPI; the business channel hears it in its daily digest.
    for days in (7, 14):
        world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW + timedelta(days=days),
                                                 now=NOW + timedelta(days=days)))
    world.ops.notifier.daily_digest(datetime(NOW.year, NOW.month, NOW.day, 9) + timedelta(days=15))
    world.ops.join()

    with world.db.read() as s:
        from store import registry
        assert registry.get_model(session=s, key=MODEL).versions[0].status == VersionStatus.production

    sent = _sent(world) + [("command answer", a) for a in answers]
    assert len(sent) > 15
    found = [p for n, (method, payload) in enumerate(sent) for p in _check(payload, f"{n} {method}")]
    assert found == []
