"""A stand-in for what a team already has before it meets Flywheel: a model file, the data it was trained
on, and a table where production logs each prediction and, weeks later, the price the house sold for.

    .venv/bin/python examples/house-prices/make_data.py --out house-prices

writes, under --out:
  models/price-v1.joblib   a scikit-learn regressor, trained on the reference weeks
  data/reference.parquet   the reference weeks (features, sale_price, predicted_price)
  data/sales.db            SQLite table `sales`: the last eight weeks up to today, scored by v1; from
                           week five a new riverside development sells bigger and dearer than v1 learned
  house-prices.yml         the project spec (a copy of the one beside this script)

Nothing here is Flywheel's own code path: it is the team's side of the walkthrough in the README.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

NUMERIC = ["living_area_m2", "bedrooms", "age_years", "distance_km"]
CATEGORICAL = ["neighborhood", "property_type"]
NEIGHBORHOODS = {"old-town": 5200, "riverside": 4300, "hillcrest": 3900, "station": 3500, "outskirts": 2800}
TYPES = {"flat": 1.0, "terraced": 1.08, "detached": 1.22}
WEEKS, REFERENCE_WEEKS, SHIFT_FROM_WEEK = 8, 6, 5


def sales(rng: np.random.Generator, start: datetime, rows: int, *, shifted: bool) -> pd.DataFrame:
    neighborhood = rng.choice(list(NEIGHBORHOODS), size=rows, p=[0.2, 0.2, 0.2, 0.2, 0.2])
    if shifted:  # the riverside development: a third of the week's sales, new, big and dear
        new = rng.random(rows) < 0.33
        neighborhood = np.where(new, "riverside", neighborhood)
    else:
        new = np.zeros(rows, dtype=bool)
    area = rng.gamma(9.0, 10.0, size=rows) + np.where(new, 25.0, 0.0)
    frame = pd.DataFrame({
        "sold_at": [start + timedelta(seconds=int(s)) for s in np.sort(rng.uniform(0, 7 * 86400, size=rows))],
        "living_area_m2": area.round(1),
        "bedrooms": np.clip((area / 30).round() + rng.integers(-1, 2, size=rows), 1, 7),
        "age_years": np.where(new, rng.integers(0, 2, size=rows), rng.integers(2, 90, size=rows)),
        "distance_km": rng.gamma(2.0, 2.5, size=rows).round(2),
        "neighborhood": neighborhood,
        "property_type": rng.choice(list(TYPES), size=rows, p=[0.5, 0.3, 0.2]),
    })
    per_m2 = frame["neighborhood"].map(NEIGHBORHOODS) * frame["property_type"].map(TYPES)
    premium = np.where(new, 1.2, 1.0)  # new riverside homes sell above what the old stock taught the model
    price = (frame["living_area_m2"] * per_m2 * premium * (1 - frame["age_years"] / 400)
             * np.exp(-frame["distance_km"] / 60) * rng.lognormal(0, 0.08, size=rows))
    frame["sale_price"] = price.round(-2)
    return frame


def train(reference: pd.DataFrame) -> Pipeline:
    encode = ColumnTransformer([("categorical", OrdinalEncoder(handle_unknown="use_encoded_value",
                                                               unknown_value=np.nan), CATEGORICAL),
                                ("numeric", "passthrough", NUMERIC)], verbose_feature_names_out=False)
    model = Pipeline([("encode", encode), ("regress", HistGradientBoostingRegressor(
        categorical_features=list(range(len(CATEGORICAL))), max_iter=200, random_state=3))])
    return model.fit(reference[NUMERIC + CATEGORICAL], reference["sale_price"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("house-prices"))
    parser.add_argument("--rows-per-week", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    first = today - timedelta(weeks=WEEKS)
    (args.out / "data").mkdir(parents=True, exist_ok=True)
    (args.out / "models").mkdir(exist_ok=True)

    reference = pd.concat([sales(rng, first - timedelta(weeks=REFERENCE_WEEKS - w), args.rows_per_week,
                                 shifted=False) for w in range(REFERENCE_WEEKS)], ignore_index=True)
    model = train(reference)
    reference["predicted_price"] = model.predict(reference[NUMERIC + CATEGORICAL]).round(-2)
    reference.to_parquet(args.out / "data" / "reference.parquet", index=False)
    joblib.dump(model, args.out / "models" / "price-v1.joblib")

    database = args.out / "data" / "sales.db"
    database.unlink(missing_ok=True)
    with sqlite3.connect(database) as connection:
        for week in range(WEEKS):
            frame = sales(rng, first + timedelta(weeks=week), args.rows_per_week, shifted=week + 1 >= SHIFT_FROM_WEEK)
            frame["predicted_price"] = model.predict(frame[NUMERIC + CATEGORICAL]).round(-2)
            frame.to_sql("sales", connection, if_exists="append", index=False)
    shutil.copyfile(Path(__file__).with_name("house-prices.yml"), args.out / "house-prices.yml")
    print(f"wrote {args.out}/: models/price-v1.joblib, data/reference.parquet, data/sales.db "
          f"({WEEKS} weeks to {today:%Y-%m-%d}), house-prices.yml")


if __name__ == "__main__":
    main()
