"""Train, save, load and score the fraud model (a scikit-learn Pipeline saved with joblib)."""

import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import FixedThresholdClassifier, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from jobs.metrics import classification_metrics
from jobs.synthetic import TIMESTAMP

HOLDOUT_FRACTION = 0.25
THRESHOLD_BETA = 2.0  # a missed fraud costs more than a false alert, so recall weighs more
MAX_TRAIN_NEGATIVES = 120_000  # keeps a fit under ~3 s on 2 cores; positives are always kept
BOOSTING = {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "min_samples_leaf": 20,
            "l2_regularization": 1.0}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class TrainingError(ValueError):
    """The training data cannot produce a model; the message names the problem."""


@dataclass(frozen=True)
class TrainResult:
    artifact_uri: str  # file:// URI of the saved joblib artifact
    metrics: dict[str, float]  # on a held-out split of the training window
    parameters: dict[str, object]
    rows: int


def train(
    df: pd.DataFrame,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    label: str,
    artifacts_dir: Path,
    name: str,
    seed: int = 7,
) -> TrainResult:
    """Fit on a stratified split, pick the F1-best threshold on the held-out rows, save the artifact."""
    _validate(df, numeric=numeric, categorical=categorical, label=label, name=name)
    X = df[[*numeric, *categorical]]
    y = df[label].astype(np.int64)
    X_fit, X_hold, y_fit, y_hold = train_test_split(
        X, y, test_size=HOLDOUT_FRACTION, stratify=y, random_state=seed
    )
    X_fit, y_fit, weight, negative_rate = _downsample_negatives(X_fit, y_fit, seed=seed)

    encoder = ColumnTransformer(
        [
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                           encoded_missing_value=np.nan), list(categorical)),
            ("numeric", "passthrough", list(numeric)),
        ],
        verbose_feature_names_out=False,
    )
    booster = HistGradientBoostingClassifier(
        **BOOSTING, categorical_features=list(range(len(categorical))), early_stopping=False,
        random_state=seed,
    )
    pipeline = Pipeline([("encode", encoder), ("classify", booster)]).fit(
        X_fit, y_fit, classify__sample_weight=weight
    )

    hold_score = pipeline.predict_proba(X_hold)[:, 1]
    threshold = _best_threshold(y_hold.to_numpy(), hold_score)
    # The threshold travels inside the artifact, so whoever loads the model scores it the same way.
    pipeline.steps[-1] = ("classify", FixedThresholdClassifier(FrozenEstimator(booster), threshold=threshold)
                          .fit(pipeline[:-1].transform(X_fit.iloc[:2]), y_fit.iloc[:2]))
    metrics = classification_metrics(y_hold, (hold_score >= threshold).astype(np.int64), hold_score)

    parameters: dict[str, object] = {
        "estimator": "HistGradientBoostingClassifier",
        **BOOSTING,
        "threshold": threshold,
        "threshold_rule": f"max F{THRESHOLD_BETA:g} on the held-out split",
        "numeric": list(numeric),
        "categorical": list(categorical),
        "label": label,
        "seed": seed,
        "holdout_fraction": HOLDOUT_FRACTION,
        "negative_sample_rate": negative_rate,
        "fit_rows": len(X_fit),
    }
    uri = _save(pipeline, Path(artifacts_dir), name)
    return TrainResult(artifact_uri=uri, metrics=metrics, parameters=parameters, rows=len(df))


def retrain(
    *,
    data: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    label: str,
    window_start: datetime,
    window_end: datetime,
    artifacts_dir: Path,
    name: str,
) -> TrainResult:
    """Retrain on the rows with window_start <= event_time < window_end (the `python` retrain backend)."""
    if window_start >= window_end:
        raise TrainingError(
            f"retrain window is empty: start {window_start.isoformat()} is not before end {window_end.isoformat()}"
        )
    if TIMESTAMP not in data.columns:
        raise TrainingError(f"retrain data has no {TIMESTAMP!r} column to select the window from")
    times = data[TIMESTAMP]
    window = data[(times >= window_start) & (times < window_end)]
    if window.empty:
        raise TrainingError(
            f"no rows with {TIMESTAMP} in [{window_start.isoformat()}, {window_end.isoformat()}) "
            f"({len(data)} rows given)"
        )
    result = train(window, numeric=numeric, categorical=categorical, label=label,
                   artifacts_dir=artifacts_dir, name=name)
    parameters = {**result.parameters, "window_start": window_start.isoformat(),
                  "window_end": window_end.isoformat()}
    return TrainResult(result.artifact_uri, result.metrics, parameters, result.rows)


def load_model(artifact_uri: str):
    """The fitted Pipeline saved at a file:// URI. Only load artifacts this app wrote (joblib unpickles)."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme != "file":
        raise ValueError(f"model artifact must be a file:// URI, got {artifact_uri!r}")
    path = Path(url2pathname(unquote(parsed.path)))
    if not path.is_file():
        raise FileNotFoundError(f"model artifact not found: {path}")
    return joblib.load(path)


def decision_threshold(model) -> float:
    """The threshold chosen at training time, 0.5 for a classifier that stores none."""
    final = model[-1] if isinstance(model, Pipeline) else model
    return float(getattr(final, "threshold", 0.5))


def score(
    model,
    df: pd.DataFrame,
    *,
    score_column: str = "fraud_score",
    prediction_column: str = "predicted_fraud",
    threshold: float | None = None,
) -> pd.DataFrame:
    """A copy of df with the fraud probability and the 0/1 decision at the model's (or given) threshold."""
    expected = list(getattr(model, "feature_names_in_", []))
    missing = [column for column in expected if column not in df.columns]
    if missing:
        raise ValueError(f"cannot score: missing feature column(s) {', '.join(missing)}")
    cutoff = decision_threshold(model) if threshold is None else float(threshold)
    scored = df.copy()
    probability = model.predict_proba(df[expected] if expected else df)[:, 1] if len(df) else np.empty(0)
    scored[score_column] = probability
    scored[prediction_column] = (probability >= cutoff).astype(np.int64)
    return scored


def _validate(df: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str], label: str, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise TrainingError(f"model name {name!r} must be letters, digits, '.', '_' or '-' (it names the artifact file)")
    if df.empty:
        raise TrainingError("training data is empty")
    features = [*numeric, *categorical]
    if not features:
        raise TrainingError("no feature columns given")
    missing = [column for column in (*features, label) if column not in df.columns]
    if missing:
        raise TrainingError(f"training data is missing column(s) {', '.join(missing)}")
    labels = df[label]
    if labels.isna().any():
        raise TrainingError(f"label column {label!r} has {int(labels.isna().sum())} missing value(s); drop unlabelled rows first")
    classes = set(pd.unique(labels).tolist())
    if not classes <= {0, 1}:
        raise TrainingError(f"label column {label!r} must hold 0/1, found {sorted(classes - {0, 1}, key=str)[:5]}")
    if len(classes) < 2:
        raise TrainingError(f"label column {label!r} has a single class ({classes.pop()}); need both 0 and 1")
    positives = int(labels.sum())
    if min(positives, len(labels) - positives) < 4:
        raise TrainingError(f"label column {label!r} needs at least 4 rows of each class, has {positives} positive of {len(labels)}")
    bad = [column for column in numeric if not pd.api.types.is_numeric_dtype(df[column]) or pd.api.types.is_bool_dtype(df[column])]
    if bad:
        raise TrainingError(f"numeric feature column(s) {', '.join(bad)} are not numeric")


def _downsample_negatives(X: pd.DataFrame, y: pd.Series, *, seed: int) -> tuple[pd.DataFrame, pd.Series, np.ndarray, float]:
    negatives = np.flatnonzero(y.to_numpy() == 0)
    rate = min(1.0, MAX_TRAIN_NEGATIVES / len(negatives))
    if rate < 1.0:
        rng = np.random.default_rng(seed)
        kept = rng.choice(negatives, size=MAX_TRAIN_NEGATIVES, replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(y.to_numpy() == 1), kept]))
        X, y = X.iloc[keep], y.iloc[keep]
    # Weighting kept negatives by 1/rate keeps the predicted probabilities calibrated to the real fraud rate.
    weight = np.where(y.to_numpy() == 0, 1.0 / rate, 1.0)
    return X, y, weight, rate


def _best_threshold(y_true: np.ndarray, y_score: np.ndarray) -> float:
    precision, recall, thresholds = precision_recall_curve(y_true, y_score)
    weight = THRESHOLD_BETA**2
    denominator = weight * precision + recall
    f_beta = np.divide((1 + weight) * precision * recall, denominator, out=np.zeros_like(precision),
                       where=denominator > 0)[:-1]
    return float(thresholds[int(np.argmax(f_beta))])


def _save(model, artifacts_dir: Path, name: str) -> str:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    payload = buffer.getvalue()
    # A content digest in the file name: a new model never overwrites an artifact a registered version points to.
    path = artifacts_dir / f"{name}-{hashlib.sha256(payload).hexdigest()[:12]}.joblib"
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(payload)
        temporary.replace(path)
    return path.resolve().as_uri()
