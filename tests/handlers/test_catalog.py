"""/catalog end to end: signed requests over HTTP in, answers in the ack and through response URLs
to the fake Slack, App Home through the Web API."""

import time

import pytest
from slack_sdk.models.blocks import Block
from sqlalchemy import select

from bot.ids import ActionId, CatalogContext
from bot.services import catalog as catalog_service
from bot.services.specs import apply_spec
from jobs.spec import load_spec
from store import catalog_writes
from store.models import AuditEvent
from tests.support.projects import write_project
from tests.support.slack_fake import FakeSlack, action_body, block_action
from tests.support.slack_world import World

ELI, NOOR, DANA = "U0ML0001", "U0ML0002", "U0BIZ001"
CATALOG = """\
catalog:
  - kind: dashboard
    title: Customer review sentiment
    description: Weekly sentiment of customer reviews left after a loan decision
    owner: U0BIZ001
    tags: [nlp, reviews]
  - kind: notebook
    title: Loan feature exploration
    description: Income and debt distributions per region
    owner: U0ML0002
    links: ["https://github.com/acme/loans/blob/main/eda.ipynb"]
"""


@pytest.fixture
def world(db, tmp_path):
    path = write_project(tmp_path)
    path.write_text(path.read_text() + CATALOG)
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(path))
    with FakeSlack() as fake:
        world = World(db, tmp_path, fake)
        yield world
        world.close()
        assert fake.invalid == [], "the app sent a payload Slack would refuse"


def _blocks(body: dict) -> list[dict]:
    parsed = Block.parse_all(body["blocks"])
    for block in parsed:
        block.validate_json()
    assert [b.to_dict() for b in parsed] == body["blocks"]
    return body["blocks"]


def _click(world, action_id: str, value: str, user: str, blocks: list[dict]) -> str:
    """A click on a button of an ephemeral answer; returns the response URL the app answers to."""
    response_url = world.fake.response_url()
    payload = block_action(action_id, value, user_id=user, channel_id="C0ML", message_ts="1700000000.000100",
                           response_url=response_url, message_blocks=blocks)
    payload["container"]["is_ephemeral"] = True
    assert world.send(action_body(payload), "application/x-www-form-urlencoded").status_code == 200
    return response_url


def _value(blocks: list[dict], action_id: str) -> str:
    return next(e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == action_id)


def test_catalog_answers_in_the_ack_with_the_owner_to_reach(world):
    sent = world.command("customer reviews", ELI, command="/catalog")
    assert sent.status == 200 and sent.body["response_type"] == "ephemeral"
    assert sent.body["text"] == ("Best match for “customer reviews”: Customer review sentiment, a dashboard owned "
                                 f"by <@{DANA}>.")
    blocks = _blocks(sent.body)
    assert blocks[2]["elements"][0]["text"].startswith(f"dashboard · Loan defaults · owner <@{DANA}> · `nlp`")
    assert world.fake.calls_to("chat.postMessage") == []  # the answer is the ack itself


def test_flywheel_catalog_is_the_same_search(world):
    assert world.command("catalog customer reviews", ELI).body["text"] == \
        world.command("customer reviews", ELI, command="/catalog").body["text"]


def test_more_results_pages_in_place_and_back(world):
    with world.db.session() as s:
        for n in range(7):
            catalog_service.add_asset(session=s, kind="notebook", title=f"Churn study {n}", owner=NOOR, actor=NOOR,
                              description="Why customers leave")
    first = world.command("churn", ELI, command="/catalog").body
    url = _click(world, ActionId.catalog_more, _value(_blocks(first), ActionId.catalog_more), ELI, first["blocks"])
    [second] = world.responses(url)
    assert second["replace_original"] is True and second["response_type"] == "ephemeral"
    assert second["text"] == "Results 6-7 for “churn”."
    titles = {b["text"]["text"].split("\n")[0] for b in first["blocks"][1:] + second["blocks"][1:]
              if b["type"] == "section"}
    assert titles == {f"*Churn study {n}*" for n in range(7)}
    url = _click(world, ActionId.catalog_previous, _value(_blocks(second), ActionId.catalog_previous), ELI,
                 second["blocks"])
    assert world.responses(url)[0]["blocks"] == first["blocks"]


def test_share_in_channel_posts_one_result_for_everyone(world):
    found = world.command("loan exploration", DANA, command="/catalog").body
    value = _value(_blocks(found), ActionId.catalog_share)
    assert CatalogContext.decode(value).asset == "notebook:loans/loan-feature-exploration"
    url = _click(world, ActionId.catalog_share, value, DANA, found["blocks"])
    [shared] = world.responses(url)
    assert shared["response_type"] == "in_channel" and shared["replace_original"] is False
    assert shared["text"] == "Loan feature exploration: a notebook owned by Noor"
    blocks = _blocks(shared)
    assert blocks[0]["text"]["text"].startswith("*<https://github.com/acme/loans/blob/main/eda.ipynb|Loan feature")
    assert blocks[-1]["elements"][0]["text"] == f"Shared by <@{DANA}> from a /catalog search"
    assert not any(b["type"] == "actions" for b in blocks)
    with world.db.session() as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "catalog.shared")).scalar_one()
        assert (event.actor, event.details) == (DANA, {"channel": "C0ML"})


def test_sharing_an_asset_removed_since_says_so(world):
    with world.db.session() as s:
        catalog_service.add_asset(session=s, kind="plugin", title="Drift webhook", owner=NOOR, actor=NOOR)
    found = world.command("drift webhook", ELI, command="/catalog").body
    with world.db.session() as s:
        catalog_writes.remove_asset(session=s, key="plugin:drift-webhook", actor=NOOR)
    url = _click(world, ActionId.catalog_share, _value(found["blocks"], ActionId.catalog_share), ELI, found["blocks"])
    assert world.responses(url) == [{"text": "Nothing in the catalog is called plugin:drift-webhook any more; search "
                                             "again with /catalog.", "response_type": "ephemeral",
                                     "replace_original": False}]


def test_nothing_found_suggests_and_bad_filters_explain(world):
    nothing = world.command("sentimnt", ELI, command="/catalog").body
    assert nothing["text"] == ("Nothing in the catalog matches “sentimnt”.\n"
                               "Closest known: Customer review sentiment.")
    _blocks(nothing)
    assert world.command("kind:modle", ELI, command="/catalog").body["text"].startswith(
        "'modle' is not a kind of asset. Did you mean kind:model?")
    assert world.command("owner:@nor", ELI, command="/catalog").body["text"] == \
        "No one called @nor is in Flywheel. Did you mean @Noor?"


def test_an_empty_search_explains_the_filters(world):
    helped = world.command("", ELI, command="/catalog").body["text"]
    assert helped.startswith("Find models, datasets, notebooks") and "owner:@name" in helped


def test_mentions_and_me_filter_by_owner(world):
    mine = world.command("owner:me", NOOR, command="/catalog").body["text"]
    assert mine.startswith("Best match for “owner:me”: Loan feature exploration, a notebook owned by")
    mentioned = world.command(f"<@{DANA}|dana>", ELI, command="/catalog").body["text"]
    assert mentioned == f"Best match for “@dana”: Customer review sentiment, a dashboard owned by <@{DANA}>."


def test_the_app_home_shows_the_viewers_own_assets(world):
    response = world.event({"type": "app_home_opened", "user": NOOR, "channel": "D0NOOR", "tab": "home",
                            "event_ts": f"{time.time():.6f}"})
    assert response.status_code == 200
    world.ops.join()
    home = world.fake.home[NOOR]
    headers = [b["text"]["text"] for b in home["blocks"] if b["type"] == "header"]
    assert headers[-1] == "Your assets in the catalog"
    assert "Loan feature exploration" in home["blocks"][-2]["text"]["text"]
