"""Installed in two workspaces (OAuth), a person of workspace A never sees nor acts on workspace B.

Both workspaces have a project called "Loan defaults" with the same people (the same Slack ids, the hardest
case: their grants alone would reach both); A's model is fraud-detector-a, B's fraud-detector-b. Every request
below is signed and comes from A, over HTTP, as Slack sends it; B's model must be answered exactly as a model
that does not exist, and no listing, suggestion, unfurl or dashboard page may show it."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from slack_sdk.models.blocks import Block
from starlette.testclient import TestClient

from bot.dashboard.app import build_dashboard
from bot.ids import ActionContext, ActionId
from bot.services.catalog import add_asset
from bot.services.specs import apply_spec
from jobs.spec import load_spec
from store import registry
from store.models import Project, SignOff
from tests.support.projects import write_project_with_production
from tests.support.slack_fake import TEAM_ID, action_body, block_action, command_body, event_body

A, B = TEAM_ID, "T0OTHER"
MINE, THEIRS = "fraud-detector-a", "fraud-detector-b"
ML, RISK = "U0ML0001", "U0RISK01"  # the same people in both specs
B_ONLY = "U1ML0009"  # in B's spec only
BASE = "https://flywheel.example.com"


def _project(folder, *, key: str, model: str, team: str, also: str = ""):
    spec = write_project_with_production(folder / key, project=key, model=model)
    text = spec.read_text().replace("  risk_tier: medium\n", f"  risk_tier: medium\n  workspace: {team}\n")
    spec.write_text(text.replace("people:\n", f"people:\n{also}"))
    return load_spec(spec)


@pytest.fixture
def two(served, tmp_path):
    with served.db.session() as s:
        apply_spec(session=s, loaded=_project(tmp_path, key="fraud-a", model=MINE, team=A))
        apply_spec(session=s, loaded=_project(tmp_path, key="fraud-b", model=THEIRS, team=B,
                                              also=f"  - {{slack_id: {B_ONLY}, name: Bo, roles: [ml_engineer]}}\n"))
        for key in (MINE, THEIRS):  # a candidate each: something to approve and deploy
            registry.register_version(session=s, model_key=key, created_by=ML, artifact_uri=f"file:///m/{key}.pkl")
        assert {p.key: p.team_id for p in s.query(Project)} == {"fraud-a": A, "fraud-b": B}
    served.install(A)
    served.install(B)
    return served


def ask(world, text: str, user: str = ML, team: str = A) -> str:
    """`/flywheel TEXT` from workspace `team` (A unless said): the whole text of the answer."""
    body = command_body("/flywheel", text, user_id=user, channel_id="C0ML", response_url=world.fake.response_url())
    answered = world.signed(body.replace(f"team_id={A}".encode(), f"team_id={team}".encode()),
                            "application/x-www-form-urlencoded")
    assert answered.status_code == 200, answered.text
    world.ops.join()
    return answered.text + "".join(json.dumps(r) for url in world.fake.responses for r in world.fake.responses[url])


def click(world, action: ActionId, value: str, user: str = ML) -> str:
    """A click in workspace A on a button carrying `value`: what the clicker was told."""
    response_url = world.fake.response_url()
    answered = world.signed(action_body(block_action(action, value, user_id=user, channel_id="C0ML",
                                                     message_ts="1700000000.000100", response_url=response_url)),
                            "application/x-www-form-urlencoded")
    assert answered.status_code == 200, answered.text
    world.ops.join()
    return answered.text + "".join(json.dumps(r) for r in world.fake.responses[response_url])


def test_listings_show_only_the_workspace_own_models(two):
    for text in ("models", "portfolio", "whoami", "catalog loan"):
        answer = ask(two, text)
        assert THEIRS not in answer and "fraud-b" not in answer, text
    assert MINE in ask(two, "models")
    assert "fraud-a" in ask(two, "whoami")


def test_another_workspace_model_is_answered_as_an_unknown_one(two):
    unknown = ask(two, "status fraud-detector-zz")
    theirs = ask(two, f"status {THEIRS}")
    assert "No model called fraud-detector-zz." in unknown
    assert f"No model called {THEIRS}." in theirs
    # the same answer, word for word, but for the key typed
    assert theirs.replace(THEIRS, "KEY") == unknown.replace("fraud-detector-zz", "KEY")
    assert "Loan defaults" not in theirs


def test_a_status_read_in_one_workspace_is_never_served_to_another(two):
    assert f"No model called {THEIRS}" not in ask(two, f"status {THEIRS}", team=B)  # cached for B
    assert f"No model called {THEIRS}." in ask(two, f"status {THEIRS}")
    assert THEIRS in ask(two, "models", team=B) and MINE not in ask(two, "models", team=B)


def test_catalog_assets_without_a_project_go_with_their_owner_workspace(two):
    with two.db.session() as s:
        for owner, title in ((ML, "Ours notebook"), (B_ONLY, "Quokka notebook")):
            add_asset(session=s, kind="notebook", title=title, owner=owner, actor=owner)
    found = ask(two, "catalog kind:notebook")
    assert "Ours notebook" in found and "Quokka notebook" not in found
    assert "Quokka notebook" in ask(two, "catalog kind:notebook", team=B)
    # a word only B's asset holds finds what a word no asset holds finds: nothing, and no hint of more
    theirs, nothing = ask(two, "catalog quokka"), ask(two, "catalog zyxwv")
    assert theirs.replace("quokka", "WORD") == nothing.replace("zyxwv", "WORD")


def test_did_you_mean_suggests_only_the_workspace_own_models(two):
    answer = ask(two, "status fraud-detector-bb")  # closest to B's key
    assert "No model called fraud-detector-bb." in answer
    assert THEIRS not in answer.replace("fraud-detector-bb", "")
    assert f"Did you mean {MINE}?" in answer


def test_acting_on_another_workspace_model_is_refused_as_unknown(two):
    retrain = ask(two, f"retrain {THEIRS} because")
    assert f"No model called {THEIRS}." in retrain and "Retraining" not in retrain
    approve = ask(two, f"approve {THEIRS} 1", user=RISK)
    assert f"No model called {THEIRS}." in approve
    snooze = ask(two, f"snooze {THEIRS} 4h")  # committed on the group-commit thread, outside the request
    assert f"No model called {THEIRS}." in snooze and "fraud-b" not in snooze
    for action in (ActionId.approve, ActionId.deploy, ActionId.submit_for_signoff):
        told = click(two, action, ActionContext(model=THEIRS, version=1).encode(), user=RISK)
        assert f"No model called {THEIRS}." in told, action
    with two.db.read() as s:
        version = registry.get_version(session=s, model_key=THEIRS, number=1)
        assert version.status.value == "candidate"
        assert s.query(SignOff).filter_by(version_id=version.id).count() == 0
    # the same clicks on A's own model do reach it (the refusal above is the workspace, not the button)
    told = click(two, ActionId.approve, ActionContext(model=MINE, version=1).encode(), user=ML)
    assert f"No model called {MINE}" not in told


def test_app_home_shows_only_the_workspace_own_models(two):
    before = len(two.fake.calls_to("views.publish"))
    opened = two.signed(event_body({"type": "app_home_opened", "user": ML, "channel": "D0HOME", "tab": "home",
                                    "event_ts": "1700000000.000500"}), "application/json")
    assert opened.status_code == 200
    two.ops.join()
    (published,) = two.fake.calls_to("views.publish")[before:]
    view = published.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    Block.parse_all(view["blocks"])
    text = json.dumps(view)
    assert MINE in text and THEIRS not in text and "fraud-b" not in text


def test_the_worker_refreshes_each_workspace_home_with_that_workspace_models_and_token(two):
    """A refresh serves no request: each home is read as its workspace's person sees it, and sent with that
    workspace's token (the same Slack id holds roles in both)."""
    from bot.app import make_outbox_sender
    from bot.outbox import OutboxDelivery

    opened = two.signed(event_body({"type": "app_home_opened", "user": ML, "channel": "D0HOME", "tab": "home",
                                    "event_ts": "1700000000.000600"}), "application/json")
    assert opened.status_code == 200
    two.ops.join()
    before = len(two.fake.calls_to("views.publish"))
    sender = make_outbox_sender(two.settings, two.ops)
    queue = OutboxDelivery(two.db, two.ops.clock)
    assert queue.refresh_homes() == 2  # one home in each workspace that grants ML a role
    assert queue.refresh_homes() == 0  # both already waiting
    while sender.send_due():
        pass
    published = two.fake.calls_to("views.publish")[before:]
    seen = {}
    for call in published:
        token = call.headers.get("Authorization", "").removeprefix("Bearer ") or call.params.get("token")
        view = call.params["view"]
        view = json.loads(view) if isinstance(view, str) else view
        Block.parse_all(view["blocks"])
        seen[two.fake.installed[token]] = json.dumps(view)
    assert set(seen) == {A, B} and len(published) == 2
    assert MINE in seen[A] and THEIRS not in seen[A] and "fraud-b" not in seen[A]
    assert THEIRS in seen[B] and MINE not in seen[B] and "fraud-a" not in seen[B]


def test_a_request_naming_no_workspace_sees_no_workspace_projects(two):
    """An org-wide (Enterprise Grid) install can send a request with an enterprise and no workspace. Installed
    in several workspaces, Flywheel fails closed: such a request sees neither workspace's models."""
    from slack_sdk.oauth.installation_store import Installation

    token = "xoxb-E0ORG-1"
    two.fake.installed[token] = "E0ORG"
    two.store.save(Installation(app_id="A0FLYWHEEL", enterprise_id="E0ORG", team_id=None, user_id=ML,
                                bot_token=token, bot_id="B0ORG", bot_user_id="U0BOTORG", is_enterprise_install=True))
    body = command_body("/flywheel", "models", user_id=ML, channel_id="C0ML", response_url=two.fake.response_url())
    body = body.replace(f"team_id={A}&".encode(), b"").replace(b"is_enterprise_install=false",
                                                              b"is_enterprise_install=true&enterprise_id=E0ORG")
    assert b"team_id" not in body
    answered = two.signed(body, "application/x-www-form-urlencoded")
    assert answered.status_code == 200, answered.text
    two.ops.join()
    answer = answered.text + "".join(json.dumps(r) for url in two.fake.responses for r in two.fake.responses[url])
    assert "installation with this app is no longer available" not in answer  # it reached Flywheel
    assert MINE not in answer and THEIRS not in answer and "fraud-" not in answer, answer


def test_an_unfurl_of_another_workspace_page_shows_nothing(two):
    before = len(two.fake.unfurled)
    links = [{"url": f"{BASE}/models/{THEIRS}", "domain": "flywheel.example.com"},
             {"url": f"{BASE}/projects/fraud-b", "domain": "flywheel.example.com"}]
    shared = two.signed(event_body({"type": "link_shared", "channel": "C0ML", "is_bot_user_member": True, "user": ML,
                                    "message_ts": "1700000000.000200", "links": links,
                                    "event_ts": "1700000000.000300", "source": "conversations_history"}),
                        "application/json")
    assert shared.status_code == 200
    two.ops.join()
    assert THEIRS not in json.dumps(two.fake.unfurled[before:])
    assert "Loan defaults" not in json.dumps(two.fake.unfurled[before:])


def _link(world, page: str, user: str = ML) -> str:
    """The dashboard link a person of A (the ML engineer) gets from a View details button on `page`."""
    told = click(world, ActionId.view_details, f"{BASE}{page}", user=user)
    start = told.index(f"{BASE}{page}?t=")
    return told[start:].split('"')[0].split("|")[0].split(">")[0]


def test_a_dashboard_link_made_in_one_workspace_opens_none_of_another(two):
    browser = TestClient(build_dashboard(two.settings, two.db), base_url=BASE)
    mine_link = urlsplit(_link(two, f"/models/{MINE}"))
    mine = browser.get(f"{mine_link.path}?{mine_link.query}")
    assert mine.status_code == 200 and MINE in mine.text
    theirs_link = urlsplit(_link(two, f"/models/{THEIRS}"))
    fresh = TestClient(build_dashboard(two.settings, two.db), base_url=BASE)
    theirs = fresh.get(f"{theirs_link.path}?{theirs_link.query}")
    assert theirs.status_code == 404 and f"No model called {THEIRS}. Did you mean {MINE}?" in theirs.text
    # and the session A's link opened reaches none of B's pages either
    assert f"No model called {THEIRS}." in browser.get(f"/models/{THEIRS}").text
    theirs, unknown = browser.get("/projects/fraud-b"), browser.get("/projects/fraud-zz")
    assert (theirs.status_code, theirs.text.replace("fraud-b", "KEY")) == \
        (unknown.status_code, unknown.text.replace("fraud-zz", "KEY"))
    for page, user in (("/projects", RISK), ("/", ML)):  # the pages across projects: portfolio, index
        link = urlsplit(_link(two, page, user))
        shown = TestClient(build_dashboard(two.settings, two.db), base_url=BASE).get(f"{link.path}?{link.query}")
        assert shown.status_code == 200, (page, re.sub(r"<style>.*</style>", "", shown.text, flags=re.S)[-800:])
        assert "fraud-b" not in shown.text and THEIRS not in shown.text, page
    assert MINE in shown.text  # the index lists A's model


def test_a_dashboard_link_that_names_no_workspace_opens_no_workspace_model(two):
    """Links signed before they named their workspace still verify; installed in several workspaces they
    open neither workspace's pages (fail closed), where one naming A opens A's."""
    from bot.dashboard.access import Signer

    signer = Signer(two.settings)
    for team, shown in ((None, set()), (A, {MINE})):
        url, _ = signer.link(f"{BASE}/models/{MINE}", slack_id=ML, now=two.ops.clock(), team=team)
        link = urlsplit(url)
        page = TestClient(build_dashboard(two.settings, two.db), base_url=BASE).get(f"{link.path}?{link.query}")
        opened = {key for key in (MINE, THEIRS) if page.status_code == 200 and f"No model called" not in page.text
                  and key in page.text}
        assert opened == shown, (team, page.status_code, page.text[-400:])


def test_single_token_projects_without_a_workspace_stay_visible_to_everyone(two):
    with two.db.session() as s:
        s.query(Project).filter_by(key="fraud-b").update({"team_id": None})
    assert THEIRS in ask(two, "models")
    assert f"No model called {THEIRS}" not in ask(two, f"status {THEIRS}")
