"""A small monitored project on disk for tests: spec, reference Parquet and production SQLite."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

START = datetime(2026, 1, 5)  # a Monday; week w covers [START + w weeks, START + (w+1) weeks)
WEEK = timedelta(days=7)

SPEC = """\
project:
  key: {project}
  name: Loan defaults
  initiative: Fewer bad loans
  owner: U0ML0001
  risk_tier: medium
people:
  - {{slack_id: U0BIZ001, name: Dana, roles: [business]}}
  - {{slack_id: U0ML0001, name: Eli, roles: [ml_engineer]}}
  - {{slack_id: U0ML0002, name: Noor, roles: [ml_engineer]}}
  - {{slack_id: U0RISK01, name: Rita, roles: [risk_manager]}}
channels: {{business: C0BIZ, ml_engineer: C0ML, risk_manager: C0RISK}}
blueprint:
  name: standard
  steps:
    - {{name: technical validation, role: ml_engineer}}
models:
  - key: {model}
    description: {description}
    owner: U0ML0001
    data:
      reference: {{path: data/reference.parquet}}
      production: {{url: "sqlite:///data/production.db", table: scored}}
      timestamp: ts
      prediction: pred
      score: score
      label: y
    features:
      numeric: [income, debt]
      categorical: [region]
    drift:
      window: 7d
    kpis:
      - name: missed_rate
        label: Missed defaults
        aggregate: rate
        where: "y == 1 and pred == 0"
        of: "y == 1"
        alert: {{above_baseline_pct: 25, baseline_windows: 2}}
      - name: missed_amount
        label: Loans defaulted unflagged
        aggregate: sum
        column: amount
        where: "y == 1 and pred == 0"
        unit: USD
        alert: {{above: {amount_alert}}}
    performance:
      metrics: [precision, recall, roc_auc]
      alert: {{recall: {{below: 0.5}}}}
"""


def week(w: int, *, n: int = 4000, shift: float = 0.0, miss: float = 0.2, seed: int = 0,
         label_share: float = 1.0) -> pd.DataFrame:
    """One week of scored rows: `shift` moves income (in its std), `miss` is the share of defaults missed."""
    rng = np.random.default_rng([seed, w + 1])
    y = (rng.random(n) < 0.1).astype(float)
    caught = rng.random(n) >= miss
    pred = np.where(y == 1, caught, rng.random(n) < 0.02).astype(int)
    frame = pd.DataFrame({
        "ts": START + w * WEEK + pd.to_timedelta(np.sort(rng.random(n)) * 7 * 86400, unit="s"),
        "income": rng.normal(50 + 10 * shift, 10, n), "debt": rng.normal(5, 2, n),
        "region": rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "amount": rng.uniform(100, 300, n).round(2), "y": y, "pred": pred,
        "score": np.clip(pred * 0.6 + rng.random(n) * 0.4, 0, 1),
    })
    if label_share < 1:
        frame.loc[rng.random(n) >= label_share, "y"] = np.nan  # labels not arrived yet
    return frame


def write_project(folder: Path, *, project: str = "loans", model: str = "default-risk",
                  description: str = "Scores loan applications", amount_alert: float = 20_000) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    week(-1, n=6000, seed=99).to_parquet(folder / "data" / "reference.parquet", index=False)
    path = folder / f"{project}.yml"
    path.write_text(SPEC.format(project=project, model=model, description=description, amount_alert=amount_alert))
    return path


def append_weeks(folder: Path, frames: list[pd.DataFrame]) -> None:
    with sqlite3.connect(folder / "data" / "production.db") as connection:
        for frame in frames:
            frame.to_sql("scored", connection, if_exists="append", index=False)


def week_end(w: int) -> datetime:
    return START + (w + 1) * WEEK


def write_project_with_production(folder: Path, **kwargs) -> Path:
    """`write_project` with its production table there, empty: `flywheel apply` opens it to check it."""
    path = write_project(folder, **kwargs)
    append_weeks(folder, [week(0, n=0)])
    return path
