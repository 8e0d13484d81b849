"""Which features a version relies on: permutation importances on its labelled evaluation window.

A feature's importance is how much the version's score drops when that feature's values are shuffled
(sklearn.inspection.permutation_importance). The rows are sampled with a fixed seed, and the number of
repeats shrinks to fit a time budget, so an evaluation in the worker stays bounded on any window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from jobs.spec import ModelSpec
from jobs.tasks import BINARY, MULTICLASS, REGRESSION

MAX_ROWS = 2_000
REPEATS = 5
TIME_BUDGET_SECONDS = 20.0
# A feature whose shuffle costs less than this share of what all features' shuffles cost together is one the
# version does not rely on: on a sample of at most MAX_ROWS rows and a few repeats, a cost that small is
# within the noise of the shuffles themselves (and a cost of zero or less means no reliance at all).
NEGLIGIBLE_SHARE = 0.01


@dataclass(frozen=True)
class Importance:
    feature: str
    mean: float  # the score lost when the feature is shuffled (positive: the version relies on it)
    std: float


def permutation_importances(spec: ModelSpec, model: Any, frame: pd.DataFrame, *, seed: int = 0,
                            max_rows: int = MAX_ROWS, repeats: int = REPEATS,
                            budget_seconds: float = TIME_BUDGET_SECONDS) -> dict[str, Any] | None:
    """The version's importances on labelled rows, most relied-on first, as stored with its evaluation:
    {"metric", "rows", "repeats", "seed", "features": [{"feature", "mean", "std"}, ...]}.

    None when there is nothing to measure (no labelled rows, or a single class for a classifier)."""
    from sklearn.inspection import permutation_importance

    features = list(getattr(model, "feature_names_in_", [*spec.features.numeric, *spec.features.categorical]))
    labelled = frame[frame[spec.data.label].notna()]
    if len(labelled) > max_rows:
        labelled = labelled.sample(n=max_rows, random_state=seed)
    truth = labelled[spec.data.label]
    if labelled.empty or (spec.task != REGRESSION and truth.nunique() < 2):
        return None
    metric, scorer = _scorer(spec.task)
    rows = labelled[features].reset_index(drop=True)
    truth = truth.reset_index(drop=True)
    started = time.perf_counter()
    scorer(model, rows, truth)
    one_pass = time.perf_counter() - started
    affordable = int(budget_seconds / max(one_pass * len(features), 1e-9))
    repeats = max(1, min(repeats, affordable))
    result = permutation_importance(model, rows, truth, scoring=scorer, n_repeats=repeats, random_state=seed)
    ranked = sorted((Importance(f, float(m), float(s)) for f, m, s in
                     zip(features, result.importances_mean, result.importances_std, strict=True)),
                    key=lambda i: (-i.mean, i.feature))
    return {"metric": metric, "rows": len(rows), "repeats": repeats, "seed": seed,
            "features": [{"feature": i.feature, "mean": i.mean, "std": i.std} for i in ranked]}


def _scorer(task: str) -> tuple[str, Callable[[Any, pd.DataFrame, pd.Series], float]]:
    """The score shuffling should lower, higher is better: ROC AUC for a binary classifier, accuracy for
    multiclass, negative mean absolute error for regression."""
    if task == BINARY:
        def roc_auc(model: Any, rows: pd.DataFrame, truth: pd.Series) -> float:
            from sklearn.metrics import roc_auc_score
            return float(roc_auc_score(truth.astype(int), model.predict_proba(rows)[:, 1]))
        return "roc_auc", roc_auc
    if task == MULTICLASS:
        def accuracy(model: Any, rows: pd.DataFrame, truth: pd.Series) -> float:
            return float(np.mean(np.asarray(model.predict(rows)).astype(str) == truth.astype(str).to_numpy()))
        return "accuracy", accuracy

    def negative_mae(model: Any, rows: pd.DataFrame, truth: pd.Series) -> float:
        return -float(np.mean(np.abs(np.asarray(model.predict(rows), dtype=float) - truth.to_numpy(dtype=float))))
    return "negative_mae", negative_mae


def ranked(importances: Mapping[str, Any] | None) -> list[Importance]:
    """A stored importances record as Importance rows, most relied-on first; [] when none was stored."""
    if not importances:
        return []
    return [Importance(str(f["feature"]), float(f["mean"]), float(f["std"])) for f in importances["features"]]


def rank_of(importances: Mapping[str, Any] | None, feature: str) -> int | None:
    """1 for the feature the version relies on most; None if it was not measured or does not matter (<= 0)."""
    for position, importance in enumerate(ranked(importances), start=1):
        if importance.feature == feature:
            return position if importance.mean > 0 else None
    return None


@dataclass(frozen=True)
class Standing:
    """Where one feature stands among a version's importances."""
    rank: int  # 1 for the feature the version relies on most, among every measured feature
    ranked: int  # how many features were measured
    relied_on: bool  # its importance is above zero and more than a negligible share of the total


def standings(importances: Mapping[str, Any] | None) -> dict[str, Standing]:
    """Every measured feature's standing; {} when none was stored (an older evaluation, or none)."""
    rows = ranked(importances)
    total = sum(i.mean for i in rows if i.mean > 0)
    return {i.feature: Standing(position, len(rows), i.mean > 0 and i.mean >= NEGLIGIBLE_SHARE * total)
            for position, i in enumerate(rows, start=1)}


MIN_SHARE_SHIFT = 0.02  # two points of a version's total reliance: less is within the shuffle noise


@dataclass(frozen=True)
class Reliance:
    """How much more (positive) or less a candidate relies on a feature than the version in production, as
    shares of each version's total positive importance: a better model loses more score on every shuffled
    feature, so raw importances of two versions do not say which features it leans on more."""
    feature: str
    champion: float
    challenger: float
    champion_share: float
    challenger_share: float

    @property
    def shift(self) -> float:
        return self.challenger_share - self.champion_share

    @property
    def more(self) -> bool:
        """The candidate relies on the feature more than the production version (else less)."""
        return self.shift > 0


def _shares(means: Mapping[str, float]) -> dict[str, float]:
    total = sum(m for m in means.values() if m > 0)
    return {f: (max(m, 0.0) / total if total > 0 else 0.0) for f, m in means.items()}


def comparable(champion: Mapping[str, Any] | None, challenger: Mapping[str, Any] | None) -> bool:
    """Both versions' importances measured, with the same score: only then do their shares compare."""
    return bool(champion and challenger and champion.get("metric") == challenger.get("metric"))


def reliance_shifts(champion: Mapping[str, Any] | None, challenger: Mapping[str, Any] | None,
                    *, top: int = 3) -> list[Reliance]:
    """The features whose share of reliance moved most between the two versions (at least MIN_SHARE_SHIFT),
    largest move first. Both must be measured with the same score; otherwise the numbers do not compare and
    nothing is returned."""
    if not comparable(champion, challenger):
        return []
    theirs = {i.feature: i.mean for i in ranked(champion)}
    mine = {i.feature: i.mean for i in ranked(challenger)}
    their_share, my_share = _shares(theirs), _shares(mine)
    shifts = [Reliance(f, theirs.get(f, 0.0), mine.get(f, 0.0), their_share.get(f, 0.0), my_share.get(f, 0.0))
              for f in sorted(set(theirs) | set(mine))]
    moved = [r for r in shifts if abs(r.shift) >= MIN_SHARE_SHIFT]
    return sorted(moved, key=lambda r: -abs(r.shift))[:top]
