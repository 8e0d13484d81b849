"""Train, save, load and score the fraud model: a scikit-learn Pipeline saved with joblib. `retrain` is the
`python` backend's built-in trainer for every task type (regression and multiclass: jobs/task_training.py)."""

import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from jobs import task_training
from jobs.artifacts import read_trusted
from jobs.fitting import (  # TrainResult and TrainingError are read from here too
    ARTIFACT_NAME,
    BOOSTING,
    HOLDOUT_FRACTION,
    MIN_ROWS_PER_CLASS,
    TrainingError,
    TrainResult,
    one_thread,
    save_artifact,
)
from jobs.metrics import classification_metrics
from jobs.synthetic import TIMESTAMP
from jobs.tasks import BINARY, MULTICLASS, REGRESSION

THRESHOLD_BETA = 2.0  # a missed fraud costs more than a false alert, so recall weighs double
MAX_FIT_NEGATIVES = 120_000  # bounds a fit to a couple of seconds; positives are always kept


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
    """Fit on a stratified split; the decision threshold maximises F2 on the held-out rows."""
    # scikit-learn is imported where a model is fitted: the Slack app and the CLI load this module without it
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier, train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    labelled = _validate(df, numeric=numeric, categorical=categorical, label=label, name=name)
    X = labelled[[*numeric, *categorical]]
    y = labelled[label].astype(np.int64)
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
    with one_thread():
        booster.fit(encoder.fit_transform(X_fit), y_fit, sample_weight=weight)
        encoded_hold = encoder.transform(X_hold)
        hold_score = booster.predict_proba(encoded_hold)[:, 1]
    threshold = _best_threshold(y_hold.to_numpy(), hold_score)
    # The threshold travels inside the artifact, so every loader makes the same decisions.
    classifier = FixedThresholdClassifier(FrozenEstimator(booster), threshold=threshold).fit(encoded_hold, y_hold)
    pipeline = Pipeline([("encode", encoder), ("classify", classifier)])

    metrics = classification_metrics(y_hold, (hold_score >= threshold).astype(np.int64), hold_score)
    parameters: dict[str, object] = {
        "estimator": "HistGradientBoostingClassifier",
        **BOOSTING,
        "seed": seed,
        "threshold": threshold,
        "threshold_rule": f"max F{THRESHOLD_BETA:g} on the held-out split",
        "numeric": list(numeric),
        "categorical": list(categorical),
        "label": label,
        "holdout_fraction": HOLDOUT_FRACTION,
        "negative_sample_rate": negative_rate,
        "fit_rows": len(X_fit),
        "holdout_rows": len(X_hold),
        "unlabelled_rows_dropped": len(df) - len(labelled),
    }
    uri, sha256 = save_artifact(pipeline, Path(artifacts_dir), name)
    return TrainResult(artifact_uri=uri, metrics=metrics, parameters=parameters, rows=len(labelled),
                       artifact_sha256=sha256)


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
    task: str = BINARY,
) -> TrainResult:
    """The `python` retrain backend's built-in trainer, for every task type: a binary classifier trains on
    the rows with window_start <= event_time < window_end; a regression or multiclass model on the rows
    given (jobs/retrain.py reads only the window), through jobs/task_training.py."""
    if task in (REGRESSION, MULTICLASS):
        trainer = task_training.retrain_regression if task == REGRESSION else task_training.retrain_multiclass
        return trainer(data=data, numeric=numeric, categorical=categorical, label=label, window_start=window_start,
                       window_end=window_end, artifacts_dir=artifacts_dir, name=name)
    if window_start >= window_end:
        raise TrainingError(
            f"retrain window is empty: start {window_start.isoformat()} is not before end {window_end.isoformat()}"
        )
    if TIMESTAMP not in data.columns:
        raise TrainingError(f"retrain data has no {TIMESTAMP!r} column to select the window with")
    times = data[TIMESTAMP]
    if not pd.api.types.is_datetime64_any_dtype(times):
        raise TrainingError(f"column {TIMESTAMP!r} must hold datetimes, found dtype {times.dtype}")
    try:
        window = data[(times >= window_start) & (times < window_end)]
    except TypeError as error:
        raise TrainingError(
            f"cannot compare {TIMESTAMP!r} ({times.dtype}) with the window bounds "
            f"{window_start.isoformat()} .. {window_end.isoformat()}: {error}"
        ) from None
    if window.empty:
        raise TrainingError(
            f"no rows with {TIMESTAMP} in [{window_start.isoformat()}, {window_end.isoformat()}) "
            f"among the {len(data)} rows given"
        )
    result = train(window, numeric=numeric, categorical=categorical, label=label,
                   artifacts_dir=artifacts_dir, name=name)
    parameters = {**result.parameters, "window_start": window_start.isoformat(),
                  "window_end": window_end.isoformat()}
    return TrainResult(result.artifact_uri, result.metrics, parameters, result.rows, result.artifact_sha256)


def load_model(artifact_uri: str, *, sha256: str | None, roots: Sequence[Path]):
    """The fitted Pipeline saved at a file:// URI under one of the roots, only if its bytes have the SHA-256
    recorded at registration (UntrustedArtifact otherwise, before anything is unpickled)."""
    return joblib.load(io.BytesIO(read_trusted(artifact_uri, sha256=sha256, roots=roots)))


def decision_threshold(model) -> float:
    """The threshold chosen at training time; 0.5 for a classifier that stores none."""
    from sklearn.pipeline import Pipeline

    final = model[-1] if isinstance(model, Pipeline) else model
    threshold = getattr(final, "threshold", 0.5)
    return 0.5 if threshold == "auto" else float(threshold)


def score(
    model,
    df: pd.DataFrame,
    *,
    score_column: str = "fraud_score",
    prediction_column: str = "predicted_fraud",
    threshold: float | None = None,
) -> pd.DataFrame:
    """A copy of df with the fraud probability and the 0/1 decision at the model's threshold (or the one given)."""
    features = list(getattr(model, "feature_names_in_", df.columns))
    missing = [column for column in features if column not in df.columns]
    if missing:
        raise ValueError(f"cannot score: the data has no feature column(s) {', '.join(missing)}")
    cutoff = decision_threshold(model) if threshold is None else float(threshold)
    probability = np.empty(0)
    if len(df):
        with one_thread():
            probability = model.predict_proba(df[features])[:, 1]
    scored = df.copy()
    scored[score_column] = probability
    scored[prediction_column] = (probability >= cutoff).astype(np.int64)
    return scored


def _validate(
    df: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str], label: str, name: str
) -> pd.DataFrame:
    """The labelled rows of df, after checking columns and labels."""
    if not ARTIFACT_NAME.fullmatch(name):
        raise TrainingError(
            f"model name {name!r} must be letters, digits, '.', '_' or '-' (it names the artifact file)"
        )
    if df.empty:
        raise TrainingError("training data is empty")
    if not [*numeric, *categorical]:
        raise TrainingError("no feature columns given")
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise TrainingError(f"column(s) {', '.join(both)} listed as both numeric and categorical features")
    missing = [column for column in (*numeric, *categorical, label) if column not in df.columns]
    if missing:
        raise TrainingError(f"training data has no column(s) {', '.join(missing)}")
    not_numeric = [column for column in numeric
                   if not pd.api.types.is_numeric_dtype(df[column]) or pd.api.types.is_bool_dtype(df[column])]
    if not_numeric:
        raise TrainingError(f"numeric feature column(s) {', '.join(not_numeric)} do not hold numbers")

    labelled = df[df[label].notna()]
    if labelled.empty:
        raise TrainingError(f"label column {label!r} has no values: all {len(df)} rows are unlabelled")
    values = set(pd.unique(labelled[label]).tolist())
    if not values <= {0, 1}:
        raise TrainingError(
            f"label column {label!r} must hold 0/1, found {sorted(map(repr, values - {0, 1}))[:5]} "
            f"(dtype {labelled[label].dtype})"
        )
    if len(values) < 2:
        raise TrainingError(
            f"label column {label!r} holds a single class ({int(values.pop())}); training needs both 0 and 1"
        )
    positives = int(labelled[label].sum())
    if min(positives, len(labelled) - positives) < MIN_ROWS_PER_CLASS:
        raise TrainingError(
            f"label column {label!r} needs at least {MIN_ROWS_PER_CLASS} rows of each class, "
            f"has {positives} positive and {len(labelled) - positives} negative"
        )
    return labelled


def _downsample_negatives(
    X: pd.DataFrame, y: pd.Series, *, seed: int
) -> tuple[pd.DataFrame, pd.Series, np.ndarray, float]:
    labels = y.to_numpy()
    negatives = np.flatnonzero(labels == 0)
    rate = min(1.0, MAX_FIT_NEGATIVES / len(negatives))
    if rate < 1.0:
        kept = np.random.default_rng(seed).choice(negatives, size=MAX_FIT_NEGATIVES, replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(labels == 1), kept]))
        X, y = X.iloc[keep], y.iloc[keep]
    # Weighting the kept negatives by 1/rate keeps predicted probabilities on the real fraud rate.
    weight = np.where(y.to_numpy() == 0, 1.0 / rate, 1.0)
    return X, y, weight, rate


def _best_threshold(y_true: np.ndarray, y_score: np.ndarray) -> float:
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y_true, y_score)
    beta2 = THRESHOLD_BETA**2
    denominator = beta2 * precision + recall
    f_beta = np.divide((1 + beta2) * precision * recall, denominator,
                       out=np.zeros_like(precision), where=denominator > 0)
    return float(thresholds[int(np.argmax(f_beta[:-1]))])
