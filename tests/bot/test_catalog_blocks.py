"""Catalog replies built from hand-made results: the dicts Slack would receive."""

from dataclasses import replace
from datetime import datetime

from slack_sdk.models.views import View

from bot.blocks import catalog as blocks
from bot.blocks import home
from bot.blocks.common import validate_payload
from bot.ids import ActionId, BlockId, CatalogContext
from bot.services.home import HomeData, More
from store.catalog import Asset, SearchResult, Suggestion, parse_query
from store.models import AssetKind, AssetOrigin

URL = "https://flywheel.example.com/"
CHANGED = datetime(2026, 11, 20, 9, 30)
SENTIMENT = Asset(
    key="model:review-sentiment", kind=AssetKind.model, title="review-sentiment",
    description="Scores the sentiment of customer reviews", project_key="finance-text",
    project_name="Finance text analytics", owner="U0FIN001", owner_name="Fatima", tags=("nlp", "reviews"),
    links=(), status="production", status_text="v3 in production", changed_at=CHANGED, origin=AssetOrigin.registry,
    model_key="review-sentiment")
NOTEBOOK = Asset(
    key="notebook:finance-text/topics", kind=AssetKind.notebook, title="Feedback topics <draft> & notes",
    description="Clusters open text feedback into topics", project_key="finance-text",
    project_name="Finance text analytics", owner="U0DS0001", owner_name="Noor", tags=(),
    links=("https://github.com/acme/fin/blob/main/topics.ipynb",), status=None, status_text="", changed_at=CHANGED,
    origin=AssetOrigin.spec)


def _payload(reply) -> dict:
    payload = {"text": reply.text, "blocks": [b.to_dict() for b in reply.blocks]}
    validate_payload(payload)
    return payload


def _result(*assets, query="customer reviews nlp", offset=0, has_more=False, **kwargs) -> SearchResult:
    return SearchResult(parse_query(query), tuple(assets), offset, has_more, **kwargs)


def test_results_open_with_the_best_match_and_its_owner():
    reply = blocks.results_reply(_result(SENTIMENT, NOTEBOOK), public_url=URL)
    payload = _payload(reply)
    assert reply.text == "Best match for “customer reviews nlp”: review-sentiment, a model owned by <@U0FIN001>."
    assert reply.kwargs()["response_type"] == "ephemeral"
    assert payload["blocks"][0] == {"type": "section", "text": {
        "type": "mrkdwn", "text": "Best match for “customer reviews nlp”: *review-sentiment*, a model owned by "
                                  "<@U0FIN001>."}}
    assert [b["type"] for b in payload["blocks"]] == ["section", "section", "context", "actions", "section",
                                                      "context", "actions"]


def test_each_result_shows_title_kind_project_owner_tags_status_and_last_change():
    payload = _payload(blocks.results_reply(_result(SENTIMENT), public_url=URL))
    assert payload["blocks"][1]["text"]["text"] == "*review-sentiment*\nScores the sentiment of customer reviews"
    assert payload["blocks"][2]["elements"][0]["text"] == (
        "model · Finance text analytics · owner <@U0FIN001> · v3 in production · `nlp` `reviews` · "
        "changed Nov 20, 2026")


def test_registry_assets_link_to_their_page_and_others_to_their_own_link():
    payload = _payload(blocks.results_reply(_result(SENTIMENT, NOTEBOOK), public_url=URL))
    details, share = payload["blocks"][3]["elements"]
    assert payload["blocks"][3]["block_id"] == f"{BlockId.catalog_result}:1"
    assert details["action_id"] == ActionId.view_details and details["text"]["text"] == blocks.VIEW_DETAILS
    assert "https://flywheel.example.com/models/review-sentiment" in (details.get("url"), details.get("value"))
    assert share["action_id"] == ActionId.catalog_share
    assert CatalogContext.decode(share["value"]) == CatalogContext(asset="model:review-sentiment")
    notebook = payload["blocks"][4]["text"]["text"]
    assert notebook.startswith("*<https://github.com/acme/fin/blob/main/topics.ipynb|Feedback topics &lt;draft&gt; "
                               "&amp; notes>*\n")
    assert [e["action_id"] for e in payload["blocks"][6]["elements"]] == [ActionId.catalog_share]


def test_version_and_dataset_pages():
    version = replace(SENTIMENT, kind=AssetKind.model_version, key="model_version:review-sentiment/v3",
                      version_number=3)
    dataset = replace(SENTIMENT, kind=AssetKind.dataset, key="dataset:finance-text/reviews.parquet")
    project = replace(SENTIMENT, kind=AssetKind.project, key="project:finance-text", model_key=None)
    assert blocks.page_url(version, URL) == "https://flywheel.example.com/models/review-sentiment/versions/3/card"
    assert blocks.page_url(dataset, URL) == "https://flywheel.example.com/models/review-sentiment"
    assert blocks.page_url(project, URL) == "https://flywheel.example.com/projects/finance-text"
    assert blocks.page_url(NOTEBOOK, URL) is None


def test_more_results_pages_forward_and_back_in_place():
    first = _payload(blocks.results_reply(_result(*[SENTIMENT] * 5, has_more=True), public_url=URL))
    pages = first["blocks"][-1]
    assert pages["block_id"] == BlockId.catalog_pages
    assert [(e["action_id"], e["text"]["text"]) for e in pages["elements"]] == [(ActionId.catalog_more, "More results")]
    assert CatalogContext.decode(pages["elements"][0]["value"]) == CatalogContext(query="customer reviews nlp",
                                                                                  offset=5)
    second = blocks.results_reply(_result(*[SENTIMENT] * 2, offset=5), public_url=URL)
    assert second.text == "Results 6-7 for “customer reviews nlp”."
    back = _payload(second)["blocks"][-1]["elements"]
    assert [e["action_id"] for e in back] == [ActionId.catalog_previous]
    assert CatalogContext.decode(back[0]["value"]).offset == 0
    ids = [b["block_id"] for b in _payload(second)["blocks"] if "block_id" in b]
    assert ids == [f"{BlockId.catalog_result}:6", f"{BlockId.catalog_result}:7", BlockId.catalog_pages]


def test_a_partial_match_says_so():
    payload = _payload(blocks.results_reply(_result(SENTIMENT, partial=True), public_url=URL))
    assert payload["blocks"][1] == {"type": "context", "elements": [{"type": "mrkdwn", "text": blocks.PARTIAL}]}


def test_nothing_found_offers_the_closest_tags_and_titles():
    reply = blocks.nothing_reply(_result(query="sentimnt nlpp", suggestions=(
        Suggestion("tag", "nlp"), Suggestion("title", "Review sentiment classifier"))))
    assert _payload(reply)["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": (
        "Nothing in the catalog matches “sentimnt nlpp”.\n"
        "Closest known: `tag:nlp`, *Review sentiment classifier*.")}}]
    assert reply.text == ("Nothing in the catalog matches “sentimnt nlpp”.\n"
                          "Closest known: tag:nlp, Review sentiment classifier.")


def test_nothing_found_because_of_filters_says_the_words_alone_would():
    reply = blocks.results_reply(_result(query="sentiment kind:plugin", unfiltered_matches=True), public_url=URL)
    assert reply.text == ("Nothing in the catalog matches “sentiment kind:plugin”.\n"
                          "Your words alone find assets: the filters rule them out. Try /catalog sentiment.")


def test_nothing_found_without_suggestions_says_what_to_try():
    reply = blocks.results_reply(_result(query="xyzzy"), public_url=URL)
    assert reply.text.splitlines()[1] == blocks.NO_SUGGESTION.replace("`", "")


def test_paging_past_the_end():
    assert blocks.results_reply(_result(query="xyzzy", offset=5), public_url=URL).text == \
        "That was the last of the results for “xyzzy”."


def test_the_query_is_shown_as_typed_never_as_a_mention_and_markup_is_escaped():
    reply = blocks.results_reply(_result(SENTIMENT, query="nlp owner:<@U0FIN001|fatima> <b>"), public_url=URL)
    assert reply.text.startswith("Best match for “nlp owner:@fatima &lt;b&gt;”:")
    typed = blocks.results_reply(_result(SENTIMENT, query="<@U123> <!channel> <https://evil.example|click> &"),
                                 public_url=URL)
    assert typed.text.startswith("Best match for “&lt;@U123&gt; &lt;!channel&gt; &lt;https://evil.example|click&gt; "
                                 "&amp;”:")


def test_a_shared_result_has_no_buttons_but_who_shared_it():
    reply = blocks.shared_reply(NOTEBOOK, by="U0MKT001", public_url=URL)
    payload = _payload(reply)
    assert reply.text == "Feedback topics &lt;draft&gt; &amp; notes: a notebook owned by Noor"  # mrkdwn too
    assert [b["type"] for b in payload["blocks"]] == ["section", "context", "context"]
    assert payload["blocks"][-1]["elements"][0]["text"] == "Shared by <@U0MKT001> from a /catalog search"
    shared_model = _payload(blocks.shared_reply(SENTIMENT, by="U0MKT001", public_url=URL))
    assert [e["action_id"] for b in shared_model["blocks"] if b["type"] == "actions" for e in b["elements"]] == \
        [ActionId.view_details]


def test_long_titles_and_descriptions_are_clipped():
    long = replace(SENTIMENT, title="t" * 400, description="d" * 1000, tags=tuple(f"tag{i}" for i in range(20)))
    payload = _payload(blocks.results_reply(_result(long), public_url=URL))
    title, description = payload["blocks"][1]["text"]["text"].split("\n")
    assert len(title) == blocks.MAX_TITLE + 2 and title.endswith("…*")
    assert len(description) == blocks.MAX_DESCRIPTION
    assert payload["blocks"][2]["elements"][0]["text"].count("`tag") == 8


def test_the_help_lists_every_filter():
    text = blocks.help_reply().text
    for example in ("kind:model", "tag:nlp", "owner:@name", "project:card-fraud", "status:production",
                    "flywheel catalog add"):
        assert example in text


def test_the_app_home_lists_the_viewers_assets():
    data = HomeData(slack_id="U0DS0001", person_name="Noor", roles=("ml_engineer",), as_of=CHANGED,
                    assets=(NOTEBOOK, SENTIMENT), more=More(assets=3))
    view = home.home_view(data, public_url=URL)
    built = view.to_dict()
    assert View(**built).to_dict() == built
    headers = [b["text"]["text"] for b in built["blocks"] if b["type"] == "header"]
    assert headers[-1] == home.ASSETS
    section, note = built["blocks"][-2:]
    assert section["text"]["text"].splitlines() == [
        ("*<https://github.com/acme/fin/blob/main/topics.ipynb|Feedback topics &lt;draft&gt; &amp; notes>* · "
         "notebook · Finance text analytics · changed Nov 20, 2026"),
        ("*review-sentiment* · model · Finance text analytics · v3 in production · `nlp` `reviews` · "
         "changed Nov 20, 2026")]
    assert note["elements"][0]["text"] == f"…and 3 more. {home.ASSETS_HINT}"


def test_the_app_home_has_no_asset_section_for_someone_who_owns_none():
    data = HomeData(slack_id="U0DS0001", person_name="Noor", roles=("ml_engineer",), as_of=CHANGED)
    headers = [b.to_dict()["text"]["text"] for b in home.home_view(data, public_url=URL).blocks
               if b.type == "header"]
    assert home.ASSETS not in headers
