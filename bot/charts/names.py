"""How metrics are named to people, in Slack, charts and pages alike: "ROC AUC", "Log loss"."""

from __future__ import annotations

METRIC_NAMES = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "f1": "F1", "auc": "AUC", "mae": "MAE",
                "rmse": "RMSE", "log_loss": "Log loss", "brier": "Brier score", "mape": "MAPE", "r2": "R2",
                "macro_f1": "Macro F1", "weighted_f1": "Weighted F1"}


def metric_name(metric: str) -> str:
    """How a metric is named to people, in Slack, charts and pages alike: "ROC AUC", "Log loss"."""
    return METRIC_NAMES.get(metric.lower(), metric.replace("_", " ").capitalize())
