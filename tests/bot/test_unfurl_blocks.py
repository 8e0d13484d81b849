"""The unfurl cards as built: compact, user text escaped, nothing of a withheld page but its name."""

from slack_sdk.models.blocks import Block

from bot.blocks.unfurl import WITHHELD, ask_owner_text, unfurls
from bot.services.unfurls import KpiTrend, ModelCard, OpenAlert, ProjectCard, Withheld

URL = "https://flywheel.example.com/models/churn"


def built(cards) -> dict:
    out = unfurls(cards)
    for unfurl in out.values():
        for block in Block.parse_all(unfurl["blocks"]):
            block.validate_json()
    return out


def test_a_model_card():
    card = ModelCard(URL, "churn", "Retention <team>", "U0ML0001", 3,
                     (OpenAlert("drift", ("monthly_charges",)), OpenAlert("kpi", ("missed_churners",))), 4,
                     KpiTrend("Missed & lost", "USD", (950.0, 1200.0, 10_200.0, 1_300_000.0), True))
    assert built({URL: card}) == {URL: {"blocks": [
        {"type": "section", "block_id": "flywheel.unfurl.model:churn", "text": {"type": "mrkdwn", "text": (
            f"*<{URL}|churn>* · v3 in production\n"
            ":red_circle: 4 open alerts: input drift (monthly_charges), KPI (missed_churners) and 2 more\n"
            "Missed &amp; lost, last 4 windows: $950 → $1.2k → $10.2k → $1.3M :warning:")}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Retention &lt;team&gt; · owner <@U0ML0001>"}]},
    ]}}


def test_a_quiet_model_without_production_or_kpi():
    card = ModelCard(URL, "churn", "Retention", "U0ML0001", None, (), 0, None, version=(2, "in_review"))
    text = built({URL: card})[URL]["blocks"][0]["text"]["text"]
    assert text == (f"*<{URL}|churn>* · no version in production · this page: v2 (in review)\n"
                    ":white_check_mark: No open alerts\nNo KPI checked yet")


def test_a_project_card_and_a_withheld_page():
    project = "https://flywheel.example.com/projects/retention"
    cards = {project: ProjectCard(project, "retention", "Retention", (("churn", 3, 2), ("upsell", None, 0))),
             URL: Withheld(URL, "model churn")}
    out = built(cards)
    assert out[project]["blocks"][0]["text"]["text"] == (
        f"*<{project}|Retention>* · 2 models\n• churn: v3, 2 open alerts\n• upsell: no version in production")
    assert out[URL]["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Flywheel model churn*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": WITHHELD}]}]


def test_the_ask_names_owner_and_asker():
    assert ask_owner_text(model="churn", owner="U0ML0001", asker="U0OPS001") == \
        "<@U0ML0001>, <@U0OPS001> is asking about *churn* here: could you take a look?"
