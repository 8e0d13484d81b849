"""The words for what a version relies on (bot.blocks.importance), in the cases a Slack story rarely reaches:
ordinals past the third, more drifted inputs than the business sentence names, a candidate relying more on
some features and less on others, and importances measured with different scores."""

from __future__ import annotations

from bot.blocks.importance import inputs_changed, ordinal, reliance_line
from jobs import explain
from jobs.incidents import FeatureFigure


def _drifted(name: str, rank: int | None, relied_on: bool = True) -> FeatureFigure:
    return FeatureFigure(name, "Wasserstein", 0.3, 0.1, 0.0, True, rank=rank, ranked=12 if rank else 0,
                         relied_on=relied_on and rank is not None)


def _importances(metric: str = "roc_auc", **means: float) -> dict:
    ranked = sorted(means.items(), key=lambda kv: -kv[1])
    return {"metric": metric, "features": [{"feature": f, "mean": m, "std": 0.0} for f, m in ranked]}


def test_ordinals_read_as_english():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th"]


def test_the_business_sentence_names_three_inputs_at_most():
    drifted = (_drifted("card_age_days", 1), _drifted("merchant_category", 3), _drifted("amount", 4),
               _drifted("country", 7))
    assert inputs_changed(drifted, "week") == (
        "Inputs changed in the same week: card age days, merchant category, amount and 1 more moved "
        "(the model's 1st, 3rd and 4th most important inputs).")


def test_the_business_sentence_for_one_input_and_for_inputs_it_does_not_rely_on():
    assert inputs_changed((_drifted("card_age_days", 1),), "week") == \
        "Inputs changed in the same week: card age days moved (the model's most important input)."
    assert inputs_changed((_drifted("a_b", 5, relied_on=False), _drifted("c<d>", 6, relied_on=False)),
                          "3-day window") == ("Inputs changed in the same 3-day window: a b and c&lt;d&gt; moved "
                                              "(none of them an input the model relies on).")
    assert inputs_changed((_drifted("amount", None),), "week") == "Inputs changed in the same week: amount moved."
    assert inputs_changed((), "week") == ""


def test_a_candidate_relying_more_on_some_and_less_on_others():
    champion = _importances(amount=0.30, country=0.10, card_age_days=0.02, hour=0.01)
    challenger = _importances(amount=0.12, card_age_days=0.11, country=0.10, hour=0.01)
    # country keeps its importance but its share grows as amount's shrinks: more, though it slips to 3rd
    assert reliance_line("v3", "v2", challenger, champion) == (
        "v3 relies more on card_age_days (32% of its reliance, was 5%) and country (29%, was 23%), and less on "
        "amount (35%, was 70%) than v2")
    champion = _importances(amount=0.30, country=0.20, card_age_days=0.02)
    challenger = _importances(card_age_days=0.20, country=0.25, amount=0.10)
    assert reliance_line("v3", "v2", challenger, champion) == (
        "v3 relies more on card_age_days (36% of its reliance, was 4%) and country (45%, was 38%), and less on "
        "amount (18%, was 58%) than v2")


def test_no_reliance_line_without_both_sides_measured_the_same_way():
    measured = _importances(amount=0.3, country=0.1)
    assert reliance_line("v3", "v2", measured, None) is None
    assert reliance_line("v3", "v2", None, measured) is None
    assert reliance_line("v3", None, measured, measured) is None
    assert reliance_line("v3", "v2", _importances("accuracy", amount=0.1, country=0.3), measured) is None
    assert reliance_line("v3", "v2", measured, measured) is None  # nothing moved


def test_a_feature_is_relied_on_only_above_a_negligible_share():
    standings = explain.standings(_importances(amount=0.5, country=0.004, hour=0.0, noise=-0.01))
    assert {f: (s.rank, s.ranked, s.relied_on) for f, s in standings.items()} == {
        "amount": (1, 4, True), "country": (2, 4, False), "hour": (3, 4, False), "noise": (4, 4, False)}
    assert explain.standings(None) == {}
