"""Synthetic card transactions for the offline demo: one reference week, then production weeks.

The story: genuine customers pay with cards of any age, mostly in person, near home, by day. Fraud
(0.58% of transactions) comes in three kinds with their own feature distributions, so the fraud
probability depends on amount, hour, distance, merchant category, country and channel:
card-not-present fraud (online, from abroad or far away, mostly at night, on resellable goods),
counterfeit cards (swiped far from home at fuel stations, jewellers, electronics and retail shops) and
small purchases that look genuine. From `drift_from_week` the bank reissues cards after a breach: 18%
of the transactions are paid with a card issued in the last 60 days (card-age drift), and a ring that
intercepted new cards in the mail buys gift cards and electronics online with them (fraud rises to
0.75%), which looks genuine in every feature but card age.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

NUMERIC_FEATURES = ("amount", "card_age_days", "hour", "distance_km")
CATEGORICAL_FEATURES = ("merchant_category", "country", "channel")
LABEL = "is_fraud"
TIMESTAMP = "event_time"
TRANSACTION_ID = "transaction_id"
COLUMNS = (TRANSACTION_ID, TIMESTAMP, *NUMERIC_FEATURES, *CATEGORICAL_FEATURES, LABEL)

WEEK = timedelta(days=7)

# category: (share of genuine transactions, median amount in USD, share paid online)
MERCHANTS = {
    "grocery": (0.22, 45.0, 0.03),
    "restaurants": (0.16, 35.0, 0.05),
    "fuel": (0.10, 40.0, 0.0),
    "retail": (0.16, 60.0, 0.10),
    "online_retail": (0.12, 55.0, 1.0),
    "entertainment": (0.06, 40.0, 0.40),
    "electronics": (0.06, 180.0, 0.45),
    "travel": (0.05, 350.0, 0.65),
    "digital_goods": (0.04, 25.0, 1.0),
    "jewelry": (0.03, 250.0, 0.15),
}
# country: (share of genuine transactions, share of card-not-present fraud); the cardholders live in the US
COUNTRIES = {
    "US": (0.975, 0.30),
    "CA": (0.008, 0.0),
    "GB": (0.004, 0.0),
    "MX": (0.006, 0.0),
    "DE": (0.002, 0.0),
    "FR": (0.003, 0.0),
    "BR": (0.001, 0.20),
    "NG": (0.0005, 0.28),
    "RO": (0.0005, 0.22),
}
IN_STORE_CHANNELS = {"chip": 0.50, "contactless": 0.40, "swipe": 0.10}
CHANNELS = (*IN_STORE_CHANNELS, "online")
# relative volume of genuine transactions by hour of day (cardholders' local time)
_HOURLY = np.array(
    [1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4.0, 5.0, 5.5, 6.0,
     6.5, 6.0, 5.5, 5.5, 6.0, 6.5, 6.5, 6.0, 5.0, 4.0, 3.0, 2.0]
)
_NIGHT_HOURLY = np.where(np.arange(24) < 6, 10.0, 1.0) * _HOURLY.mean()
_MAX_CARD_AGE_DAYS = 1460  # cards are reissued every four years

# share of all transactions per fraud kind
_CARD_NOT_PRESENT_RATE = 0.0030
_COUNTERFEIT_RATE = 0.0012
_LOOKALIKE_RATE = 0.0016
_RING_RATE = 0.0017  # from the drift week on
_REISSUED_SHARE = 0.18  # customers paying with a freshly reissued card once the drift starts
_REISSUED_MAX_AGE_DAYS = 60
_RING_MAX_CARD_AGE_DAYS = 14


@dataclass(frozen=True)
class Scenario:
    start: datetime  # naive UTC start of the reference week (week 0); weeks are 7 days
    weeks: int = 8  # production weeks after the reference week
    rows_per_week: int = 100_000
    drift_from_week: int = 5  # 1-based production week where card-age drift starts
    seed: int = 7

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None:
            raise ValueError(f"Scenario.start must be a naive UTC datetime, got {self.start.isoformat()}")
        if self.weeks < 1:
            raise ValueError(f"Scenario.weeks must be at least 1, got {self.weeks}")
        if self.rows_per_week < 1:
            raise ValueError(f"Scenario.rows_per_week must be at least 1, got {self.rows_per_week}")
        if self.drift_from_week < 1:
            raise ValueError(f"Scenario.drift_from_week must be at least 1, got {self.drift_from_week}")
        if self.seed < 0:
            raise ValueError(f"Scenario.seed must be non-negative, got {self.seed}")

    def week_start(self, week: int) -> datetime:
        return self.start + week * WEEK


def generate(scenario: Scenario) -> dict[int, pd.DataFrame]:
    """Week 0 (reference) through `scenario.weeks`, keyed by week number."""
    return {week: generate_week(scenario, week) for week in range(scenario.weeks + 1)}


def generate_week(scenario: Scenario, week: int) -> pd.DataFrame:
    """One week of transactions sorted by event time; the same (seed, week) always gives the same frame."""
    if not 0 <= week <= scenario.weeks:
        raise ValueError(f"week must be between 0 (reference) and {scenario.weeks}, got {week}")
    rng = np.random.default_rng([scenario.seed, week])
    n = scenario.rows_per_week
    drifted = week >= scenario.drift_from_week
    rows = _genuine(rng, n, drifted=drifted)

    rates = [_CARD_NOT_PRESENT_RATE, _COUNTERFEIT_RATE, _LOOKALIKE_RATE, _RING_RATE if drifted else 0.0]
    kind = rng.choice(len(rates) + 1, size=n, p=[1.0 - sum(rates), *rates])
    for fraud_kind, build in enumerate((_card_not_present, _counterfeit, _lookalike, _ring), start=1):
        chosen = np.flatnonzero(kind == fraud_kind)
        for column, values in build(rng, len(chosen)).items():
            rows[column][chosen] = values
    rows[LABEL] = (kind > 0).astype(np.int64)
    return _frame(rng, scenario, week, rows)


def _genuine(rng: np.random.Generator, n: int, *, drifted: bool) -> dict[str, np.ndarray]:
    category = rng.choice(len(MERCHANTS), size=n, p=_column(MERCHANTS, 0))
    online = rng.random(n) < _column(MERCHANTS, 2)[category]
    in_store = rng.choice(len(IN_STORE_CHANNELS), size=n, p=list(IN_STORE_CHANNELS.values()))
    country = rng.choice(len(COUNTRIES), size=n, p=_column(COUNTRIES, 0))
    card_age = rng.integers(0, _MAX_CARD_AGE_DAYS, size=n, endpoint=True)
    if drifted:
        reissued = rng.random(n) < _REISSUED_SHARE
        card_age[reissued] = rng.integers(0, _REISSUED_MAX_AGE_DAYS, size=int(reissued.sum()), endpoint=True)
    return {
        "amount": _amount(rng, category, scale=1.0, sigma=0.8),
        "card_age_days": card_age,
        "hour": rng.choice(24, size=n, p=_HOURLY / _HOURLY.sum()),
        "distance_km": _distance(rng, country, home_median_km=8.0),
        "merchant_category": category,
        "country": country,
        "channel": np.where(online, CHANNELS.index("online"), in_store),
    }


def _card_not_present(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    category = _pick(rng, n, {"electronics": 0.35, "digital_goods": 0.3, "online_retail": 0.25, "entertainment": 0.1})
    country = rng.choice(len(COUNTRIES), size=n, p=_column(COUNTRIES, 1))
    return {
        "amount": _amount(rng, category, scale=1.5, sigma=0.7),
        "hour": rng.choice(24, size=n, p=_NIGHT_HOURLY / _NIGHT_HOURLY.sum()),
        "distance_km": _distance(rng, country, home_median_km=1500.0, sigma=0.8),
        "merchant_category": category,
        "country": country,
        "channel": np.full(n, CHANNELS.index("online")),
    }


def _counterfeit(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    category = _pick(rng, n, {"fuel": 0.25, "jewelry": 0.25, "electronics": 0.25, "retail": 0.25})
    country = np.zeros(n, dtype=np.int64)
    channel = np.full(n, CHANNELS.index("swipe"))  # a cloned magnetic stripe can only be swiped
    return {
        "amount": _amount(rng, category, scale=1.5, sigma=0.6),
        "hour": rng.choice(24, size=n, p=_HOURLY / _HOURLY.sum()),
        "distance_km": _distance(rng, country, home_median_km=800.0, sigma=0.8),
        "merchant_category": category,
        "country": country,
        "channel": channel,
    }


def _lookalike(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    # Small purchases with genuine-looking features: no model can catch these, they cap recall.
    genuine = _genuine(rng, n, drifted=False)
    del genuine["card_age_days"]
    genuine["amount"] = np.round(genuine["amount"] * 0.2, 2).clip(0.5)
    return genuine


def _ring(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    category = _pick(rng, n, {"digital_goods": 0.7, "electronics": 0.3})
    return {
        "amount": np.round(rng.lognormal(np.log(80.0), 0.4, size=n), 2),
        "card_age_days": rng.integers(0, _RING_MAX_CARD_AGE_DAYS, size=n, endpoint=True),
        "hour": rng.choice(24, size=n, p=_HOURLY / _HOURLY.sum()),
        "distance_km": _distance(rng, np.zeros(n, dtype=np.int64), home_median_km=8.0),
        "merchant_category": category,
        "country": np.zeros(n, dtype=np.int64),
        "channel": np.full(n, CHANNELS.index("online")),
    }


def _amount(rng: np.random.Generator, category: np.ndarray, *, scale: float, sigma: float) -> np.ndarray:
    median = _column(MERCHANTS, 1)[category] * scale
    return np.round(median * rng.lognormal(0.0, sigma, size=len(category)), 2).clip(0.5)


def _distance(
    rng: np.random.Generator, country: np.ndarray, *, home_median_km: float, sigma: float = 1.1
) -> np.ndarray:
    abroad = country != 0
    near = rng.lognormal(np.log(home_median_km), sigma, size=len(country))
    return np.where(abroad, rng.uniform(500.0, 9000.0, size=len(country)), near).round(1)


def _pick(rng: np.random.Generator, n: int, weights: dict[str, float]) -> np.ndarray:
    names = list(MERCHANTS)
    return rng.choice([names.index(name) for name in weights], size=n, p=list(weights.values()))


def _column(table: dict[str, tuple[float, ...]], position: int) -> np.ndarray:
    return np.array([values[position] for values in table.values()])


def _frame(rng: np.random.Generator, scenario: Scenario, week: int, rows: dict[str, np.ndarray]) -> pd.DataFrame:
    n = len(rows[LABEL])
    hour = rows["hour"].astype(np.int64)
    offset = (rng.integers(0, 7, size=n) * 86_400 + hour * 3_600 + rng.integers(0, 3_600, size=n))
    event_time = np.datetime64(scenario.week_start(week), "us") + offset.astype("timedelta64[s]")
    order = np.argsort(event_time, kind="stable")
    width = len(str(max(n - 1, 0)))
    return pd.DataFrame(
        {
            TRANSACTION_ID: [f"w{week:02d}-{i:0{width}d}" for i in range(n)],
            TIMESTAMP: event_time[order],
            "amount": rows["amount"][order].astype(np.float64),
            "card_age_days": rows["card_age_days"][order].astype(np.int64),
            "hour": hour[order],
            "distance_km": rows["distance_km"][order].astype(np.float64),
            "merchant_category": _labels(MERCHANTS, rows["merchant_category"][order]),
            "country": _labels(COUNTRIES, rows["country"][order]),
            "channel": _labels(CHANNELS, rows["channel"][order]),
            LABEL: rows[LABEL][order],
        },
        columns=list(COLUMNS),
    )


def _labels(names: Iterable[str], codes: np.ndarray) -> np.ndarray:
    return np.array(list(names), dtype=object)[codes]
