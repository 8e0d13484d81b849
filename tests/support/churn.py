"""A subscription business's churn classifier, for the MLflow tests: its project spec (the model's `registry`
section left to the test), subscribers with a churn label, and the team's own scikit-learn pipeline."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

ELI, NOOR, OMAR = "U0ML0001", "U0ML0002", "U0OPS001"
NOW = datetime(2026, 3, 2)  # a Monday; six labelled weeks of subscribers end here
FEATURES = ["tenure_months", "monthly_charges", "plan"]

SPEC = """\
project:
  key: retention
  name: Subscriber retention
  initiative: Keep subscribers who would leave
  owner: {eli}
  risk_tier: medium
people:
  - {{slack_id: {eli}, name: Eli, roles: [ml_engineer]}}
  - {{slack_id: {noor}, name: Noor, roles: [ml_engineer]}}
  - {{slack_id: {omar}, name: Omar, roles: [it_ops]}}
channels: {{ml_engineer: C0ML, it_ops: C0OPS}}
blueprint:
  name: standard
  steps:
    - {{name: technical validation, role: ml_engineer}}
models:
  - key: churn
    description: Who cancels their subscription next month
    owner: {eli}
    data:
      reference: {{path: data/reference.parquet}}
      production: {{url: "sqlite:///data/production.db", table: scored}}
      timestamp: event_time
      prediction: pred
      score: score
      label: churned
    features:
      numeric: [tenure_months, monthly_charges]
      categorical: [plan]
    drift: {{window: 7d}}
    performance:
      metrics: [precision, recall, roc_auc]
    retrain: {{backend: python, entrypoint: "jobs.training:retrain"}}
{registry}"""


def subscribers(start: datetime, days: int, *, seed: int, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    charges = rng.uniform(20, 120, n).round(2)
    plan = rng.choice(["monthly", "annual", "family"], n, p=[0.5, 0.3, 0.2])
    odds = -1.0 - 0.05 * tenure + 0.02 * charges + np.where(plan == "monthly", 1.2, -0.6)
    churned = (rng.random(n) < 1 / (1 + np.exp(-odds))).astype(int)
    score = np.clip(1 / (1 + np.exp(-odds)) + rng.normal(0, 0.1, n), 0, 1)
    times = start + pd.to_timedelta(np.sort(rng.random(n)) * days * 86400, unit="s")
    return pd.DataFrame({"event_time": times, "tenure_months": tenure, "monthly_charges": charges, "plan": plan,
                         "churned": churned, "score": score, "pred": (score >= 0.5).astype(int)})


def fit_churn(frame: pd.DataFrame):
    """The team's own classifier, as they would train it before Flywheel knew the model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prepare = ColumnTransformer([("num", StandardScaler(), ["tenure_months", "monthly_charges"]),
                                 ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])])
    return Pipeline([("prepare", prepare), ("clf", LogisticRegression(max_iter=500))]).fit(
        frame[FEATURES], frame["churned"])
