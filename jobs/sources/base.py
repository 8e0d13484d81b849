"""What every source is: the Source interface, its error, column kinds, and the check that the columns
asked for exist before any row is read."""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Literal

import pandas as pd

ColumnKind = Literal["numeric", "string", "datetime", "bool"]
FileFormat = Literal["parquet", "csv"]


class SourceError(Exception):
    """A data source cannot be read; the message names the source and the problem."""


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
