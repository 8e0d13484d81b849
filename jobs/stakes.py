"""What a version's decisions would cost on a labelled window: the spec's KPIs that read the prediction
(missed fraud in dollars, good customers blocked...) recomputed with that version's predictions, and, for a
binary classifier, its missed positives and false alarms. Facts for the comparison of a candidate with
production on the same rows; the words are bot/'s."""

from __future__ import annotations

from typing import Any

import pandas as pd

from jobs.checks import kpi_value
from jobs.expressions import ExpressionError
from jobs.spec import ModelSpec
from jobs.tasks import BINARY


def _reads_prediction(kpi: Any, prediction: str) -> bool:
    return any(prediction in (text or "") for text in (kpi.where, kpi.of, kpi.column))


def outcomes(spec: ModelSpec, frame: pd.DataFrame, predictions: Any) -> dict[str, Any]:
    """`frame`: the labelled rows; `predictions`: one version's, row for row. The KPIs whose columns the
    rows lack are left out rather than guessed."""
    rows = frame.reset_index(drop=True).copy()
    rows[spec.data.prediction] = pd.Series(predictions).reset_index(drop=True)
    kpis = []
    for kpi in spec.kpis:
        if not _reads_prediction(kpi, spec.data.prediction):
            continue
        try:
            value = kpi_value(kpi, rows)
        except (KeyError, ExpressionError):
            continue
        if value is not None:
            kpis.append({"name": kpi.name, "label": kpi.label or kpi.name.replace("_", " "), "unit": kpi.unit,
                         "aggregate": kpi.aggregate, "value": value})
    found: dict[str, Any] = {"kpis": kpis}
    if spec.task == BINARY:
        label, predicted = rows[spec.data.label].astype(int), rows[spec.data.prediction].astype(int)
        found["missed"] = int(((label == 1) & (predicted == 0)).sum())
        found["false_alarms"] = int(((label == 0) & (predicted == 1)).sum())
    return found
