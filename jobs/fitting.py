"""What every built-in trainer shares: its result, its error, the boosting settings, one OpenMP thread, and
how an artifact is saved (under its digest, never over another)."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import joblib
from threadpoolctl import threadpool_limits

HOLDOUT_FRACTION = 0.25
MIN_ROWS_PER_CLASS = 10
BOOSTING = {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "min_samples_leaf": 20,
            "l2_regularization": 1.0}
ARTIFACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class TrainingError(ValueError):
    """The data cannot produce a model; the message names the column or value at fault."""


@dataclass(frozen=True)
class TrainResult:
    artifact_uri: str  # file:// URI of the saved joblib artifact
    metrics: dict[str, float]  # on a held-out split of the training window
    parameters: dict[str, object]
    rows: int  # labelled rows used (fit and held-out)
    artifact_sha256: str | None = None  # of the bytes written; registration checks the file still has them


def one_thread():
    # HistGradientBoosting's OpenMP threads spin-wait: on a shared 2-core machine a 2-thread fit ran
    # 5-10x slower than a 1-thread one, while alone it gains little on data this size.
    return threadpool_limits(limits=1, user_api="openmp")


def save_artifact(model, artifacts_dir: Path, name: str) -> tuple[str, str]:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    payload = buffer.getvalue()
    # The content digest in the file name means a new model never overwrites one a registered version points to.
    sha256 = hashlib.sha256(payload).hexdigest()
    path = artifacts_dir / f"{name}-{sha256[:12]}.joblib"
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(payload)
        partial.replace(path)
    return path.resolve().as_uri(), sha256
