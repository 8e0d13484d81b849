"""Feedback that tunes alerts: when people keep marking a feature's drift alerts as noise, propose the drift
threshold that would have kept those quiet, with what it would have changed over the recent windows.

Nothing changes by itself: a person accepts the proposal (bot/services/tuning.py), and only then do checks
use it, until the spec says the same. Distance methods only (the statistic alerts at or above its line);
a p-value method's threshold is a significance level and is not tuned from feedback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from jobs.spec import ModelSpec

LOOKBACK_ALERTS = 5  # the latest alerts on the feature that people judged
NOISE_NEEDED = 4  # of those, how many must be noise
HEADROOM = 1.1  # the proposal clears the loudest noise by 10%, rounded up to two significant digits


@dataclass(frozen=True)
class JudgedAlert:
    """One alert on the feature, the statistic it was raised at, and what people said of it (their latest
    votes: noise when most said noise)."""
    alert_id: int
    raised_at: datetime
    statistic: float
    noise: bool


@dataclass(frozen=True)
class Window:
    """One recent drift check of the feature."""
    window_end: datetime
    statistic: float


@dataclass(frozen=True)
class Suggestion:
    feature: str
    current: float
    proposed: float
    noise_alerts: tuple[int, ...]
    noise_low: float  # the statistics of the noise alerts, lowest and highest
    noise_high: float
    judged: int  # alerts looked at
    windows: int  # recent windows re-judged with the proposal
    breaches_now: int  # of them, how many breach at the current threshold
    breaches_proposed: int  # and at the proposed one

    def evidence(self) -> dict:
        return {"noise_alerts": list(self.noise_alerts), "noise_low": self.noise_low, "noise_high": self.noise_high,
                "judged": self.judged, "windows": self.windows, "breaches_now": self.breaches_now,
                "breaches_proposed": self.breaches_proposed}


def round_up(value: float, digits: int = 2) -> float:
    """The smallest number of `digits` significant digits at or above value: 0.143 -> 0.15."""
    if value <= 0:
        return value
    scale = 10 ** (digits - 1 - math.floor(math.log10(value)))
    return math.ceil(round(value * scale, 9)) / scale


def suggest_drift_threshold(feature: str, current: float, judged: Sequence[JudgedAlert],
                            windows: Sequence[Window]) -> Suggestion | None:
    """A higher threshold when NOISE_NEEDED of the latest LOOKBACK_ALERTS judged alerts on the feature were
    noise, and none of the alerts judged useful would fall under it; None otherwise."""
    latest = sorted(judged, key=lambda a: a.raised_at, reverse=True)[:LOOKBACK_ALERTS]
    noise = [a for a in latest if a.noise]
    if len(noise) < NOISE_NEEDED:
        return None
    proposed = round_up(max(a.statistic for a in noise) * HEADROOM)
    if proposed <= current:
        return None
    if any(not a.noise and a.statistic < proposed for a in judged):
        return None  # a useful alert would have been silenced: people disagree, keep the line
    return Suggestion(feature, current, proposed, tuple(a.alert_id for a in noise),
                      min(a.statistic for a in noise), max(a.statistic for a in noise), len(latest), len(windows),
                      sum(w.statistic >= current for w in windows), sum(w.statistic >= proposed for w in windows))


def with_overrides(spec: ModelSpec, drift_thresholds: Mapping[str, float]) -> ModelSpec:
    """The spec as checks use it: accepted drift thresholds in place of the spec's, per feature."""
    if not drift_thresholds:
        return spec
    drift = spec.drift.model_copy(update={"thresholds": {**spec.drift.thresholds, **drift_thresholds}})
    return spec.model_copy(update={"drift": drift})
