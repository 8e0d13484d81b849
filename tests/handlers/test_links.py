"""Dashboard links pasted in Slack unfurl into a compact card (link_shared -> chat.unfurl), cut to what the
person who pasted them may see; and the message shortcut "Ask the model's owner". Signed requests over HTTP
in, the Web API calls captured by the fake Slack and their blocks parsed back with slack_sdk."""

from __future__ import annotations

import time

import pytest
from slack_sdk.models.blocks import Block
from sqlalchemy import func, select

from bot.blocks.changes import compact
from bot.blocks.unfurl import NO_MODEL, WITHHELD
from bot.ids import CallbackId
from bot.services.specs import apply_spec
from jobs.monitor import check_model
from jobs.spec import load_spec
from store.models import Alert, AlertState, CheckKind, CheckRun
from tests.support.projects import write_project
from tests.support.slack_fake import action_body, message_action
from tests.support.slack_world import ELI, MODEL, NOW, OMAR

DASHBOARD = "https://flywheel.example.com"
LOANS_MODEL = "default-risk"  # a second project, loans, on which Omar holds no role


@pytest.fixture
def checked(world, tmp_path):
    """The fraud model checked (its drift and KPI alerts open), and the loans project applied."""
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    with world.db.session() as s:
        apply_spec(session=s, loaded=load_spec(write_project(tmp_path / "loans")))
    world.ops.join()
    return world


def share(world, user: str, *urls: str, **event) -> list[dict]:
    """`user` pastes `urls` in a message; the chat.unfurl calls it caused."""
    before = len(world.fake.unfurled)
    links = [{"url": url, "domain": url.split("/")[2]} for url in urls]
    response = world.event({"type": "link_shared", "channel": "C0ML", "is_bot_user_member": True, "user": user,
                            "message_ts": "1700000000.000200", "links": links, "event_ts": "1700000000.000300",
                            "source": "conversations_history", **event})
    assert response.status_code == 200
    world.ops.join()
    return world.fake.unfurled[before:]


def parsed(unfurl: dict) -> list[dict]:
    blocks = Block.parse_all(unfurl["blocks"])
    for block in blocks:
        block.validate_json()
    assert [b.to_dict() for b in blocks] == unfurl["blocks"]
    return unfurl["blocks"]


def text_of(blocks: list[dict]) -> str:
    parts = []
    for block in blocks:
        parts.append((block.get("text") or {}).get("text", ""))
        parts += [e.get("text", "") for e in block.get("elements", [])]
    return "\n".join(parts)


def test_a_model_link_unfurls_into_its_card(checked):
    url = f"{DASHBOARD}/models/{MODEL}?days=30&t={ELI}.1900000000.signature"
    calls = share(checked, ELI, url, f"{DASHBOARD}/alerts/1", f"https://elsewhere.example.org/models/{MODEL}")

    assert len(calls) == 1 and (calls[0]["channel"], calls[0]["ts"]) == ("C0ML", "1700000000.000200")
    assert list(calls[0]["unfurls"]) == [url]  # not an alert page, not another host
    text = text_of(parsed(calls[0]["unfurls"][url]))
    assert f"*<{DASHBOARD}/models/{MODEL}|{MODEL}>* · v1 in production" in text  # the bare page, no token
    assert "open alerts: input drift (" in text and "KPI (" in text
    with checked.db.read() as s:
        figures = s.execute(select(CheckRun.figures).where(CheckRun.kind == CheckKind.kpi)
                            .order_by(CheckRun.id.desc())).scalars().first()
    kpi = figures["kpis"][0]
    trend = " → ".join(compact(v, kpi["unit"]) for _, v in kpi["history"][-4:])
    assert f"{kpi['label']}, last 4 windows: {trend}" in text
    assert f"owner <@{ELI}>" in text and "Card fraud detection" in text


def test_a_link_to_a_project_the_person_holds_no_role_on_shows_no_detail(checked):
    theirs, other = f"{DASHBOARD}/models/{MODEL}", f"{DASHBOARD}/models/{LOANS_MODEL}"
    project = f"{DASHBOARD}/projects/loans"
    [call] = share(checked, OMAR, theirs, other, project)

    assert "v1 in production" in text_of(parsed(call["unfurls"][theirs]))  # Omar is IT ops on card fraud
    for url in (other, project):
        text = text_of(parsed(call["unfurls"][url]))
        assert WITHHELD in text
        assert "production" not in text and "alert" not in text and "owner" not in text
        assert "Loan defaults" not in text  # not even the project's name


def test_project_and_version_pages(checked):
    project, version = f"{DASHBOARD}/projects/card-fraud", f"{DASHBOARD}/models/{MODEL}/versions/1/card"
    [call] = share(checked, ELI, project, version, f"{DASHBOARD}/models/{MODEL}/versions/9")

    assert set(call["unfurls"]) == {project, version}  # a version that does not exist unfurls nothing
    text = text_of(parsed(call["unfurls"][project]))
    with checked.db.read() as s:
        live = s.scalar(select(func.count(Alert.id)).where(Alert.state != AlertState.resolved))
    assert live > 1 and "Card fraud detection" in text and "1 model" in text
    assert f"• {MODEL}: v1, {live} open alerts" in text
    assert "this page: v1 (production)" in text_of(parsed(call["unfurls"][version]))


def test_a_link_in_the_composer_unfurls_by_its_unfurl_id(checked):
    url = f"{DASHBOARD}/models/{MODEL}"
    [call] = share(checked, ELI, url, source="composer", unfurl_id="C0ML.1700000000.000200.abc")
    assert call["unfurl_id"] == "C0ML.1700000000.000200.abc" and call["source"] == "composer"
    assert "channel" not in call


def test_links_to_nothing_flywheel_shows_are_left_alone(checked):
    assert share(checked, ELI, f"{DASHBOARD}/models/no-such-model", f"{DASHBOARD}/catalog",
                 "https://example.org/x") == []
    assert checked.fake.calls_to("chat.unfurl") == []


def shortcut(world, message: dict, user: str) -> str:
    response_url = world.fake.response_url()
    response = world.send(action_body(message_action(CallbackId.ask_owner, message, user_id=user, channel_id="C0ML",
                                                     response_url=response_url)),
                          "application/x-www-form-urlencoded")
    assert response.status_code == 200
    world.ops.join()
    return response_url


def test_ask_the_owner_of_the_model_an_alert_is_about(checked):
    alert = checked.posted("C0ML", f"Input drift on {MODEL} v1")
    message = {"type": "message", "ts": alert[1], **checked.fake.messages[alert]}
    shortcut(checked, message, OMAR)

    replies = [m["text"] for m in checked.fake.thread(*alert)]
    assert f"<@{ELI}>, <@{OMAR}> is asking about *{MODEL}* here: could you take a look?" in replies


def test_ask_the_owner_of_a_model_named_in_someone_elses_message(checked):
    ts = f"{time.time():.6f}"
    message = {"type": "message", "user": OMAR, "ts": ts, "text": f"Is {LOANS_MODEL} down? Approvals look odd."}
    shortcut(checked, message, OMAR)
    [reply] = checked.fake.thread("C0ML", ts)
    assert reply["text"].startswith(f"<@{ELI}>, <@{OMAR}> is asking about *{LOANS_MODEL}*")


def test_a_message_about_no_model_gets_a_private_hint(checked):
    message = {"type": "message", "user": OMAR, "ts": f"{time.time():.6f}", "text": "lunch at noon?"}
    response_url = shortcut(checked, message, OMAR)
    [answer] = checked.responses(response_url)
    assert answer["text"] == NO_MODEL and answer["response_type"] == "ephemeral"
    assert "/catalog" in NO_MODEL
