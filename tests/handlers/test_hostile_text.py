"""Text people and specs give Flywheel reaches Slack as text: `<!channel>`, `<!here>`, `<@U123>`, a disguised
link and `&` in a reject reason, a retrain reason, and a second project's names arrive escaped in what the
fake Slack received, never as a mention or a link. Requests go in signed over HTTP, as Slack sends them."""

import json

from slack_sdk.models.blocks import Block

from bot.blocks.common import escape_mrkdwn
from bot.ids import ActionId, BlockId, CallbackId
from bot.services.specs import apply_spec
from jobs.spec import load_spec
from tests.support.slack_world import ELI, MODEL, NOOR, RITA

HOSTILE = "<!channel> <!here> <@U123> <https://evil.example|click> & co"
ESCAPED = "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt; &amp; co"
RAW_TOKENS = ("<!channel>", "<!here>", "<@U123>", "<https://evil.example")


def _received(world) -> str:
    """Everything the app sent Slack: messages, edits, answers to response URLs, views, as JSON text."""
    world.ops.join()
    return json.dumps([c.params for c in world.fake.calls], ensure_ascii=False)


def _assert_escaped(world) -> None:
    sent = _received(world)
    assert ESCAPED in sent
    for token in RAW_TOKENS:
        assert token not in sent, f"{token} reached Slack as markup"


def _blocks_parse(blocks: list[dict]) -> None:
    parsed = Block.parse_all(blocks)
    assert [b.to_dict() for b in parsed] == blocks
    for block in parsed:
        block.validate_json()


def _candidate_after_retrain(world, reason_as_slack_sends_it: str) -> tuple[str, str]:
    sent = world.command(f"retrain {MODEL} {reason_as_slack_sends_it}", ELI)
    assert sent.status == 200
    assert sent.body["text"] == f"Retraining {MODEL} ({reason_as_slack_sends_it}). I'll post here when the new " \
                                "version is ready."  # escaped once: what Slack sent is what it gets back
    world.ops.join()
    return world.posted("C0ML", f"{MODEL} v2 is ready for review")


def test_a_retrain_reason_reaches_the_candidate_and_the_sign_off_request_as_text(world):
    # Slack encodes &, < and > typed into a slash command; the reason is stored as typed and escaped once.
    candidate = _candidate_after_retrain(world, escape_mrkdwn(HOSTILE))
    blocks = world.fake.messages[candidate]["blocks"]
    _blocks_parse(blocks)
    assert ESCAPED in json.dumps(blocks)
    world.click(ActionId.submit_for_signoff, candidate, ELI)
    world.ops.join()
    request = world.posted("C0RISK", f"Sign-off requested: {MODEL} v2")
    evidence = json.dumps(world.fake.messages[request]["blocks"])
    assert f"Why: {ESCAPED}." in evidence
    _assert_escaped(world)
    with world.db.session() as s:
        from store import registry
        version = next(v for v in registry.get_model(session=s, key=MODEL).versions if v.number == 2)
        assert version.parameters["trigger"] == HOSTILE  # stored as typed: the dashboard and audit read it right


def test_a_reject_reason_from_the_modal_is_shown_as_typed(world):
    candidate = _candidate_after_retrain(world, "plain reason &amp; more")  # "&" typed, as Slack encodes it
    world.click(ActionId.submit_for_signoff, candidate, ELI)
    world.ops.join()
    request = world.posted("C0RISK", f"Sign-off requested: {MODEL} v2")
    world.click(ActionId.reject, request, NOOR)
    metadata = world.fake.calls_to("views.open")[-1].params["view"]["private_metadata"]
    done = world.submit(CallbackId.reject_modal, {BlockId.reject_reason: {"reason": HOSTILE}}, NOOR, metadata)
    assert done.status_code == 200
    world.ops.join()
    settled = world.fake.messages[request]["blocks"]
    _blocks_parse(settled)
    assert f'Rejected by <@{NOOR}> (technical validation)' in json.dumps(settled)
    assert f': \\"{ESCAPED}\\"' in json.dumps(settled)
    _assert_escaped(world)
    assert "plain reason &amp; more" in _received(world) and "&amp;amp;" not in _received(world)  # once, not twice


def test_an_approval_comment_typed_in_a_command_is_shown_as_typed(world):
    candidate = _candidate_after_retrain(world, "card age drifted")
    world.click(ActionId.submit_for_signoff, candidate, ELI)
    world.ops.join()
    # A @channel picked in the composer arrives as Slack's own <!channel>; it is still only text here.
    answer = world.command(f"approve {MODEL} 2 {HOSTILE}", NOOR)
    assert answer.body["text"].endswith(f': "{ESCAPED}"')
    for token in RAW_TOKENS:
        assert token not in json.dumps(answer.body) and token not in _received(world)


HOSTILE_SPEC = """
project:
  key: hostile
  name: "Loans <!channel> & friends"
  initiative: "<https://evil.example|click> here"
  owner: U0HOST001
  risk_tier: high
people:
  - {slack_id: U0HOST001, name: "<@U123> Mallory & co", roles: [risk_manager, business, ml_engineer]}
channels: {business: C0HOSTBIZ, ml_engineer: C0HOSTML, risk_manager: C0HOSTRISK}
blueprint:
  name: "bp <!here>"
  steps:
    - {name: "review <@U123>", role: risk_manager}
models:
  - key: loan-default
    description: "<!channel>"
    owner: U0HOST001
    data:
      reference: {path: data/reference.parquet}
      production: {path: data/reference.parquet}
      timestamp: event_time
      prediction: predicted_fraud
    features:
      numeric: ["amount", "<!channel> & <@U123>"]
    kpis:
      - {name: loss, label: "Losses <!here> & more", aggregate: count, alert: {above: 1}}
"""


def test_a_second_specs_names_reach_app_home_and_replies_as_text(world, tmp_path):
    import pandas as pd

    (tmp_path / "data").mkdir()
    pd.DataFrame({"event_time": pd.date_range("2026-09-01", periods=20, freq="D"), "predicted_fraud": [0, 1] * 10,
                  "amount": range(20), "<!channel> & <@U123>": range(20)}).to_parquet(tmp_path / "data" /
                                                                                       "reference.parquet")
    spec = tmp_path / "hostile.yml"
    spec.write_text(HOSTILE_SPEC)
    with world.db.session() as s:
        apply_spec(session=s, loaded=load_spec(spec))
    assert world.event({"type": "app_home_opened", "user": "U0HOST001", "channel": "D0HOST", "tab": "home",
                        "event_ts": "1700000000.000100"}).status_code == 200
    world.ops.join()
    home = json.dumps(world.fake.home["U0HOST001"])
    _blocks_parse(world.fake.home["U0HOST001"]["blocks"])
    for shown in ("&lt;@U123&gt; Mallory &amp; co", "Loans &lt;!channel&gt; &amp; friends",
                  "&lt;https://evil.example|click&gt; here", "bp &lt;!here&gt;"):
        assert shown in home
    who = world.command("whoami", "U0HOST001").body["text"]
    assert who.startswith("You are &lt;@U123&gt; Mallory &amp; co: ")
    status = world.command("status loan-default", RITA)
    assert "Loans &lt;!channel&gt; &amp; friends" in json.dumps(status.body)
    sent = _received(world)
    for token in RAW_TOKENS:
        assert token not in sent, f"{token} reached Slack as markup"
