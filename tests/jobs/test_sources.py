import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from jobs.sources import SourceError, SourceSpec, open_source

UTC = UTC
PLUS_TWO = timezone(timedelta(hours=2))
TIMES = [datetime(2024, 1, 1, hour) for hour in range(6)]  # 00:00 .. 05:00 UTC


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "event_time": TIMES,
        "amount": [1.0, 2.0, None, 4.0, 5.0, 6.0],
        "country": ["US", "CA", None, "US", "FR", "US"],
        "is_fraud": [0, 1, 0, 0, 1, 0],
        "flag": [True, False, True, True, False, True],
    })


def source_for(spec: dict, base_dir: Path, **kwargs):
    return open_source(SourceSpec.model_validate(spec), base_dir, **kwargs)


# ---------------------------------------------------------------- files


def test_parquet_schema_kinds(tmp_path: Path) -> None:
    table = pa.table({
        "event_time": pa.array(TIMES, pa.timestamp("us")),
        "zoned": pa.array([t.replace(tzinfo=UTC) for t in TIMES], pa.timestamp("ms", tz="UTC")),
        "day": pa.array([t.date() for t in TIMES], pa.date32()),
        "amount": pa.array(range(6), pa.int32()),
        "score": pa.array([0.5] * 6, pa.float32()),
        "country": pa.array(list("abcdef")).dictionary_encode(),
        "flag": pa.array([True] * 6),
    })
    pq.write_table(table, tmp_path / "ref.parquet")
    source = source_for({"path": "ref.parquet"}, tmp_path)
    assert source.schema() == {
        "event_time": "datetime", "zoned": "datetime", "day": "datetime", "amount": "numeric",
        "score": "numeric", "country": "string", "flag": "bool",
    }
    assert source.describe() == str(tmp_path / "ref.parquet")


def test_parquet_read_only_asked_columns_in_window(tmp_path: Path) -> None:
    frame().to_parquet(tmp_path / "ref.parquet")
    source = source_for({"path": "ref.parquet"}, tmp_path)
    result = source.read(["country", "amount"], time_column="event_time",
                         start=datetime(2024, 1, 1, 1), end=datetime(2024, 1, 1, 4))
    assert list(result.columns) == ["country", "amount"]
    assert result["country"].tolist()[0] == "CA" and len(result) == 3  # 01:00, 02:00, 03:00


def test_aware_bounds_are_converted_to_utc(tmp_path: Path) -> None:
    frame().to_parquet(tmp_path / "ref.parquet")
    source = source_for({"path": "ref.parquet"}, tmp_path)
    # 03:00+02:00 is 01:00 UTC; 06:00+02:00 is 04:00 UTC
    result = source.read(["event_time"], time_column="event_time",
                         start=datetime(2024, 1, 1, 3, tzinfo=PLUS_TWO), end=datetime(2024, 1, 1, 6, tzinfo=PLUS_TWO))
    assert result["event_time"].tolist() == TIMES[1:4]


def test_zoned_time_column_comes_back_naive_utc(tmp_path: Path) -> None:
    zoned = frame().assign(event_time=[t.replace(tzinfo=UTC).astimezone(PLUS_TWO) for t in TIMES])
    zoned.to_parquet(tmp_path / "ref.parquet")
    result = source_for({"path": "ref.parquet"}, tmp_path).read(
        ["event_time", "is_fraud"], time_column="event_time", start=datetime(2024, 1, 1, 4))
    assert pd.api.types.is_datetime64_dtype(result["event_time"].dtype)
    assert result["event_time"].dt.tz is None
    assert result["event_time"].tolist() == TIMES[4:]


def test_open_ended_windows(tmp_path: Path) -> None:
    frame().to_parquet(tmp_path / "ref.parquet")
    source = source_for({"path": "ref.parquet"}, tmp_path)
    assert len(source.read(["amount"], time_column="event_time", end=TIMES[2])) == 2
    assert len(source.read(["amount"], time_column="event_time", start=TIMES[2])) == 4
    assert len(source.read(["amount"])) == 6


def test_glob_and_folder_of_parquet_files(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    data = frame()
    data.iloc[:3].to_parquet(tmp_path / "parts" / "day-1.parquet")
    data.iloc[3:].to_parquet(tmp_path / "parts" / "day-2.parquet")
    by_glob = source_for({"path": "parts/day-*.parquet"}, tmp_path).read(
        ["amount"], time_column="event_time", start=TIMES[2], end=TIMES[5])
    assert by_glob["amount"].tolist()[1:] == [4.0, 5.0] and len(by_glob) == 3
    by_folder = source_for({"path": "parts"}, tmp_path).read(["is_fraud"])
    assert sorted(by_folder["is_fraud"].tolist()) == sorted(data["is_fraud"].tolist())


def test_csv_schema_and_window(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_text(
        "event_time,amount,country,flag\n"
        "2024-01-01 00:00:00,1.5,US,true\n"
        "2024-01-01 01:00:00,,CA,false\n"
        "2024-01-01 02:00:00,3,,true\n")
    source = source_for({"path": "ref.csv"}, tmp_path)
    assert source.schema() == {"event_time": "datetime", "amount": "numeric", "country": "string", "flag": "bool"}
    result = source.read(["event_time", "country"], time_column="event_time", start=TIMES[1])
    assert result["event_time"].tolist() == TIMES[1:3]
    assert result["country"].iloc[0] == "CA" and pd.isna(result["country"].iloc[1])


def test_format_can_be_named_for_odd_file_names(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "export.txt", index=False)
    assert "amount" in source_for({"path": "export.txt", "format": "csv"}, tmp_path).schema()
    with pytest.raises(SourceError, match="cannot tell the format of .*export.txt"):
        source_for({"path": "export.txt"}, tmp_path).schema()


@pytest.mark.parametrize(("path", "message"), [
    ("missing.parquet", "file not found: .*missing.parquet"),
    ("nothing-*.parquet", "no file matches .*nothing-\\*.parquet"),
])
def test_missing_files(tmp_path: Path, path: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        source_for({"path": path}, tmp_path).schema()


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(SourceError, match="cannot read .*broken.parquet as parquet: "):
        source_for({"path": "broken.parquet"}, tmp_path).schema()


def test_missing_column_is_named_with_suggestion(tmp_path: Path) -> None:
    frame().to_parquet(tmp_path / "ref.parquet")
    with pytest.raises(SourceError, match=r"ref.parquet: no column 'amout' \(did you mean 'amount'\?\)"):
        source_for({"path": "ref.parquet"}, tmp_path).read(["amout"])


def test_time_window_needs_a_datetime_column(tmp_path: Path) -> None:
    frame().to_parquet(tmp_path / "ref.parquet")
    with pytest.raises(SourceError, match="time column 'amount' holds numeric values, not date-times"):
        source_for({"path": "ref.parquet"}, tmp_path).read(["amount"], time_column="amount", start=TIMES[0])


# ---------------------------------------------------------------- SQL

DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("FLYWHEEL_TEST_DATABASE_URL") else [])


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(url, table) of a real database holding frame(), plus a zoned copy of its time column."""
    if request.param == "sqlite":
        (tmp_path / "data").mkdir()
        url = f"sqlite:///{tmp_path / 'data' / 'tx.db'}"
    else:
        url = os.environ["FLYWHEEL_TEST_DATABASE_URL"]
    engine = sa.create_engine(url)
    name = f"flywheel_src_{uuid.uuid4().hex[:10]}"
    table = sa.Table(
        name, sa.MetaData(),
        sa.Column("event_time", sa.DateTime()), sa.Column("zoned_time", sa.DateTime(timezone=True)),
        sa.Column("amount", sa.Float()), sa.Column("country", sa.String(8)),
        sa.Column("is_fraud", sa.Integer()), sa.Column("flag", sa.Boolean()),
    )
    table.create(engine)
    rows = frame().astype(object).where(frame().notna(), None).to_dict("records")
    with engine.begin() as connection:
        connection.execute(table.insert(), [dict(r, zoned_time=r["event_time"].replace(tzinfo=UTC)) for r in rows])
    try:
        yield url, name
    finally:
        table.drop(engine)
        engine.dispose()


def capture(engine: sa.Engine) -> list[str]:
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: statements.append(statement))
    return statements


def test_sql_table_schema_by_reflection(database: tuple[str, str], tmp_path: Path) -> None:
    url, table = database
    assert source_for({"url": url, "table": table}, tmp_path).schema() == {
        "event_time": "datetime", "zoned_time": "datetime", "amount": "numeric",
        "country": "string", "is_fraud": "numeric", "flag": "bool",
    }


def test_sql_read_pushes_columns_and_window_down(database: tuple[str, str], tmp_path: Path) -> None:
    url, table = database
    engine = sa.create_engine(url)
    statements = capture(engine)
    source = source_for({"url": url, "table": table}, tmp_path, engine=engine)
    result = source.read(["event_time", "amount"], time_column="event_time",
                         start=datetime(2024, 1, 1, 3, tzinfo=PLUS_TWO), end=TIMES[4])
    engine.dispose()
    assert result["event_time"].tolist() == TIMES[1:4]
    assert result["amount"].iloc[0] == 2.0 and pd.isna(result["amount"].iloc[1])
    assert list(result.columns) == ["event_time", "amount"]
    assert pd.api.types.is_datetime64_dtype(result["event_time"].dtype)
    select = next(s for s in statements if table in s and "WHERE" in s.upper())
    chosen = select.upper().split("FROM")[0]
    assert "*" not in chosen and "COUNTRY" not in chosen and "IS_FRAUD" not in chosen
    assert "AMOUNT" in chosen and "EVENT_TIME" in select.upper().split("WHERE")[1]


def test_sql_zoned_time_column(database: tuple[str, str], tmp_path: Path) -> None:
    url, table = database
    result = source_for({"url": url, "table": table}, tmp_path).read(
        ["zoned_time", "is_fraud"], time_column="zoned_time", start=TIMES[4])
    assert result["zoned_time"].tolist() == TIMES[4:]
    assert result["zoned_time"].dt.tz is None
    assert result["is_fraud"].tolist() == [1, 0]


def test_sql_query_is_wrapped_as_subquery(database: tuple[str, str], tmp_path: Path) -> None:
    url, table = database
    engine = sa.create_engine(url)
    statements = capture(engine)
    query = f"SELECT event_time, amount, country FROM {table} WHERE country = 'US'"
    source = source_for({"url": url, "query": query}, tmp_path, engine=engine)
    assert source.schema() == {"event_time": "datetime", "amount": "numeric", "country": "string"}
    result = source.read(["amount"], time_column="event_time", start=TIMES[1], end=TIMES[5])
    engine.dispose()
    assert result["amount"].tolist() == [4.0]
    last = statements[-1]
    assert last.upper().startswith("SELECT") and "(" + query + ")" in last
    outside = last.upper().split("AS FLYWHEEL_SOURCE")[-1]  # the window is applied outside the query
    assert "WHERE" in outside and "EVENT_TIME" in outside


def test_sql_missing_table_and_column(database: tuple[str, str], tmp_path: Path) -> None:
    url, table = database
    with pytest.raises(SourceError, match="table 'no_such_table' not found in "):
        source_for({"url": url, "table": "no_such_table"}, tmp_path).schema()
    with pytest.raises(SourceError, match=r"no column 'amont' \(did you mean 'amount'\?\)"):
        source_for({"url": url, "table": table}, tmp_path).read(["amont"])


def test_sql_failing_query(database: tuple[str, str], tmp_path: Path) -> None:
    url, _ = database
    with pytest.raises(SourceError, match="query failed on .*query 'SELECT \\* FROM nowhere'"):
        source_for({"url": url, "query": "SELECT * FROM nowhere"}, tmp_path).schema()


def test_relative_sqlite_path_resolves_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    frame().to_sql("scored", sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'tx.db'}"), index=False)
    source = source_for({"url": "sqlite:///data/tx.db", "table": "scored"}, tmp_path)
    assert source.describe() == f"sqlite:///{tmp_path / 'data' / 'tx.db'} (table scored)"
    assert source.read(["country"], time_column="event_time", start=TIMES[5])["country"].tolist() == ["US"]


def test_sqlite_text_timestamps_in_mixed_layouts(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'tx.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE tx (event_time TIMESTAMP, amount REAL)")
        connection.exec_driver_sql(
            "INSERT INTO tx VALUES ('2024-01-01 00:00:00', 1), ('2024-01-01T01:00:00Z', 2), "
            "('2024-01-01 02:00:00.000000', 3), ('2024-01-01T05:00:00+02:00', 4), ('2024-01-01 04:00:00', 5)")
    engine.dispose()
    result = source_for({"url": "sqlite:///tx.db", "table": "tx"}, tmp_path).read(
        ["event_time", "amount"], time_column="event_time", start=TIMES[1], end=TIMES[4])
    assert sorted(result["amount"].tolist()) == [2.0, 3.0, 4.0]  # 05:00+02:00 is 03:00 UTC
    assert sorted(result["event_time"].tolist()) == TIMES[1:4]


def test_missing_sqlite_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="database file not found: .*nope.db"):
        source_for({"url": "sqlite:///nope.db", "table": "t"}, tmp_path).schema()
    assert not (tmp_path / "nope.db").exists()


def test_unreachable_database_hides_the_password(tmp_path: Path) -> None:
    source = source_for({"url": "postgresql+psycopg://eli:s3cr3t-pw@127.0.0.1:1/fraud", "table": "t"}, tmp_path)
    assert source.describe() == "postgresql+psycopg://eli:***@127.0.0.1:1/fraud (table t)"
    with pytest.raises(SourceError) as caught:
        source.schema()
    assert str(caught.value).startswith("cannot connect to postgresql+psycopg://eli:***@127.0.0.1:1/fraud: ")
    assert "s3cr3t-pw" not in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_url_placeholders_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame().to_sql("scored", sa.create_engine(f"sqlite:///{tmp_path / 'tx.db'}"), index=False)
    spec = {"url": "sqlite:///${FLYWHEEL_TEST_DB_FILE}", "table": "scored"}
    monkeypatch.delenv("FLYWHEEL_TEST_DB_FILE", raising=False)
    with pytest.raises(SourceError, match="environment variable FLYWHEEL_TEST_DB_FILE is not set"):
        source_for(spec, tmp_path)
    monkeypatch.setenv("FLYWHEEL_TEST_DB_FILE", str(tmp_path / "tx.db"))
    assert len(source_for(spec, tmp_path).read(["amount"])) == 6


@pytest.mark.parametrize(("spec", "message"), [
    ({"path": "a.parquet", "url": "sqlite:///x.db"}, "either 'path' (a file) or 'url' (a database)"),
    ({}, "either 'path' (a file) or 'url' (a database)"),
    ({"url": "sqlite:///x.db"}, "needs either 'table' or 'query'"),
    ({"url": "sqlite:///x.db", "table": "t", "query": "SELECT 1"}, "needs either 'table' or 'query'"),
    ({"path": "a.parquet", "table": "t"}, "'table' only applies to a database 'url'"),
    ({"url": "sqlite:///x.db", "table": "t", "format": "csv"}, "'format' only applies to a file 'path'"),
    ({"url": "postgresql://u:hunter2@host:port/db", "table": "t"}, "not a valid database URL"),
    ({"path": "a.parquet", "sheet": 1}, "Extra inputs are not permitted"),
    ({"path": "s3://AKIA1:hunter2@bucket/scored"}, "credentials don't belong in a spec"),
    ({"path": "s3://bucket/scored/*.parquet"}, "takes no wildcards"),
    ({"path": "data/*", "partition": {"column": "dt"}}, "a partitioned 'path' is the dataset's folder"),
    ({"url": "sqlite:///x.db", "table": "t", "partition": {"column": "dt"}}, "'partition' only applies to a file"),
    ({"path": "data", "partition": {"column": "dt", "format": "%Y/%m/%d"}}, "use strftime codes %Y, %m, %d, %H"),
    ({"path": "data", "partition": {"column": "dt", "format": "%m-%d"}}, "%Y among them"),
    ({"path": "data", "partition": {"column": "dt=", "format": "%Y"}}, "String should match pattern"),
])
def test_source_spec_validation(spec: dict, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SourceSpec.model_validate(spec)
    [error] = caught.value.errors()
    assert message in error["msg"]
    assert "hunter2" not in error["msg"]


def test_a_partitioned_folder_reads_the_window_from_its_partitions(tmp_path: Path) -> None:
    """Hourly rows in day folders (dt=2024-01-01 ...): a window reads its days' folders and exactly its rows;
    a folder of a day outside the window that cannot be read is never opened."""
    rows = pd.DataFrame({"event_time": [datetime(2024, 1, 1) + timedelta(hours=h) for h in range(96)],
                         "amount": [float(h) for h in range(96)]})
    for day, part in rows.groupby(rows.event_time.dt.strftime("%Y-%m-%d")):
        (tmp_path / "scored" / f"dt={day}").mkdir(parents=True)
        part.to_parquet(tmp_path / "scored" / f"dt={day}" / "part-0.parquet", index=False)
    (tmp_path / "scored" / "dt=2024-01-02" / "part-1.parquet").write_bytes(b"not parquet")  # never opened below
    source = source_for({"path": "scored", "partition": {"column": "dt"}}, tmp_path)

    assert source.schema() == {"event_time": "datetime", "amount": "numeric"}
    window = source.read(["amount"], time_column="event_time", start=datetime(2024, 1, 3, 20),
                         end=datetime(2024, 1, 4, 2))
    assert window.amount.tolist() == [float(h) for h in range(68, 74)]
    assert source.read(["amount"], time_column="event_time", start=datetime(2024, 2, 1),
                       end=datetime(2024, 2, 2)).empty
    with pytest.raises(SourceError, match="cannot read"):
        source.read(["amount"], time_column="event_time", start=datetime(2024, 1, 2), end=datetime(2024, 1, 3))


def test_a_partitioned_dataset_has_its_newest_partitions_columns(tmp_path: Path) -> None:
    """Day-first folders sort wrongly as text (31-12-2023 after 01-01-2024): the newest is found by date,
    and its columns are the dataset's; older partitions without a new column read it as missing."""
    old = pd.DataFrame({"event_time": [datetime(2023, 12, 31, 9)], "amount": [1.0]})
    new = pd.DataFrame({"event_time": [datetime(2024, 1, 1, 9)], "amount": [2.0], "channel": ["web"]})
    for day, part in (("31-12-2023", old), ("01-01-2024", new)):
        (tmp_path / f"dt={day}").mkdir()
        part.to_parquet(tmp_path / f"dt={day}" / "part-0.parquet", index=False)
    source = source_for({"path": ".", "partition": {"column": "dt", "format": "%d-%m-%Y"}}, tmp_path)
    assert source.schema() == {"event_time": "datetime", "amount": "numeric", "channel": "string"}
    both = source.read(["amount", "channel"], time_column="event_time", start=datetime(2023, 12, 31),
                       end=datetime(2024, 1, 2))
    assert both.amount.tolist() == [1.0, 2.0] and both.channel.isna().tolist() == [True, False]


def test_any_fsspec_protocol_is_a_path(tmp_path: Path) -> None:
    """fsspec's in-memory filesystem stands for any protocol besides s3:// (tests/jobs/test_object_sources.py)."""
    fsspec = pytest.importorskip("fsspec", reason="object-storage paths need fsspec (pip install 'flywheel[s3]')")
    memory = fsspec.filesystem("memory")
    folder = f"/flywheel-test-{uuid.uuid4().hex}"
    for day in (1, 2, 3):
        with memory.open(f"{folder}/dt=2024-01-0{day}/part-0.csv", "w") as out:
            out.write(f"event_time,amount\n2024-01-0{day} 10:00:00,{day}\n")
    source = source_for({"path": f"memory://{folder}", "partition": {"column": "dt"}}, tmp_path)
    assert source.read(["amount"], time_column="event_time", start=datetime(2024, 1, 2),
                       end=datetime(2024, 1, 3)).amount.tolist() == [2]
    assert source_for({"path": f"memory://{folder}/dt=2024-01-03/part-0.csv"}, tmp_path).read(["amount"]) \
        .amount.tolist() == [3]
    with pytest.raises(SourceError, match="unknown storage 'nosuch://'"):
        source_for({"path": "nosuch://bucket/x"}, tmp_path).schema()
    memory.rm(folder, recursive=True)


def test_partition_values_of_a_window() -> None:
    from jobs.sources.objects import partition_values

    assert partition_values("%Y-%m-%d", datetime(2024, 1, 30, 12), datetime(2024, 2, 2)) == \
        ["2024-01-30", "2024-01-31", "2024-02-01"]
    assert partition_values("%Y-%m", datetime(2024, 11, 20), datetime(2025, 1, 1)) == ["2024-11", "2024-12"]
    assert partition_values("%Y%m%d%H", datetime(2024, 1, 1, 22, 30), datetime(2024, 1, 2, 0, 1)) == \
        ["2024010122", "2024010123", "2024010200"]
    assert partition_values("%Y-%m-%d", datetime(2024, 1, 1), datetime(2024, 1, 1)) == []


def test_read_arguments_are_checked(tmp_path: Path) -> None:
    frame().to_parquet(tmp_path / "ref.parquet")
    source = source_for({"path": "ref.parquet"}, tmp_path)
    with pytest.raises(ValueError, match="at least one column"):
        source.read([])
    with pytest.raises(ValueError, match="start/end need a time_column"):
        source.read(["amount"], start=TIMES[0])


def test_empty_window_keeps_column_types(database: tuple[str, str], tmp_path: Path) -> None:
    frame().to_parquet(tmp_path / "ref.parquet")
    url, table = database
    for source in (source_for({"path": "ref.parquet"}, tmp_path), source_for({"url": url, "table": table}, tmp_path)):
        result = source.read(["event_time", "amount"], time_column="event_time", start=datetime(2030, 1, 1))
        assert len(result) == 0 and list(result.columns) == ["event_time", "amount"]
        assert pd.api.types.is_datetime64_dtype(result["event_time"].dtype)


def test_colons_in_a_query_are_literal(database: tuple[str, str], tmp_path: Path) -> None:
    url, table = database
    query = f"SELECT event_time, amount, ':tag' AS tag FROM {table} WHERE country = 'US'"
    result = source_for({"url": url, "query": query}, tmp_path).read(["tag", "amount"])
    assert result["tag"].tolist() == [":tag"] * 3 and sorted(result["amount"]) == [1.0, 4.0, 6.0]
