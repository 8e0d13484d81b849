"""Performance by segment: a version's metrics and row count for each value of each segment column the
spec names, on the labelled rows of one evaluation window. Facts only; the model card words them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from jobs.metrics import MetricsError
from jobs.tasks import BINARY, task_metrics

MAX_VALUES = 20  # values per segment column, the largest first; the rest are counted, not scored
MISSING = "(missing)"


def segment_figures(frame: pd.DataFrame, *, segments: Sequence[str], label: str, prediction: str,
                    score: str | None, metrics: Sequence[str], task: str = BINARY) -> list[dict[str, Any]]:
    """[{column, values: [{value, rows, metrics}], other_rows}] over the rows whose label has arrived.

    A segment too small or too uniform to score (one class only, say) keeps its row count and gets no
    metric rather than a misleading one."""
    labelled = frame[frame[label].notna()] if label in frame else frame.iloc[0:0]
    result = []
    for column in segments:
        if column not in labelled:
            continue
        keys = labelled[column].astype("object").where(labelled[column].notna(), MISSING).astype(str)
        counts = keys.value_counts(sort=True)
        values = []
        for value, rows in list(counts.items())[:MAX_VALUES]:
            part = labelled[keys == value]
            try:
                figures = task_metrics(task, part[label], part[prediction],
                                       part[score] if score and task == BINARY else None, metrics=metrics)
            except (MetricsError, ValueError):
                figures = {}
            values.append({"value": value, "rows": int(rows),
                           "metrics": {k: float(v) for k, v in figures.items() if v is not None and not math.isnan(v)}})
        result.append({"column": column, "values": values,
                       "other_rows": int(counts.iloc[MAX_VALUES:].sum()) if len(counts) > MAX_VALUES else 0})
    return result
