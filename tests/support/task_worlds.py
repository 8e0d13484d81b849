"""Two models that are not binary classifiers, on disk for tests: house prices (regression) and customer
segments (three classes), each with a reference Parquet file, scored production rows in SQLite, and a
first version trained on the reference week and registered but never deployed."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bot.services.specs import apply_spec
from jobs.spec import load_spec
from jobs.task_training import train_multiclass, train_regression
from store import registry
from store.db import Database

START = datetime(2026, 3, 2)  # a Monday; week w covers [START + w weeks, START + (w+1) weeks)
WEEK = timedelta(days=7)
WEEKS = 6  # weeks 0 (the reference) to 5 (the latest, held out for the comparison)
NOW = START + WEEKS * WEEK
PRICES, SEGMENTS = "house-prices", "customer-segments"
ELI, NOOR, RITA, OMAR = "U0ML0001", "U0ML0002", "U0RISK01", "U0OPS001"

SPEC = """\
project:
  key: homes-and-customers
  name: Homes and customers
  initiative: Price listings well, talk to customers in their segment
  owner: U0ML0001
  risk_tier: medium
people:
  - {slack_id: U0ML0001, name: Eli, roles: [ml_engineer]}
  - {slack_id: U0ML0002, name: Noor, roles: [ml_engineer]}
  - {slack_id: U0RISK01, name: Rita, roles: [risk_manager]}
  - {slack_id: U0OPS001, name: Omar, roles: [it_ops]}
channels: {business: C0BIZ, ml_engineer: C0ML, risk_manager: C0RISK, it_ops: C0OPS}
blueprint:
  name: standard
  steps:
    - {name: technical validation, role: ml_engineer}
models:
  - key: house-prices
    owner: U0ML0001
    task: regression
    data:
      reference: {path: data/homes-reference.parquet}
      production: {url: "sqlite:///data/homes.db", table: listings}
      timestamp: listed_at
      prediction: predicted_price
      label: sold_price
    features:
      numeric: [sqft, rooms]
      categorical: [district]
    kpis:
      - {name: mean_predicted_price, aggregate: mean, column: predicted_price, unit: USD, alert: {above: 900000}}
    performance:
      metrics: [mae, rmse, r2]
      alert: {mae: %(mae_line)s, r2: {below: 0.5}}
    retrain: {backend: python, entrypoint: "jobs.training:retrain"}
  - key: customer-segments
    owner: U0ML0001
    task: multiclass_classification
    data:
      reference: {path: data/customers-reference.parquet}
      production: {url: "sqlite:///data/customers.db", table: scored_customers}
      timestamp: seen_at
      prediction: predicted_segment
      label: segment
    features:
      numeric: [spend, visits]
      categorical: [channel]
    kpis:
      - name: gold_overcalled
        aggregate: rate
        where: "predicted_segment == 'gold' and segment == 'bronze'"
        of: "predicted_segment == 'gold'"
        alert: {above: 0.2}
    performance:
      metrics: [accuracy, macro_f1, weighted_f1]
      alert: {accuracy: 0.7, macro_f1: {below: 0.6}}
    retrain: {backend: python, entrypoint: "jobs.task_training:retrain_multiclass"}
"""


def homes_week(w: int, *, n: int = 500, seed: int = 3) -> pd.DataFrame:
    """One week of listings: the price follows floor area, rooms and district; the old model underprices."""
    rng = np.random.default_rng([seed, w])
    district = rng.choice(["harbour", "old-town", "hills"], n, p=[0.3, 0.5, 0.2])
    sqft = rng.normal(1400, 350, n).clip(400)
    rooms = rng.integers(1, 6, n)
    premium = pd.Series(district).map({"harbour": 120_000, "old-town": 40_000, "hills": 80_000}).to_numpy()
    price = 60_000 + 190 * sqft + 12_000 * rooms + premium + rng.normal(0, 15_000, n)
    return pd.DataFrame({
        "listed_at": START + w * WEEK + pd.to_timedelta(np.sort(rng.random(n)) * 7 * 86400, unit="s"),
        "sqft": sqft.round(), "rooms": rooms, "district": district, "sold_price": price.round(-2),
        "predicted_price": (0.8 * price + rng.normal(0, 40_000, n)).round(-2),
    })


def customers_week(w: int, *, n: int = 600, seed: int = 5) -> pd.DataFrame:
    """One week of customers: the segment follows spend and visits; the old model calls too many gold."""
    rng = np.random.default_rng([seed, w])
    spend = rng.gamma(2.0, 150, n)
    visits = rng.poisson(4, n)
    channel = rng.choice(["web", "store", "app"], n, p=[0.5, 0.3, 0.2])
    value = spend + 40 * visits + np.where(channel == "app", 60, 0) + rng.normal(0, 30, n)
    segment = np.select([value < 350, value < 650], ["bronze", "silver"], "gold")
    predicted = np.where(rng.random(n) < 0.45, "gold", segment)
    return pd.DataFrame({
        "seen_at": START + w * WEEK + pd.to_timedelta(np.sort(rng.random(n)) * 7 * 86400, unit="s"),
        "spend": spend.round(2), "visits": visits, "channel": channel, "segment": segment,
        "predicted_segment": predicted,
    })


def write_task_project(folder: Path, *, mae_line: float = 30_000) -> Path:
    """Reference week 0 and production weeks 1 to 5 of both models, and v1 of each in folder/artifacts."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    homes_week(0).to_parquet(data / "homes-reference.parquet", index=False)
    customers_week(0).to_parquet(data / "customers-reference.parquet", index=False)
    with sqlite3.connect(data / "homes.db") as connection:
        pd.concat([homes_week(w) for w in range(1, WEEKS)]).to_sql("listings", connection, index=False)
    with sqlite3.connect(data / "customers.db") as connection:
        pd.concat([customers_week(w) for w in range(1, WEEKS)]).to_sql("scored_customers", connection, index=False)
    path = folder / "homes.yml"
    path.write_text(SPEC % {"mae_line": f"{mae_line:g}"})
    return path


def register_first_versions(db: Database, folder: Path) -> None:
    """Apply the spec and register v1 of each model, trained on the reference week; nothing is deployed."""
    artifacts = folder / "artifacts"
    first = {
        PRICES: train_regression(homes_week(0), numeric=["sqft", "rooms"], categorical=["district"],
                                 label="sold_price", artifacts_dir=artifacts, name=f"{PRICES}-v1"),
        SEGMENTS: train_multiclass(customers_week(0), numeric=["spend", "visits"], categorical=["channel"],
                                   label="segment", artifacts_dir=artifacts, name=f"{SEGMENTS}-v1"),
    }
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(folder / "homes.yml"))
        for key, trained in first.items():
            registry.register_version(session=s, model_key=key, created_by=ELI, artifact_uri=trained.artifact_uri,
                                      artifact_sha256=trained.artifact_sha256, metrics=trained.metrics,
                                      train_start=START, train_end=START + WEEK, now=START + WEEK)
