"""Sources on object storage, against moto's S3 server on 127.0.0.1: a churn model whose scored rows sit in a
day-partitioned Parquet dataset (`scored/dt=2026-11-30/part-0.parquet`), applied and checked through
Flywheel's normal path, gives the results of the same rows read from a local file; a window's read lists and
fetches only that window's partitions; credentials never come from a spec."""

from __future__ import annotations

import io
import socket
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

pytest.importorskip("s3fs", reason="object-storage sources need s3fs: pip install 's3fs' 'moto[server]' boto3")
pytest.importorskip("moto.moto_server.threaded_moto_server", reason="the local S3 server needs 'moto[server]'")

from bot.services.specs import apply_spec  # noqa: E402
from jobs.monitor import check_model  # noqa: E402
from jobs.sources import SourceError, SourceSpec, open_source  # noqa: E402
from jobs.spec import SpecError, load_spec  # noqa: E402
from store import registry  # noqa: E402
from store.models import CheckKind, Verdict  # noqa: E402
from tests.support.s3_server import KEY_ID, SECRET, S3Server  # noqa: E402

BUCKET = "churn-data"
START = datetime(2026, 11, 2)  # a Monday
DAYS = 35  # five weeks of scored customers; the last one drifts
AS_OF = START + timedelta(days=28)  # checks the fourth week: the fifth is in the bucket but after the window

SPEC = """\
project:
  key: retention-{where}
  name: Customer retention
  owner: U0ML0001
  risk_tier: low
people:
  - {{slack_id: U0ML0001, name: Eli, roles: [ml_engineer]}}
  - {{slack_id: U0BIZ001, name: Dana, roles: [business]}}
channels: {{business: C0BIZ, ml_engineer: C0ML}}
blueprint:
  name: light
  steps:
    - {{name: technical validation, role: ml_engineer}}
models:
  - key: churn-{where}
    owner: U0ML0001
    data:
      reference: {reference}
      production: {production}
      timestamp: scored_at
      prediction: will_churn
      label: churned
    features:
      numeric: [tenure_months, monthly_charges]
      categorical: [plan]
    drift:
      window: 7d
    kpis:
      - name: missed_churners
        label: Churners missed
        aggregate: rate
        where: "churned == 1 and will_churn == 0"
        of: "churned == 1"
        alert: {{above: 0.5}}
"""


def customers(day: int, *, n: int = 300, shift: float = 0.0, seed: int = 7) -> pd.DataFrame:
    """One day of scored customers; `shift` raises monthly charges by that many standard deviations."""
    rng = np.random.default_rng([seed, day + 100])
    churned = (rng.random(n) < 0.15).astype(int)
    caught = rng.random(n) < 0.7
    moment = START + timedelta(days=day)
    return pd.DataFrame({
        "scored_at": moment + pd.to_timedelta(np.sort(rng.random(n)) * 86400, unit="s"),
        "tenure_months": rng.integers(1, 72, n).astype(float),
        "monthly_charges": rng.normal(60 + 15 * shift, 15, n).round(2),
        "plan": rng.choice(["basic", "plus", "family"], n, p=[0.5, 0.3, 0.2]),
        "churned": churned,
        "will_churn": np.where(churned == 1, caught, rng.random(n) < 0.05).astype(int),
    })


def put_parquet(client, key: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    client.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())


@pytest.fixture
def s3(monkeypatch):
    with S3Server() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookups
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(name, raising=False)  # the server's keys, whatever the machine has
        yield server


@pytest.fixture
def churn(s3, tmp_path):
    """The same rows in the bucket (reference object, production partitioned by day) and on local disk."""
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    reference = pd.concat([customers(-d, seed=3) for d in range(1, 15)], ignore_index=True)
    days = [customers(d, shift=1.0 if d >= 21 else 0.0) for d in range(DAYS)]
    put_parquet(client, "reference.parquet", reference)
    for d, frame in enumerate(days):
        put_parquet(client, f"scored/dt={START + timedelta(days=d):%Y-%m-%d}/part-0.parquet", frame)
    (tmp_path / "data").mkdir()
    reference.to_parquet(tmp_path / "data" / "reference.parquet", index=False)
    pd.concat(days, ignore_index=True).to_parquet(tmp_path / "data" / "scored.parquet", index=False)
    s3.take()
    return tmp_path


def write_spec(folder: Path, where: str, *, reference: str, production: str) -> Path:
    path = folder / f"retention-{where}.yml"
    path.write_text(SPEC.format(where=where, reference=reference, production=production))
    return path


def applied(db, path: Path):
    loaded = load_spec(path, open_production=True)
    with db.session() as s:
        apply_spec(session=s, loaded=loaded)
    return loaded


S3_SOURCES = dict(reference=f"{{path: 's3://{BUCKET}/reference.parquet'}}",
                  production=f"{{path: 's3://{BUCKET}/scored', partition: {{column: dt, format: '%Y-%m-%d'}}}}")


def test_a_partitioned_bucket_checks_like_the_same_rows_on_disk(db, churn, s3):
    applied(db, write_spec(churn, "s3", **S3_SOURCES))
    applied(db, write_spec(churn, "local", reference="{path: data/reference.parquet}",
                           production="{path: data/scored.parquet}"))
    s3.take()

    remote = check_model(db=db, model_key="churn-s3", as_of=AS_OF)
    requests = s3.take()
    local = check_model(db=db, model_key="churn-local", as_of=AS_OF)

    for kind in (CheckKind.drift, CheckKind.kpi, CheckKind.data_quality):
        assert remote.result(kind).outcome.verdict == local.result(kind).outcome.verdict, kind
    assert remote.result(CheckKind.drift).outcome.verdict == Verdict.breach  # the last week's charges moved
    assert remote.result(CheckKind.drift).outcome.subjects == ("monthly_charges",)
    assert remote.result(CheckKind.drift).outcome.figures == local.result(CheckKind.drift).outcome.figures
    assert remote.result(CheckKind.kpi).outcome.figures == local.result(CheckKind.kpi).outcome.figures

    # The fifth week, in the bucket after as_of, was never listed or read, but for its newest day, whose
    # files give the dataset's columns (the newest data has the current schema).
    newest = f"dt={START + timedelta(days=DAYS - 1):%Y-%m-%d}"
    after = {f"dt={AS_OF + timedelta(days=d):%Y-%m-%d}" for d in range(DAYS - 28)} - {newest}
    touched = {r.path for r in requests} | {r.listed for r in requests if r.listed is not None}
    assert len(after) == 6 and not {t for t in touched if any(day in t for day in after)}
    # ... and the dataset was never listed whole: every listing of its folder asks for one level only.
    whole = [r for r in requests if r.listed == "scored/" and r.query.get("delimiter", [""])[0] != "/"]
    assert whole == []
    fetched = {r.path.split("/")[3] for r in requests if r.method == "GET" and r.path.endswith(".parquet")
               and "/scored/" in r.path} - {newest}
    assert fetched and max(fetched) < f"dt={AS_OF:%Y-%m-%d}"


def test_a_window_reads_its_partitions_only(churn, s3):
    source = open_source(SourceSpec.model_validate(
        {"path": f"s3://{BUCKET}/scored", "partition": {"column": "dt"}}), churn)
    assert source.schema()["monthly_charges"] == "numeric"
    assert "dt" not in source.schema()  # it names folders; the data's own columns are what a spec reads
    s3.take()
    start, end = START + timedelta(days=10, hours=12), START + timedelta(days=12)
    frame = source.read(["scored_at", "monthly_charges"], time_column="scored_at", start=start, end=end)

    expected = pd.concat([customers(10), customers(11)])
    expected = expected[(expected.scored_at >= start) & (expected.scored_at < end)]
    assert len(frame) == len(expected) > 0
    assert frame.monthly_charges.sum() == pytest.approx(expected.monthly_charges.sum())
    requests = s3.take()
    listed = {r.listed for r in requests if r.listed is not None}
    assert listed <= {"scored/", "scored/dt=2026-11-12/", "scored/dt=2026-11-13/"}
    assert {"scored/dt=2026-11-12/", "scored/dt=2026-11-13/"} <= listed
    objects = {r.path for r in requests if r.method == "GET" and r.path.endswith(".parquet")}
    assert objects == {f"/{BUCKET}/scored/dt=2026-11-12/part-0.parquet", f"/{BUCKET}/scored/dt=2026-11-13/part-0.parquet"}

    empty = source.read(["monthly_charges"], time_column="scored_at", start=datetime(2027, 3, 1),
                        end=datetime(2027, 3, 2))
    assert empty.empty and list(empty.columns) == ["monthly_charges"]


@pytest.mark.parametrize("path", ["s3://AKIAEXAMPLE:wJalrXUtnFEMI@churn-data/scored",
                                  "s3://churn-data/scored?secret_access_key=abc"])
def test_credentials_in_a_spec_are_refused(path):
    with pytest.raises(ValidationError) as caught:
        SourceSpec.model_validate({"path": path})
    message = caught.value.errors()[0]["msg"]
    assert "credentials don't belong in a spec" in message and "AWS_ACCESS_KEY_ID" in message
    assert "wJalrXUtnFEMI" not in message and "abc" not in message


def test_a_spec_with_keys_in_its_url_is_refused_at_load(tmp_path):
    path = write_spec(tmp_path, "keys", reference="{path: 's3://AKIAEXAMPLE:hunter2@churn-data/reference.parquet'}",
                      production=S3_SOURCES["production"])
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    text = str(caught.value)
    assert "credentials don't belong in a spec" in text and "hunter2" not in text


def test_a_wrong_bucket_is_named_and_nothing_is_stored(db, churn, s3):
    path = write_spec(churn, "s3", reference="{path: 's3://churn-dta/reference.parquet'}",
                      production=S3_SOURCES["production"])
    with pytest.raises(SpecError) as caught:
        applied(db, path)
    assert "no bucket 'churn-dta'" in str(caught.value) and "check the bucket name" in str(caught.value)
    with db.session() as s:
        assert registry.list_models(session=s) == []


def test_missing_credentials_and_unreachable_server_say_what_to_set(churn, s3, monkeypatch):
    spec = SourceSpec.model_validate({"path": f"s3://{BUCKET}/scored", "partition": {"column": "dt"}})
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(churn / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(churn / "no-config"))
    with pytest.raises(SourceError) as caught:
        open_source(spec, churn).schema()
    assert str(caught.value) == (f"no credentials to read s3://{BUCKET}/scored: set AWS_ACCESS_KEY_ID and "
                                 "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) where Flywheel runs")

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's retries of a refused connection take 10 s
    with pytest.raises(SourceError) as caught:
        open_source(spec, churn).schema()
    assert str(caught.value).startswith(f"cannot reach the storage server at {endpoint} to read s3://{BUCKET}/scored")
    assert "check AWS_ENDPOINT_URL" in str(caught.value)


def test_a_check_over_an_unreadable_bucket_reports_the_problem(db, churn, s3, monkeypatch):
    applied(db, write_spec(churn, "s3", **S3_SOURCES))
    s3.client().delete_object(Bucket=BUCKET, Key="reference.parquet")
    for d in range(DAYS):
        s3.client().delete_object(Bucket=BUCKET, Key=f"scored/dt={START + timedelta(days=d):%Y-%m-%d}/part-0.parquet")
    s3.client().delete_bucket(Bucket=BUCKET)
    checked = check_model(db=db, model_key="churn-s3", as_of=AS_OF)
    for result in checked.results:
        assert result.outcome.verdict == Verdict.error
        assert f"no bucket '{BUCKET}'" in result.outcome.message
