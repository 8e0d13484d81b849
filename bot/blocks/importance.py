"""Which features a version relies on, in words: where a drifted feature stands among the production
version's importances, the business reader's sentence about inputs that changed, and what a candidate relies
on more or less than production."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.blocks.common import escape_mrkdwn
from jobs import explain
from jobs.incidents import FeatureFigure

NOT_RELIED = "not among the features the model relies on"
MAX_NAMED = 3  # the business sentence names at most this many inputs


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th ... 11th, 12th, 13th ... 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def most_important(rank: int) -> str:
    return "most important" if rank == 1 else f"{ordinal(rank)} most important"


def standing(feature: FeatureFigure) -> str | None:
    """"the model's 2nd most important feature", or NOT_RELIED; None without importances to say it from."""
    if feature.rank is None:
        return None
    return f"the model's {most_important(feature.rank)} feature" if feature.relied_on else NOT_RELIED


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def inputs_changed(drifted: tuple[FeatureFigure, ...], unit: str) -> str:
    """"Inputs changed in the same week: card age and merchant category moved (the model's 1st and 3rd most
    important inputs)."; at most MAX_NAMED inputs, in the order given (most relied-on first); "" when none."""
    if not drifted:
        return ""
    named = drifted[:MAX_NAMED]
    names = [escape_mrkdwn(f.feature.replace("_", " ")) for f in named]
    ranked = [f for f in named if f.rank is not None]
    if ranked and all(f.relied_on for f in named):
        ranks = [f.rank for f in named]
        said = (f" (the model's {most_important(ranks[0])} input)" if len(ranks) == 1 else
                     f" (the model's {_listing([ordinal(r) for r in ranks])} most important inputs)")
    elif len(ranked) == len(named) and not any(f.relied_on for f in named):
        said = " (not an input the model relies on)" if len(named) == 1 else \
            " (none of them an input the model relies on)"
    else:  # some it relies on, some not: said of each
        said = ""
        names = [name + ("" if f.rank is None else f" (the model's {most_important(f.rank)} input)" if f.relied_on
                         else " (not one the model relies on)") for name, f in zip(names, named, strict=True)]
    more = len(drifted) - len(named)
    listed = _listing(names + ([f"{more} more"] if more else []))
    return f"Inputs changed in the same {unit}: {listed} moved{said}."


def reliance_line(challenger: str, champion: str | None, mine: Mapping[str, Any] | None,
                  theirs: Mapping[str, Any] | None) -> str | None:
    """"v3 relies more on card_age_days (2nd, was 5th) and less on amount (4th, was 1st) than v2": the features
    whose importance moved most between production and the candidate (as the model card lists them); None
    unless both were measured with the same score."""
    if champion is None:
        return None
    shifts = [r for r in explain.reliance_shifts(theirs, mine) if r.shift != 0]
    if not shifts:
        return None
    more, less = [r for r in shifts if r.more], [r for r in shifts if not r.more]
    first = (more or less)[0]

    def item(r: explain.Reliance) -> str:
        # Shares, not ranks: a feature can move down the ranking while the version leans on it more.
        of = " of its reliance" if r is first else ""
        return f"{escape_mrkdwn(r.feature)} ({r.challenger_share:.0%}{of}, was {r.champion_share:.0%})"

    parts = [f"{way} on {_listing([item(r) for r in group])}"
             for way, group in (("more", more), ("less", less)) if group]
    joined = parts[0] if len(parts) == 1 else (", and " if len(more) > 1 else " and ").join(parts)
    return f"{challenger} relies {joined} than {champion}"
