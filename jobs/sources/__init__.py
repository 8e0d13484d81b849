"""Model data sources: Parquet/CSV files (pyarrow datasets) and SQL tables or queries (SQLAlchemy).

A source reads only the columns asked for and only the rows of one time window; both are pushed
down to pyarrow or the database. Cached per process: database engines, and the opened pyarrow
dataset of a file set (its footer or header, reopened whenever a file's size or mtime changes).
Rows are never cached.
"""

from __future__ import annotations

import difflib
import functools
import glob
import os
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy.engine import URL, Engine, make_url

ColumnKind = Literal["numeric", "string", "datetime", "bool"]
FileFormat = Literal["parquet", "csv"]

_SUFFIX_FORMATS: dict[str, FileFormat] = {
    ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet",
    ".csv": "csv", ".csv.gz": "csv", ".csv.bz2": "csv", ".csv.zst": "csv",
}
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_SAMPLE_ROWS = 100
_TIME_LABEL = "__flywheel_time"
_JULIANDAY_STEP = timedelta(milliseconds=1)
_DATASETS_KEPT = 64  # opened file sets; a worker checking many models reopens each one every cycle otherwise


class SourceError(Exception):
    """A data source cannot be read; the message names the source and the problem."""


class SourceSpec(BaseModel):
    """Where a model's data lives: `{path: ...}` (file, directory or glob) or `{url: ..., table|query: ...}`.

    `url` may hold `${ENV_VAR}` placeholders, expanded when the source is opened, so that a
    password never has to be written into a spec.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    path: str | None = None
    format: FileFormat | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        if (self.path is None) == (self.url is None):
            raise ValueError("give either 'path' (a file) or 'url' (a database), not both or neither")
        if self.path is not None:
            if not self.path:
                raise ValueError("'path' is empty")
            for key in ("table", "query"):
                if getattr(self, key) is not None:
                    raise ValueError(f"'{key}' only applies to a database 'url', not to a file 'path'")
            return self
        if self.format is not None:
            raise ValueError("'format' only applies to a file 'path'")
        if (self.table is None) == (self.query is None):
            raise ValueError("a database 'url' needs either 'table' or 'query', not both or neither")
        if not _ENV_VAR.search(self.url or ""):
            _parse_url(self.url or "")
        return self


class Source(ABC):
    """A readable table of model data."""

    @abstractmethod
    def describe(self) -> str:
        """A short human name for messages (never holds a password)."""

    @abstractmethod
    def schema(self) -> dict[str, ColumnKind]:
        """Column name -> kind, read cheaply (file metadata, a header sample, reflection)."""

    @abstractmethod
    def read(
        self,
        columns: Sequence[str],
        *,
        time_column: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Exactly `columns` (in that order) of the rows with start <= time_column < end.

        Naive datetimes are taken as UTC; datetime columns come back as naive UTC datetime64.
        """

    def fingerprint(self) -> Hashable | None:
        """Something equal for two opens of unchanged data, for caching what is derived from it; None
        when the data can change unseen (a database)."""
        return None

    def check_columns(self, columns: Sequence[str], *, time_column: str | None = None) -> None:
        """Raise the SourceError a read of these columns over a time window would raise for a missing
        column or a time column that holds no date-times, without reading any row."""
        window = datetime.min if time_column else None
        self._checked(columns, time_column, window, None)

    def _checked(self, columns: Sequence[str], time_column: str | None,
                 start: datetime | None, end: datetime | None) -> tuple[list[str], dict[str, ColumnKind]]:
        wanted = list(dict.fromkeys(columns))
        if not wanted:
            raise ValueError("read() needs at least one column")
        if (start is not None or end is not None) and time_column is None:
            raise ValueError("start/end need a time_column")
        kinds = self.schema()
        for name in wanted + ([time_column] if time_column else []):
            if name not in kinds:
                raise SourceError(f"{self.describe()}: {missing_column_message(name, kinds)}")
        if time_column and (start is not None or end is not None) and kinds[time_column] != "datetime":
            raise SourceError(
                f"{self.describe()}: time column '{time_column}' holds {kinds[time_column]} values, "
                "not date-times")
        return wanted, kinds


def missing_column_message(name: str, available: Sequence[str] | dict[str, object]) -> str:
    names = list(available)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"columns: {', '.join(names[:20])}"
    return f"no column '{name}' ({hint})"


def open_source(spec: SourceSpec, base_dir: Path, *, engine: Engine | None = None) -> Source:
    """A Source for `spec`; relative file paths and SQLite files resolve against `base_dir`.

    Pass `engine` to reuse an existing SQLAlchemy engine instead of one built from `spec.url`.
    """
    if spec.path is not None:
        return FileSource(_resolve(Path(spec.path).expanduser(), base_dir), spec.format)
    url = _resolve_sqlite(_parse_url(_expand_env(spec.url or "")), base_dir)
    return SqlSource(url, table=spec.table, query=spec.query, engine=engine)


def _resolve(path: Path, base_dir: Path) -> Path:
    return path if path.is_absolute() else Path(base_dir) / path


# ---------------------------------------------------------------- files


class FileSource(Source):
    """Parquet or CSV: one file, a directory, or a glob such as `data/2024-*.parquet`."""

    def __init__(self, path: Path, file_format: FileFormat | None = None) -> None:
        self._path = path
        self._format = file_format

    def describe(self) -> str:
        return str(self._path)

    def schema(self) -> dict[str, ColumnKind]:
        return {field.name: _arrow_kind(field.type) for field in self._dataset().schema}

    def fingerprint(self) -> Hashable:
        return _files_fingerprint(self._files()), self._format

    def read(self, columns: Sequence[str], *, time_column: str | None = None,
             start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        dataset = self._dataset()
        wanted, kinds = self._checked(columns, time_column, start, end)
        condition = None
        if time_column is not None:
            field_type = dataset.schema.field(time_column).type
            for bound, compare in ((start, "ge"), (end, "lt")):
                if bound is None:
                    continue
                term = _arrow_time_bound(time_column, field_type, bound, compare)
                condition = term if condition is None else condition & term
        try:
            table = dataset.to_table(columns=wanted, filter=condition)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"cannot read {self.describe()}: {_first_line(exc)}") from exc
        return _normalise(table.to_pandas(), {name: kinds[name] for name in wanted}, self.describe())

    def _files(self) -> list[str]:
        text = str(self._path)
        if any(char in text for char in "*?["):
            files = [f for f in sorted(glob.glob(text, recursive=True)) if os.path.isfile(f)]
            if not files:
                raise SourceError(f"no file matches {text}")
            return files
        if self._path.is_dir():
            files = [str(p) for p in sorted(self._path.rglob("*"))
                     if p.is_file() and _suffix_format(p.name) is not None]
            if not files:
                raise SourceError(f"no .parquet or .csv file in the folder {text}")
            return files
        if not self._path.exists():
            raise SourceError(f"file not found: {text}")
        return [text]

    def _dataset(self) -> ds.Dataset:
        files = self._files()
        key = (_files_fingerprint(files), self._format)
        with _datasets_lock:
            if (dataset := _datasets.get(key)) is not None:
                _datasets.move_to_end(key)
                return dataset
        dataset = self._open(files)
        with _datasets_lock:
            _datasets[key] = dataset
            while len(_datasets) > _DATASETS_KEPT:
                _datasets.popitem(last=False)
        return dataset

    def _open(self, files: list[str]) -> ds.Dataset:
        file_format = self._format or _suffix_format(files[0])
        if file_format is None:
            raise SourceError(
                f"cannot tell the format of {self.describe()}: name files .parquet or .csv, "
                "or set 'format'")
        # an empty CSV field is a missing value, as pandas reads it, not an empty string
        dataset_format = (ds.CsvFileFormat(convert_options=pa_csv.ConvertOptions(strings_can_be_null=True))
                          if file_format == "csv" else file_format)
        try:
            return ds.dataset(files, format=dataset_format)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"cannot read {self.describe()} as {file_format}: {_first_line(exc)}") from exc


_datasets: OrderedDict[Hashable, ds.Dataset] = OrderedDict()
_datasets_lock = threading.Lock()


def _files_fingerprint(files: list[str]) -> tuple:
    """Each file's name, size and modification time: a rewritten file opens afresh."""
    out = []
    for name in files:
        try:
            stat = os.stat(name)
        except OSError as exc:
            raise SourceError(f"cannot read {name}: {_first_line(exc)}") from exc
        out.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def _suffix_format(name: str) -> FileFormat | None:
    lower = name.lower()
    return next((fmt for suffix, fmt in _SUFFIX_FORMATS.items() if lower.endswith(suffix)), None)


def _arrow_kind(data_type: pa.DataType) -> ColumnKind:
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    if pa.types.is_boolean(data_type):
        return "bool"
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "numeric"
    if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
        return "datetime"
    return "string"


def _arrow_time_bound(column: str, field_type: pa.DataType, bound: datetime, compare: str) -> ds.Expression:
    field = ds.field(column)
    value = _naive_utc(bound)
    if pa.types.is_date(field_type):
        field = field.cast(pa.timestamp("us"))
        scalar = pa.scalar(value, pa.timestamp("us"))
    else:
        # a naive datetime given to a zoned timestamp type is read as UTC, which is what we hold
        scalar = pa.scalar(value, pa.timestamp("us", tz=field_type.tz))
    return field >= scalar if compare == "ge" else field < scalar


# ---------------------------------------------------------------- SQL


class SqlSource(Source):
    """A table (`table: name` or `schema.name`) or a `query:` wrapped as a subquery."""

    def __init__(self, url: URL, *, table: str | None, query: str | None, engine: Engine | None = None) -> None:
        self._url = engine.url if engine is not None else url
        self._table_name = table
        self._query = query
        self._engine = engine
        self._table: sa.Table | None = None
        self._kinds: dict[str, ColumnKind] | None = None
        self._zoned: dict[str, bool] = {}

    def describe(self) -> str:
        where = f"table {self._table_name}" if self._table_name else f"query {_shorten(self._query or '')!r}"
        return f"{self._url.render_as_string(hide_password=True)} ({where})"

    def schema(self) -> dict[str, ColumnKind]:
        if self._kinds is None:
            self._kinds = self._reflect() if self._table_name else self._sample_kinds()
        return dict(self._kinds)

    def read(self, columns: Sequence[str], *, time_column: str | None = None,
             start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        wanted, kinds = self._checked(columns, time_column, start, end)
        sqlite = self._url.get_backend_name() == "sqlite"
        needed = list(dict.fromkeys(wanted + ([time_column] if time_column else [])))
        columns_of = self._selectable(needed).c

        selected = []
        for name in wanted:
            column = columns_of[name]
            if sqlite and kinds[name] == "datetime":
                # SQLite keeps date-times as text in many layouts; pandas parses them all below
                column = sa.type_coerce(column, sa.String)
            selected.append(column.label(name))
        # SQLite's bounds are compared in julianday() (milliseconds) and widened: check them exactly here
        recheck = sqlite and time_column is not None and (start is not None or end is not None)
        time_label = time_column if time_column in wanted else _TIME_LABEL
        if recheck and time_label == _TIME_LABEL:
            selected.append(sa.type_coerce(columns_of[time_column], sa.String).label(_TIME_LABEL))
        statement = sa.select(*selected)
        if time_column is not None:
            statement = statement.where(*self._time_window(columns_of[time_column], time_column, start, end))

        rows, keys = self._run(statement)
        frame = pd.DataFrame.from_records(rows, columns=keys, coerce_float=True)
        if recheck:
            try:
                frame[time_label] = _to_naive_utc(frame[time_label])
            except (ValueError, TypeError, OverflowError) as exc:
                raise SourceError(f"{self.describe()}: column '{time_column}' holds values that are not datetime: "
                                  f"{_first_line(exc)}") from None
            frame = _exactly_within(frame, time_label, start, end)
        return _normalise(frame, {name: kinds[name] for name in wanted}, self.describe())

    def _time_window(self, column: sa.ColumnElement, name: str,
                     start: datetime | None, end: datetime | None) -> list[sa.ColumnElement[bool]]:
        conditions = []
        sqlite = self._url.get_backend_name() == "sqlite"
        zoned = self._zoned.get(name, False)
        for bound, lower in ((start, True), (end, False)):
            if bound is None:
                continue
            value = _naive_utc(bound)
            if sqlite:
                # julianday() reads every ISO layout SQLite users store (space or T, offsets, fractions);
                # the plain text bound a day wider lets SQLite use an index on the column first
                day = sa.literal(((value.date() - timedelta(days=1)) if lower else (value.date() + timedelta(days=2)))
                                 .isoformat(), sa.String)
                conditions.append(column >= day if lower else column < day)
                # julianday() keeps milliseconds only: widen by one and let read() recheck the rows exactly
                value = value - _JULIANDAY_STEP if lower else value + _JULIANDAY_STEP
                left = sa.func.julianday(column)
                right = sa.func.julianday(sa.literal(value.isoformat(sep=" "), sa.String))
            else:
                value = value.replace(tzinfo=UTC) if zoned else value
                left, right = column, sa.literal(value, sa.DateTime(timezone=zoned))
            conditions.append(left >= right if lower else left < right)
        return conditions

    def _selectable(self, names: list[str]) -> sa.FromClause:
        if self._table_name:
            assert self._table is not None  # schema() reflected it
            return self._table
        return self._query_text().columns(*(sa.column(name) for name in names)).subquery("flywheel_source")

    def _query_text(self) -> sa.TextClause:
        # a spec's query has no bind parameters: every colon is literal (':active', '::date')
        return sa.text((self._query or "").replace(":", "\\:"))

    def _reflect(self) -> dict[str, ColumnKind]:
        schema, _, name = (self._table_name or "").rpartition(".")
        try:
            with self._connect() as connection:
                table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=connection)
        except sa.exc.NoSuchTableError:
            raise SourceError(f"table '{self._table_name}' not found in {self._safe_url()}") from None
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(f"cannot read the columns of {self.describe()}: {self._reason(exc)}") from None
        self._table = table
        self._zoned = {c.name: bool(getattr(c.type, "timezone", False)) for c in table.columns}
        return {column.name: _sql_kind(column.type) for column in table.columns}

    def _sample_kinds(self) -> dict[str, ColumnKind]:
        sample = sa.select(sa.literal_column("*")).select_from(
            self._query_text().columns().subquery("flywheel_source")).limit(_SAMPLE_ROWS)
        rows, keys = self._run(sample)
        kinds: dict[str, ColumnKind] = {}
        for index, key in enumerate(keys):
            values = [row[index] for row in rows if row[index] is not None]
            kinds[key] = _value_kind(values)
            self._zoned[key] = any(isinstance(v, datetime) and v.tzinfo is not None for v in values)
        return kinds

    def _run(self, statement: sa.Executable) -> tuple[list[tuple], list[str]]:
        with self._connect() as connection:
            try:
                result = connection.execute(statement)
                # The driver's own tuples: building SQLAlchemy Row objects costs more than the fetch.
                return result.cursor.fetchall(), list(result.keys())
            except sa.exc.SQLAlchemyError as exc:
                raise SourceError(f"query failed on {self.describe()}: {self._reason(exc)}") from None

    def _connect(self) -> sa.Connection:
        database = self._url.database
        if (self._engine is None and self._url.get_backend_name() == "sqlite" and database
                and database != ":memory:" and not database.startswith("file:")
                and not Path(database).exists()):
            raise SourceError(f"database file not found: {database}")
        try:
            engine = self._engine or _engine_for(self._url.render_as_string(hide_password=False))
            return engine.connect()
        except (sa.exc.SQLAlchemyError, ImportError) as exc:
            raise SourceError(f"cannot connect to {self._safe_url()}: {self._reason(exc)}") from None

    def _safe_url(self) -> str:
        return self._url.render_as_string(hide_password=True)

    def _reason(self, exc: BaseException) -> str:
        text = _first_line(getattr(exc, "orig", None) or exc)
        password = self._url.password
        return text.replace(str(password), "***") if password else text


@functools.lru_cache(maxsize=32)
def _engine_for(url: str) -> Engine:
    return sa.create_engine(url, pool_pre_ping=True)


def _sql_kind(column_type: sa.types.TypeEngine) -> ColumnKind:
    if isinstance(column_type, sa.Boolean):
        return "bool"
    if isinstance(column_type, (sa.DateTime, sa.Date)):
        return "datetime"
    if isinstance(column_type, (sa.Integer, sa.Numeric, sa.Float)):
        return "numeric"
    return "string"


def _value_kind(values: list[object]) -> ColumnKind:
    if not values:
        return "string"
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in values):
        return "numeric"
    if all(isinstance(v, (datetime, date)) for v in values):
        return "datetime"
    if all(isinstance(v, str) and _ISO_DATE.match(v) for v in values):
        return "datetime"
    return "string"


def _parse_url(text: str) -> URL:
    try:
        return make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        # the message of make_url can echo the URL, password included
        raise ValueError(
            "not a valid database URL (expected dialect://user:password@host/database)") from None


def _expand_env(text: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise SourceError(f"environment variable {name} is not set (used in a database URL)")
        return os.environ[name]

    return _ENV_VAR.sub(value, text)


def _resolve_sqlite(url: URL, base_dir: Path) -> URL:
    database = url.database
    if (url.get_backend_name() != "sqlite" or not database or database == ":memory:"
            or database.startswith("file:") or Path(database).is_absolute()):
        return url
    return url.set(database=str((Path(base_dir) / database).resolve()))


# ---------------------------------------------------------------- shared


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _normalise(frame: pd.DataFrame, kinds: dict[str, ColumnKind], source: str) -> pd.DataFrame:
    for name, kind in kinds.items():
        column = frame[name]
        try:
            if kind == "datetime":
                frame[name] = _to_naive_utc(column)
            elif kind == "numeric" and column.dtype == object:
                frame[name] = pd.to_numeric(column)
        except (ValueError, TypeError, OverflowError) as exc:
            raise SourceError(f"{source}: column '{name}' holds values that are not {kind}: "
                              f"{_first_line(exc)}") from None
    return frame[list(kinds)]


def _exactly_within(frame: pd.DataFrame, time_column: str, start: datetime | None,
                    end: datetime | None) -> pd.DataFrame:
    values = frame[time_column].to_numpy()
    keep = np.ones(len(values), dtype=bool)
    if start is not None:
        keep &= values >= np.datetime64(_naive_utc(start))
    if end is not None:
        keep &= values < np.datetime64(_naive_utc(end))
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def _to_naive_utc(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert(None)
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return column
    parsed = pd.to_datetime(column, utc=True, format="ISO8601" if _all_text(column) else None)
    return parsed.dt.tz_convert(None)


def _all_text(column: pd.Series) -> bool:
    return pd.api.types.infer_dtype(column, skipna=True) == "string"


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _shorten(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
