"""A version's importances for the drift alert (store.registry.measured_importances): its latest evaluation
that measured them, on a real database."""

from datetime import datetime, timedelta

from store import registry
from tests.support.factories import fraud_project

WEEK = timedelta(days=7)
START = datetime(2026, 11, 2)


def _record(s, version, week: int, importances):
    registry.record_evaluation(session=s, version=version, window_start=START + week * WEEK,
                               window_end=START + (week + 1) * WEEK, metrics={"recall": 0.7}, rows=100,
                               importances=importances)


def _measured(mean: float) -> dict:
    return {"metric": "roc_auc", "features": [{"feature": "amount", "mean": mean, "std": 0.0}]}


def test_the_latest_evaluation_that_measured_them_answers(db):
    with db.session() as s:
        fraud_project(s)
        v1 = registry.register_version(session=s, model_key="fraud-detector", created_by="U0ML0001", artifact_uri="x")
        assert registry.measured_importances(session=s, version=v1) is None  # never evaluated
        _record(s, v1, 0, None)
        assert registry.measured_importances(session=s, version=v1) is None  # evaluated before they were kept
        _record(s, v1, 1, _measured(0.2))
        _record(s, v1, 3, _measured(0.4))
        _record(s, v1, 2, _measured(0.3))
        _record(s, v1, 4, None)  # a window with one class: nothing measured, the earlier figures stand
    with db.session() as s:
        v1 = registry.get_version(session=s, model_key="fraud-detector", number=1)
        assert registry.measured_importances(session=s, version=v1) == _measured(0.4)
