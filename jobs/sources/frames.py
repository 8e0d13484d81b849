"""What every source does to the rows it read: date-times as naive UTC, numbers as numbers, rows exactly
within a time window; and error text short enough for a message."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from jobs.sources.base import ColumnKind, SourceError


def naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def normalise(frame: pd.DataFrame, kinds: dict[str, ColumnKind], source: str) -> pd.DataFrame:
    for name, kind in kinds.items():
        column = frame[name]
        try:
            if kind == "datetime":
                frame[name] = to_naive_utc(column)
            elif kind == "numeric" and column.dtype == object:
                frame[name] = pd.to_numeric(column)
        except (ValueError, TypeError, OverflowError) as exc:
            raise SourceError(f"{source}: column '{name}' holds values that are not {kind}: "
                              f"{first_line(exc)}") from None
    return frame[list(kinds)]


def exactly_within(frame: pd.DataFrame, time_column: str, start: datetime | None,
                    end: datetime | None) -> pd.DataFrame:
    values = frame[time_column].to_numpy()
    keep = np.ones(len(values), dtype=bool)
    if start is not None:
        keep &= values >= np.datetime64(naive_utc(start))
    if end is not None:
        keep &= values < np.datetime64(naive_utc(end))
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def to_naive_utc(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert(None)
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return column
    parsed = pd.to_datetime(column, utc=True, format="ISO8601" if _all_text(column) else None)
    return parsed.dt.tz_convert(None)


def _all_text(column: pd.Series) -> bool:
    return pd.api.types.infer_dtype(column, skipna=True) == "string"


def first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def shorten(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
