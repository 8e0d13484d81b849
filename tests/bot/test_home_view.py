"""The App Home view built from hand-made HomeData: the dict Slack would receive."""

from datetime import datetime, timedelta

from slack_sdk.models.views import View

from bot.blocks import home
from bot.blocks.dates import when
from bot.ids import ActionContext, ActionId, BlockId
from bot.services.home import (
    CheckVerdict,
    GovernedModel,
    GovernedProject,
    HomeData,
    Kpi,
    ModelKpis,
    More,
    OwnedModel,
    PendingSignOff,
    ProjectKpis,
    RecentDeployment,
    VersionLine,
)
from jobs.incidents import StepStatus

NOW = datetime(2026, 11, 20, 14, 0)
WEEK = timedelta(days=7)
URL = "https://flywheel.example.com/"
STEPS = (StepStatus("technical validation", "ml_engineer", 1, ("U0ML0002",)), StepStatus("risk review", "risk_manager", 1, ()))
SIGNED = (STEPS[0], StepStatus("risk review", "risk_manager", 1, ("U0RISK01",)))
KPIS = ModelKpis(
    model_key="fraud-detector", owner="U0ML0001", open_alerts=1, verdict="breach", message="KPI breached",
    checked_at=NOW, window_start=NOW - WEEK, window_end=NOW, kpis=(
        Kpi("missed_fraud_amount", "Fraud amount missed", "USD", 18300.0, 12000.0, 4, 10000.0, True,
            "above $10,000", aggregate="sum"),
        Kpi("missed_fraud_rate", "Missed fraud", "rate", 0.024, 0.017, 4, None, False, "25% above the baseline",
            aggregate="rate"),
        Kpi("chargebacks", "Chargebacks", None, None, None, 4, None, False, "no alert set")))
PROJECT = ProjectKpis("card-fraud", "Card fraud detection", (KPIS,))
OWNED = OwnedModel(
    key="fraud-detector", project_name="Card fraud detection", production="v1", open_alerts=1,
    verdicts=(CheckVerdict("drift", "breach", "2 of 7 features drifted", NOW - timedelta(hours=1)),
              CheckVerdict("kpi", "ok", "2 KPIs within their limits", NOW)),
    versions=(VersionLine(4, "candidate", "U0ML0001", datetime(2026, 10, 1), datetime(2026, 11, 20), ()),
              VersionLine(3, "in_review", "U0ML0001", None, None, STEPS),
              VersionLine(2, "approved", "U0ML0001", None, None, SIGNED)),
    more_versions=0)
PENDING = PendingSignOff("fraud-detector", 3, "Card fraud detection", "Reduce payment fraud losses", "high",
                         "U0ML0001", datetime(2026, 10, 1), datetime(2026, 11, 20), STEPS)
GOVERNED = GovernedProject("card-fraud", "Card fraud detection", "Reduce payment fraud losses", ("Dana", "Sam"),
                           "high", "customer-facing",
                           (GovernedModel("fraud-detector", 3, "in_review", STEPS),
                            GovernedModel("chargeback-model", 1, "production", ()),
                            GovernedModel("new-model", None, None, ())))
DEPLOYS = (RecentDeployment("fraud-detector", 2, "U0ML0001", NOW, True, "v1"),
           RecentDeployment("fraud-detector", 1, "U0OPS001", NOW - 4 * WEEK, False, None),
           RecentDeployment("chargeback-model", 1, "U0OPS001", NOW - 5 * WEEK, True, None))


def _data(*roles, **parts) -> HomeData:
    return HomeData(slack_id="U0ME0001", person_name="Max", roles=roles, as_of=NOW, **parts)


def _built(data: HomeData) -> dict:
    """The view's dict after every check Slack would make: validators, round-trip, unique block ids."""
    view = home.home_view(data, public_url=URL)
    view.validate_json()
    for block in view.blocks:
        block.validate_json()
    built = view.to_dict()  # runs the validators of every nested element too
    assert built["type"] == "home" and 0 < len(built["blocks"]) <= home.MAX_VIEW_BLOCKS
    assert View(**built).to_dict() == built
    ids = [b["block_id"] for b in built["blocks"] if "block_id" in b]
    assert len(ids) == len(set(ids)), "Slack refuses a view with a repeated block_id"
    return built


def _part(built: dict, header: str) -> list[dict]:
    """The blocks under a section header, up to the next divider."""
    blocks = built["blocks"]
    start = next(i for i, b in enumerate(blocks) if b["type"] == "header" and b["text"]["text"] == header) + 1
    end = next((i for i in range(start, len(blocks)) if blocks[i]["type"] == "divider"), len(blocks))
    return blocks[start:end]


def _headers(built: dict) -> list[str]:
    return [b["text"]["text"] for b in built["blocks"] if b["type"] == "header"]


def _buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks for e in (b.get("elements", []) if b["type"] == "actions" else [b.get("accessory")])
            if e and e.get("type") == "button"]


def test_a_stranger_is_told_how_to_get_added():
    built = _built(HomeData(slack_id="U0NEW001", person_name=None, roles=(), as_of=NOW))
    assert _headers(built) == ["Welcome to Flywheel"]
    text = "\n".join(b["text"]["text"] for b in built["blocks"] if b["type"] == "section")
    assert "You are not in its registry yet" in text
    assert "under `people:` in its project spec, then run `flywheel apply SPEC.yml`" in text
    assert "{slack_id: U0NEW001, name: Your name, roles: [business]}" in text
    assert _buttons(built["blocks"]) == []


def test_a_known_person_without_roles_is_told_to_get_one():
    built = _built(_data())
    assert built["blocks"][0]["text"]["text"] == "*Hi Max.*"
    assert built["blocks"][1]["elements"][0]["text"] == f"Your roles: none · updated {when(NOW)}"
    assert built["blocks"][2]["text"]["text"] == home.NO_ROLES


def test_business_reads_money_and_open_alerts_per_project():
    built = _built(_data("business", business=(PROJECT,)))
    assert _headers(built) == [home.BUSINESS]
    assert built["blocks"][0]["text"]["text"] == "*Hi Max.* 1 open alert on your projects."
    section, checked = _part(built, home.BUSINESS)
    assert section["block_id"] == f"{BlockId.home_project}:card-fraud"
    assert section["text"]["text"] == (
        "*Card fraud detection* · :red_circle: 1 open alert\n"
        ":red_circle: Fraud amount missed *$18,300* this week, up 52% ($12k -&gt; $18.3k a week) over the previous "
        "four weeks (alert above $10,000).\n"
        "• Missed fraud *2.4%* this week, up 0.7 points (1.7% -&gt; 2.4%) over the previous four weeks.\n"
        "• Chargebacks: no value this week.")
    assert section["accessory"]["value"] == "https://flywheel.example.com/projects/card-fraud"
    assert section["accessory"]["action_id"] == ActionId.view_details
    assert checked["elements"][0]["text"] == f"fraud-detector checked {when(NOW)}, owner <@U0ML0001>"


def test_a_project_with_several_models_names_each_and_says_when_a_check_is_missing_or_failed():
    failed = ModelKpis("loans-model", "U0ML0002", 0, "error", "cannot read production data: no such table",
                       NOW, NOW - WEEK, NOW, ())
    unchecked = ModelKpis("new-model", "U0ML0002", 0, None, "", None, None, None, ())
    project = ProjectKpis("mixed", "Mixed project", (failed, unchecked))
    [section, checked] = _part(_built(_data("business", business=(project,))), home.BUSINESS)
    assert section["text"]["text"] == (
        "*Mixed project* · no open alerts\n_loans-model_\n"
        ":x: The KPI check could not run: cannot read production data: no such table\n"
        "_new-model_\nNo KPI check has run yet.")
    assert checked["elements"][0]["text"] == f"loans-model checked {when(NOW)}, owner <@U0ML0002>"


def test_the_ml_engineer_sees_verdicts_versions_and_what_to_do_next():
    built = _built(_data("ml_engineer", models=(OWNED,)))
    assert built["blocks"][0]["text"]["text"] == "*Hi Max.* 1 model with a failing check."
    section, actions = _part(built, home.MODELS)
    assert section["text"]["text"] == (
        "*fraud-detector* · Card fraud detection · v1 in production · :red_circle: 1 open alert · "
        f"checked {when(NOW)}\n"
        ":red_circle: *Input drift:* 2 of 7 features drifted\n"
        ":white_check_mark: *KPIs:* 2 KPIs within their limits\n"
        "• *v4* candidate, trained on Oct 1 - Nov 19, 2026 by <@U0ML0001>, not submitted for sign-off\n"
        "• *v3* in review, waiting for risk review: 0 of 1\n"
        "• *v2* approved, ready to deploy")
    assert actions["block_id"] == f"{BlockId.home_model}:fraud-detector"
    submit, deploy, details = actions["elements"]
    assert (submit["action_id"], submit["style"], submit["text"]["text"]) == \
        (ActionId.submit_for_signoff, "primary", "Submit for sign-off: v4")
    assert ActionContext.decode(submit["value"]) == ActionContext(model="fraud-detector", version=4)
    assert deploy["action_id"] == ActionId.deploy
    assert ActionContext.decode(deploy["value"]) == ActionContext(model="fraud-detector", version=2)
    assert deploy["confirm"]["text"]["text"] == "v2 becomes the production version of fraud-detector; v1 stops serving."
    assert details["value"] == "https://flywheel.example.com/models/fraud-detector"


def test_a_model_with_no_checks_and_nothing_to_release_has_only_its_details_link():
    bare = OwnedModel("new-model", "New", None, 0, (), (), 0)
    section, actions = _part(_built(_data("ml_engineer", models=(bare,))), home.MODELS)
    assert section["text"]["text"] == f"*new-model* · New · nothing in production yet\n{home.NO_CHECKS}"
    assert [e["action_id"] for e in actions["elements"]] == [ActionId.view_details]


def test_a_pending_sign_off_offers_approve_with_confirm_and_reject():
    built = _built(_data("risk_manager", pending_signoffs=(PENDING,), governed=(GOVERNED,)))
    assert _headers(built) == [home.SIGNOFFS, home.GOVERNED]
    section, actions = _part(built, home.SIGNOFFS)
    assert section["text"]["text"] == (
        "*fraud-detector v3* · Card fraud detection · due now: *risk review*\n"
        "Technical validation: done by <@U0ML0002> · Risk review: 0 of 1\n"
        "Initiative: Reduce payment fraud losses · high risk · requested by <@U0ML0001> · trained on Oct 1 - Nov 19, 2026")
    assert actions["block_id"] == f"{BlockId.home_signoff}:fraud-detector:3"
    approve, reject, card = actions["elements"]
    assert (approve["action_id"], approve["style"]) == (ActionId.approve, "primary")
    assert approve["confirm"]["text"]["text"] == ("You are signing *risk review* for fraud-detector v3. This is "
                                                  "recorded in the audit log.")
    assert (reject["action_id"], reject["style"], "confirm" in reject) == (ActionId.reject, "danger", False)
    for clicked in (approve, reject):
        assert ActionContext.decode(clicked["value"]) == ActionContext(model="fraud-detector", version=3)
    assert card["value"] == "https://flywheel.example.com/models/fraud-detector/versions/3/card"


def test_the_risk_manager_sees_each_governed_project_with_its_blueprint_progress():
    [section] = _part(_built(_data("risk_manager", governed=(GOVERNED,))), home.GOVERNED)
    assert section["text"]["text"] == (
        "*Card fraud detection* · High risk · blueprint customer-facing\n"
        "Initiative: Reduce payment fraud losses · Sponsors: Dana, Sam\n"
        "• fraud-detector v3 in review: Technical validation: done by <@U0ML0002> · Risk review: 0 of 1\n"
        "• chargeback-model v1 in production, nothing waiting for sign-off\n"
        "• new-model: nothing in production or in review yet")


def test_an_ml_engineer_asked_for_a_technical_validation_sees_it_but_no_governed_projects():
    built = _built(_data("ml_engineer", pending_signoffs=(PENDING,)))
    assert _headers(built) == [home.MODELS, home.SIGNOFFS]
    assert "1 sign-off waiting for you" in built["blocks"][0]["text"]["text"]


def test_it_ops_can_roll_back_what_is_live_and_only_that():
    built = _built(_data("it_ops", deployments=DEPLOYS))
    assert built["blocks"][0]["text"]["text"] == f"*Hi Max.* Last deployment fraud-detector v2, {when(NOW)}."
    live, replaced, first = _part(built, home.DEPLOYMENTS)
    assert live["text"]["text"] == (f"*fraud-detector v2* is live · deployed by <@U0ML0001>, {when(NOW)} · "
                                    "previous production version: v1")
    rollback = live["accessory"]
    assert (rollback["action_id"], rollback["style"], rollback["text"]["text"]) == \
        (ActionId.rollback, "danger", "Roll back to v1")
    assert rollback["confirm"]["style"] == "danger"
    assert rollback["confirm"]["text"]["text"] == "Production of fraud-detector goes back to v1; v2 stops serving."
    assert ActionContext.decode(rollback["value"]) == ActionContext(model="fraud-detector", version=2, to=1)
    assert rollback["value"] == '{"m":"fraud-detector","v":2,"t":1}'  # what the person saw, and no more
    assert live["block_id"] == f"{BlockId.home_deployment}:fraud-detector:2"
    assert replaced["text"]["text"].endswith("· no longer serving") and "accessory" not in replaced
    assert first["text"]["text"].endswith("the model's first production version") and "accessory" not in first


def test_empty_sections_say_what_would_fill_them():
    built = _built(_data("admin"))
    assert _headers(built) == [home.BUSINESS, home.MODELS, home.SIGNOFFS, home.GOVERNED, home.DEPLOYMENTS]
    empties = {header: _part(built, header)[0]["text"]["text"] for header in _headers(built)}
    assert empties == {home.BUSINESS: home.NO_PROJECTS, home.MODELS: home.NO_MODELS, home.SIGNOFFS: home.NO_SIGNOFFS,
                       home.GOVERNED: home.NO_GOVERNED, home.DEPLOYMENTS: "No deployments yet."}


def test_two_roles_give_two_sections_in_a_fixed_order():
    built = _built(_data("it_ops", "business", business=(PROJECT,), deployments=DEPLOYS))
    assert _headers(built) == [home.BUSINESS, home.DEPLOYMENTS]
    assert built["blocks"][1]["elements"][0]["text"].startswith("Your roles: it ops, business")


def test_many_items_stay_within_slacks_limit_and_say_how_many_more():
    n = 40
    data = _data(
        "admin",
        business=tuple(ProjectKpis(f"p{i}", f"Project {i}", (KPIS,) * 12) for i in range(n)),
        models=tuple(OwnedModel(f"m{i}", "P", "v1", 2, OWNED.verdicts, OWNED.versions, 7) for i in range(n)),
        pending_signoffs=tuple(PendingSignOff(f"m{i}", 2, "P", "x" * 500, "low", "U0ML0001", None, None, STEPS)
                               for i in range(n)),
        governed=tuple(GovernedProject(f"p{i}", f"Project {i}", "", (), "low", "standard",
                                       tuple(GovernedModel(f"m{j}", 1, "production", ()) for j in range(30)))
                       for i in range(n)),
        deployments=tuple(RecentDeployment(f"m{i}", 2, "U0OPS001", NOW, True, "v1") for i in range(n)),
        more=More(business=5, models=1, pending_signoffs=2, governed=0))
    built = _built(data)
    assert len(built["blocks"]) <= 100
    notes = [b["elements"][0]["text"] for b in built["blocks"] if b["type"] == "context"
             and b["elements"][0]["text"].startswith("…and")]
    assert notes == [f"…and {n - home.MAX_PROJECTS + 5} more projects.",
                     f"…and {n - home.MAX_MODELS + 1} more models.",
                     f"…and {n - home.MAX_SIGNOFFS + 2} more sign-offs.",
                     f"…and {n - home.MAX_GOVERNED} more projects."]
    assert "…and 7 older unreleased versions." in _part(built, home.MODELS)[0]["text"]["text"]
    assert "…and 20 more models." in _part(built, home.GOVERNED)[0]["text"]["text"]
    pages = (ActionId.view_details, ActionId.model_card)  # their value is the page's address
    values = [ActionContext.decode(b["value"]) for b in _buttons(built["blocks"])
              if "value" in b and b["action_id"] not in pages]
    assert {v.model for v in values} >= {"m0", f"m{home.MAX_DEPLOYMENTS - 1}"}
    assert all(v.version is not None and v.alert is None for v in values)


def test_long_names_are_clipped_to_slacks_field_limits():
    key = "k" * 100
    pending = PendingSignOff(key, 12, "P" * 200, "", "high", "U0ML0001", None, None,
                             (StepStatus("s" * 200, "risk_manager", 1, ()),))
    deploy = RecentDeployment(key, 12, "U0OPS001", NOW, True, "v11")
    built = _built(_data("risk_manager", "it_ops", pending_signoffs=(pending,), deployments=(deploy,)))
    approve = _part(built, home.SIGNOFFS)[1]["elements"][0]
    assert len(approve["confirm"]["text"]["text"]) <= 300 and approve["confirm"]["text"]["text"].endswith("…")
