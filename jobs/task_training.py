"""Train and score regression and multiclass models: the same scikit-learn Pipeline as the binary model
(jobs/training.py: categories ordinal-encoded, histogram gradient boosting, saved with joblib under its
digest), with the task's own estimator, label checks and held-out metrics.

jobs.training.retrain, the `python` backend's built-in trainer, hands these tasks to `retrain_regression`
and `retrain_multiclass` (entrypoints of their own too); `predict` scores a loaded model for
jobs/retrain.py's comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from jobs.fitting import (
    ARTIFACT_NAME,
    BOOSTING,
    HOLDOUT_FRACTION,
    MIN_ROWS_PER_CLASS,
    TrainingError,
    TrainResult,
    one_thread,
    save_artifact,
)
from jobs.tasks import MULTICLASS, REGRESSION, task_metrics

if TYPE_CHECKING:  # scikit-learn is imported where a model is fitted: the Slack app loads this module without it
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

MIN_REGRESSION_ROWS = 20


def _encoder(numeric: Sequence[str], categorical: Sequence[str]) -> ColumnTransformer:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    return ColumnTransformer(
        [("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                        encoded_missing_value=np.nan), list(categorical)),
         ("numeric", "passthrough", list(numeric))],
        verbose_feature_names_out=False)


def class_labels(values: pd.Series) -> pd.Series:
    """Classes as the model learns them: 2.0 read back from a table with gaps is the class 2."""
    if pd.api.types.is_float_dtype(values) and np.all(np.mod(values.dropna().to_numpy(), 1) == 0):
        return values.astype("Int64")
    return values


def _features(df: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str], label: str,
              name: str) -> pd.DataFrame:
    if not ARTIFACT_NAME.fullmatch(name):
        raise TrainingError(f"model name {name!r} must be letters, digits, '.', '_' or '-' (it names the artifact file)")
    if df.empty:
        raise TrainingError("training data is empty")
    if not [*numeric, *categorical]:
        raise TrainingError("no feature columns given")
    missing = [column for column in (*numeric, *categorical, label) if column not in df.columns]
    if missing:
        raise TrainingError(f"training data has no column(s) {', '.join(missing)}")
    not_numeric = [c for c in numeric if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
    if not_numeric:
        raise TrainingError(f"numeric feature column(s) {', '.join(not_numeric)} do not hold numbers")
    labelled = df[df[label].notna()]
    if labelled.empty:
        raise TrainingError(f"label column {label!r} has no values: all {len(df)} rows are unlabelled")
    return labelled


@dataclass(frozen=True)
class _Fitted:
    pipeline: Pipeline
    metrics: dict[str, float]
    parameters: dict[str, object]


def train_regression(df: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str], label: str,
                     artifacts_dir: Path, name: str, seed: int = 7) -> TrainResult:
    """Fit on a random split; held-out MAE, RMSE, R2 (and MAPE where no true value is 0)."""
    labelled = _features(df, numeric=numeric, categorical=categorical, label=label, name=name)
    if not pd.api.types.is_numeric_dtype(labelled[label]) or pd.api.types.is_bool_dtype(labelled[label]):
        raise TrainingError(f"label column {label!r} must hold numbers for regression, found dtype "
                            f"{labelled[label].dtype}")
    if len(labelled) < MIN_REGRESSION_ROWS:
        raise TrainingError(f"regression needs at least {MIN_REGRESSION_ROWS} labelled rows, has {len(labelled)}")
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    X, y = labelled[[*numeric, *categorical]], labelled[label].astype(np.float64)
    X_fit, X_hold, y_fit, y_hold = train_test_split(X, y, test_size=HOLDOUT_FRACTION, random_state=seed)
    estimator = HistGradientBoostingRegressor(**BOOSTING, categorical_features=list(range(len(categorical))),
                                              early_stopping=False, random_state=seed)
    pipeline = Pipeline([("encode", _encoder(numeric, categorical)), ("regress", estimator)])
    with one_thread():
        pipeline.fit(X_fit, y_fit)
        held = pipeline.predict(X_hold)
    metrics = task_metrics(REGRESSION, y_hold, held, metrics=("mae", "rmse", "r2", "mape"))
    fitted = _Fitted(pipeline, metrics, {"estimator": "HistGradientBoostingRegressor"})
    return _finish(fitted, df, labelled, numeric=numeric, categorical=categorical, label=label, seed=seed,
                   holdout=len(X_hold), artifacts_dir=artifacts_dir, name=name)


def train_multiclass(df: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str], label: str,
                     artifacts_dir: Path, name: str, seed: int = 7) -> TrainResult:
    """Fit on a split stratified by class; held-out accuracy, macro and weighted F1, log loss."""
    labelled = _features(df, numeric=numeric, categorical=categorical, label=label, name=name)
    y = class_labels(labelled[label])
    counts = y.value_counts()
    if len(counts) < 3:
        raise TrainingError(f"label column {label!r} holds {len(counts)} class(es) "
                            f"({', '.join(map(str, counts.index))}); multiclass classification needs at least 3 "
                            "(use binary_classification for two)")
    if counts.min() < MIN_ROWS_PER_CLASS:
        thin = ", ".join(f"{c} ({n})" for c, n in counts.items() if n < MIN_ROWS_PER_CLASS)
        raise TrainingError(f"label column {label!r} needs at least {MIN_ROWS_PER_CLASS} rows of each class, "
                            f"has too few of: {thin}")
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    X = labelled[[*numeric, *categorical]]
    y = y.astype(np.int64) if y.dtype == "Int64" else y
    X_fit, X_hold, y_fit, y_hold = train_test_split(X, y, test_size=HOLDOUT_FRACTION, stratify=y,
                                                    random_state=seed)
    estimator = HistGradientBoostingClassifier(**BOOSTING, categorical_features=list(range(len(categorical))),
                                               early_stopping=False, random_state=seed)
    pipeline = Pipeline([("encode", _encoder(numeric, categorical)), ("classify", estimator)])
    with one_thread():
        pipeline.fit(X_fit, y_fit)
        predicted, probabilities = _classify(pipeline, X_hold)
    metrics = task_metrics(MULTICLASS, y_hold, predicted, metrics=("accuracy", "macro_f1", "weighted_f1", "log_loss"),
                           probabilities=probabilities)
    fitted = _Fitted(pipeline, metrics, {"estimator": "HistGradientBoostingClassifier",
                                         "classes": [str(c) for c in pipeline.classes_]})
    return _finish(fitted, df, labelled, numeric=numeric, categorical=categorical, label=label, seed=seed,
                   holdout=len(X_hold), artifacts_dir=artifacts_dir, name=name)


def _finish(fitted: _Fitted, df: pd.DataFrame, labelled: pd.DataFrame, *, numeric: Sequence[str],
            categorical: Sequence[str], label: str, seed: int, holdout: int, artifacts_dir: Path,
            name: str) -> TrainResult:
    parameters: dict[str, object] = {
        **fitted.parameters, **BOOSTING, "seed": seed, "numeric": list(numeric), "categorical": list(categorical),
        "label": label, "holdout_fraction": HOLDOUT_FRACTION, "fit_rows": len(labelled) - holdout,
        "holdout_rows": holdout, "unlabelled_rows_dropped": len(df) - len(labelled)}
    uri, sha256 = save_artifact(fitted.pipeline, Path(artifacts_dir), name)
    return TrainResult(artifact_uri=uri, metrics=fitted.metrics, parameters=parameters, rows=len(labelled),
                       artifact_sha256=sha256)


def _retrain(trainer, *, data: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], label: str,
             window_start: datetime, window_end: datetime, artifacts_dir: Path, name: str) -> TrainResult:
    if window_start >= window_end:
        raise TrainingError(f"retrain window is empty: start {window_start.isoformat()} is not before end "
                            f"{window_end.isoformat()}")
    # jobs/retrain.py reads only the rows of the window from the model's production source.
    result = trainer(data, numeric=numeric, categorical=categorical, label=label, artifacts_dir=artifacts_dir,
                     name=name)
    parameters = {**result.parameters, "window_start": window_start.isoformat(), "window_end": window_end.isoformat()}
    return TrainResult(result.artifact_uri, result.metrics, parameters, result.rows, result.artifact_sha256)


def retrain_regression(**kwargs) -> TrainResult:
    """The `python` retrain backend for a regression model (`jobs.task_training:retrain_regression`)."""
    return _retrain(train_regression, **kwargs)


def retrain_multiclass(**kwargs) -> TrainResult:
    """The `python` retrain backend for a multiclass model (`jobs.task_training:retrain_multiclass`)."""
    return _retrain(train_multiclass, **kwargs)


def _classify(model, features: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    probabilities = pd.DataFrame(model.predict_proba(features), columns=[str(c) for c in model.classes_])
    return pd.Series(model.predict(features)), probabilities


@dataclass(frozen=True)
class Predictions:
    """A model's output on some rows: the prediction, and per class probabilities for a classifier."""

    prediction: pd.Series
    probabilities: pd.DataFrame | None = None


def predict(task: str, model, frame: pd.DataFrame) -> Predictions:
    """Score rows with a regression or multiclass model loaded by jobs.training.load_model."""
    features = list(getattr(model, "feature_names_in_", frame.columns))
    missing = [column for column in features if column not in frame.columns]
    if missing:
        raise ValueError(f"cannot score: the data has no feature column(s) {', '.join(missing)}")
    with one_thread():
        if task == MULTICLASS:
            prediction, probabilities = _classify(model, frame[features])
            return Predictions(prediction, probabilities)
        return Predictions(pd.Series(model.predict(frame[features])))
