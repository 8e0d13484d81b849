"""What a spec promises to reach, refused when it is loaded with the file and line: a channel for each persona
that gets alerts, a database URL Flywheel can open, and (when applying) production data that is there, with its
columns and a timestamp of date-times."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from jobs.spec import SpecError, load_spec
from tests.jobs.test_spec import SPEC as TEST_SPEC
from tests.jobs.test_spec import edit, line_of, reference_frame, write


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spec folder with real reference data; the working directory, so file names read as given."""
    (tmp_path / "data").mkdir()
    reference_frame().to_parquet(tmp_path / "data" / "reference.parquet")
    monkeypatch.chdir(tmp_path)
    return tmp_path


SPEC = edit(TEST_SPEC, "package.module:function", "jobs.training:retrain")  # importable where the tests run
PRODUCTION = '      production: {url: "sqlite:///data/transactions.db", table: scored_transactions}'


def problems(name: str, *, open_production: bool = False) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(name, open_production=open_production)
    return str(caught.value).splitlines()


def write_production(folder: Path, *, timestamps: list[str] | None = None, drop: str | None = None) -> None:
    frame = reference_frame()
    if timestamps is not None:
        frame["event_time"] = (timestamps * len(frame))[: len(frame)]
    if drop:
        frame = frame.drop(columns=[drop])
    with sqlite3.connect(folder / "data" / "transactions.db") as connection:
        frame.to_sql("scored_transactions", connection, index=False, dtype={"event_time": "TEXT"}
                     if timestamps is not None else None)
    connection.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- channels


def test_no_channel_for_the_ml_engineer_who_gets_the_alerts(folder: Path) -> None:
    text = edit(SPEC, "ml_engineer: C0ML, ", "")
    assert problems(write(folder, text)) == [(
        f"fraud.yml:{line_of(text, 'channels:')} channels: no channel for ml_engineer, who gets the drift, "
        "performance and data quality alerts: add channels.ml_engineer: a Slack channel id like C0123ABCD "
        "(the channel's details, at the bottom)")]


def test_no_channels_at_all_names_each_persona_its_alerts_need(folder: Path) -> None:
    text = edit(SPEC, "channels: {business: C0BIZ, ml_engineer: C0ML, risk_manager: C0RISK, it_ops: C0OPS}\n", "")
    found = problems(write(folder, text))
    assert [line.split(" who gets ")[0] for line in found] == [
        "fraud.yml:1 channels: no channel for ml_engineer,",
        "fraud.yml:1 channels: no channel for business,",
        "fraud.yml:1 channels: no channel for risk_manager,"]
    assert "KPI alerts (missed_fraud_rate, missed_fraud_amount)" in found[1]
    assert "sign-off requests" in found[2]


def test_an_empty_channel_is_no_channel(folder: Path) -> None:
    text = edit(SPEC, "business: C0BIZ", 'business: ""')
    assert [line.split(":")[1] for line in problems(write(folder, text))] == [f"{line_of(text, 'channels:')} channels"]


def test_business_needs_no_channel_when_no_kpi_alerts(folder: Path) -> None:
    text = edit(SPEC, "business: C0BIZ, ", "")
    text = edit(text, "        alert: {above_baseline_pct: 25, baseline_windows: 4}\n", "")
    text = edit(text, "        alert: {above: 10000}\n", "")
    assert load_spec(write(folder, text)).spec.channels.business is None


# ---------------------------------------------------------------- KPIs


def test_a_rate_without_of_says_what_of_means(folder: Path) -> None:
    text = edit(SPEC, '        of: "is_fraud == 1"\n', "")
    assert problems(write(folder, text)) == [(
        f"fraud.yml:{line_of(text, 'name: missed_fraud_rate')} models[0].kpis[0]: aggregate 'rate' needs 'where' "
        "(the rows counted) and 'of' (the rows it is a share of)")]


# ---------------------------------------------------------------- database URLs


def test_an_unknown_scheme_is_refused_on_its_line(folder: Path) -> None:
    text = edit(SPEC, PRODUCTION, '      production: {url: "notadb://nowhere", table: scored_transactions}')
    assert problems(write(folder, text)) == [(
        f"fraud.yml:{line_of(text, 'notadb://')} models[0].data.production.url: unknown database scheme "
        "'notadb://' (expected sqlite:///FILE, postgresql+psycopg://USER@HOST/DATABASE or another SQLAlchemy "
        "dialect)")]


def test_a_missing_driver_names_its_package_once(folder: Path) -> None:
    text = edit(SPEC, "      reference: {path: data/reference.parquet}",
                "      reference: {url: 'mysql://ro@db.example/fraud', table: reference}")
    assert problems(write(folder, text)) == [(
        f"fraud.yml:{line_of(text, 'mysql://')} models[0].data.reference.url: the mysql:// driver (MySQLdb) is not "
        "installed: `pip install pymysql` and write the URL as mysql+pymysql://...")]


def test_postgres_scheme_is_a_known_spelling(folder: Path) -> None:
    text = edit(SPEC, PRODUCTION, '      production: {url: "postgres://ro@db.example/fraud", table: scored}')
    assert load_spec(write(folder, text)).spec.models[0].data.production.url.startswith("postgres://")


# ---------------------------------------------------------------- production data, opened when applying


def test_production_is_only_opened_when_applying(folder: Path) -> None:
    name = write(folder, SPEC)
    assert load_spec(name).spec.models[0].key == "fraud-detector"  # the worker reloads specs without data
    assert problems(name, open_production=True) == [(
        f"fraud.yml:{line_of(SPEC, 'production:')} models[0].data.production: cannot read the production data: "
        f"database file not found: {folder.resolve() / 'data' / 'transactions.db'} (a relative path is read "
        "from the spec's folder)")]


def test_a_missing_table_is_refused(folder: Path) -> None:
    with sqlite3.connect(folder / "data" / "transactions.db") as connection:
        connection.execute("CREATE TABLE scored (x INTEGER)")
    connection.close()
    found = problems(write(folder, SPEC), open_production=True)
    assert found == [(f"fraud.yml:{line_of(SPEC, 'production:')} models[0].data.production: cannot read the "
                     f"production data: table 'scored_transactions' not found in "
                     f"sqlite:///{folder.resolve() / 'data' / 'transactions.db'}")]


def test_an_unreachable_database_is_a_problem_with_a_hint(folder: Path) -> None:
    url = f"postgresql+psycopg://ro:hunter2@127.0.0.1:{_closed_port()}/fraud"
    text = edit(SPEC, PRODUCTION, f'      production: {{url: "{url}", table: scored_transactions}}')
    found = problems(write(folder, text), open_production=True)
    assert len(found) == 1 and "hunter2" not in found[0]
    assert found[0].startswith(f"fraud.yml:{line_of(text, 'production:')} models[0].data.production: cannot read "
                               "the production data: cannot connect to postgresql+psycopg://ro:***@127.0.0.1:")
    assert found[0].endswith("; apply opens each model's production data read-only to check it: start the "
                             "database or fix the URL")


def test_a_missing_production_column_is_refused(folder: Path) -> None:
    write_production(folder, drop="fraud_score")
    assert problems(write(folder, SPEC), open_production=True) == [(
        f"fraud.yml:{line_of(SPEC, 'score: fraud_score')} models[0].data.score: unknown column 'fraud_score' in "
        "the production data (not in the production data)")]


def test_iso_text_timestamps_in_sqlite_are_date_times(folder: Path) -> None:
    write_production(folder, timestamps=["2024-01-01 10:00:00", "2024-01-02T11:30:00Z", "2024-01-03"])
    assert load_spec(write(folder, SPEC), open_production=True).spec.models[0].key == "fraud-detector"


def test_text_timestamps_that_are_not_times_are_refused(folder: Path) -> None:
    write_production(folder, timestamps=["yesterday", "01/02/2024"])
    assert problems(write(folder, SPEC), open_production=True) == [(
        f"fraud.yml:{line_of(SPEC, 'timestamp: event_time')} models[0].data.timestamp: column 'event_time' holds "
        "string values in the production data; the timestamp needs date-times (store ISO 8601 text like "
        "2026-01-05 10:00:00, or a timestamp column)")]


def test_a_valid_spec_with_its_production_data_loads(folder: Path) -> None:
    write_production(folder)
    assert load_spec(write(folder, SPEC), open_production=True).spec.models[0].key == "fraud-detector"


def test_a_retrain_entrypoint_that_cannot_be_imported_is_refused_when_applying(folder: Path) -> None:
    write_production(folder)
    text = edit(SPEC, "jobs.training:retrain", "fraud_trainig.train:retrain")
    name = write(folder, text)
    assert load_spec(name).spec.models[0].retrain.entrypoint == "fraud_trainig.train:retrain"
    assert problems(name, open_production=True) == [(
        f"fraud.yml:{line_of(text, 'retrain:')} models[0].retrain.entrypoint: retrain entrypoint "
        "'fraud_trainig.train:retrain': no package 'fraud_trainig' to import here, so the Retrain button of this "
        "model's alerts could only fail; install the package where Flywheel runs, or fix the entrypoint "
        "(package.module:function)")]
