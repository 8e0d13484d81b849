"""What a worker keeps between checks (a summarised reference, opened files, parsed KPI clauses) never
changes a figure, and a file rewritten between checks is read afresh."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from jobs.expressions import parse
from jobs.monitor import evaluate_model
from jobs.sources import SourceSpec, open_source
from jobs.statistics import DriftInputError, drift_report, prepare_reference
from store.models import CheckKind, Verdict
from jobs.spec import ModelSpec
from tests.support.projects import append_weeks, week, week_end, write_project


def _windows(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3 + shift, 1.0, rows)
    amount[rng.random(rows) < 0.03] = np.nan
    channel = rng.choice(np.array(["web", "shop", "phone", "kiosk" if shift else "web"], dtype=object), rows)
    channel[rng.random(rows) < 0.02] = None
    return pd.DataFrame({"amount": amount, "age": rng.integers(18, 90, rows).astype(float),
                         "channel": pd.Series(channel, dtype="str")})


@pytest.mark.parametrize("numeric_method,categorical_method", [("wasserstein", "jensen_shannon"),
                                                               ("psi", "psi"), ("ks", "chi_square")])
@pytest.mark.parametrize("rows", [800, 60_000])  # 60k: the threaded path
def test_a_prepared_reference_gives_the_frames_figures(numeric_method, categorical_method, rows):
    reference, current = _windows(rows, 1), _windows(rows - 100, 2, shift=0.2)
    options = dict(numeric=["amount", "age"], categorical=["channel"], numeric_method=numeric_method,
                   categorical_method=categorical_method)
    prepared = prepare_reference(reference, numeric=["amount", "age"], categorical=["channel"])
    from_frame = drift_report(reference, current, **options)
    assert drift_report(prepared, current, **options) == from_frame
    assert drift_report(prepared, current, **options) == from_frame  # and again: nothing in it was consumed
    assert any(f.drifted for f in from_frame.features) and from_frame.features[2].unseen_categories == ("kiosk",)


def test_a_prepared_reference_raises_what_the_frame_raises():
    reference, current = _windows(500, 1), _windows(500, 2)
    reference["amount"] = np.nan
    options = dict(numeric=["age", "amount"], categorical=["channel"])
    with pytest.raises(DriftInputError) as from_frame:
        drift_report(reference, current, **options)
    prepared = prepare_reference(reference, **options)  # preparing does not raise: comparing does
    with pytest.raises(DriftInputError) as from_prepared:
        drift_report(prepared, current, **options)
    assert str(from_prepared.value) == str(from_frame.value) == \
        "feature 'amount' has no usable values in the reference window: all 500 rows are missing"
    empty = prepare_reference(reference.iloc[:0], **options)
    with pytest.raises(DriftInputError, match="the reference window is empty"):
        drift_report(empty, current, **options)
    with pytest.raises(DriftInputError, match="the reference window has no column for feature"):
        drift_report(prepare_reference(reference.drop(columns=["age"]), **options), current, **options)


def _project(tmp_path: Path) -> tuple[ModelSpec, Path]:
    path = write_project(tmp_path)
    append_weeks(tmp_path, [week(w) for w in range(3)])
    return ModelSpec.model_validate(yaml.safe_load(path.read_text())["models"][0]), tmp_path


def _drift_figures(spec: ModelSpec, folder: Path) -> dict:
    [outcome] = evaluate_model(spec, str(folder), week_end(2), {}, {CheckKind.drift})
    return outcome.figures


def test_a_rewritten_reference_file_is_read_again(tmp_path):
    spec, folder = _project(tmp_path)
    before = _drift_figures(spec, folder)
    assert _drift_figures(spec, folder) == before
    reference = folder / "data" / "reference.parquet"
    stat = reference.stat()
    week(-1, n=6000, seed=99, shift=2.0).to_parquet(reference, index=False)
    os.utime(reference, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # even within one clock tick
    after = _drift_figures(spec, folder)
    income = next(f for f in after["features"] if f["feature"] == "income")
    assert income["drifted"] and after != before


def test_a_breach_charts_the_reference_values_of_its_features(tmp_path):
    spec, folder = _project(tmp_path)
    append_weeks(folder, [week(3, shift=1.0)])
    [outcome] = evaluate_model(spec, str(folder), week_end(3), {}, {CheckKind.drift})
    assert outcome.verdict == Verdict.breach and outcome.subjects == ("income",)
    reference, current = outcome.evidence["income"]
    expected = pd.read_parquet(folder / "data" / "reference.parquet")["income"]
    assert reference.tolist() == expected.tolist() and len(current) == 4000


def test_one_kind_alone_judges_as_in_a_check_of_every_kind(tmp_path):
    spec, folder = _project(tmp_path)
    append_weeks(folder, [week(3, shift=1.0, miss=0.6, label_share=0.7)])
    everything = evaluate_model(spec, str(folder), week_end(3), {"recall": 0.8}, set(CheckKind))
    for outcome in everything:
        [alone] = evaluate_model(spec, str(folder), week_end(3), {"recall": 0.8}, {outcome.kind})
        assert replace(alone, evidence={}) == replace(outcome, evidence={})
    assert {o.kind: o.verdict for o in everything} == {
        CheckKind.drift: Verdict.breach, CheckKind.kpi: Verdict.breach, CheckKind.performance: Verdict.breach,
        CheckKind.data_quality: Verdict.ok}


def test_a_rewritten_parquet_file_is_opened_again(tmp_path):
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(path, index=False)
    source = open_source(SourceSpec(path="rows.parquet"), tmp_path)
    assert source.read(["x"])["x"].tolist() == [1.0, 2.0]
    pd.DataFrame({"x": [3.0], "y": ["new"]}).to_parquet(path, index=False)
    fresh = open_source(SourceSpec(path="rows.parquet"), tmp_path)
    assert fresh.schema() == {"x": "numeric", "y": "string"} and fresh.read(["x", "y"])["y"].tolist() == ["new"]


def test_sqlite_windows_are_exact_to_the_microsecond(tmp_path):
    start, end = datetime(2026, 1, 5), datetime(2026, 1, 6)
    times = [start - timedelta(microseconds=100), start, start + timedelta(microseconds=1),
             end - timedelta(microseconds=100), end, end + timedelta(microseconds=100)]
    with sqlite3.connect(tmp_path / "rows.db") as connection:
        pd.DataFrame({"ts": times, "n": range(6)}).to_sql("rows", connection, index=False)
    source = open_source(SourceSpec(url="sqlite:///rows.db", table="rows"), tmp_path)
    inside = source.read(["n"], time_column="ts", start=start, end=end)  # julianday() alone keeps milliseconds
    assert inside["n"].tolist() == [1, 2, 3] and list(inside.columns) == ["n"]
    with_time = source.read(["ts", "n"], time_column="ts", start=start, end=end)
    assert with_time["ts"].tolist() == times[1:4]


def test_number_comparisons_skip_missing_values_as_through_pandas():
    frame = pd.DataFrame({"score": [0.2, np.nan, 0.9, 1.0], "label": [1, 0, 1, 1],
                          "flag": [True, False, True, False], "name": ["a", "b", None, "d"]})
    cases = {"score != 0.9": [True, False, False, True], "score >= label": [False, False, False, True],
             "label == true and flag == 1": [True, False, True, False], "not score < 0.5": [False, True, True, True],
             "name != 'b'": [True, False, False, True], "score > 0.1 or name == 'b'": [True, True, True, True]}
    for text, expected in cases.items():
        assert parse(text).evaluate(frame).tolist() == expected, text
        assert parse(text) is parse(text)  # parsed once, kept
