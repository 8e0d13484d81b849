"""SQL sources (SQLAlchemy): a table, or a query wrapped as a subquery. Engines are cached per process;
the time window is pushed down to the database (on SQLite through julianday(), rechecked exactly)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from jobs.sources.base import ColumnKind, Source, SourceError
from jobs.sources.frames import exactly_within, first_line, naive_utc, normalise, shorten, to_naive_utc

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_SAMPLE_ROWS = 100
_TIME_LABEL = "__flywheel_time"
_JULIANDAY_STEP = timedelta(milliseconds=1)


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
        where = f"table {self._table_name}" if self._table_name else f"query {shorten(self._query or '')!r}"
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
                frame[time_label] = to_naive_utc(frame[time_label])
            except (ValueError, TypeError, OverflowError) as exc:
                raise SourceError(f"{self.describe()}: column '{time_column}' holds values that are not datetime: "
                                  f"{first_line(exc)}") from None
            frame = exactly_within(frame, time_label, start, end)
        return normalise(frame, {name: kinds[name] for name in wanted}, self.describe())

    def _time_window(self, column: sa.ColumnElement, name: str,
                     start: datetime | None, end: datetime | None) -> list[sa.ColumnElement[bool]]:
        conditions = []
        sqlite = self._url.get_backend_name() == "sqlite"
        zoned = self._zoned.get(name, False)
        for bound, lower in ((start, True), (end, False)):
            if bound is None:
                continue
            value = naive_utc(bound)
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
        kinds = {column.name: _sql_kind(column.type) for column in table.columns}
        if self._url.get_backend_name() == "sqlite":
            kinds.update(self._iso_text_columns(table, [name for name, kind in kinds.items() if kind == "string"]))
        return kinds

    def _iso_text_columns(self, table: sa.Table, names: list[str]) -> dict[str, ColumnKind]:
        """SQLite keeps date-times as ISO text (TEXT columns among them): a text column whose sampled values
        all read as ISO dates holds date-times, which read() parses and julianday() compares."""
        if not names:
            return {}
        rows, keys = self._run(sa.select(*(table.c[name] for name in names)).limit(_SAMPLE_ROWS))
        found: dict[str, ColumnKind] = {}
        for index, key in enumerate(keys):
            values = [row[index] for row in rows if row[index] is not None]
            if values and all(isinstance(v, str) and _ISO_DATE.match(v) for v in values):
                found[key] = "datetime"
        return found

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
        text = first_line(getattr(exc, "orig", None) or exc)
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
