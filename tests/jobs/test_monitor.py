import pytest

from jobs.monitor import check_all, check_model
from store import registry
from bot.services.specs import apply_spec
from store.models import Alert, AlertState, CheckKind, CheckRun, Evaluation, Verdict
from jobs.spec import load_spec
from tests.support.projects import append_weeks, week, week_end, write_project


def _register(db, folder, **kwargs):
    loaded = load_spec(write_project(folder, **kwargs))
    with db.session() as s:
        apply_spec(session=s, loaded=loaded)
        v1 = registry.register_version(session=s, model_key=loaded.spec.models[0].key, created_by="U0ML0001",
                                       artifact_uri="file:///v1", metrics={"recall": 0.8, "precision": 0.9})
        registry.adopt_as_production(session=s, version=v1, actor="U0ML0001")
    return loaded


def _verdicts(checked):
    return {r.kind: r.outcome.verdict for r in checked.results}


@pytest.fixture
def project(db, tmp_path):
    _register(db, tmp_path)
    append_weeks(tmp_path, [week(w) for w in range(4)])
    return tmp_path


def test_a_quiet_month_raises_nothing(db, project):
    checked = check_model(db=db, model_key="default-risk", as_of=week_end(3))
    assert _verdicts(checked) == {k: Verdict.ok for k in CheckKind}
    with db.session() as s:
        assert s.query(Alert).count() == 0
        evaluation = s.query(Evaluation).one()  # performance is kept in the evaluation store
        assert evaluation.metrics["recall"] == pytest.approx(0.8, abs=0.06)


def test_drift_and_missed_defaults_open_one_alert_each_then_resolve(db, project):
    append_weeks(project, [week(4, shift=1.0, miss=0.6), week(5, shift=1.0, miss=0.6), week(6), week(7)])
    first = check_model(db=db, model_key="default-risk", as_of=week_end(4))
    assert _verdicts(first) == {CheckKind.drift: Verdict.breach, CheckKind.kpi: Verdict.breach,
                                CheckKind.performance: Verdict.breach, CheckKind.data_quality: Verdict.ok}
    drift = first.result(CheckKind.drift)
    assert drift.outcome.subjects == ("income",) and drift.alert_is_new
    assert set(first.result(CheckKind.kpi).outcome.subjects) == {"missed_rate", "missed_amount"}
    assert "income Wasserstein 1.0" in drift.outcome.message

    again = check_model(db=db, model_key="default-risk", as_of=week_end(5))
    assert again.result(CheckKind.drift).alert_id == drift.alert_id
    assert not again.result(CheckKind.drift).alert_is_new  # the same incident, updated in place

    check_model(db=db, model_key="default-risk", as_of=week_end(6))
    calm = check_model(db=db, model_key="default-risk", as_of=week_end(7))
    assert calm.result(CheckKind.drift).outcome.verdict == Verdict.ok
    with db.session() as s:
        alerts = {a.kind: a for a in s.query(Alert)}
        assert alerts[CheckKind.drift].state == AlertState.resolved
        assert alerts[CheckKind.drift].persona == "ml_engineer" and alerts[CheckKind.kpi].persona == "business"
        assert alerts[CheckKind.kpi].channel == "C0BIZ"


def test_kpi_relative_alert_waits_for_a_full_baseline(db, tmp_path):
    _register(db, tmp_path)
    append_weeks(tmp_path, [week(0, miss=0.1), week(1, miss=0.3)])  # rate triples, but only one earlier week
    checked = check_model(db=db, model_key="default-risk", as_of=week_end(1), kinds={CheckKind.kpi})
    rate = next(k for k in checked.result(CheckKind.kpi).outcome.figures["kpis"] if k["name"] == "missed_rate")
    assert rate["baseline"] is None and not rate["breached"]


def test_late_labels_count_only_labelled_rows(db, tmp_path):
    _register(db, tmp_path)
    append_weeks(tmp_path, [week(0, label_share=0.5)])
    checked = check_model(db=db, model_key="default-risk", as_of=week_end(0), kinds={CheckKind.performance})
    figures = checked.result(CheckKind.performance).outcome.figures
    assert figures["rows"] == 4000 and 1800 < figures["labelled_rows"] < 2200


def test_an_empty_window_is_an_error_not_a_crash(db, project):
    checked = check_model(db=db, model_key="default-risk", as_of=week_end(10), kinds={CheckKind.drift})
    outcome = checked.result(CheckKind.drift).outcome
    assert outcome.verdict == Verdict.error and "no production rows between" in outcome.message


def test_a_broken_source_errors_that_model_and_the_others_still_run(db, tmp_path):
    _register(db, tmp_path / "good")
    append_weeks(tmp_path / "good", [week(w) for w in range(4)])
    _register(db, tmp_path / "broken", project="other", model="other-model")
    (tmp_path / "broken" / "data" / "reference.parquet").unlink()  # production.db was never written either
    results = {r.model_key: r for r in check_all(db=db, as_of=week_end(3))}
    assert set(_verdicts(results["other-model"]).values()) == {Verdict.error}
    assert "cannot read production data" in results["other-model"].results[0].outcome.message
    assert set(_verdicts(results["default-risk"]).values()) == {Verdict.ok}
    with db.session() as s:
        assert s.query(CheckRun).filter_by(verdict=Verdict.error).count() == len(results["other-model"].results)


def test_missing_column_in_production_is_a_data_quality_breach(db, tmp_path):
    _register(db, tmp_path)
    append_weeks(tmp_path, [week(0).drop(columns=["debt"]).assign(debt=None)])
    checked = check_model(db=db, model_key="default-risk", as_of=week_end(0), kinds={CheckKind.data_quality})
    outcome = checked.result(CheckKind.data_quality).outcome
    assert outcome.verdict == Verdict.breach and "debt 100% (reference 0%" in outcome.message
